/* main.c — fenbo-worker: owns every case after dispatch.
 *
 * One libuv loop carries the case API (fb_http), the assignment events of
 * the dispatchers (feed.c, a ZeroMQ SUB socket), a catch-up timer that
 * delivers from PostgreSQL whatever the bus did not bring, the database link
 * with its reconnect timer, and the signals: SIGTERM/SIGINT stop cleanly
 * (every handle closed, the loop closed), SIGHUP reloads the reloadable
 * settings (log level, catch-up interval).
 *
 *   fenbo-worker --config FILE [--check-config] */
#include "api.h"
#include "dblink.h"
#include "dbpool.h"
#include "deadlines.h"
#include "delivery.h"
#include "fb_common.h"
#include "fb_config.h"
#include "fb_daemon.h"
#include "fb_db.h"
#include "fb_log.h"
#include "feed.h"
#include "ratings.h"
#include "retention.h"
#include "retrain.h"
#include "worker.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Assignments per catch-up statement, and statements per timer tick: a long
 * backlog is worked off over several loop turns, so HTTP stays responsive. */
#define CATCHUP_BATCH            500
#define CATCHUP_BATCHES_PER_TICK 20

#define HTTP_MAX_BODY ((size_t)256 * 1024)
/* A grid worker's verification may carry photos (as phones send them,
 * compressed): a larger body for that path only, whose token is checked
 * on the request head (fb_api_head). */
#define VERIFY_MAX_BODY ((size_t)8 * 1024 * 1024)

static size_t body_limit(void *ud, const char *method, const char *path) {
    (void)ud;
    (void)method;
    return fb_api_is_upload(path) ? VERIFY_MAX_BODY : HTTP_MAX_BODY;
}

static void on_catchup(uv_timer_t *t);

void fb_worker_catchup(fb_worker_t *w) {
    PGconn *db = fb_dblink_conn(w->db);
    if (!db || w->stopping || fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0)
        return;
    int total = 0, n = 0;
    bool more = false;
    for (int i = 0; i < CATCHUP_BATCHES_PER_TICK; i++) {
        if (fb_delivery_catchup_batch(db, CATCHUP_BATCH, &n) != 0) {
            fb_dblink_check(w->db);
            return;
        }
        total += n;
        more = n >= CATCHUP_BATCH;
        if (!more)
            break;
    }
    w->metrics.catchup_runs++;
    w->metrics.delivered_catchup += (uint64_t)total;
    if (total > 0)
        fb_log(FB_LOG_INFO, "event=catchup delivered=%d more=%s", total, more ? "yes" : "no");
    else
        fb_log(FB_LOG_DEBUG, "event=catchup delivered=0");
    /* A backlog remains: come back soon, not in catchup_s. Not after 0 ms:
     * libuv runs a timer restarted at 0 from its own callback again before
     * polling for I/O, which would starve the HTTP API. */
    if (more)
        uv_timer_start(&w->catchup, on_catchup, 1, (uint64_t)w->cfg.worker_catchup_s * 1000);
}

static void on_catchup(uv_timer_t *t) {
    fb_worker_catchup(t->data);
}

/* The database is (back) up: whatever was published meanwhile is only in
 * PostgreSQL now, so catch up at once. */
static void on_db_up(void *ud) {
    fb_worker_t *w = ud;
    if (!w->stopping)
        uv_timer_start(&w->catchup, on_catchup, 0, (uint64_t)w->cfg.worker_catchup_s * 1000);
    if (!w->stopping)
        fb_timers_kick(w->timers);
    if (!w->stopping)
        fb_retention_kick(w->retention);
}

