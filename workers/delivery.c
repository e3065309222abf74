/* delivery.c — the two statements that deliver assignments.
 *
 * Both are a single statement (a data-modifying CTE), hence atomic: the
 * 'delivered' event exists exactly when delivered_at was set by this
 * statement. A second worker updating the same case waits for the first one's
 * row locks, re-checks `delivered_at IS NULL`, finds it set and updates
 * nothing, so it appends nothing either. */
#include "delivery.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* Delivers the undelivered assignments of the cases locked in c: one event
 * per case, naming the departments just reached, in case order.
 *
 * Locks are taken in the order every writer of a case takes them, or two
 * writers could each wait for the other: the case's row first (an action
 * locks it before stamping an assignment; the audit chain locks it to
 * append an event, schema/0009_case_locks.sql), then its assignments; and
 * several cases in ascending id, as the dispatcher appends its events.
 *
 * OFFSET 0 makes each case's undelivered assignments one index probe by
 * case_id. Without it the planner scans the whole partial index of
 * undelivered assignments, which it believes small; but every assignment
 * enters it undelivered and leaves on delivery, so between vacuums it is
 * mostly dead entries, and scanning those took a whole core at 1,000/s. */
// clang-format off
#define S_UNDELIVERED(case_id)                                                                     \
    " SELECT a.id, a.case_id FROM assignments a"                                                   \
    " WHERE a.case_id = " case_id " AND a.delivered_at IS NULL OFFSET 0"
#define S_DELIVER_LOCKED(via)                                                                      \
    " todo AS (SELECT a.id FROM c CROSS JOIN LATERAL (" S_UNDELIVERED("c.id") ") a"                \
    " ORDER BY a.case_id, a.id FOR UPDATE OF a),"                                                  \
    " d AS (UPDATE assignments a SET delivered_at = now() FROM todo WHERE a.id = todo.id"          \
    " RETURNING a.id, a.case_id, a.department_code, a.role)"                                       \
    " INSERT INTO case_events (case_id, actor, type, data)"                                        \
    " SELECT case_id, 'fenbo-worker', 'delivered',"                                                \
    "  jsonb_build_object('via', '" via "', 'departments',"                                        \
    "   jsonb_agg(jsonb_build_object('department', department_code, 'role', role)"                 \
    "    ORDER BY id))"                                                                            \
    " FROM d GROUP BY case_id ORDER BY case_id"                                                    \
    " RETURNING case_id, jsonb_array_length(data->'departments')"

/* The cases the bus brought at once, in one statement and one commit; only
 * those with something to deliver are locked. A case listed twice is locked
 * once: one event. */
static const char s_mark_cases_sql[] =
    "WITH c AS (SELECT id FROM cases WHERE id = ANY ($1::bigint[])"
    " AND EXISTS (" S_UNDELIVERED("cases.id") ")"
    " ORDER BY id FOR NO KEY UPDATE)," S_DELIVER_LOCKED("bus");

/* Whatever is waiting: the cases of the oldest $1 undelivered assignments,
 * skipping any another writer holds (the next pass takes them). */
static const char s_catchup_sql[] =
    "WITH c AS (SELECT id FROM cases WHERE id IN (SELECT case_id FROM assignments"
    "  WHERE delivered_at IS NULL ORDER BY case_id, id LIMIT $1::int)"
    " ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)," S_DELIVER_LOCKED("catchup");
// clang-format on

/* Runs sql, prepared as name, with its one text parameter; the rows are the
 * caller's. Planning either statement (row security makes them large) cost
 * more than running it for a few cases. */
static PGresult *run(PGconn *db, const char *name, const char *sql, const char *param) {
    const char *params[] = {param};
    PGresult *r = fb_db_exec_prepared(db, name, sql, 1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=db_error op=deliver error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* case_ids as a bigint[] literal, "{1,2,3}"; the caller frees it. */
static char *id_array(const int64_t *case_ids, size_t n) {
    size_t cap = n * 21 + 3, k = 0; /* "-9223372036854775808," at most */
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[k++] = '{';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s%" PRId64, i ? "," : "", case_ids[i]);
    s[k++] = '}';
    s[k] = '\0';
    return s;
}

int fb_delivery_mark_cases(PGconn *db, const int64_t *case_ids, size_t n, int *delivered) {
    for (size_t i = 0; i < n; i++)
        delivered[i] = 0;
    if (n == 0)
        return 0;
    int rc = FB_ENOMEM;
    PGresult *r = NULL;
    char *ids = id_array(case_ids, n);
    if (!ids)
        goto fail;
    rc = FB_EDB;
    r = run(db, "delivery_mark", s_mark_cases_sql, ids);
    if (!r)
        goto fail;
    /* One row per case that got an event; its count goes to the case's first
     * place in case_ids (a batch is a few hundred at most). */
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        for (size_t i = 0; i < n; i++) {
            if (case_ids[i] == id) {
                delivered[i] = atoi(PQgetvalue(r, row, 1));
                break;
            }
        }
    }
    PQclear(r);
    free(ids);
    return 0;
fail:
    free(ids);
    return rc;
}

int fb_delivery_catchup_batch(PGconn *db, int batch, int *delivered) {
    char n[16];
    snprintf(n, sizeof n, "%d", batch);
    *delivered = 0;
    PGresult *r = run(db, "delivery_catchup", s_catchup_sql, n);
    if (!r)
        return FB_EDB;
    /* One row per case: the assignments delivered in it. */
    for (int i = 0; i < PQntuples(r); i++)
        *delivered += atoi(PQgetvalue(r, i, 1));
    PQclear(r);
    return 0;
}
