/* dblink.c — connect, lose, back off, reconnect. */
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
    PGconn *conn;
    char *conninfo;
    char *timezone;
    fb_dblink_up_cb cb;
    void *ud;
    unsigned backoff_ms;
    uint64_t connects;
};

static void on_timer(uv_timer_t *t);

static void schedule(fb_dblink_t *l, unsigned ms) {
    uv_timer_start(&l->timer, on_timer, ms, 0);
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

static int connect_once(fb_dblink_t *l) {
    /* dbname is expanded from the configured conninfo; the keywords before
     * it are defaults that the conninfo may override. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"5", "fenbo-worker", l->conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        fb_log(FB_LOG_WARN, "event=db_connect_failed retry_ms=%u error=\"%s\"", l->backoff_ms,
               fb_db_error(c));
        PQfinish(c);
        return FB_EDB;
    }
    l->conn = c;
    setup_session(l);
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
    fb_log(FB_LOG_INFO, "event=db_connected reconnects=%llu",
           (unsigned long long)fb_dblink_reconnects(l));
    if (l->cb)
        l->cb(l->ud);
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
    l->timer.data = l;
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

static void on_closed(uv_handle_t *h) {
    fb_dblink_t *l = h->data;
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
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_closed);
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
    PQfinish(l->conn);
    l->conn = NULL;
    schedule(l, l->backoff_ms);
    return true;
}

uint64_t fb_dblink_reconnects(const fb_dblink_t *l) {
    return l->connects > 1 ? l->connects - 1 : 0;
}
