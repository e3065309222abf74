/* casetx.c — the database steps of the case lifecycle's moves. */
#include "casetx.h"
#include "fb_calendar.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_lock_sql[] =
    "SELECT c.status, c.department_code, c.urgency, c.kind, coalesce(c.rule_id, 0),"
    " c.reply_due IS NOT NULL"
    " FROM cases c WHERE c.id = $1::bigint AND ($2::text IS NULL OR EXISTS ("
    "  SELECT 1 FROM assignments sa WHERE sa.case_id = c.id AND sa.department_code = $2::text))"
    " FOR UPDATE OF c";

static const char s_event_sql[] = "INSERT INTO case_events (case_id, actor, type, data)"
                                  " VALUES ($1::bigint, $2, $3, $4::jsonb)";

static const char s_status_sql[] =
    "UPDATE cases SET status = $2, updated_at = now() WHERE id = $1::bigint";

static const char s_calendar_sql[] = "SELECT json_agg(c) FROM calendar_days c";

static const char s_rule_sql[] = "SELECT coalesce(accept_hours, 0), coalesce(reply_workdays, 0)"
                                 " FROM route_rules WHERE id = $1::integer";

static const char s_new_lead_sql[] =
    "WITH a AS (INSERT INTO assignments (case_id, department_code, role, rule_id, accept_due,"
    "  reply_due) VALUES ($1::bigint, $2, 'lead', nullif($3::integer, 0), $4::timestamptz,"
    "  $5::timestamptz) RETURNING id)"
    " UPDATE cases SET department_code = $2, rule_id = nullif($3::integer, 0),"
    "  urgency = coalesce($6, urgency), accept_due = $4::timestamptz,"
    "  reply_due = $5::timestamptz, updated_at = now()"
    " WHERE id = $1::bigint AND EXISTS (SELECT 1 FROM a)";

static const char s_withdraw_sql[] =
    "UPDATE assignments SET withdrawn_at = now()"
    " WHERE case_id = $1::bigint AND withdrawn_at IS NULL AND replied_at IS NULL";

/* The ratings of the round that began with the case's latest reply: is one
 * of them unsatisfied, which are they, and has every petition of the case
 * a rating (a resident rates once; a later round's rating comes from the
 * callback desk). */
static const char s_round_sql[] =
    "WITH round AS (SELECT max(e.at) AS since FROM case_events e"
    "  WHERE e.case_id = $1::bigint AND e.type = 'replied')"
    " SELECT coalesce(bool_or(r.satisfaction = 'unsatisfied'), false),"
    "  coalesce(json_agg(r.id ORDER BY r.id) FILTER (WHERE r.id IS NOT NULL), '[]'::json),"
    "  NOT EXISTS (SELECT 1 FROM petitions p WHERE p.case_id = $1::bigint"
    "   AND NOT EXISTS (SELECT 1 FROM ratings q WHERE q.petition_id = p.id)),"
    "  count(r.id)"
    " FROM round LEFT JOIN ratings r ON r.case_id = $1::bigint AND r.rated_at >= round.since";

