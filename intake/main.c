/* main.c — fenbo-intake: takes petitions from every channel, makes each
 * durable in the spool before answering, and delivers it to the dispatcher
 * until the dispatcher acknowledges it (core.c). This file starts it, routes
 * HTTP requests to the channel adapters and handles signals. */
#include "intake.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_daemon.h"
#include "fb_log.h"
#include "fb_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef void (*s_route_fn)(intake_t *in, fb_http_req_t *req);

/* Every endpoint of intake, and how large a body each takes. */
static const struct {
    const char *path;
    bool prefix;
    s_route_fn fn;
    bool uploads; /* takes photos: the larger body limit */
    bool bearer;  /* needs a known token in the head, before its body is read */
} s_routes[] = {
    {"/api/v1/hotline/orders", false, intake_hotline_http, false, true},
    {"/api/v1/miniapp/reports", false, intake_miniapp_http, true, true},
    {"/api/v1/grid/reports", false, intake_grid_http, true, true},
    {"/api/v1/petitions/", true, intake_petitions_http, false, true},
    /* Open311's api_key travels in the form body (the spec's). */
    {"/open311/v2/", true, intake_open311_http, false, false},
};

static int find_route(const char *path) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_routes); i++) {
        size_t n = strlen(s_routes[i].path);
        if (s_routes[i].prefix ? strncmp(path, s_routes[i].path, n) == 0
                               : strcmp(path, s_routes[i].path) == 0)
            return (int)i;
    }
    return -1;
}

static size_t body_limit(void *ud, const char *method, const char *path) {
    (void)method;
    intake_t *in = ud;
    int r = find_route(path);
    return (size_t)(r >= 0 && s_routes[r].uploads ? in->cfg.intake_max_upload
                                                  : in->cfg.intake_max_body);
}

/* Authentication on the request head: an upload without a known token is
 * refused before a byte of it is read (no "100 Continue"). The handler
 * checks the token's role once the body is in. */
static void on_head(void *ud, fb_http_req_t *req) {
    intake_t *in = ud;
    int r = find_route(fb_http_path(req));
    if (r >= 0 && s_routes[r].bearer)
        intake_authenticate(in, req);
}

static void get_metrics(intake_t *in, fb_http_req_t *req) {
    char buf[2048];
    const s_metrics_t *m = &in->m;
    int n = snprintf(buf, sizeof buf,
                     "# TYPE fenbo_intake_requests_total counter\n"
                     "fenbo_intake_requests_total{class=\"2xx\"} %" PRIu64 "\n"
                     "fenbo_intake_requests_total{class=\"4xx\"} %" PRIu64 "\n"
                     "fenbo_intake_requests_total{class=\"5xx\"} %" PRIu64 "\n"
                     "# TYPE fenbo_intake_petitions_accepted_total counter\n"
                     "fenbo_intake_petitions_accepted_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_duplicates_total counter\n"
                     "fenbo_intake_duplicates_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_petitions_refused_total counter\n"
                     "fenbo_intake_petitions_refused_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_fsyncs_total counter\n"
                     "fenbo_intake_fsyncs_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_fsync_batch_max gauge\n"
                     "fenbo_intake_fsync_batch_max %" PRIu64 "\n"
                     "# TYPE fenbo_intake_acks_total counter\n"
                     "fenbo_intake_acks_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_sends_total counter\n"
                     "fenbo_intake_sends_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_resends_total counter\n"
                     "fenbo_intake_resends_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_spool_pending gauge\n"
                     "fenbo_intake_spool_pending %zu\n"
                     "# TYPE fenbo_intake_spool_segments gauge\n"
                     "fenbo_intake_spool_segments %zu\n"
                     "# TYPE fenbo_intake_idempotency_keys gauge\n"
                     "fenbo_intake_idempotency_keys %zu\n"
                     "# TYPE fenbo_intake_proof_failures_total counter\n"
                     "fenbo_intake_proof_failures_total %" PRIu64 "\n"
                     "# TYPE fenbo_intake_proof_limited_total counter\n"
                     "fenbo_intake_proof_limited_total %" PRIu64 "\n",
                     m->requests[2], m->requests[4], m->requests[5], m->accepted, m->duplicates,
                     m->rejected, m->fsyncs, m->fsync_batch_max, m->acks, m->sends, m->resends,
                     fb_spool_pending(in->spool), fb_spool_segments(in->spool),
                     fb_map_size(in->keys), m->proof_failures, m->proof_limited);
    fb_http_respond(req, 200, "text/plain; version=0.0.4", buf, (size_t)n);
}

static void on_request(void *ud, fb_http_req_t *req) {
    intake_t *in = ud;
    const char *path = fb_http_path(req);
    bool get = strcmp(fb_http_method(req), "GET") == 0;
    int r = find_route(path);
    if (r >= 0) {
        s_routes[r].fn(in, req);
    } else if (strcmp(path, "/healthz") == 0 && get) {
        fb_http_respond_json(req, 200,
                             json_pack("{s:s,s:I,s:I}", "status", "ok", "spool_pending",
                                       (json_int_t)fb_spool_pending(in->spool), "unacked",
                                       (json_int_t)in->un_n));
    } else if (strcmp(path, "/metrics") == 0 && get) {
        get_metrics(in, req);
    } else {
        fb_http_error(req, 404, "not_found", NULL, "no such endpoint");
    }
    /* Answers given later, after the group fsync, are counted there. */
    if (fb_http_answered(req))
        in->m.requests[fb_http_status(req) / 100 % 6]++;
}

