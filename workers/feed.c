/* feed.c — reading assignment events off the bus and delivering them. */
#include "feed.h"
#include "delivery.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_time.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many messages per loop turn, so that a burst does not keep
 * HTTP clients waiting; the rest is read on the next turn. */
#define BURST 256

/* Under load, events are delivered at most this often (or BURST at a time):
 * each delivery is a transaction whose fixed cost, at a thousand petitions
 * a second in batches of a few, took as much of PostgreSQL as the
 * dispatcher's. An event after a quiet spell is delivered at once. */
#define DELIVER_EVERY_MS 20

struct fb_feed {
    fb_worker_t *w;
    void *sock;
    uv_poll_t poll;
    uv_timer_t again; /* continues a drain that stopped at BURST */
    uv_timer_t hold;  /* delivers what waits for DELIVER_EVERY_MS */
    uint64_t delivered_ms;
    int open_handles;
    fb_bus_msg_t msg; /* large: lives here, not on the stack */
    /* The well-formed events not yet delivered, delivered together. */
    size_t n;
    fb_feed_event_t ev[BURST];
    int64_t case_ids[BURST];
    int delivered[BURST];
};

static int bad(char *why, size_t whylen, const char *reason) {
    snprintf(why, whylen, "%s", reason);
    return FB_EINVAL;
}

/* The shape of assignment-json: each field, what it may hold. Fields not
 * listed (a newer dispatcher's additions) are ignored. */
typedef enum {
    K_ID,
    K_TEXT,
    K_TEXT_OR_NULL,
    K_INT_OR_NULL,
    K_TEXTS,
    K_TIME,
    K_TIME_OR_NULL
} s_kind_t;

static const struct {
    const char *key;
    s_kind_t kind;
    const char *reason;
} s_fields[] = {
    {"case_id", K_ID, "bad_case_id"},
    {"tracking_no", K_TEXT, "bad_tracking_no"},
    {"department", K_TEXT_OR_NULL, "bad_department"},
    {"rule", K_TEXT_OR_NULL, "bad_rule"},
    {"rule_id", K_INT_OR_NULL, "bad_rule_id"},
    {"assists", K_TEXTS, "bad_assists"},
    {"accept_due", K_TIME_OR_NULL, "bad_accept_due"},
    {"reply_due", K_TIME_OR_NULL, "bad_reply_due"},
    {"status", K_TEXT, "bad_status"},
    {"received_at", K_TIME, "bad_received_at"},
};

static bool is_time(const json_t *v) {
    int64_t us;
    return json_is_string(v) && fb_time_parse(json_string_value(v), &us) == 0;
}

static bool field_ok(const json_t *v, s_kind_t kind) {
    if (!v)
        return false; /* every field is required, null or not */
    switch (kind) {
    case K_ID:
        return json_is_integer(v) && json_integer_value(v) > 0;
    case K_TEXT:
        return json_is_string(v) && json_string_length(v) > 0;
    case K_TEXT_OR_NULL:
        return json_is_null(v) || json_is_string(v);
    case K_INT_OR_NULL:
        return json_is_null(v) || json_is_integer(v);
    case K_TEXTS:
        if (!json_is_array(v))
            return false;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return false;
        return true;
    case K_TIME:
        return is_time(v);
    case K_TIME_OR_NULL:
        return json_is_null(v) || is_time(v);
    }
    return false;
}

