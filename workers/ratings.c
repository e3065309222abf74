/* ratings.c — the ratings job (see ratings.h). */
#include "ratings.h"
#include "casetx.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_log.h"
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Often enough that a resident's rating shows its effect within seconds;
 * the query is an index probe on the unprocessed ratings. */
#define RATINGS_INTERVAL_MS 2000
#define RATINGS_PER_PASS    100

struct fb_ratings {
    fb_worker_t *w;
    uv_timer_t timer;
};

static const char s_next_sql[] =
    "SELECT id, case_id FROM ratings WHERE processed_at IS NULL AND id <> ALL ($1::bigint[])"
    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";

static const char s_done_sql[] = "UPDATE ratings SET processed_at = now() WHERE id = $1::bigint";

/* Applies one rating. Returns 1 when one was processed, 0 when none is
 * waiting, FB_EDB/FB_EINVAL on failure (the caller rolls back); *id is the
 * rating taken. */
static int apply_one(fb_casetx_t *t, const char *skip, int64_t *id) {
    const char *params[] = {skip};
    fb_case_row_t row = {0};
    PGresult *r = fb_casetx_query(t, s_next_sql, 1, params, PGRES_TUPLES_OK);
    int rc = FB_EDB;
    if (!r)
        return FB_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    char rid[24];
    snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 0));
    *id = strtoll(rid, NULL, 10);
    int64_t case_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    rc = fb_casetx_lock(t, case_id, NULL, &row);
    if (rc)
        goto done;
    fb_case_status_t before = row.status, after;
    if ((rc = fb_casetx_settle_ratings(t, &row, "worker", &after)) != 0)
        goto done;
    const char *dp[] = {rid};
    if ((rc = fb_casetx_exec(t, s_done_sql, 1, dp)) != 0)
        goto done;
    fb_log(FB_LOG_INFO, "event=rating_applied rating_id=%s case_id=%" PRId64 " from=%s to=%s", rid,
           case_id, fb_case_status_name(before), fb_case_status_name(after));
    rc = 1;
done:
    fb_casetx_row_clear(&row);
    return rc;
}

int fb_ratings_pass(PGconn *db, int max, int *applied) {
    fb_casetx_t t = {.db = db};
    char skip[RATINGS_PER_PASS * 21 + 3] = "{}";
    size_t skip_len = 1; /* where the next id goes: before the '}' */
    *applied = 0;
    for (int i = 0; i < max; i++) {
        int64_t id = 0;
        if (fb_casetx_exec(&t, "BEGIN", 0, NULL) != 0)
            return FB_EDB;
        int rc = apply_one(&t, skip, &id);
        if (rc >= 0 && fb_casetx_exec(&t, "COMMIT", 0, NULL) != 0)
            rc = FB_EDB;
        if (rc == 0)
            return 0;
        if (rc == 1) {
            (*applied)++;
            continue;
        }
        if (PQstatus(db) == CONNECTION_OK)
            PQclear(PQexec(db, "ROLLBACK"));
        if (PQstatus(db) != CONNECTION_OK || id == 0)
            return FB_EDB;
        /* This rating failed on its own: leave it for the next pass. */
        fb_log(FB_LOG_WARN, "event=rating_failed rating_id=%" PRId64 " sqlstate=%s", id,
               t.sqlstate[0] ? t.sqlstate : "-");
        int n = snprintf(skip + skip_len, sizeof skip - skip_len, "%s%" PRId64 "}",
                         skip_len > 1 ? "," : "", id);
        if (n < 0 || (size_t)n >= sizeof skip - skip_len)
            return 0;
        skip_len += (size_t)n - 1;
    }
    return 0;
}

static void on_timer(uv_timer_t *h) {
    fb_ratings_t *r = h->data;
    fb_worker_t *w = r->w;
    PGconn *db = fb_dblink_conn(w->db);
    if (!db || w->stopping || fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0)
        return;
    int applied = 0;
    if (fb_ratings_pass(db, RATINGS_PER_PASS, &applied) != 0) {
        fb_dblink_check(w->db);
        return;
    }
    /* A backlog remains: come back on the next loop turn. */
    if (applied == RATINGS_PER_PASS)
        uv_timer_start(&r->timer, on_timer, 0, RATINGS_INTERVAL_MS);
}

int fb_ratings_start(fb_worker_t *w, fb_ratings_t **out) {
    fb_ratings_t *r = calloc(1, sizeof *r);
    if (!r)
        return FB_ENOMEM;
    r->w = w;
    uv_timer_init(&w->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, RATINGS_INTERVAL_MS, RATINGS_INTERVAL_MS);
    *out = r;
    return 0;
}

static void on_closed(uv_handle_t *h) {
    free(h->data);
}

void fb_ratings_stop(fb_ratings_t **r) {
    if (!*r)
        return;
    uv_timer_stop(&(*r)->timer);
    uv_close((uv_handle_t *)&(*r)->timer, on_closed);
    *r = NULL;
}
