/* main.c — fenbo-dispatcher: receives spooled petitions from the intakes on a
 * ROUTER socket, stores and routes a whole batch in one transaction, and only
 * after COMMIT acknowledges each petition to its intake and publishes the
 * assignments (PUB, topic = department code, "@manual" for the manual queue).
 *
 * Batches grow with the load: the dispatcher takes whatever has arrived (up to
 * batch_max) — what came while the last batch was being committed — and, if
 * batch_wait_ms is set, waits that long for more; so a lone petition is
 * stored at once and a flood is stored a thousand per COMMIT. Rules reload on
 * NOTIFY fenbo_rules, the classifier on NOTIFY fenbo_model, without a
 * restart. */
#include "batch.h"
#include "fb_bus.h"
#include "fb_common.h"
#include "fb_config.h"
#include "fb_daemon.h"
#include "fb_db.h"
#include "fb_log.h"
#include "route.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define ACK_FRAMES_MAX   1000
#define CLASSIFY_SAMPLES 1000

static volatile sig_atomic_t s_stop, s_reload;

static void on_signal(int sig) {
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_stop = 1;
}

typedef struct {
    fb_config_t cfg;
    const char *config_path;
    void *zctx, *router, *pub;
    fb_zap_t *zap; /* CURVE's authentication handler, NULL without CURVE */
    PGconn *db;
    uint64_t db_retry_ms; /* when to try connecting again */
    router_t rt;
    dedup_opts_t dedup;
    batch_item_t *items;
    size_t n;
    uint64_t stored, duplicates, merged, manual, batches, failures;
    /* What classifying a petition costs: the last CLASSIFY_SAMPLES, logged
     * as a median whenever they are complete (and at the end). */
    int64_t classify_ns[CLASSIFY_SAMPLES];
    size_t n_classified;
    uint64_t by_model;
} dispatcher_t;

static void db_drop(dispatcher_t *d) {
    if (d->db)
        PQfinish(d->db);
    d->db = NULL;
    d->db_retry_ms = fb_mono_ms() + 1000;
}

/* Connects, LISTENs for rule and model changes and loads the rules and the
 * newest classifier (a database without a model routes as before). */
static bool db_ready(dispatcher_t *d) {
    if (d->db && PQstatus(d->db) == CONNECTION_OK)
        return true;
    if (d->db)
        db_drop(d);
    if (fb_mono_ms() < d->db_retry_ms)
        return false;
    if (fb_db_connect(d->cfg.db_conninfo, &d->db) != 0 ||
        fb_db_exec(d->db, "LISTEN fenbo_rules", 0, NULL) != 0 ||
        fb_db_exec(d->db, "LISTEN fenbo_model", 0, NULL) != 0 || batch_prepare(d->db) != 0 ||
        router_reload(&d->rt, d->db) != 0) {
        db_drop(d);
        return false;
    }
    fb_log(FB_LOG_INFO, "event=db_connected");
    router_load_model(&d->rt, d->db);
    return true;
}

/* Reads a NOTIFY, if any, and reloads the rules or the model (a model that
 * does not load leaves the old one serving). */
static void check_notify(dispatcher_t *d) {
    if (!d->db || !PQconsumeInput(d->db))
        return;
    bool rules = false, model = false;
    PGnotify *n;
    while ((n = PQnotifies(d->db))) {
        if (strcmp(n->relname, "fenbo_model") == 0)
            model = true;
        else
            rules = true;
        PQfreemem(n);
    }
    if (rules)
        router_reload(&d->rt, d->db);
    if (model)
        router_load_model(&d->rt, d->db);
}

static void send_acks(dispatcher_t *d, const batch_item_t *items, size_t n) {
    /* Items of one intake are usually adjacent: one ACK message per run. */
    size_t i = 0;
    while (i < n) {
        const batch_item_t *first = &items[i];
        unsigned char seqs[ACK_FRAMES_MAX][8];
        const void *frames[ACK_FRAMES_MAX + 3];
        size_t lens[ACK_FRAMES_MAX + 3];
        int nf = 0;
        frames[nf] = first->peer, lens[nf++] = first->peer_len;
        frames[nf] = FB_BUS_VERSION, lens[nf++] = 3;
        frames[nf] = "ACK", lens[nf++] = 3;
        size_t k = 0;
        while (i < n && k < ACK_FRAMES_MAX && items[i].peer_len == first->peer_len &&
               memcmp(items[i].peer, first->peer, first->peer_len) == 0) {
            fb_bus_put_seq(items[i].seq, seqs[k]);
            frames[nf] = seqs[k], lens[nf++] = 8;
            k++, i++;
        }
        int rc = fb_bus_sendv(d->router, frames, lens, nf, ZMQ_DONTWAIT);
        if (rc != 0)
            fb_log(FB_LOG_WARN, "event=ack_undeliverable peer=%.*s acks=%zu error=\"%s\"",
                   (int)first->peer_len, first->peer, k, zmq_strerror(errno));
    }
}