int fb_feed_parse(const fb_bus_msg_t *m, fb_feed_event_t *ev, char *why, size_t whylen) {
    memset(ev, 0, sizeof *ev);
    if (m->truncated || m->n != 4)
        return bad(why, whylen, "frame_count");
    if (!fb_bus_frame_is(m, 1, FB_BUS_VERSION))
        return bad(why, whylen, "unknown_version");
    if (!fb_bus_frame_is(m, 2, "ASG"))
        return bad(why, whylen, "unknown_type");
    size_t tlen, jlen;
    const char *topic = fb_bus_frame(m, 0, &tlen);
    const char *body = fb_bus_frame(m, 3, &jlen);
    json_error_t jerr;
    json_t *doc = json_loadb(body, jlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return bad(why, whylen, "bad_json");
    ev->doc = doc;
    if (!json_is_object(doc)) {
        bad(why, whylen, "not_an_object");
        goto fail;
    }
    for (size_t i = 0; i < FB_ARRAY_LEN(s_fields); i++) {
        if (!field_ok(json_object_get(doc, s_fields[i].key), s_fields[i].kind)) {
            bad(why, whylen, s_fields[i].reason);
            goto fail;
        }
    }
    ev->case_id = json_integer_value(json_object_get(doc, "case_id"));
    ev->tracking_no = json_string_value(json_object_get(doc, "tracking_no"));
    ev->department = json_string_value(json_object_get(doc, "department"));
    ev->status = json_string_value(json_object_get(doc, "status"));
    ev->assists = json_array_size(json_object_get(doc, "assists"));
    /* A dispatched case has a department, a manual one has none, a petition
     * merged into an open case has that case's (or none, while it waits in
     * the manual queue); and the topic, which subscribers filter on, must
     * say the same as the body, or a department's desk could be woken for
     * another one's case. */
    const char *want_topic;
    bool merged = strcmp(ev->status, "merged") == 0;
    if ((strcmp(ev->status, "dispatched") == 0 || merged) && ev->department) {
        want_topic = ev->department;
    } else if ((strcmp(ev->status, "manual") == 0 || merged) && !ev->department) {
        want_topic = "@manual";
    } else {
        bad(why, whylen, "bad_status");
        goto fail;
    }
    if (tlen != strlen(want_topic) || memcmp(topic, want_topic, tlen) != 0) {
        bad(why, whylen, "topic_mismatch");
        goto fail;
    }
    return 0;
fail:
    fb_feed_event_clear(ev);
    return FB_EINVAL;
}

void fb_feed_event_clear(fb_feed_event_t *ev) {
    json_decref(ev->doc);
    memset(ev, 0, sizeof *ev);
}

/* Quotes s for a log line: no spaces, quotes or control bytes leak through. */
static void log_safe(const char *s, size_t n, char *out, size_t outlen) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == '"' || c == '\\' || c == 0x7f)
            k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", c);
        else
            out[k++] = (char)c;
    }
    out[k] = '\0';
}

/* Reads the message just received into the batch, or logs why not. */
static void take(fb_feed_t *f) {
    fb_worker_t *w = f->w;
    fb_feed_event_t *ev = &f->ev[f->n];
    char why[64];
    if (fb_feed_parse(&f->msg, ev, why, sizeof why) != 0) {
        size_t tlen = 0;
        const char *topic = f->msg.n > 0 ? fb_bus_frame(&f->msg, 0, &tlen) : "";
        char t[80];
        log_safe(topic, tlen < 32 ? tlen : 32, t, sizeof t);
        w->metrics.bus_bad_messages++;
        fb_log(FB_LOG_WARN, "event=bus_bad_message reason=%s frames=%d topic=\"%s\"", why, f->msg.n,
               t);
        return;
    }
    w->metrics.assignment_events++;
    f->case_ids[f->n++] = ev->case_id;
}

/* Delivers the batch in one statement, one commit for all its cases: one
 * per message was as many commits as petitions, which the worker could not
 * keep up with and which slowed the dispatcher's own. Then one log line per
 * message, as each would have had alone, and the batch is emptied. */
static void deliver(fb_feed_t *f) {
    fb_worker_t *w = f->w;
    if (f->n == 0)
        return;
    PGconn *db = fb_dblink_conn(w->db);
    bool failed = false;
    if (db && (fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0 ||
               fb_delivery_mark_cases(db, f->case_ids, f->n, f->delivered) != 0)) {
        fb_dblink_check(w->db);
        failed = true;
    }
    for (size_t i = 0; i < f->n; i++) {
        fb_feed_event_t *ev = &f->ev[i];
        if (!db) {
            /* PostgreSQL has the assignment; catch-up delivers it when it returns. */
            fb_log(FB_LOG_INFO,
                   "event=assignment case_id=%lld tracking_no=%s status=%s department=%s "
                   "delivered=deferred reason=db_down",
                   (long long)ev->case_id, ev->tracking_no, ev->status,
                   ev->department ? ev->department : "-");
        } else if (failed) {
            fb_log(FB_LOG_WARN,
                   "event=assignment case_id=%lld tracking_no=%s status=%s delivered=deferred "
                   "reason=db_error",
                   (long long)ev->case_id, ev->tracking_no, ev->status);
        } else {
            w->metrics.delivered_bus += (uint64_t)f->delivered[i];
            fb_log(FB_LOG_INFO,
                   "event=assignment case_id=%lld tracking_no=%s status=%s department=%s "
                   "assists=%zu delivered=%d",
                   (long long)ev->case_id, ev->tracking_no, ev->status,
                   ev->department ? ev->department : "-", ev->assists, f->delivered[i]);
        }
        fb_feed_event_clear(ev);
    }
    f->n = 0;
    f->delivered_ms = fb_mono_ms();
    uv_timer_stop(&f->hold);
}

static void drain(fb_feed_t *f);

