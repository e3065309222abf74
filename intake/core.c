/* core.c — the heart of fenbo-intake: spool, idempotency, group commit and
 * delivery to the dispatcher, shared by every channel adapter.
 *
 * Group commit: petitions submitted during one loop iteration are appended
 * to the spool and their answers held back; the check phase that follows
 * makes them durable with one fdatasync, and only then answers them and
 * sends them on to the dispatcher, which acknowledges each after COMMIT. */
#include "intake.h"
#include "fb_bus.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"
#include "fb_token.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define RESEND_TICK_MS  100
#define RESEND_PER_TICK 5000

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
    intake_retention_sweep(t->data);
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

static int unacked_push(intake_t *in, uint64_t seq, uint64_t next_ms, uint64_t sent_ms) {
    if (in->un_head > 0 && in->un_head * 2 > in->un_cap) {
        memmove(in->unacked, in->unacked + in->un_head, in->un_n * sizeof *in->unacked);
        in->un_head = 0;
    }
    if (reserve((void **)&in->unacked, &in->un_cap, in->un_head + in->un_n + 1,
                sizeof *in->unacked))
        return FB_ENOMEM;
    in->unacked[in->un_head + in->un_n++] =
        (s_unacked_t){seq, next_ms, sent_ms, (uint32_t)in->cfg.intake_resend_ms, false};
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
        if (u) {
            u->acked = true;
            if (u->sent_ms > in->last_acked_sent_ms)
                in->last_acked_sent_ms = u->sent_ms;
        }
        in->last_ack_ms = fb_mono_ms();
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

/* Whether an unacknowledged petition is presumed lost. A dispatcher takes
 * what one intake sends it in order, so a busy dispatcher acknowledges older
 * petitions first: resending those only floods its queue with duplicates.
 * A petition is resent when it never left, when petitions sent well after it
 * were acknowledged already (it was lost, e.g. in a dispatcher that died),
 * or when the dispatchers have been silent for resend_max_ms: a dispatcher
 * in the middle of a long transaction under load is not silent for long, and
 * resending everything after a one-second pause flooded it with copies. How
 * long a petition has waited is no sign either: under a backlog of minutes
 * every petition waits that long. */
static bool presumed_lost(const intake_t *in, const s_unacked_t *u, uint64_t now) {
    uint64_t grace = (uint64_t)in->cfg.intake_resend_ms;
    uint64_t silence = (uint64_t)in->cfg.intake_resend_max_ms;
    return u->sent_ms == 0 || in->last_acked_sent_ms > u->sent_ms + grace ||
           (now - in->last_ack_ms > silence && now - u->sent_ms > grace);
}

static void on_resend(uv_timer_t *t) {
    intake_t *in = t->data;
    uint64_t now = fb_mono_ms();
    size_t sent = 0;
    for (size_t i = in->un_head; i < in->un_head + in->un_n && sent < RESEND_PER_TICK; i++) {
        s_unacked_t *u = &in->unacked[i];
        if (u->acked || u->next_ms > now)
            continue;
        if (!presumed_lost(in, u, now)) {
            u->next_ms = now + RESEND_TICK_MS;
            continue;
        }
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
            /* One the bus had no room for at first is sent, not resent. */
            if (u->sent_ms)
                in->m.resends++;
            else
                in->m.sends++;
            sent++;
            u->sent_ms = now;
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

static void on_flush(uv_check_t *c) {
    intake_t *in = c->data;
    if (in->npending == 0)
        return;
    int rc = fb_spool_sync_pair(in->spool, in->idem);
    in->m.fsyncs++;
    if (in->npending > in->m.fsync_batch_max)
        in->m.fsync_batch_max = in->npending;
    if (rc != 0)
        fb_log(FB_LOG_ERROR, "event=spool_sync_failed error=\"%s\" petitions=%zu", strerror(errno),
               in->npending);
    for (size_t i = 0; i < in->npending; i++) {
        s_pending_t *p = &in->pending[i];
        if (rc == 0)
            p->idem->durable = true;
        p->cb(p->ud, rc == 0 ? p->status : 503, rc == 0 ? p->idem->tracking_no : NULL);
    }
    in->npending = 0;
    if (rc == 0) {
        uint64_t now = fb_mono_ms();
        for (size_t i = 0; i < in->ntosend; i++) {
            char *data;
            size_t len;
            uint64_t seq = in->tosend[i];
            uint64_t sent_ms = 0;
            if (fb_spool_read(in->spool, seq, &data, &len) == 0) {
                if (send_petition(in, seq, data, len) == 0) {
                    in->m.sends++;
                    sent_ms = now;
                }
                free(data);
            }
            /* One the bus had no room for goes with the next resend tick,
             * not after resend_ms: under load the bus is often full, and
             * waiting a second left the dispatcher idle. */
            unacked_push(in, seq, sent_ms ? now + (uint64_t)in->cfg.intake_resend_ms : now,
                         sent_ms);
        }
    }
    in->ntosend = 0;
    drain_bus(in);
}

static int queue_answer(intake_t *in, intake_done_cb cb, void *ud, unsigned status, s_idem_t *e) {
    if (reserve((void **)&in->pending, &in->cappending, in->npending + 1, sizeof *in->pending))
        return FB_ENOMEM;
    in->pending[in->npending++] = (s_pending_t){cb, ud, status, e};
    return 0;
}

void intake_submit(intake_t *in, fb_petition_t *p, intake_done_cb cb, void *ud) {
    char key[512];
    snprintf(key, sizeof key, "%s:%s", p->channel, p->idem_key);
    s_idem_t *e = fb_map_get(in->keys, key);
    if (e) {
        in->m.duplicates++;
        if (e->durable)
            cb(ud, 200, e->tracking_no);
        else if (queue_answer(in, cb, ud, 200, e) != 0)
            cb(ud, 503, NULL);
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
        rc = queue_answer(in, cb, ud, 202, e);
    }
    if (rc == 0) {
        in->m.accepted++;
        /* An idempotency key may name the resident (an Open311 device or
         * account id, often a mobile number; a mail's Message-ID): the log
         * gets the start of its digest, enough to match two lines. */
        char masked[24], key_hash[FB_TOKEN_HASH_HEX];
        if (fb_token_hash_hex(p->idem_key, key_hash) != 0)
            snprintf(key_hash, sizeof key_hash, "-");
        fb_log(FB_LOG_INFO,
               "event=petition_spooled tracking_no=%s channel=%s key_sha256=%.16s caller=%s",
               tracking, p->channel, key_hash,
               fb_mask_phone(p->caller_phone, masked, sizeof masked));
    } else {
        fb_log(FB_LOG_ERROR, "event=spool_append_failed error=\"%s\"", strerror(errno));
        cb(ud, 503, NULL);
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

const char *intake_authenticate(intake_t *in, fb_http_req_t *req) {
    const char *token = fb_token_from_header(fb_http_header(req, "Authorization"));
    if (!token) {
        fb_http_error(req, 401, "unauthorized", "Authorization",
                      "an Authorization: Bearer <token> header is required");
        return NULL;
    }
    const char *role = intake_directory_role(in->dir, token);
    if (!role)
        fb_http_error(req, 401, "unauthorized", "Authorization", "unknown or revoked token");
    return role;
}

const char *intake_authorize(intake_t *in, fb_http_req_t *req, const char *const *roles) {
    const char *role = intake_authenticate(in, req);
    if (!role)
        return NULL;
    if (!role_in(role, roles)) {
        fb_http_error(req, 403, "forbidden", NULL, "a %s token may not use this endpoint", role);
        return NULL;
    }
    return role;
}

typedef struct {
    intake_t *in;
    fb_http_req_t *req;
} s_http_submit_t;

static void http_done(void *ud, unsigned status, const char *tracking_no) {
    s_http_submit_t *ctx = ud;
    if (tracking_no) {
        char code[FB_FOLLOWUP_CODE_LEN + 1];
        intake_follow_up_code(ctx->in, tracking_no, code);
        fb_http_respond_json(
            ctx->req, status,
            json_pack("{s:s,s:s}", "tracking_no", tracking_no, "follow_up_code", code));
    } else {
        fb_http_error(ctx->req, 503, "spool_unavailable", NULL,
                      "the petition could not be stored; retry with the same key");
    }
    free(ctx);
}

void intake_submit_http(intake_t *in, fb_http_req_t *req, fb_petition_t *p) {
    s_http_submit_t *ctx = malloc(sizeof *ctx);
    if (!ctx) {
        fb_petition_destroy(&p);
        fb_http_error(req, 503, "spool_unavailable", NULL,
                      "the petition could not be stored; retry with the same key");
        return;
    }
    *ctx = (s_http_submit_t){in, req};
    intake_submit(in, p, http_done, ctx);
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
    return unacked_push(in, seq, 0, 0);
}

/* A spool folder that was lost or moved must not make intake hand out
 * tracking numbers that the database already holds: continue after the
 * highest one stored today, when the database can tell. */
static void seed_tracking(intake_t *in) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "%08d-%d-%%", in->tracking_day, in->cfg.instance_id);
    PGconn *db;
    if (fb_db_connect_timeout(in->cfg.db_conninfo, 3, &db) != 0)
        return;
    const char *params[1] = {pattern};
    PGresult *r = PQexecParams(db,
                               "SELECT max(split_part(tracking_no, '-', 3)::bigint) FROM petitions "
                               "WHERE tracking_no LIKE $1",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        unsigned stored = (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
        if (stored > in->tracking_seq)
            in->tracking_seq = stored;
    }
    PQclear(r);
    PQfinish(db);
}

int intake_open(intake_t *in) {
    char path[4096];
    if (mkdir(in->cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        fb_log(FB_LOG_ERROR, "event=data_dir_failed path=%s error=\"%s\"", in->cfg.data_dir,
               strerror(errno));
        return FB_EIO;
    }
    in->keys = fb_map_new();
    fb_config_path(&in->cfg, "spool", path, sizeof path);
    int rc =
        in->keys ? fb_spool_open(path, (size_t)in->cfg.spool_segment_bytes, &in->spool) : FB_ENOMEM;
    if (rc == 0) {
        fb_config_path(&in->cfg, "idempotency", path, sizeof path);
        rc = fb_spool_open(path, (size_t)in->cfg.spool_segment_bytes, &in->idem);
    }
    if (rc != 0) {
        fb_log(FB_LOG_ERROR, "event=spool_open_failed path=%s rc=%d error=\"%s\"", path, rc,
               strerror(errno));
        return rc;
    }
    in->tracking_day = local_day(fb_now_us());
    if (fb_spool_foreach_pending(in->idem, replay_idem, in) != 0 ||
        fb_spool_foreach_pending(in->spool, replay_petition, in) != 0) {
        fb_log(FB_LOG_ERROR, "event=spool_replay_failed");
        return FB_EIO;
    }
    idem_expire(in);
    seed_tracking(in);
    fb_log(FB_LOG_INFO, "event=spool_replayed pending=%zu keys=%zu next_tracking_seq=%u",
           fb_spool_pending(in->spool), fb_map_size(in->keys), in->tracking_seq + 1);

    fb_config_path(&in->cfg, "directory.json", path, sizeof path);
    if ((rc = intake_followup_open(in)) != 0)
        return rc;
    if ((rc = intake_directory_open(in->loop, in->cfg.db_conninfo, path,
                                    in->cfg.intake_token_refresh_s, &in->dir)) != 0)
        return rc;

    in->zctx = zmq_ctx_new();
    in->dealer = fb_bus_socket(in->zctx, ZMQ_DEALER, in->cfg.bus_sndhwm, in->cfg.bus_maxmsgsize);
    char ident[64];
    snprintf(ident, sizeof ident, "intake-%d", in->cfg.instance_id);
    if (!in->dealer || fb_bus_client_security(in->dealer, &in->cfg) != 0)
        return FB_EINVAL;
    if (zmq_setsockopt(in->dealer, ZMQ_ROUTING_ID, ident, strlen(ident)) != 0 ||
        fb_bus_connect_all(in->dealer, in->cfg.bus_petitions) != 0) {
        fb_log(FB_LOG_ERROR, "event=bus_connect_failed endpoint=%s error=\"%s\"",
               in->cfg.bus_petitions, zmq_strerror(errno));
        return FB_EIO;
    }
    int zfd;
    size_t zl = sizeof zfd;
    zmq_getsockopt(in->dealer, ZMQ_FD, &zfd, &zl);
    uv_poll_init(in->loop, &in->zpoll, zfd);
    in->zpoll.data = in;
    uv_poll_start(&in->zpoll, UV_READABLE, on_zpoll);
    uv_check_init(in->loop, &in->flush);
    in->flush.data = in;
    uv_check_start(&in->flush, on_flush);
    uv_timer_init(in->loop, &in->resend);
    in->resend.data = in;
    uv_timer_start(&in->resend, on_resend, 0, RESEND_TICK_MS);
    uv_timer_init(in->loop, &in->expire);
    in->expire.data = in;
    uv_timer_start(&in->expire, on_expire, 3600 * 1000, 3600 * 1000);
    intake_retention_sweep(in);
    return 0;
}

void intake_close_handles(intake_t *in) {
    on_flush(&in->flush);
    intake_directory_close(&in->dir);
    uv_poll_stop(&in->zpoll);
    uv_close((uv_handle_t *)&in->zpoll, NULL);
    uv_close((uv_handle_t *)&in->flush, NULL);
    uv_close((uv_handle_t *)&in->resend, NULL);
    uv_close((uv_handle_t *)&in->expire, NULL);
}

void intake_free(intake_t *in) {
    if (in->dealer)
        zmq_close(in->dealer);
    if (in->zctx)
        zmq_ctx_term(in->zctx);
    fb_spool_close(&in->spool);
    fb_spool_close(&in->idem);
    fb_map_destroy(&in->keys, free);
    intake_followup_free(in);
    for (size_t i = 0; i < in->ages_n; i++)
        free(in->ages[in->ages_head + i].key);
    free(in->ages);
    free(in->pending);
    free(in->tosend);
    free(in->unacked);
}

/* ---- PostgreSQL off the loop thread ------------------------------------- */

typedef struct {
    uv_work_t work;
    const char *conninfo;
    const char *timezone;
    const char *sql;
    int nparams;
    char **params;
    PGresult *res;
    intake_db_cb cb;
    void *ud;
} s_query_t;

/* Each thread of libuv's pool keeps its own connection. */
static _Thread_local PGconn *t_db;

static void query_work(uv_work_t *w) {
    s_query_t *q = w->data;
    for (int attempt = 0; attempt < 2 && !q->res; attempt++) {
        if (t_db && PQstatus(t_db) != CONNECTION_OK) {
            PQfinish(t_db);
            t_db = NULL;
        }
        if (!t_db) {
            if (fb_db_connect_timeout(q->conninfo, 3, &t_db) != 0)
                return;
            /* Times in answers are in the city's zone. */
            const char *tz[1] = {q->timezone};
            PQclear(PQexecParams(t_db, "SELECT set_config('TimeZone', $1, false)", 1, NULL, tz,
                                 NULL, NULL, 0));
        }
        PGresult *r = PQexecParams(t_db, q->sql, q->nparams, NULL, (const char *const *)q->params,
                                   NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            q->res = r;
        } else {
            fb_log(FB_LOG_WARN, "event=db_query_failed error=\"%s\"", fb_db_error(t_db));
            PQclear(r);
            if (PQstatus(t_db) == CONNECTION_OK)
                return; /* an SQL error: retrying would not help */
        }
    }
}

static void query_done(uv_work_t *w, int status) {
    s_query_t *q = w->data;
    q->cb(q->ud, status == 0 ? q->res : NULL);
    PQclear(q->res);
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q);
}

int intake_db_query(intake_t *in, const char *sql, int nparams, const char *const *params,
                    intake_db_cb cb, void *ud) {
    s_query_t *q = calloc(1, sizeof *q);
    if (!q)
        return FB_ENOMEM;
    q->conninfo = in->cfg.db_conninfo;
    q->timezone = in->cfg.timezone;
    q->sql = sql;
    q->cb = cb;
    q->ud = ud;
    q->nparams = nparams;
    q->params = calloc((size_t)(nparams ? nparams : 1), sizeof *q->params);
    for (int i = 0; q->params && i < nparams; i++)
        q->params[i] = fb_strdup0(params[i]);
    q->work.data = q;
    if (!q->params || uv_queue_work(in->loop, &q->work, query_work, query_done) != 0) {
        free(q->params);
        free(q);
        return FB_ENOMEM;
    }
    return 0;
}
