/* main.c — fenbo-intake: takes petitions from every channel, makes each
 * durable in the spool before answering, and delivers it to the dispatcher
 * until the dispatcher acknowledges it.
 *
 * One libuv loop drives libmicrohttpd, the DEALER socket and the timers.
 * Group commit: requests handled during one loop iteration are appended to
 * the spool and left unanswered; the check phase that follows makes them
 * durable with one fdatasync and only then answers them and sends them on. */
#include "adapter.h"
#include "directory.h"
#include "fb_bus.h"
#include "fb_common.h"
#include "fb_config.h"
#include "fb_http.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_petition.h"
#include "fb_spool.h"
#include "fb_text.h"
#include "fb_time.h"
#include "fb_token.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define RESEND_TICK_MS  100
#define RESEND_PER_TICK 5000

/* What a retry with the same idempotency key gets back. */
typedef struct {
    char tracking_no[40];
    uint64_t idem_seq; /* record in the idempotency journal */
    bool durable;      /* synced: a retry may be answered at once */
} s_idem_t;

/* Oldest first, for expiry. */
typedef struct {
    uint64_t seq;
    int64_t at_us;
    char *key;
} s_idem_age_t;

/* An answer waiting for the next group fsync. */
typedef struct {
    fb_http_req_t *req;
    unsigned status;
    s_idem_t *idem;
} s_pending_t;

/* A spooled petition the dispatcher has not acknowledged yet. */
typedef struct {
    uint64_t seq;
    uint64_t next_ms;
    uint32_t backoff_ms;
    bool acked;
} s_unacked_t;

typedef struct {
    uint64_t requests[6]; /* by status class 1xx..5xx, [0] unused */
    uint64_t accepted, duplicates, rejected, fsyncs, fsync_batch_max, acks, sends, resends;
} s_metrics_t;

typedef struct {
    fb_config_t cfg;
    const char *config_path;
    uv_loop_t *loop;
    fb_http_t *http;
    fb_spool_t *spool; /* petitions */
    fb_spool_t *idem;  /* idempotency journal: key → tracking number */
    fb_map_t *keys;    /* "channel:key" → s_idem_t */
    s_idem_age_t *ages;
    size_t ages_head, ages_n, ages_cap;
    intake_directory_t *dir;
    void *zctx, *dealer;
    uv_poll_t zpoll;
    uv_check_t flush;
    uv_timer_t resend, expire;
    uv_signal_t sigterm, sigint, sighup;
    s_pending_t *pending;
    size_t npending, cappending;
    uint64_t *tosend; /* seqs synced in this round, to send after answering */
    size_t ntosend, captosend;
    s_unacked_t *unacked;
    size_t un_head, un_n, un_cap;
    int tracking_day;
    unsigned tracking_seq;
    s_metrics_t m;
    bool stopping;
} intake_t;

/* ---- small growable arrays --------------------------------------------- */

static int reserve(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *n = realloc(*arr, c * elem);
    if (!n)
        return FB_ENOMEM;
    *arr = n;
    *cap = c;
    return 0;
}

/* ---- tracking numbers ---------------------------------------------------- */