static void publish(dispatcher_t *d, const batch_item_t *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const batch_item_t *it = &items[i];
        /* A case closed on the spot by a grid worker goes to nobody. */
        if (!it->is_new || it->p->resolved_on_site) {
            if (it->is_new)
                fb_log(FB_LOG_INFO,
                       "event=solved_on_site tracking_no=%s case_id=%" PRId64 " region=%s",
                       it->p->tracking_no, it->case_id, it->p->grid_region);
            continue;
        }
        json_t *j = batch_assignment_json(items, it);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s)
            continue;
        const char *dept = batch_item_department(items, it);
        const char *topic = dept ? dept : "@manual";
        const void *frames[] = {topic, FB_BUS_VERSION, "ASG", s};
        const size_t lens[] = {strlen(topic), 3, 3, strlen(s)};
        fb_bus_sendv(d->pub, frames, lens, 4, ZMQ_DONTWAIT);
        fb_log(FB_LOG_INFO,
               "event=dispatched tracking_no=%s case_id=%" PRId64 " department=%s rule=%s "
               "region=%s category=%s category_source=%s confidence=%.3f classify_us=%.1f%s",
               it->p->tracking_no, it->case_id, topic,
               batch_item_merged(it) ? "(merged)"
               : it->route.rule      ? it->route.rule->name
                                     : "-",
               it->region_code ? it->region_code : "-", it->p->category ? it->p->category : "-",
               it->cls.source ? it->cls.source : "-",
               it->cls.n_top ? it->cls.top[0].confidence : 0.0, it->cls.classify_ns / 1000.0,
               it->emergency ? " emergency_suggested=1" : "");
        free(s);
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void log_classify_cost(dispatcher_t *d) {
    if (d->n_classified == 0)
        return;
    qsort(d->classify_ns, d->n_classified, sizeof d->classify_ns[0], cmp_i64);
    fb_log(FB_LOG_INFO,
           "event=classify_cost petitions=%zu median_us=%.1f p99_us=%.1f max_us=%.1f "
           "routed_by_model=%" PRIu64,
           d->n_classified, d->classify_ns[d->n_classified / 2] / 1000.0,
           d->classify_ns[d->n_classified * 99 / 100] / 1000.0,
           d->classify_ns[d->n_classified - 1] / 1000.0, d->by_model);
    d->n_classified = 0;
}

/* Counts what classifying the petitions of a committed batch cost. */
static void note_classified(dispatcher_t *d, const batch_item_t *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const batch_item_t *it = &items[i];
        if (!it->is_new || it->cls.classify_ns == 0)
            continue;
        d->by_model += it->cls.model_version != 0;
        d->classify_ns[d->n_classified++] = it->cls.classify_ns;
        if (d->n_classified == CLASSIFY_SAMPLES)
            log_classify_cost(d);
    }
}

/* Stores items[0..n) in one transaction; once it is committed, acknowledges
 * and publishes them. */
static int commit_items(dispatcher_t *d, batch_item_t *items, size_t n) {
    if (batch_commit(d->db, &d->rt, &d->dedup, items, n) != 0)
        return FB_EDB;
    d->batches++;
    for (size_t i = 0; i < n; i++) {
        if (items[i].is_new) {
            d->stored++;
            d->merged += batch_item_merged(&items[i]);
            d->manual += batch_item_department(items, &items[i]) == NULL;
        } else {
            d->duplicates++;
        }
    }
    send_acks(d, items, n);
    publish(d, items, n);
    note_classified(d, items, n);
    fb_log(FB_LOG_DEBUG, "event=batch_committed petitions=%zu", n);
    return 0;
}

/* After a failed statement the connection is usable again (rolled back);
 * after a lost connection it is dropped, and a new one is made later. */
static bool db_still_usable(dispatcher_t *d) {
    if (batch_db_usable(d->db))
        return true;
    db_drop(d);
    return false;
}

/* After a batch failed: one petition PostgreSQL refuses must not hold back
 * the others it came with, every time it is resent, so each is tried alone.
 * One that fails alone stays unacknowledged in its intake's spool, which
 * resends it later. Two failing alone in a row say the cause is not a
 * petition (a full disk, a schema out of date): the rest wait for their
 * resend as the whole batch would have. */
