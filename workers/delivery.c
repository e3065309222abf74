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

/* One event per case and pass, naming the departments just reached. */
static const char s_mark_case_sql[] =
    "WITH d AS ("
    " UPDATE assignments SET delivered_at = now()"
    " WHERE case_id = $1::bigint AND delivered_at IS NULL"
    " RETURNING id, case_id, department_code, role)"
    " INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT $1::bigint, 'fenbo-worker', 'delivered',"
    "  jsonb_build_object('via', 'bus', 'departments',"
    "   jsonb_agg(jsonb_build_object('department', department_code, 'role', role)"
    "    ORDER BY id))"
    " FROM d HAVING count(*) > 0"
    " RETURNING jsonb_array_length(data->'departments')";

static const char s_catchup_sql[] =
    "WITH todo AS ("
    " SELECT id FROM assignments WHERE delivered_at IS NULL"
    " ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED),"
    " d AS ("
    " UPDATE assignments a SET delivered_at = now() FROM todo WHERE a.id = todo.id"
    " RETURNING a.id, a.case_id, a.department_code, a.role)"
    " INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT case_id, 'fenbo-worker', 'delivered',"
    "  jsonb_build_object('via', 'catchup', 'departments',"
    "   jsonb_agg(jsonb_build_object('department', department_code, 'role', role)"
    "    ORDER BY id))"
    " FROM d GROUP BY case_id"
    " RETURNING jsonb_array_length(data->'departments')";

/* Sums the first column of every row: the assignments delivered per case. */
static int run_counting(PGconn *db, const char *sql, const char *param, int *delivered) {
    *delivered = 0;
    const char *params[] = {param};
    PGresult *r = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=db_error op=deliver error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    for (int i = 0; i < PQntuples(r); i++)
        *delivered += atoi(PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

int fb_delivery_mark_case(PGconn *db, int64_t case_id, int *delivered) {
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, case_id);
    return run_counting(db, s_mark_case_sql, id, delivered);
}

int fb_delivery_catchup_batch(PGconn *db, int batch, int *delivered) {
    char n[16];
    snprintf(n, sizeof n, "%d", batch);
    return run_counting(db, s_catchup_sql, n, delivered);
}