static int local_day(int64_t us) {
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

/* Remembers the highest number handed out today, so a restart continues it. */
static void tracking_seen(intake_t *in, const char *tracking_no) {
    int day, inst;
    unsigned seq;
    if (sscanf(tracking_no, "%8d-%d-%u", &day, &inst, &seq) == 3 && inst == in->cfg.instance_id &&
        day == in->tracking_day && seq > in->tracking_seq)
        in->tracking_seq = seq;
}

static void tracking_next(intake_t *in, int64_t now_us, char *out, size_t outlen) {
    int day = local_day(now_us);
    if (day != in->tracking_day) {
        in->tracking_day = day;
        in->tracking_seq = 0;
    }
    snprintf(out, outlen, "%08d-%d-%06u", day, in->cfg.instance_id, ++in->tracking_seq);
}

/* ---- idempotency --------------------------------------------------------- */

static int idem_remember(intake_t *in, const char *key, const char *tracking_no, uint64_t seq,
                         int64_t at_us, bool durable, s_idem_t **out) {
    s_idem_t *e = calloc(1, sizeof *e);
    char *k = strdup(key);
    if (!e || !k ||
        reserve((void **)&in->ages, &in->ages_cap, in->ages_head + in->ages_n + 1,
                sizeof *in->ages)) {
        free(e);
        free(k);
        return FB_ENOMEM;
    }
    snprintf(e->tracking_no, sizeof e->tracking_no, "%s", tracking_no);
    e->idem_seq = seq;
    e->durable = durable;
    void *old = NULL;
    if (fb_map_put(in->keys, key, e, &old) != 0) {
        free(e);
        free(k);
        return FB_ENOMEM;
    }
    free(old);
    in->ages[in->ages_head + in->ages_n++] = (s_idem_age_t){seq, at_us, k};
    if (out)
        *out = e;
    return 0;
}

/* Forgets keys older than idempotency_days; their journal records are
 * acknowledged so the journal's segments are removed in time. */
static void idem_expire(intake_t *in) {
    int64_t cutoff = fb_now_us() - (int64_t)in->cfg.intake_idempotency_days * 86400 * 1000000;
    size_t dropped = 0;
    while (in->ages_n && in->ages[in->ages_head].at_us < cutoff) {
        s_idem_age_t *a = &in->ages[in->ages_head];
        s_idem_t *e = fb_map_get(in->keys, a->key);
        if (e && e->idem_seq == a->seq)
            free(fb_map_remove(in->keys, a->key));
        fb_spool_ack(in->idem, a->seq);
        free(a->key);
        in->ages_head++;
        in->ages_n--;
        dropped++;
    }
    if (in->ages_head > 4096 && in->ages_head > in->ages_n) {
        memmove(in->ages, in->ages + in->ages_head, in->ages_n * sizeof *in->ages);
        in->ages_head = 0;
    }
    if (dropped)
        fb_log(FB_LOG_INFO, "event=idempotency_expired keys=%zu", dropped);
}

static void on_expire(uv_timer_t *t) {
    idem_expire(t->data);
}

/* Journal record: {"k": key, "t": tracking_no, "at": µs}. */
static int replay_idem(void *ud, uint64_t seq, const char *data, size_t len) {
    intake_t *in = ud;
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *k = json_string_value(json_object_get(j, "k"));
    const char *t = json_string_value(json_object_get(j, "t"));
    int64_t at = json_integer_value(json_object_get(j, "at"));
    int rc = 0;
    if (k && t) {
        tracking_seen(in, t);
        rc = idem_remember(in, k, t, seq, at, true, NULL);
    } else {
        fb_log(FB_LOG_WARN, "event=idempotency_record_unreadable seq=%" PRIu64, seq);
    }
    json_decref(j);
    return rc;
}

/* ---- delivery to the dispatcher ------------------------------------------ */

static int unacked_push(intake_t *in, uint64_t seq, uint64_t next_ms) {
    if (in->un_head > 0 && in->un_head * 2 > in->un_cap) {
        memmove(in->unacked, in->unacked + in->un_head, in->un_n * sizeof *in->unacked);
        in->un_head = 0;
    }
    if (reserve((void **)&in->unacked, &in->un_cap, in->un_head + in->un_n + 1,
                sizeof *in->unacked))
        return FB_ENOMEM;
    in->unacked[in->un_head + in->un_n++] =
        (s_unacked_t){seq, next_ms, (uint32_t)in->cfg.intake_resend_ms, false};
    return 0;
}

static s_unacked_t *unacked_find(intake_t *in, uint64_t seq) {
    size_t lo = in->un_head, hi = in->un_head + in->un_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (in->unacked[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < in->un_head + in->un_n && in->unacked[lo].seq == seq ? &in->unacked[lo] : NULL;
}

static int send_petition(intake_t *in, uint64_t seq, const char *data, size_t len) {
    unsigned char seqb[8];
    fb_bus_put_seq(seq, seqb);
    const void *frames[] = {FB_BUS_VERSION, "PET", seqb, data};
    const size_t lens[] = {3, 3, 8, len};
    return fb_bus_sendv(in->dealer, frames, lens, 4, ZMQ_DONTWAIT);
}

static void handle_bus_message(intake_t *in, fb_bus_msg_t *msg) {
    if (!fb_bus_frame_is(msg, 0, FB_BUS_VERSION) || !fb_bus_frame_is(msg, 1, "ACK")) {
        fb_log(FB_LOG_WARN, "event=bus_bad_message frames=%d", msg->n);
        return;
    }
    for (int i = 2; i < msg->n; i++) {
        uint64_t seq;
        if (!fb_bus_get_seq(msg, i, &seq))
            continue;
        s_unacked_t *u = unacked_find(in, seq);
        if (u)
            u->acked = true;
        if (fb_spool_ack(in->spool, seq))
            in->m.acks++;
    }
    while (in->un_n && in->unacked[in->un_head].acked) {
        in->un_head++;
        in->un_n--;
    }
}

/* ZMQ_FD is edge-triggered: read until ZeroMQ says nothing is left. */
static void drain_bus(intake_t *in) {
    for (;;) {
        int events = 0;
        size_t sz = sizeof events;
        if (zmq_getsockopt(in->dealer, ZMQ_EVENTS, &events, &sz) != 0 || !(events & ZMQ_POLLIN))
            return;
        fb_bus_msg_t msg;
        if (fb_bus_recv(in->dealer, &msg, ZMQ_DONTWAIT) != 0)
            return;
        handle_bus_message(in, &msg);
        fb_bus_msg_close(&msg);
    }
}

static void on_zpoll(uv_poll_t *p, int status, int events) {
    (void)status;
    (void)events;
    drain_bus(p->data);
}

static void on_resend(uv_timer_t *t) {
    intake_t *in = t->data;
    uint64_t now = fb_mono_ms();
    size_t sent = 0;
    for (size_t i = in->un_head; i < in->un_head + in->un_n && sent < RESEND_PER_TICK; i++) {
        s_unacked_t *u = &in->unacked[i];
        if (u->acked || u->next_ms > now)
            continue;
        char *data;
        size_t len;
        int rc = fb_spool_read(in->spool, u->seq, &data, &len);
        if (rc == FB_ENOTFOUND) {
            u->acked = true;
            continue;
        }
        if (rc == 0) {
            rc = send_petition(in, u->seq, data, len);
            free(data);
        }
        if (rc == FB_EAGAIN)
            break; /* the bus is full: try again next tick */
        if (rc == 0) {
            in->m.resends++;
            sent++;
        }
        u->next_ms = now + u->backoff_ms;
        u->backoff_ms = u->backoff_ms * 2 > (uint32_t)in->cfg.intake_resend_max_ms
                            ? (uint32_t)in->cfg.intake_resend_max_ms
                            : u->backoff_ms * 2;
    }
    if (sent)
        fb_log(FB_LOG_DEBUG, "event=resent petitions=%zu unacked=%zu", sent, in->un_n);
    drain_bus(in);
}

/* ---- group commit -------------------------------------------------------- */

static void respond_tracking(fb_http_req_t *req, unsigned status, const char *tracking_no) {
    fb_http_respond_json(req, status, json_pack("{s:s}", "tracking_no", tracking_no));
}

static void on_flush(uv_check_t *c) {
    intake_t *in = c->data;
    if (in->npending == 0)
        return;
    int rc = fb_spool_sync(in->spool);
    if (rc == 0)
        rc = fb_spool_sync(in->idem);
    in->m.fsyncs++;
    if (in->npending > in->m.fsync_batch_max)
        in->m.fsync_batch_max = in->npending;
    if (rc != 0)
        fb_log(FB_LOG_ERROR, "event=spool_sync_failed error=\"%s\" petitions=%zu", strerror(errno),
               in->npending);
    for (size_t i = 0; i < in->npending; i++) {
        s_pending_t *p = &in->pending[i];
        if (rc == 0) {
            p->idem->durable = true;
            respond_tracking(p->req, p->status, p->idem->tracking_no);
            in->m.requests[2]++;
        } else {
            in->m.requests[5]++;
            fb_http_error(p->req, 503, "spool_unavailable", NULL,
                          "the petition could not be stored; retry with the same key");
        }
    }
    in->npending = 0;
    if (rc == 0) {
        uint64_t now = fb_mono_ms();
        for (size_t i = 0; i < in->ntosend; i++) {
            char *data;
            size_t len;
            uint64_t seq = in->tosend[i];
            if (fb_spool_read(in->spool, seq, &data, &len) == 0) {
                if (send_petition(in, seq, data, len) == 0)
                    in->m.sends++;
                free(data);
            }
            unacked_push(in, seq, now + (uint64_t)in->cfg.intake_resend_ms);
        }
    }
    in->ntosend = 0;
    drain_bus(in);
}

static int queue_answer(intake_t *in, fb_http_req_t *req, unsigned status, s_idem_t *e) {
    if (reserve((void **)&in->pending, &in->cappending, in->npending + 1, sizeof *in->pending))
        return FB_ENOMEM;
    in->pending[in->npending++] = (s_pending_t){req, status, e};
    return 0;
}

/* Takes a validated petition (consumes it): answers a retry with the first
 * answer, or spools it and queues the answer for the group fsync. */
static void accept_petition(intake_t *in, fb_http_req_t *req, fb_petition_t *p) {
    char key[512];
    snprintf(key, sizeof key, "%s:%s", p->channel, p->idem_key);
    s_idem_t *e = fb_map_get(in->keys, key);
    if (e) {
        in->m.duplicates++;
        if (e->durable)
            respond_tracking(req, 200, e->tracking_no);
        else if (queue_answer(in, req, 200, e) != 0)
            fb_http_error(req, 503, "out_of_memory", NULL, "out of memory");
        fb_petition_destroy(&p);
        return;
    }
    char tracking[40];
    int64_t now = fb_now_us();
    tracking_next(in, now, tracking, sizeof tracking);
    p->tracking_no = strdup(tracking);
    p->spooled_at_us = now;
    char *data = p->tracking_no ? fb_petition_dumps(p) : NULL;
    json_t *rec = json_pack("{s:s,s:s,s:I}", "k", key, "t", tracking, "at", (json_int_t)now);
    char *recs = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    uint64_t seq, iseq;
    int rc = FB_ENOMEM;
    if (data && recs && (rc = fb_spool_append(in->spool, data, strlen(data), &seq)) == 0 &&
        (rc = fb_spool_append(in->idem, recs, strlen(recs), &iseq)) == 0 &&
        (rc = idem_remember(in, key, tracking, iseq, now, false, &e)) == 0 &&
        (rc = reserve((void **)&in->tosend, &in->captosend, in->ntosend + 1, sizeof *in->tosend)) ==
            0) {
        in->tosend[in->ntosend++] = seq;
        rc = queue_answer(in, req, 202, e);
    }
    if (rc == 0) {
        in->m.accepted++;
        char masked[24];
        fb_log(FB_LOG_INFO, "event=petition_spooled tracking_no=%s channel=%s key=%s caller=%s",
               tracking, p->channel, p->idem_key,
               fb_mask_phone(p->caller_phone, masked, sizeof masked));
    } else {
        fb_log(FB_LOG_ERROR, "event=spool_append_failed error=\"%s\"", strerror(errno));
        fb_http_error(req, 503, "spool_unavailable", NULL,
                      "the petition could not be stored; retry with the same key");
    }
    free(data);
    free(recs);
    fb_petition_destroy(&p);
}

/* ---- HTTP ------------------------------------------------------------------ */

static bool role_in(const char *role, const char *const *allowed) {
    for (; role && *allowed; allowed++)
        if (strcmp(role, *allowed) == 0)
            return true;
    return false;
}

/* Checks the bearer token; answers 401/403 itself and returns false. */
static bool authorize(intake_t *in, fb_http_req_t *req, const char *const *roles) {
    const char *token = fb_token_from_header(fb_http_header(req, "Authorization"));
    if (!token) {
        fb_http_error(req, 401, "unauthorized", "Authorization",
                      "an Authorization: Bearer <token> header is required");
        return false;
    }
    const char *role = intake_directory_role(in->dir, token);
    if (!role) {
        fb_http_error(req, 401, "unauthorized", "Authorization", "unknown or revoked token");
        return false;
    }
    if (!role_in(role, roles)) {
        fb_http_error(req, 403, "forbidden", NULL, "a %s token may not use this endpoint", role);
        return false;
    }
    return true;
}

static void post_hotline(intake_t *in, fb_http_req_t *req) {
    static const char *const roles[] = {"hotline", "operator", "admin", NULL};
    if (!authorize(in, req, roles))
        return;
    size_t len;
    const char *body = fb_http_body(req, &len);
    fb_petition_t *p;
    intake_error_t err;
    if (intake_hotline_parse(body, len, intake_directory_category_known, in->dir, &p, &err) != 0) {
        in->m.rejected++;
        fb_log(FB_LOG_INFO, "event=petition_refused channel=hotline code=%s field=%s", err.code,
               err.field ? err.field : "-");
        fb_http_error(req, err.status, err.code, err.field, "%s", err.message);
        return;
    }
    accept_petition(in, req, p);
}

static void get_metrics(intake_t *in, fb_http_req_t *req) {
    char buf[2048];
    const s_metrics_t *m = &in->m;
    int n =
        snprintf(buf, sizeof buf,
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
                 "fenbo_intake_idempotency_keys %zu\n",
                 m->requests[2], m->requests[4], m->requests[5], m->accepted, m->duplicates,
                 m->rejected, m->fsyncs, m->fsync_batch_max, m->acks, m->sends, m->resends,
                 fb_spool_pending(in->spool), fb_spool_segments(in->spool), fb_map_size(in->keys));
    fb_http_respond(req, 200, "text/plain; version=0.0.4", buf, (size_t)n);
}

static void on_request(void *ud, fb_http_req_t *req) {
    intake_t *in = ud;
    const char *method = fb_http_method(req), *path = fb_http_path(req);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (strcmp(path, "/healthz") == 0 && get) {
        fb_http_respond_json(req, 200,
                             json_pack("{s:s,s:I,s:I}", "status", "ok", "spool_pending",
                                       (json_int_t)fb_spool_pending(in->spool), "unacked",
                                       (json_int_t)in->un_n));
    } else if (strcmp(path, "/metrics") == 0 && get) {
        get_metrics(in, req);
    } else if (strcmp(path, "/api/v1/hotline/orders") == 0) {
        if (post)
            post_hotline(in, req);
        else
            fb_http_error(req, 405, "method_not_allowed", NULL, "use POST");
    } else {
        fb_http_error(req, 404, "not_found", NULL, "no such endpoint");
    }
    /* Answers given later, after the group fsync, are counted there. */
    if (fb_http_answered(req))
        in->m.requests[fb_http_status(req) / 100 % 6]++;
}

/* ---- start-up and shutdown ------------------------------------------------ */

static int replay_petition(void *ud, uint64_t seq, const char *data, size_t len) {
    intake_t *in = ud;
    fb_petition_t *p;
    if (fb_petition_loads(data, len, &p) == 0) {
        char key[512];
        snprintf(key, sizeof key, "%s:%s", p->channel, p->idem_key);
        tracking_seen(in, p->tracking_no);
        /* A petition whose journal record was never synced still holds its key. */
        if (!fb_map_get(in->keys, key))
            idem_remember(in, key, p->tracking_no, 0, p->spooled_at_us, true, NULL);
        fb_petition_destroy(&p);
    }
    return unacked_push(in, seq, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
    intake_t *in = s->data;
    if (signum == SIGHUP) {
        fb_config_t fresh;
        char err[512];
        fb_config_defaults(&fresh);
        if (fb_config_load(&fresh, in->config_path, err, sizeof err) != 0) {
            fb_log(FB_LOG_ERROR, "event=reload_failed error=\"%s\"", err);
        } else {
            int level = fb_log_level_parse(fresh.log_level);
            if (level >= 0)
                fb_log_set_level((fb_log_level_t)level);
            in->cfg.intake_resend_ms = fresh.intake_resend_ms;
            in->cfg.intake_resend_max_ms = fresh.intake_resend_max_ms;
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
    /* Answer what is waiting, then stop: unacknowledged petitions stay in
     * the spool and are resent by the next start. */
    on_flush(&in->flush);
    fb_http_stop(&in->http);
    intake_directory_close(&in->dir);
    uv_poll_stop(&in->zpoll);
    uv_close((uv_handle_t *)&in->zpoll, NULL);
    uv_close((uv_handle_t *)&in->flush, NULL);
    uv_close((uv_handle_t *)&in->resend, NULL);
    uv_close((uv_handle_t *)&in->expire, NULL);
    uv_close((uv_handle_t *)&in->sigterm, NULL);
    uv_close((uv_handle_t *)&in->sigint, NULL);
    uv_close((uv_handle_t *)&in->sighup, NULL);
}

static void usage(FILE *out) {
    fprintf(out, "usage: fenbo-intake --config FILE [--check-config]\n"
                 "Takes petitions (hotline, …) over HTTP, spools them durably and delivers\n"
                 "them to fenbo-dispatcher.\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    bool check = false;
    int o;
    while ((o = getopt_long(argc, argv, "c:kh", opts, NULL)) != -1) {
        if (o == 'c')
            config = optarg;
        else if (o == 'k')
            check = true;
        else {
            usage(o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    static intake_t in;
    fb_config_defaults(&in.cfg);
    char err[512];
    if (config && fb_config_load(&in.cfg, config, err, sizeof err) != 0) {
        fprintf(stderr, "fenbo-intake: %s\n", err);
        return 1;
    }
    int level = fb_log_level_parse(in.cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "fenbo-intake: [general] log_level = %s: expected debug|info|warn|error\n",
                in.cfg.log_level);
        return 1;
    }
    if (check) {
        fb_config_print(&in.cfg, stdout);
        return 0;
    }
    in.config_path = config;
    fb_log_init("fenbo-intake", (fb_log_level_t)level);
    setenv("TZ", in.cfg.timezone, 1);
    tzset();
    if (fb_text_init() != 0) {
        fb_log(FB_LOG_ERROR, "event=opencc_unavailable config=t2s.json");
        return 1;
    }

    char path[4096];
    if (mkdir(in.cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        fb_log(FB_LOG_ERROR, "event=data_dir_failed path=%s error=\"%s\"", in.cfg.data_dir,
               strerror(errno));
        return 1;
    }
    in.keys = fb_map_new();
    fb_config_path(&in.cfg, "spool", path, sizeof path);
    int rc = fb_spool_open(path, (size_t)in.cfg.spool_segment_bytes, &in.spool);
    if (rc == 0) {
        fb_config_path(&in.cfg, "idempotency", path, sizeof path);
        rc = fb_spool_open(path, (size_t)in.cfg.spool_segment_bytes, &in.idem);
    }
    if (rc != 0 || !in.keys) {
        fb_log(FB_LOG_ERROR, "event=spool_open_failed path=%s rc=%d error=\"%s\"", path, rc,
               strerror(errno));
        return 1;
    }
    in.tracking_day = local_day(fb_now_us());
    if (fb_spool_foreach_pending(in.idem, replay_idem, &in) != 0 ||
        fb_spool_foreach_pending(in.spool, replay_petition, &in) != 0) {
        fb_log(FB_LOG_ERROR, "event=spool_replay_failed");
        return 1;
    }
    idem_expire(&in);
    fb_log(FB_LOG_INFO, "event=spool_replayed pending=%zu keys=%zu next_tracking_seq=%u",
           fb_spool_pending(in.spool), fb_map_size(in.keys), in.tracking_seq + 1);

    in.loop = uv_default_loop();
    fb_config_path(&in.cfg, "directory.json", path, sizeof path);
    intake_directory_open(in.loop, in.cfg.db_conninfo, path, in.cfg.intake_token_refresh_s,
                          &in.dir);

    in.zctx = zmq_ctx_new();
    in.dealer = fb_bus_socket(in.zctx, ZMQ_DEALER, in.cfg.bus_sndhwm, in.cfg.bus_maxmsgsize);
    char ident[64];
    snprintf(ident, sizeof ident, "intake-%d", in.cfg.instance_id);
    zmq_setsockopt(in.dealer, ZMQ_ROUTING_ID, ident, strlen(ident));
    if (zmq_connect(in.dealer, in.cfg.bus_petitions) != 0) {
        fb_log(FB_LOG_ERROR, "event=bus_connect_failed endpoint=%s error=\"%s\"",
               in.cfg.bus_petitions, zmq_strerror(errno));
        return 1;
    }
    int zfd;
    size_t zl = sizeof zfd;
    zmq_getsockopt(in.dealer, ZMQ_FD, &zfd, &zl);
    uv_poll_init(in.loop, &in.zpoll, zfd);
    in.zpoll.data = &in;
    uv_poll_start(&in.zpoll, UV_READABLE, on_zpoll);

    fb_http_opts_t ho = {in.cfg.intake_address,
                         in.cfg.intake_port,
                         (size_t)in.cfg.intake_max_body,
                         (unsigned)in.cfg.intake_max_connections,
                         (unsigned)in.cfg.intake_per_ip_connections,
                         (unsigned)in.cfg.intake_connection_timeout};
    if (fb_http_start(in.loop, &ho, on_request, &in, &in.http) != 0)
        return 1;

    uv_check_init(in.loop, &in.flush);
    in.flush.data = &in;
    uv_check_start(&in.flush, on_flush);
    uv_timer_init(in.loop, &in.resend);
    in.resend.data = &in;
    uv_timer_start(&in.resend, on_resend, 0, RESEND_TICK_MS);
    uv_timer_init(in.loop, &in.expire);
    in.expire.data = &in;
    uv_timer_start(&in.expire, on_expire, 3600 * 1000, 3600 * 1000);
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

    zmq_close(in.dealer);
    zmq_ctx_term(in.zctx);
    fb_spool_close(&in.spool);
    fb_spool_close(&in.idem);
    fb_map_destroy(&in.keys, free);
    for (size_t i = 0; i < in.ages_n; i++)
        free(in.ages[in.ages_head + i].key);
    free(in.ages);
    free(in.pending);
    free(in.tosend);
    free(in.unacked);
    int lc = uv_loop_close(in.loop);
    fb_text_shutdown();
    fb_log(FB_LOG_INFO, "event=stopped loop_close=%d", lc);
    fb_config_free(&in.cfg);
    return lc == 0 ? 0 : 1;
}