static void commit_one_by_one(dispatcher_t *d) {
    int failed_in_a_row = 0;
    for (size_t i = 0; i < d->n && failed_in_a_row < 2 && db_still_usable(d); i++) {
        if (commit_items(d, &d->items[i], 1) == 0) {
            failed_in_a_row = 0;
            continue;
        }
        failed_in_a_row++;
        fb_log(FB_LOG_ERROR, "event=petition_not_stored tracking_no=%s seq=%" PRIu64,
               d->items[i].p->tracking_no, d->items[i].seq);
    }
}

static void flush_batch(dispatcher_t *d) {
    if (d->n == 0)
        return;
    if (!db_ready(d)) {
        /* Not acknowledged: the intakes resend these when the database is back. */
        fb_log(FB_LOG_WARN, "event=batch_deferred petitions=%zu reason=no_database", d->n);
    } else if (commit_items(d, d->items, d->n) != 0) {
        d->failures++;
        fb_log(FB_LOG_WARN, "event=batch_failed petitions=%zu error=\"%s\"", d->n,
               fb_db_error(d->db));
        if (d->n > 1)
            commit_one_by_one(d);
        else
            fb_log(FB_LOG_ERROR, "event=petition_not_stored tracking_no=%s seq=%" PRIu64,
                   d->items[0].p->tracking_no, d->items[0].seq);
        if (d->db)
            db_still_usable(d);
    }
    for (size_t i = 0; i < d->n; i++)
        batch_item_clear(&d->items[i]);
    d->n = 0;
}

/* Takes one PET message into the batch; anything else is logged and dropped. */
static void take(dispatcher_t *d, fb_bus_msg_t *m) {
    size_t idlen, len;
    const void *id = fb_bus_frame(m, 0, &idlen);
    uint64_t seq;
    const char *json = fb_bus_frame(m, 4, &len);
    if (m->n != 5 || m->truncated || !fb_bus_frame_is(m, 1, FB_BUS_VERSION) ||
        !fb_bus_frame_is(m, 2, "PET") || !fb_bus_get_seq(m, 3, &seq) || idlen > 255) {
        fb_log(FB_LOG_WARN, "event=bus_bad_message frames=%d", m->n);
        return;
    }
    batch_item_t *it = &d->items[d->n];
    memset(it, 0, sizeof *it);
    it->join_item = -1;
    if (fb_petition_loads(json, len, &it->p) != 0) {
        /* Cannot be stored, ever: a resend would not help. */
        fb_log(FB_LOG_ERROR, "event=petition_unreadable peer=%.*s seq=%" PRIu64, (int)idlen,
               (const char *)id, seq);
        return;
    }
    if (!(it->text = malloc(len))) {
        batch_item_clear(it);
        fb_log(FB_LOG_ERROR, "event=out_of_memory peer=%.*s seq=%" PRIu64, (int)idlen,
               (const char *)id, seq);
        return;
    }
    memcpy(it->text, json, len);
    it->text_len = len;
    memcpy(it->peer, id, idlen);
    it->peer_len = idlen;
    it->seq = seq;
    d->n++;
}

static void set_dedup(dispatcher_t *d, const fb_config_t *cfg) {
    d->dedup.radius_m = cfg->dedup_radius_m;
    d->dedup.window_h = cfg->dedup_window_h;
    d->dedup.similarity = cfg->dedup_similarity_pct / 100.0;
    d->rt.min_confidence = cfg->classify_min_confidence;
}

static void reload_config(dispatcher_t *d) {
    fb_config_t fresh;
    char err[512];
    if (fb_daemon_config_read(d->config_path, &fresh, err, sizeof err) != 0) {
        fb_log(FB_LOG_ERROR, "event=reload_failed error=\"%s\"", err);
    } else {
        int level = fb_log_level_parse(fresh.log_level);
        if (level >= 0)
            fb_log_set_level((fb_log_level_t)level);
        d->cfg.dispatch_batch_wait_ms = fresh.dispatch_batch_wait_ms;
        set_dedup(d, &fresh);
        if (fresh.dispatch_batch_max <= d->cfg.dispatch_batch_max)
            d->cfg.dispatch_batch_max = fresh.dispatch_batch_max;
        if (d->db)
            router_reload(&d->rt, d->db);
        fb_log(FB_LOG_INFO, "event=reloaded");
    }
    fb_config_free(&fresh);
}