static void stop(fb_worker_t *w, const char *why) {
    if (w->stopping)
        return;
    w->stopping = true;
    fb_log(FB_LOG_INFO, "event=stopping reason=%s", why);
    fb_http_stop(&w->http);
    fb_feed_stop(&w->feed);
    fb_timers_stop(&w->timers);
    fb_ratings_stop(&w->ratings);
    fb_retention_stop(&w->retention);
    fb_retrain_stop(&w->retrain);
    fb_dblink_destroy(&w->db);
    uv_timer_stop(&w->catchup);
    uv_close((uv_handle_t *)&w->catchup, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    uv_close((uv_handle_t *)&w->sighup, NULL);
}

/* SIGHUP: the reloadable settings take effect; the others need a restart,
 * which is said in the log rather than silently ignored. */
static void reload(fb_worker_t *w) {
    fb_config_t cfg;
    char err[512];
    if (fb_daemon_config_read(w->config_path, &cfg, err, sizeof err) != 0) {
        fb_log(FB_LOG_WARN, "event=config_reload_failed error=\"%s\"", err);
        fb_config_free(&cfg);
        return;
    }
    fb_log_set_level((fb_log_level_t)fb_log_level_parse(cfg.log_level));
    if (cfg.worker_catchup_s != w->cfg.worker_catchup_s) {
        w->cfg.worker_catchup_s = cfg.worker_catchup_s;
        uv_timer_set_repeat(&w->catchup, (uint64_t)cfg.worker_catchup_s * 1000);
        uv_timer_again(&w->catchup);
    }
    fb_timers_reload(w->timers, &cfg);
    fb_retention_reload(w->retention, &cfg);
    fb_retrain_reload(w->retrain, &cfg);
    char *tmp = w->cfg.log_level;
    w->cfg.log_level = cfg.log_level;
    cfg.log_level = tmp;
    const struct {
        const char *key;
        const char *was, *now;
    } fixed[] = {
        {"db.conninfo", w->cfg.db_conninfo, cfg.db_conninfo},
        {"bus.assignments", w->cfg.bus_assignments, cfg.bus_assignments},
        {"worker.address", w->cfg.worker_address, cfg.worker_address},
        {"general.timezone", w->cfg.timezone, cfg.timezone},
        {"worker.db_role", w->cfg.worker_db_role, cfg.worker_db_role},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(fixed); i++)
        if (strcmp(fixed[i].was, fixed[i].now) != 0)
            fb_log(FB_LOG_WARN, "event=config_needs_restart key=%s", fixed[i].key);
    if (cfg.worker_port != w->cfg.worker_port)
        fb_log(FB_LOG_WARN, "event=config_needs_restart key=worker.port");
    fb_log(FB_LOG_INFO, "event=config_reloaded log_level=%s catchup_s=%d", w->cfg.log_level,
           w->cfg.worker_catchup_s);
    fb_config_free(&cfg);
}

static void on_signal(uv_signal_t *s, int signum) {
    fb_worker_t *w = s->data;
    if (signum == SIGHUP)
        reload(w);
    else
        stop(w, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_leaked(uv_handle_t *h, void *arg) {
    (void)arg;
    fb_log(FB_LOG_ERROR, "event=handle_leaked type=%s closing=%d",
           uv_handle_type_name(uv_handle_get_type(h)), uv_is_closing(h));
}

int main(int argc, char **argv) {
    fb_worker_t *w = calloc(1, sizeof *w);
    void *zctx = NULL;
    int status = 1;
    bool loop_ready = false, started = false;
    if (!w) {
        fprintf(stderr, "fenbo-worker: out of memory\n");
        return 1;
    }
    int init = fb_daemon_init(argc, argv, "fenbo-worker",
                              "Tracks cases after dispatch and serves the case API, the rates and "
                              "the dashboard.",
                              &w->cfg, &w->config_path);
    if (init >= 0) {
        status = init;
        goto fail;
    }
    started = true;
    if (fb_db_set_login(w->cfg.worker_db_user) != 0) {
        fb_log(FB_LOG_ERROR, "event=bad_config key=worker.db_user error=\"longer than 63 bytes\"");
        goto fail;
    }

    if (uv_loop_init(&w->loop) != 0)
        goto fail;
    loop_ready = true;
    zctx = zmq_ctx_new();
    if (!zctx) {
        fb_log(FB_LOG_ERROR, "event=zmq_init_failed");
        goto fail;
    }
    if (fb_dblink_new(&w->loop, w->cfg.db_conninfo, w->cfg.timezone, on_db_up, w, &w->db) != 0 ||
        fb_dblink_set_role(w->db, w->cfg.worker_db_role) != 0 ||
        fb_dbpool_new(&w->loop, w->cfg.db_conninfo, w->cfg.worker_db_role,
                      w->cfg.worker_stats_connections, &w->pool) != 0)
        goto fail;
    uv_timer_init(&w->loop, &w->catchup);
    w->catchup.data = w;
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_init(&w->loop, &w->sigint);
    uv_signal_init(&w->loop, &w->sighup);
    w->sigterm.data = w->sigint.data = w->sighup.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_signal_start(&w->sighup, on_signal, SIGHUP);

    fb_http_opts_t http = {
        .address = w->cfg.worker_address,
        .port = w->cfg.worker_port,
        .max_body = HTTP_MAX_BODY,
        .body_limit = body_limit,
        .head_cb = fb_api_head,
        .max_connections = (unsigned)w->cfg.worker_max_connections,
        .per_ip_connections = (unsigned)w->cfg.worker_per_ip_connections,
        .timeout_s = (unsigned)w->cfg.worker_connection_timeout,
        .rate_per_s = (unsigned)w->cfg.worker_rate_per_s,
        .rate_burst = (unsigned)w->cfg.worker_rate_burst,
    };
    if (fb_http_start(&w->loop, &http, fb_api_handle, w, &w->http) != 0 ||
        fb_feed_start(w, zctx, &w->feed) != 0 || fb_timers_start(w, &w->timers) != 0 ||
        fb_ratings_start(w, &w->ratings) != 0 || fb_retention_start(w, &w->retention) != 0 ||
        fb_retrain_start(w, &w->retrain) != 0) {
        stop(w, "startup_failed");
        uv_run(&w->loop, UV_RUN_DEFAULT);
        goto fail;
    }
    /* The first catch-up runs when the database link connects (on_db_up). */
    uv_timer_start(&w->catchup, on_catchup, (uint64_t)w->cfg.worker_catchup_s * 1000,
                   (uint64_t)w->cfg.worker_catchup_s * 1000);
    fb_log(FB_LOG_INFO, "event=started pid=%ld address=%s port=%d bus=%s catchup_s=%d timezone=%s",
           (long)getpid(), w->cfg.worker_address, fb_http_port(w->http), w->cfg.bus_assignments,
           w->cfg.worker_catchup_s, w->cfg.timezone);

    uv_run(&w->loop, UV_RUN_DEFAULT);
    status = 0;

fail:
    /* After the loop ran dry: no statistics query is in flight any more. */
    fb_dbpool_destroy(&w->pool);
    if (zctx)
        zmq_ctx_term(zctx);
    if (loop_ready) {
        int rc = uv_loop_close(&w->loop);
        if (rc != 0) {
            uv_walk(&w->loop, on_leaked, NULL);
            fb_log(FB_LOG_ERROR, "event=loop_close_failed error=\"%s\"", uv_strerror(rc));
            status = 1;
        }
    }
    if (status == 0 && started)
        fb_log(FB_LOG_INFO, "event=stopped");
    fb_config_free(&w->cfg);
    free(w);
    return status;
}
