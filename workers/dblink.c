/* dblink.c — connect, lose, back off, reconnect; whom the session runs for. */
#include "dblink.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

struct fb_dblink {
    uv_timer_t timer;
    uv_check_t check; /* clears a context left set, once per loop iteration */
    int open_handles;
    PGconn *conn;
    char *conninfo;
    char *timezone;
    char *role; /* SET ROLE after connecting; NULL: the login role */
    fb_dblink_up_cb cb;
    void *ud;
    unsigned backoff_ms;
    uint64_t connects;
    bool context_set; /* fenbo.role or fenbo.department may be non-empty on the session */
};

/* Both settings at once, so that no query ever sees one without the other. */
static const char s_context_sql[] = FB_DBLINK_CONTEXT_SQL;

static void on_timer(uv_timer_t *t);

static void schedule(fb_dblink_t *l, unsigned ms) {
    uv_timer_start(&l->timer, on_timer, ms, 0);
}

/* Drops the connection and schedules a reconnect. */
static void drop(fb_dblink_t *l) {
    PQfinish(l->conn);
    l->conn = NULL;
    l->context_set = false;
    schedule(l, l->backoff_ms);
}

/* Session settings every query relies on: times in the city's zone, and
 * bounded waits, because a blocking call stalls the whole loop. */