PGresult *fb_casetx_query(fb_casetx_t *t, const char *sql, int n, const char *const *params,
                          ExecStatusType want) {
    t->sqlstate[0] = '\0';
    if (!t->db)
        return NULL;
    PGresult *r = PQexecParams(t->db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(t->sqlstate, sizeof t->sqlstate, "%s", st ? st : "");
    fb_log(FB_LOG_WARN, "event=db_error sqlstate=%s error=\"%s\"",
           t->sqlstate[0] ? t->sqlstate : "-", fb_db_error(t->db));
    PQclear(r);
    return NULL;
}

int fb_casetx_as_system(fb_casetx_t *t) {
    PGresult *r = fb_casetx_query(t, "SELECT set_config('fenbo.role', 'system', true)", 0, NULL,
                                  PGRES_TUPLES_OK);
    PQclear(r);
    return r ? 0 : FB_EDB;
}

int fb_casetx_exec(fb_casetx_t *t, const char *sql, int n, const char *const *params) {
    PGresult *r = fb_casetx_query(t, sql, n, params, PGRES_COMMAND_OK);
    PQclear(r);
    return r ? 0 : FB_EDB;
}

int fb_casetx_lock(fb_casetx_t *t, int64_t id, const char *scope, fb_case_row_t *row) {
    memset(row, 0, sizeof *row);
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, id);
    const char *params[] = {idb, scope};
    PGresult *r = fb_casetx_query(t, s_lock_sql, 2, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return FB_ENOTFOUND;
    }
    row->res = r;
    row->id = id;
    row->department = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
    row->urgency = PQgetvalue(r, 0, 2);
    row->kind = PQgetvalue(r, 0, 3);
    row->rule_id = atoi(PQgetvalue(r, 0, 4));
    row->has_reply_due = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
    if (fb_case_status_parse(PQgetvalue(r, 0, 0), &row->status) != 0) {
        fb_log(FB_LOG_ERROR, "event=case_status_unknown case_id=%" PRId64 " status=%.20s", id,
               PQgetvalue(r, 0, 0));
        return FB_EINVAL;
    }
    return 0;
}

void fb_casetx_row_clear(fb_case_row_t *row) {
    PQclear(row->res);
    memset(row, 0, sizeof *row);
}

int fb_casetx_event(fb_casetx_t *t, int64_t case_id, const char *actor, const char *type,
                    const json_t *data) {
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    char *d = data ? json_dumps(data, JSON_COMPACT) : NULL;
    if (data && !d)
        return FB_ENOMEM;
    const char *params[] = {idb, actor, type, d ? d : "{}"};
    int rc = fb_casetx_exec(t, s_event_sql, 4, params);
    free(d);
    return rc;
}

int fb_casetx_set_status(fb_casetx_t *t, int64_t case_id, fb_case_status_t to) {
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    const char *params[] = {idb, fb_case_status_name(to)};
    return fb_casetx_exec(t, s_status_sql, 2, params);
}

/* The working-day calendar as calendar_days holds it now; *out is the
 * caller's (NULL on failure). */
static int load_calendar(fb_casetx_t *t, fb_calendar_t **out) {
    json_t *days = NULL;
    *out = NULL;
    if (fb_db_query_json(t->db, s_calendar_sql, 0, NULL, &days) != 0)
        return FB_EDB;
    fb_calendar_t *cal = fb_calendar_new();
    int rc = cal ? fb_calendar_load_json(cal, days) : FB_ENOMEM;
    json_decref(days);
    if (rc == FB_EINVAL)
        fb_log(FB_LOG_ERROR, "event=calendar_invalid");
    if (rc)
        fb_calendar_destroy(&cal);
    *out = cal;
    return rc;
}

int fb_casetx_deadlines(fb_casetx_t *t, const char *urgency, const char *kind, int rule_id,
                        char *accept_due, char *reply_due) {
    int hours = 0, workdays = 0, rc = FB_EDB;
    fb_calendar_t *cal = NULL;
    if (rule_id > 0) {
        char rb[16];
        snprintf(rb, sizeof rb, "%d", rule_id);
        const char *params[] = {rb};
        PGresult *r = fb_casetx_query(t, s_rule_sql, 1, params, PGRES_TUPLES_OK);
        if (!r)
            goto fail;
        /* A rule deleted since keeps nothing of its own: the defaults. */
        if (PQntuples(r) == 1) {
            hours = atoi(PQgetvalue(r, 0, 0));
            workdays = atoi(PQgetvalue(r, 0, 1));
        }
        PQclear(r);
    }
    if ((rc = load_calendar(t, &cal)) != 0)
        goto fail;
    int64_t acc, rep;
    fb_deadlines(cal, fb_now_us(), urgency, kind, hours, workdays, &acc, &rep);
    fb_time_format(acc, accept_due, 40);
    fb_time_format(rep, reply_due, 40);
    rc = 0;
fail:
    fb_calendar_destroy(&cal);
    return rc;
}

