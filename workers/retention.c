/* retention.c — the retention job (see retention.h). */
#include "retention.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>

/* Closed cases pass their retention period at the pace they closed, so an
 * hourly look is plenty; a backlog (the first run on an old database, a
 * shortened period) is worked off in batches over several loop turns, so
 * that the API stays responsive meanwhile. */
#define RETENTION_INTERVAL_MS      (3600 * 1000)
#define RETENTION_BATCH            200
#define RETENTION_BATCHES_PER_TICK 10

struct fb_retention {
    fb_worker_t *w;
    uv_timer_t timer;
    int days;
};

/* One statement, so one transaction: the oldest closed cases past $1 days
 * that are not anonymised yet (cases_retention_idx), at most $2, locked and
 * skipped when another worker holds them; their petitions' personal data
 * replaced by the masked forms and raw stripped (0008_retention.sql); an
 * idempotency key that may name the sender (Open311's device or account,
 * a mail's Message-ID) replaced by its digest, which stays unique; the
 * case marked, and one 'anonymised' event each naming the petitions by id.
 * Closed is final, so a case taken cannot leave the set under the job. */
static const char s_batch_sql[] =
    "WITH todo AS (SELECT c.id FROM cases c"
    " WHERE c.status = 'closed' AND c.anonymised_at IS NULL"
    " AND c.updated_at < now() - make_interval(days => $1::int)"
    " ORDER BY c.updated_at, c.id LIMIT $2::int FOR UPDATE OF c SKIP LOCKED),"
    " p AS (UPDATE petitions p SET caller_name = fenbo_mask_name(p.caller_name),"
    "  caller_phone = fenbo_mask_phone(p.caller_phone),"
    "  idem_key = CASE WHEN p.channel IN ('open311', 'mailbox')"
    "   THEN 'sha256:' || encode(sha256(convert_to(p.idem_key, 'UTF8')), 'hex')"
    "   ELSE p.idem_key END,"
    "  raw = fenbo_anonymise_raw(p.raw, now()), anonymised_at = now()"
    " FROM todo WHERE p.case_id = todo.id AND p.anonymised_at IS NULL"
    " RETURNING p.id, p.case_id),"
    " c AS (UPDATE cases c SET anonymised_at = now() FROM todo WHERE c.id = todo.id"
    " RETURNING c.id),"
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT c.id, 'fenbo-worker', 'anonymised', jsonb_build_object("
    "  'petitions', coalesce((SELECT jsonb_agg(p.id ORDER BY p.id) FROM p"
    "   WHERE p.case_id = c.id), '[]'::jsonb),"
    "  'retention_days', $1::int)"
    " FROM c ORDER BY c.id RETURNING case_id)"
    " SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM p)";

int fb_retention_batch(PGconn *db, int days, int max, int *cases, int *petitions) {
    char d[16], n[16];
    snprintf(d, sizeof d, "%d", days);
    snprintf(n, sizeof n, "%d", max);
    const char *params[] = {d, n};
    *cases = *petitions = 0;
    PGresult *r = PQexecParams(db, s_batch_sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fb_log(FB_LOG_WARN, "event=db_error op=retention error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    *cases = atoi(PQgetvalue(r, 0, 0));
    *petitions = atoi(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

static void on_timer(uv_timer_t *h) {
    fb_retention_t *rt = h->data;
    fb_worker_t *w = rt->w;
    PGconn *db = fb_dblink_conn(w->db);
    if (!db || w->stopping || rt->days <= 0 ||
        fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0)
        return;
    int cases = 0, petitions = 0, n = 0, k = 0;
    bool more = false, failed = false;
    for (int i = 0; i < RETENTION_BATCHES_PER_TICK && !failed; i++) {
        /* A failed batch is retried by the next pass (hourly, or when the
         * database is back); what the batches before it did is committed. */
        failed = fb_retention_batch(db, rt->days, RETENTION_BATCH, &n, &k) != 0;
        cases += failed ? 0 : n;
        petitions += failed ? 0 : k;
        more = !failed && n == RETENTION_BATCH;
        if (!more)
            break;
    }
    if (cases > 0)
        fb_log(FB_LOG_INFO, "event=anonymised cases=%d petitions=%d retention_days=%d more=%s",
               cases, petitions, rt->days, more ? "yes" : "no");
    else if (!failed)
        fb_log(FB_LOG_DEBUG, "event=retention_pass cases=0 retention_days=%d", rt->days);
    if (failed)
        fb_dblink_check(w->db);
    else if (more)
        uv_timer_start(&rt->timer, on_timer, 0, RETENTION_INTERVAL_MS);
}

int fb_retention_start(fb_worker_t *w, fb_retention_t **out) {
    fb_retention_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        return FB_ENOMEM;
    rt->w = w;
    rt->days = w->cfg.worker_retention_days;
    uv_timer_init(&w->loop, &rt->timer);
    rt->timer.data = rt;
    uv_timer_start(&rt->timer, on_timer, RETENTION_INTERVAL_MS, RETENTION_INTERVAL_MS);
    fb_log(FB_LOG_INFO, "event=retention_started retention_days=%d", rt->days);
    *out = rt;
    return 0;
}

static void on_closed(uv_handle_t *h) {
    free(h->data);
}

void fb_retention_stop(fb_retention_t **r) {
    if (!*r)
        return;
    uv_timer_stop(&(*r)->timer);
    uv_close((uv_handle_t *)&(*r)->timer, on_closed);
    *r = NULL;
}

void fb_retention_kick(fb_retention_t *r) {
    if (r)
        uv_timer_start(&r->timer, on_timer, 0, RETENTION_INTERVAL_MS);
}

void fb_retention_reload(fb_retention_t *r, const fb_config_t *cfg) {
    if (!r)
        return;
    if (cfg->worker_retention_days != r->days)
        fb_log(FB_LOG_INFO, "event=retention_reloaded retention_days=%d was=%d",
               cfg->worker_retention_days, r->days);
    r->days = cfg->worker_retention_days;
    r->w->cfg.worker_retention_days = r->days;
    fb_retention_kick(r);
}
