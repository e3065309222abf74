/* stats.c — GET /api/v1/stats and GET /api/v1/stats/daily.
 *
 * Each request is one call of a SQL function that returns the whole JSON
 * document, so the worker adds no arithmetic of its own: what the API, the
 * dashboard and `fenboctl stats` show cannot drift apart. The functions
 * check their parameters and name a bad one in the error's COLUMN field,
 * which becomes the "field" of a 400 here. */
#include "stats.h"
#include "dbpool.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two steps, so that a macro's value, not its name, becomes the string. */
#define S_STR_(x) #x
#define S_STR(x)  S_STR_(x)

static const char s_rates_sql[] = "SELECT fenbo_stats_json($1, $2, $3, $4, $5)";
static const char s_daily_sql[] = "SELECT fenbo_stats_daily_json($1, $2, $3)";

/* A query parameter is a word or a date: printable ASCII only, so that
 * nothing PostgreSQL would refuse as text (bad UTF-8, NUL) reaches it and
 * fails as a 500. Answers 400 naming the field and returns false otherwise. */
static bool param_ok(fb_http_req_t *req, const char *field, const char *v) {
    if (!v)
        return true;
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch > 0x7e || n > 64) {
            fb_http_error(req, 400, "invalid", field, "%s must be %s", field,
                          strcmp(field, "by") == 0 ? "department, district, street or grid"
                                                   : "a date YYYY-MM-DD");
            return false;
        }
    }
    return true;
}

/* A statistics query may take seconds over a long period of a big city, and
 * the worker's one connection is blocking: each query gets at most
 * STATS_TIMEOUT_MS (longer periods are for `fenboctl stats`), and an answer
 * is kept for STATS_CACHE_MS, so that several dashboards refreshing at once
 * cost one query. */
#define STATS_TIMEOUT_MS  15000
#define STATS_CACHE_MS    15000
#define STATS_CACHE_SLOTS 32

/* The answers of the last STATS_CACHE_MS, by request. One worker process
 * serves them from its one loop, so a file-level table needs no lock; the
 * documents are freed when their slot is reused. */
static struct {
    char key[384];
    char *doc;
    uint64_t at_ms;
} s_cache[STATS_CACHE_SLOTS];

static const char *cache_get(const char *key) {
    uint64_t now = fb_mono_ms();
    for (size_t i = 0; i < STATS_CACHE_SLOTS; i++)
        if (s_cache[i].doc && now - s_cache[i].at_ms < STATS_CACHE_MS &&
            strcmp(s_cache[i].key, key) == 0)
            return s_cache[i].doc;
    return NULL;
}

/* Keeps doc (copied) under key, in the slot of the same key or the oldest. */
static void cache_put(const char *key, const char *doc) {
    size_t slot = 0;
    for (size_t i = 0; i < STATS_CACHE_SLOTS; i++) {
        if (s_cache[i].doc && strcmp(s_cache[i].key, key) == 0) {
            slot = i;
            break;
        }
        if (!s_cache[i].doc || s_cache[i].at_ms < s_cache[slot].at_ms)
            slot = i;
    }
    char *copy = strdup(doc);
    if (!copy)
        return;
    free(s_cache[slot].doc);
    snprintf(s_cache[slot].key, sizeof s_cache[slot].key, "%s", key);
    s_cache[slot].doc = copy;
    s_cache[slot].at_ms = fb_mono_ms();
}