static void setup_session(fb_dblink_t *l) {
    const char *tz[] = {l->timezone};
    PGresult *r = PQexecParams(l->conn, "SELECT set_config('TimeZone', $1, false)", 1, NULL, tz,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fb_log(FB_LOG_WARN, "event=db_timezone_failed timezone=\"%s\" error=\"%s\"", l->timezone,
               fb_db_error(l->conn));
    PQclear(r);
    fb_db_exec(l->conn, "SET lock_timeout = '5s'", 0, NULL);
    fb_db_exec(l->conn, "SET statement_timeout = '30s'", 0, NULL);
}

/* SET ROLE, through set_config so that the name travels as a parameter.
 * Without it the session would run as the login — usually the tables'
 * owner, past every policy — so failing here fails the connection. */
static int take_role(fb_dblink_t *l) {
    if (!l->role)
        return 0;
    const char *params[] = {l->role};
    PGresult *r = PQexecParams(l->conn, "SELECT set_config('role', $1, false), current_user", 1,
                               NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                     strcmp(PQgetvalue(r, 0, 1), l->role) == 0
                 ? 0
                 : FB_EDB;
    if (rc)
        fb_log(FB_LOG_ERROR,
               "event=db_role_failed role=\"%s\" retry_ms=%u error=\"%s\" hint=\"the role comes "
               "with fenboctl db migrate (schema/0007_rls.sql), and the login must be a member "
               "of it\"",
               l->role, l->backoff_ms, fb_db_error(l->conn));
    PQclear(r);
    return rc;
}

static int connect_once(fb_dblink_t *l) {
    /* As the worker's login (fb_db_set_login), named fenbo-worker. */
    PGconn *c;
    if (fb_db_connect_timeout(l->conninfo, 5, &c) != 0) {
        fb_log(FB_LOG_WARN, "event=db_connect_retry retry_ms=%u", l->backoff_ms);
        return FB_EDB;
    }
    l->conn = c;
    l->context_set = false; /* a new session: nobody */
    setup_session(l);
    if (take_role(l) != 0) {
        PQfinish(l->conn);
        l->conn = NULL;
        return FB_EDB;
    }
    return 0;
}

static void on_timer(uv_timer_t *t) {
    fb_dblink_t *l = t->data;
    if (l->conn)
        return;
    if (connect_once(l) != 0) {
        schedule(l, l->backoff_ms);
        l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
        return;
    }
    l->connects++;
    l->backoff_ms = BACKOFF_MIN_MS;
    fb_log(FB_LOG_INFO, "event=db_connected reconnects=%llu role=%s",
           (unsigned long long)fb_dblink_reconnects(l), l->role ? l->role : "-");
    if (l->cb)
        l->cb(l->ud);
}

/* The end of a loop iteration: whatever ran in it is done. */
static void on_check(uv_check_t *h) {
    fb_dblink_t *l = h->data;
    if (l->context_set)
        fb_dblink_context_clear(l);
}

int fb_dblink_new(uv_loop_t *loop, const char *conninfo, const char *timezone, fb_dblink_up_cb cb,
                  void *ud, fb_dblink_t **out) {
    *out = NULL;
    fb_dblink_t *l = calloc(1, sizeof *l);
    if (!l)
        goto fail;
    l->conninfo = strdup(conninfo);
    l->timezone = strdup(timezone);
    if (!l->conninfo || !l->timezone)
        goto fail;
    l->cb = cb;
    l->ud = ud;
    l->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &l->timer);
    uv_check_init(loop, &l->check);
    l->timer.data = l->check.data = l;
    l->open_handles = 2;
    uv_check_start(&l->check, on_check);
    /* The loop ends when its work does, not when this watcher would. */
    uv_unref((uv_handle_t *)&l->check);
    schedule(l, 0);
    *out = l;
    return 0;
fail:
    if (l) {
        free(l->timezone);
        free(l->conninfo);
    }
    free(l);
    return FB_ENOMEM;
}

int fb_dblink_set_role(fb_dblink_t *l, const char *role) {
    char *copy = NULL;
    if (role && *role && !(copy = strdup(role)))
        return FB_ENOMEM;
    free(l->role);
    l->role = copy;
    return 0;
}

static void on_closed(uv_handle_t *h) {
    fb_dblink_t *l = h->data;
    if (--l->open_handles > 0)
        return;
    free(l->role);
    free(l->timezone);
    free(l->conninfo);
    free(l);
}

void fb_dblink_destroy(fb_dblink_t **lp) {
    fb_dblink_t *l = *lp;
    if (!l)
        return;
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    l->context_set = false;
    uv_timer_stop(&l->timer);
    uv_check_stop(&l->check);
    uv_close((uv_handle_t *)&l->timer, on_closed);
    uv_close((uv_handle_t *)&l->check, on_closed);
    *lp = NULL;
}

PGconn *fb_dblink_conn(fb_dblink_t *l) {
    return l->conn;
}

bool fb_dblink_up(const fb_dblink_t *l) {
    return l->conn != NULL;
}

bool fb_dblink_check(fb_dblink_t *l) {
    if (!l->conn || PQstatus(l->conn) != CONNECTION_BAD)
        return false;
    fb_log(FB_LOG_WARN, "event=db_lost retry_ms=%u error=\"%s\"", l->backoff_ms,
           fb_db_error(l->conn));
    drop(l);
    return true;
}

uint64_t fb_dblink_reconnects(const fb_dblink_t *l) {
    return l->connects > 1 ? l->connects - 1 : 0;
}

int fb_dblink_context_set(fb_dblink_t *l, const char *role, const char *department) {
    if (!l->conn)
        return FB_EDB;
    PGTransactionStatusType ts = PQtransactionStatus(l->conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        /* Someone's bug; its transaction is over either way. */
        fb_log(FB_LOG_WARN, "event=db_transaction_left_open action=rollback");
        PQclear(PQexec(l->conn, "ROLLBACK"));
    }
    const char *params[] = {role ? role : "", department ? department : ""};
    PGresult *r = PQexecParams(l->conn, s_context_sql, 2, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQtransactionStatus(l->conn) == PQTRANS_IDLE;
    PQclear(r);
    if (!ok) {
        /* The session may still run for whoever came before: never use it
         * again. */
        fb_log(FB_LOG_WARN, "event=db_context_failed role=%s retry_ms=%u error=\"%s\"",
               params[0][0] ? params[0] : "-", l->backoff_ms, fb_db_error(l->conn));
        drop(l);
        return FB_EDB;
    }
    l->context_set = params[0][0] || params[1][0];
    return 0;
}

void fb_dblink_context_clear(fb_dblink_t *l) {
    if (l->conn && l->context_set)
        fb_dblink_context_set(l, NULL, NULL);
}