static void on_drained(uv_timer_t *t) {
    intake_t *in = t->data;
    intake_close_handles(in); /* answers what still waits for the fsync */
    fb_http_stop(&in->http);
    uv_close((uv_handle_t *)&in->drain, NULL);
    uv_close((uv_handle_t *)&in->sigterm, NULL);
    uv_close((uv_handle_t *)&in->sigint, NULL);
    uv_close((uv_handle_t *)&in->sighup, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
    intake_t *in = s->data;
    if (signum == SIGHUP) {
        fb_config_t fresh;
        char err[512];
        if (fb_daemon_config_read(in->config_path, &fresh, err, sizeof err) != 0) {
            fb_log(FB_LOG_ERROR, "event=reload_failed error=\"%s\"", err);
        } else {
            int level = fb_log_level_parse(fresh.log_level);
            if (level >= 0)
                fb_log_set_level((fb_log_level_t)level);
            in->cfg.intake_resend_ms = fresh.intake_resend_ms;
            in->cfg.intake_resend_max_ms = fresh.intake_resend_max_ms;
            in->cfg.maildir_scan_s = fresh.maildir_scan_s;
            intake_directory_set_refresh(in->dir, fresh.intake_token_refresh_s);
            fb_log(FB_LOG_INFO, "event=reloaded");
        }
        fb_config_free(&fresh);
        return;
    }
    if (in->stopping)
        return;
    in->stopping = true;
    fb_log(FB_LOG_INFO, "event=stopping signal=%d spool_pending=%zu", signum,
           fb_spool_pending(in->spool));
    /* Requests under way are answered during a short grace period (their
     * answers follow the next group fsync as usual); then intake stops.
     * Unacknowledged petitions stay in the spool for the next start. */
    intake_mailbox_stop(in);
    uv_timer_init(in->loop, &in->drain);
    in->drain.data = in;
    uv_timer_start(&in->drain, on_drained, 300, 0);
}

int main(int argc, char **argv) {
    static intake_t in;
    int status = fb_daemon_init(argc, argv, "fenbo-intake",
                                "Takes petitions from every channel over HTTP and the Maildir, "
                                "spools them durably and delivers them to fenbo-dispatcher.",
                                &in.cfg, &in.config_path);
    if (status >= 0)
        return status;
    if (fb_db_set_login(in.cfg.intake_db_user) != 0) {
        fb_log(FB_LOG_ERROR, "event=bad_config key=intake.db_user error=\"longer than 63 bytes\"");
        return 1;
    }
    if (fb_text_init() != 0) {
        fb_log(FB_LOG_ERROR, "event=opencc_unavailable config=t2s.json");
        return 1;
    }

    /* Every open connection is a descriptor: allow as many as the system
     * does, so that a crowd of slow clients cannot lock out the rest. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    in.loop = uv_default_loop();
    if (intake_open(&in) != 0)
        return 1;

    fb_http_opts_t ho = {.address = in.cfg.intake_address,
                         .port = in.cfg.intake_port,
                         .max_body = (size_t)in.cfg.intake_max_body,
                         .body_limit = body_limit,
                         .max_connections = (unsigned)in.cfg.intake_max_connections,
                         .per_ip_connections = (unsigned)in.cfg.intake_per_ip_connections,
                         .timeout_s = (unsigned)in.cfg.intake_connection_timeout,
                         .head_cb = on_head,
                         .rate_per_s = (unsigned)in.cfg.intake_rate_per_s,
                         .rate_burst = (unsigned)in.cfg.intake_rate_burst};
    if (fb_http_start(in.loop, &ho, on_request, &in, &in.http) != 0 ||
        intake_mailbox_start(&in) != 0)
        return 1;

    uv_signal_init(in.loop, &in.sigterm);
    uv_signal_init(in.loop, &in.sigint);
    uv_signal_init(in.loop, &in.sighup);
    in.sigterm.data = in.sigint.data = in.sighup.data = &in;
    uv_signal_start(&in.sigterm, on_signal, SIGTERM);
    uv_signal_start(&in.sigint, on_signal, SIGINT);
    uv_signal_start(&in.sighup, on_signal, SIGHUP);

    fb_log(FB_LOG_INFO, "event=started address=%s port=%d instance=%d bus=%s",
           in.cfg.intake_address, fb_http_port(in.http), in.cfg.instance_id, in.cfg.bus_petitions);
    uv_run(in.loop, UV_RUN_DEFAULT);

    intake_free(&in);
    int lc = uv_loop_close(in.loop);
    fb_text_shutdown();
    fb_log(FB_LOG_INFO, "event=stopped loop_close=%d", lc);
    fb_config_free(&in.cfg);
    return lc == 0 ? 0 : 1;
}