int fb_casetx_work_hours_due(fb_casetx_t *t, int hours, char *due) {
    fb_calendar_t *cal;
    int rc = load_calendar(t, &cal);
    if (rc == 0)
        fb_time_format(fb_calendar_add_work_hours(cal, fb_now_us(), hours), due, 40);
    fb_calendar_destroy(&cal);
    return rc;
}

int fb_casetx_new_lead(fb_casetx_t *t, int64_t case_id, const char *department, int rule_id,
                       const char *urgency, const char *accept_due, const char *reply_due) {
    char idb[24], rb[16];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    snprintf(rb, sizeof rb, "%d", rule_id);
    const char *params[] = {idb, department, rb, accept_due, reply_due, urgency};
    return fb_casetx_exec(t, s_new_lead_sql, 6, params);
}

int fb_casetx_withdraw_round(fb_casetx_t *t, int64_t case_id) {
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    const char *params[] = {idb};
    return fb_casetx_exec(t, s_withdraw_sql, 1, params);
}

int fb_casetx_reopen(fb_casetx_t *t, fb_case_row_t *row, const char *actor, const char *reason,
                     const char *key, json_t *why) {
    const char *event;
    char acc[40], rep[40];
    if (fb_lifecycle_move(row->status, FB_CASE_REOPEN, FB_CASE_REOPENED, &event) != 0 ||
        !row->department)
        return FB_EINVAL;
    int rc = fb_casetx_deadlines(t, row->urgency, row->kind, row->rule_id, acc, rep);
    if (rc == 0)
        rc = fb_casetx_new_lead(t, row->id, row->department, row->rule_id, NULL, acc, rep);
    if (rc == 0)
        rc = fb_casetx_set_status(t, row->id, FB_CASE_REOPENED);
    if (rc == 0) {
        json_t *data = json_pack("{s:s,s:O,s:s,s:s,s:s}", "reason", reason, key, why, "department",
                                 row->department, "accept_due", acc, "reply_due", rep);
        rc = data ? fb_casetx_event(t, row->id, actor, event, data) : FB_ENOMEM;
        json_decref(data);
    }
    if (rc == 0)
        fb_log(FB_LOG_INFO,
               "event=case_reopened case_id=%" PRId64 " reason=%s department=%s reply_due=%s",
               row->id, reason, row->department, rep);
    return rc;
}

static int close_rated(fb_casetx_t *t, fb_case_row_t *row, const char *actor, json_t *ratings) {
    const char *event;
    if (fb_lifecycle_move(row->status, FB_CASE_CLOSE, FB_CASE_CLOSED, &event) != 0)
        return FB_EINVAL;
    int rc = fb_casetx_set_status(t, row->id, FB_CASE_CLOSED);
    if (rc == 0) {
        json_t *data = json_pack("{s:s,s:O}", "reason", "rated", "ratings", ratings);
        rc = data ? fb_casetx_event(t, row->id, actor, event, data) : FB_ENOMEM;
        json_decref(data);
    }
    if (rc == 0)
        fb_log(FB_LOG_INFO, "event=case_closed case_id=%" PRId64 " reason=rated", row->id);
    return rc;
}

int fb_casetx_settle_ratings(fb_casetx_t *t, fb_case_row_t *row, const char *actor,
                             fb_case_status_t *status) {
    *status = row->status;
    if (row->status != FB_CASE_RATED)
        return 0;
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, row->id);
    const char *params[] = {idb};
    PGresult *r = fb_casetx_query(t, s_round_sql, 1, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    bool unsatisfied = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    bool all_rated = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    long n = atol(PQgetvalue(r, 0, 3));
    json_t *ratings = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
    PQclear(r);
    if (!ratings)
        return FB_ENOMEM;
    int rc = 0;
    if (n > 0 && unsatisfied) {
        rc = fb_casetx_reopen(t, row, actor, "unsatisfied", "ratings", ratings);
        if (rc == 0)
            *status = FB_CASE_REOPENED;
    } else if (n > 0 && all_rated) {
        rc = close_rated(t, row, actor, ratings);
        if (rc == 0)
            *status = FB_CASE_CLOSED;
    }
    json_decref(ratings);
    return rc;
}