static void answer_db_down(fb_http_req_t *req) {
    fb_http_error(req, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
}

/* Answers a failed statement: 400 for a parameter the function refused (it
 * names the field), 403 for a scope it refused, 503 for a timeout or a lost
 * connection, 500 otherwise. */
static void answer_error(fb_http_req_t *req, const PGresult *r) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *column = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (state && strcmp(state, "22023") == 0 && column) {
        fb_http_error(req, 400, "invalid", column, "%s", msg ? msg : "invalid parameter");
        return;
    }
    if (state && strcmp(state, "42501") == 0) {
        fb_http_error(req, 403, "forbidden", NULL, "%s", msg ? msg : "forbidden");
        return;
    }
    fb_log(FB_LOG_WARN, "event=db_error what=stats sqlstate=%s error=\"%s\"", state ? state : "-",
           msg ? msg : "-");
    if (state && strcmp(state, "57014") == 0)
        fb_http_error(req, 503, "timeout", NULL,
                      "computing the statistics took longer than %d s: ask for a shorter period, "
                      "or use fenboctl stats",
                      STATS_TIMEOUT_MS / 1000);
    else if (state && strncmp(state, "08", 2) == 0)
        answer_db_down(req);
    else
        fb_http_error(req, 500, "internal", NULL, "database error");
}

/* A statistics query on its way through the pool. */
typedef struct {
    fb_worker_t *w;
    fb_http_req_t *req;
    char key[384];
} s_pending_t;

static void on_result(void *ud, PGresult *r) {
    s_pending_t *q = ud;
    if (!r)
        answer_db_down(q->req);
    else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        const char *doc = PQgetvalue(r, 0, 0);
        fb_http_respond(q->req, 200, "application/json; charset=utf-8", doc, strlen(doc));
        cache_put(q->key, doc);
    } else {
        answer_error(q->req, r);
    }
    fb_log(FB_LOG_INFO, "event=stats_answered status=%u", fb_http_status(q->req));
    free(q);
}

/* Answers req with the JSON document that sql (one row, one column)
 * returns: from the cache when it is fresh, else later, from a connection
 * of the worker's statistics pool (dbpool.h) in a read-only transaction
 * with its own statement_timeout — so that a slow query never holds the
 * loop, nor the connection the departments' requests use. */
static void answer(fb_worker_t *w, fb_http_req_t *req, const char *role, const char *department,
                   const char *key, const char *sql, int n, const char *const *params) {
    const char *cached = cache_get(key);
    if (cached) {
        fb_http_respond(req, 200, "application/json; charset=utf-8", cached, strlen(cached));
        return;
    }
    s_pending_t *q = calloc(1, sizeof *q);
    if (!q || fb_dbpool_read(w->pool, role, department, STATS_TIMEOUT_MS, sql, n, params, on_result,
                             q) != 0) {
        free(q);
        fb_http_error(req, 500, "internal", NULL, "out of memory");
        return;
    }
    q->w = w;
    q->req = req;
    snprintf(q->key, sizeof q->key, "%s", key);
}

void fb_stats_rates(fb_worker_t *w, fb_http_req_t *req, const char *role, const char *department) {
    const char *by = fb_http_query(req, "by");
    const char *from = fb_http_query(req, "from");
    const char *to = fb_http_query(req, "to");
    if (!param_ok(req, "by", by) || !param_ok(req, "from", from) || !param_ok(req, "to", to))
        return;
    /* A street's or district's row counts every department's cases there. */
    if (department && by && *by && strcmp(by, "department") != 0) {
        fb_http_error(req, 403, "forbidden", "by",
                      "a department token sees its own row only: use by=department");
        return;
    }
    const char *params[] = {by, from, to, w->cfg.timezone, department};
    char key[384];
    snprintf(key, sizeof key, "rates|%s|%s|%s|%s", by ? by : "", from ? from : "", to ? to : "",
             department ? department : "");
    answer(w, req, role, department, key, s_rates_sql, 5, params);
}

void fb_stats_daily(fb_worker_t *w, fb_http_req_t *req, const char *role) {
    const char *from = fb_http_query(req, "from");
    const char *to = fb_http_query(req, "to");
    if (!param_ok(req, "from", from) || !param_ok(req, "to", to))
        return;
    const char *params[] = {from, to, w->cfg.timezone};
    char key[384];
    snprintf(key, sizeof key, "daily|%s|%s", from ? from : "", to ? to : "");
    answer(w, req, role, NULL, key, s_daily_sql, 3, params);
}