static void on_timer(uv_timer_t *t) {
    drain(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events) {
    (void)events;
    fb_feed_t *f = p->data;
    if (status < 0)
        fb_log(FB_LOG_WARN, "event=bus_poll_failed error=\"%s\"", uv_strerror(status));
    drain(f);
}

/* Reads up to BURST messages, then delivers the good ones waiting, unless
 * the last delivery was less than DELIVER_EVERY_MS ago. */
static void drain(fb_feed_t *f) {
    if (!f->sock)
        return;
    bool more = true; /* stopped at BURST, not at an empty socket */
    for (int i = 0; i < BURST && f->n < BURST; i++) {
        int rc = fb_bus_recv(f->sock, &f->msg, ZMQ_DONTWAIT);
        if (rc == FB_EAGAIN) {
            /* ZMQ_FD is edge-triggered and only says "look at ZMQ_EVENTS":
             * reading ZMQ_EVENTS may find messages that arrived meanwhile. */
            int events = 0;
            size_t len = sizeof events;
            if (zmq_getsockopt(f->sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN))
                continue;
            more = false;
            break;
        }
        if (rc != 0) {
            fb_log(FB_LOG_WARN, "event=bus_recv_failed error=\"%s\"", zmq_strerror(errno));
            more = false;
            break;
        }
        take(f);
        fb_bus_msg_close(&f->msg);
    }
    uint64_t now = fb_mono_ms(), due = f->delivered_ms + DELIVER_EVERY_MS;
    if (f->n >= BURST || now >= due)
        deliver(f);
    else if (f->n && !uv_is_active((uv_handle_t *)&f->hold))
        uv_timer_start(&f->hold, on_timer, due - now, 0);
    /* Stopped at BURST with messages left: no new edge will come for them.
     * After 1 ms, not 0: libuv runs a timer restarted at 0 from its own
     * callback again before polling, which would starve HTTP and signals. */
    if (more)
        uv_timer_start(&f->again, on_timer, 1, 0);
}

int fb_feed_start(fb_worker_t *w, void *zctx, fb_feed_t **out) {
    *out = NULL;
    int fd = -1;
    size_t len = sizeof fd;
    fb_feed_t *f = calloc(1, sizeof *f);
    if (!f)
        return FB_ENOMEM;
    f->w = w;
    f->sock = fb_bus_socket(zctx, ZMQ_SUB, w->cfg.bus_sndhwm, w->cfg.bus_maxmsgsize);
    if (!f->sock) {
        fb_log(FB_LOG_ERROR, "event=bus_socket_failed error=\"%s\"", zmq_strerror(errno));
        goto fail;
    }
    if (fb_bus_client_security(f->sock, &w->cfg) != 0)
        goto fail;
    if (zmq_setsockopt(f->sock, ZMQ_SUBSCRIBE, "", 0) != 0 ||
        fb_bus_connect_all(f->sock, w->cfg.bus_assignments) != 0 ||
        zmq_getsockopt(f->sock, ZMQ_FD, &fd, &len) != 0) {
        fb_log(FB_LOG_ERROR, "event=bus_connect_failed endpoint=%s error=\"%s\"",
               w->cfg.bus_assignments, zmq_strerror(errno));
        goto fail;
    }
    if (uv_poll_init(&w->loop, &f->poll, fd) != 0)
        goto fail;
    uv_timer_init(&w->loop, &f->again);
    uv_timer_init(&w->loop, &f->hold);
    f->poll.data = f->again.data = f->hold.data = f;
    f->open_handles = 3;
    uv_poll_start(&f->poll, UV_READABLE, on_poll);
    /* Messages may already be queued, and their edge is gone. */
    uv_timer_start(&f->again, on_timer, 0, 0);
    fb_log(FB_LOG_INFO, "event=bus_subscribed endpoint=%s", w->cfg.bus_assignments);
    *out = f;
    return 0;
fail:
    if (f->sock)
        zmq_close(f->sock);
    free(f);
    return FB_EIO;
}

static void on_closed(uv_handle_t *h) {
    fb_feed_t *f = h->data;
    if (--f->open_handles == 0)
        free(f);
}

void fb_feed_stop(fb_feed_t **fp) {
    fb_feed_t *f = *fp;
    if (!f)
        return;
    deliver(f); /* what waits for DELIVER_EVERY_MS */
    uv_poll_stop(&f->poll);
    uv_timer_stop(&f->again);
    /* The poll handle watches the socket's descriptor: close it first. */
    uv_close((uv_handle_t *)&f->poll, on_closed);
    uv_close((uv_handle_t *)&f->again, on_closed);
    uv_close((uv_handle_t *)&f->hold, on_closed);
    /* A SUB has nothing worth delivering on close: do not let the context
     * wait for a subscription to reach a publisher that is away. */
    int linger = 0;
    zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(f->sock);
    f->sock = NULL;
    *fp = NULL;
}