static void run(dispatcher_t *d) {
    uint64_t batch_started = 0;
    while (!s_stop) {
        if (s_reload) {
            s_reload = 0;
            reload_config(d);
        }
        bool have_db = db_ready(d);
        int timeout = 1000;
        if (d->n)
            timeout = (int)(batch_started + (uint64_t)d->cfg.dispatch_batch_wait_ms - fb_mono_ms());
        if (timeout < 0)
            timeout = 0;
        zmq_pollitem_t items[3] = {{d->router, 0, ZMQ_POLLIN, 0},
                                   {d->zap ? fb_zap_socket(d->zap) : NULL, 0, ZMQ_POLLIN, 0},
                                   {NULL, have_db ? PQsocket(d->db) : -1, ZMQ_POLLIN, 0}};
        /* While the database is away, petitions wait in the intakes' spools,
         * not here: stop reading and let the bus push back. */
        if (!have_db)
            items[0].events = 0;
        if (!d->zap)
            items[1].events = 0;
        int rc = zmq_poll(items, have_db ? 3 : 2, have_db ? timeout : 200);
        if (rc < 0 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            fb_zap_handle(d->zap);
        if (have_db && (items[2].revents & ZMQ_POLLIN))
            check_notify(d);
        if (items[0].revents & ZMQ_POLLIN) {
            while (d->n < (size_t)d->cfg.dispatch_batch_max) {
                fb_bus_msg_t m;
                if (fb_bus_recv(d->router, &m, ZMQ_DONTWAIT) != 0)
                    break;
                if (d->n == 0)
                    batch_started = fb_mono_ms();
                take(d, &m);
                fb_bus_msg_close(&m);
            }
        }
        if (d->n && (d->n >= (size_t)d->cfg.dispatch_batch_max ||
                     fb_mono_ms() >= batch_started + (uint64_t)d->cfg.dispatch_batch_wait_ms))
            flush_batch(d);
    }
    flush_batch(d);
}

int main(int argc, char **argv) {
    static dispatcher_t d;
    int status = fb_daemon_init(argc, argv, "fenbo-dispatcher",
                                "Stores petitions from fenbo-intake in PostgreSQL, routes them by "
                                "the rule tables and publishes the assignments.",
                                &d.cfg, &d.config_path);
    if (status >= 0)
        return status;
    if (fb_db_set_login(d.cfg.dispatch_db_user) != 0) {
        fb_log(FB_LOG_ERROR,
               "event=bad_config key=dispatcher.db_user error=\"longer than 63 bytes\"");
        return 1;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    set_dedup(&d, &d.cfg);
    d.items = calloc((size_t)d.cfg.dispatch_batch_max, sizeof *d.items);
    d.zctx = zmq_ctx_new();
    d.router = fb_bus_socket(d.zctx, ZMQ_ROUTER, d.cfg.bus_sndhwm, d.cfg.bus_maxmsgsize);
    d.pub = fb_bus_socket(d.zctx, ZMQ_PUB, d.cfg.bus_sndhwm, d.cfg.bus_maxmsgsize);
    if (d.cfg.bus_curve && d.router && d.pub) {
        /* Without its ZAP handler a CURVE server would admit any key. */
        if (fb_zap_start(d.zctx, d.cfg.bus_allowed_clients, &d.zap) != 0 ||
            fb_bus_curve_server(d.router, d.cfg.bus_server_secret) != 0 ||
            fb_bus_curve_server(d.pub, d.cfg.bus_server_secret) != 0) {
            fb_log(FB_LOG_ERROR, "event=bus_curve_failed need=\"[bus] server_secret_key and "
                                 "allowed_clients, and the ZAP handler bound\"");
            return 1;
        }
        fb_log(FB_LOG_INFO, "event=bus_curve_on");
    }
    if (!d.items || !d.router || !d.pub || zmq_bind(d.router, d.cfg.bus_petitions) != 0 ||
        zmq_bind(d.pub, d.cfg.bus_assignments) != 0) {
        fb_log(FB_LOG_ERROR, "event=bus_bind_failed petitions=%s assignments=%s error=\"%s\"",
               d.cfg.bus_petitions, d.cfg.bus_assignments, zmq_strerror(errno));
        return 1;
    }
    if (!db_ready(&d))
        fb_log(FB_LOG_WARN, "event=started_without_database");
    fb_log(FB_LOG_INFO, "event=started petitions=%s assignments=%s batch_max=%d batch_wait_ms=%d",
           d.cfg.bus_petitions, d.cfg.bus_assignments, d.cfg.dispatch_batch_max,
           d.cfg.dispatch_batch_wait_ms);
    run(&d);
    log_classify_cost(&d);
    fb_log(FB_LOG_INFO,
           "event=stopped stored=%" PRIu64 " merged=%" PRIu64 " resent=%" PRIu64 " manual=%" PRIu64
           " batches=%" PRIu64 " failed_batches=%" PRIu64,
           d.stored, d.merged, d.duplicates, d.manual, d.batches, d.failures);
    zmq_close(d.router);
    zmq_close(d.pub);
    fb_zap_stop(&d.zap);
    zmq_ctx_term(d.zctx);
    if (d.db)
        PQfinish(d.db);
    router_free(&d.rt);
    free(d.items);
    fb_config_free(&d.cfg);
    return 0;
}
