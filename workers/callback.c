/* callback.c — the callback desk (回访): tasks for replied cases, rating
 * requests, and closing what residents never rated. */
#include "callback.h"
#include "api_util.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"
#include "lifecycle.h"
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX     1000

void fb_callback_schedule(const fb_calendar_t *cal, int64_t replied_us, int callback_days,
                          int64_t *due_us, int64_t *expires_us) {
    time_t t = (time_t)(replied_us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    /* Day by day through mktime, which normalises the date and knows the
     * zone's offsets; noon would be safer across a DST change, but the day
     * is what counts and midnight is what the operators' list shows. */
    do {
        tm.tm_mday++;
        tm.tm_isdst = -1;
        time_t next = mktime(&tm);
        localtime_r(&next, &tm);
    } while (!fb_calendar_is_workday(cal, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday));
    tm.tm_isdst = -1;
    *due_us = (int64_t)mktime(&tm) * 1000000;
    *expires_us = fb_calendar_add_workdays(cal, *due_us, callback_days);
}

const char *fb_callback_kind(const char *channel) {
    return channel && strcmp(channel, "hotline") == 0 ? "phone" : "rating_request";
}

/* ---- the sweep's statements ---------------------------------------------- */

/* "the last window_s seconds, or ever" for a timestamptz column: a recent
 * sweep passes $1 (seconds), a full one NULL. */
#define SQL_SINCE(col) col " > now() - coalesce(make_interval(secs => $1::float8), '100 years')"

/* A rating that arrived since the reply finishes its petition's task. A
 * second worker's UPDATE waits on the row, sees done_at set, and updates
 * nothing. $1 window, $2 cursor (task id), $3 batch. */
static const char s_rated_sql[] =
    "WITH x AS (SELECT t.id, r.rated_at, r.source FROM ratings r"
    " JOIN callback_tasks t ON t.petition_id = r.petition_id AND t.done_at IS NULL"
    " JOIN case_events e ON e.id = t.replied_event_id"
    " WHERE " SQL_SINCE(
        "r.rated_at") " AND r.rated_at >= e.at AND t.id > $2::bigint"
                      " ORDER BY t.id LIMIT $3::int),"
                      " u AS (UPDATE callback_tasks t SET done_at = x.rated_at, outcome = 'rated',"
                      "  done_by = x.source FROM x WHERE t.id = x.id AND t.done_at IS NULL "
                      "RETURNING t.id)"
                      " SELECT x.id, 0, u.id IS NOT NULL FROM x LEFT JOIN u ON u.id = x.id ORDER "
                      "BY x.id";

/* Tasks whose round is over without this petition's rating: the case was
 * closed (another petitioner rated, the desk closed it), or reopened and
 * replied to again. $1 the statuses in which a rating is still taken, $2
 * cursor (task id), $3 batch. Full sweeps only: nothing waits on it. */
static const char s_superseded_sql[] =
    "WITH x AS (SELECT t.id, c.status FROM callback_tasks t JOIN cases c ON c.id = t.case_id"
    " WHERE t.done_at IS NULL AND t.id > $2::bigint"
    " AND (c.status <> ALL($1::text[]) OR t.replied_event_id <> (SELECT max(e.id)"
    "  FROM case_events e WHERE e.case_id = t.case_id AND e.type = 'replied'))"
    " ORDER BY t.id LIMIT $3::int),"
    " u AS (UPDATE callback_tasks t SET done_at = now(), done_by = 'fenbo-worker',"
    "  outcome = CASE WHEN x.status = 'closed' THEN 'closed' ELSE 'superseded' END"
    " FROM x WHERE t.id = x.id AND t.done_at IS NULL RETURNING t.id)"
    " SELECT x.id, 0, u.id IS NOT NULL FROM x LEFT JOIN u ON u.id = x.id ORDER BY x.id";

/* The petitions of replied cases without a task for the case's latest
 * reply, after the cursor (case id, petition id): those replied within the
 * window (a recent sweep, from the replies), or all (a full one, from the
 * replied cases). $1 window, $2 the replied status, $3 batch, $4 $5 cursor. */
#define SQL_UNSCHEDULED_WHERE                                                                      \
    " AND (c.id, p.id) > ($4::bigint, $5::bigint)"                                                 \
    " AND NOT EXISTS (SELECT 1 FROM callback_tasks t"                                              \
    "  WHERE t.petition_id = p.id AND t.replied_event_id = e.id)" /* a "resolved" the grid has not \
                                                                     verified yet waits for it     \
                                                                     (核查) */                   \
    " AND NOT EXISTS (SELECT 1 FROM verification_tasks v"                                          \
    "  WHERE v.case_id = c.id AND v.outcome IS NULL)"                                              \
    " ORDER BY c.id, p.id LIMIT $3::int"
static const char s_unscheduled_recent_sql[] =
    "SELECT c.id, p.id, e.id, (extract(epoch FROM e.at) * 1000000)::bigint, p.channel"
    " FROM case_events e JOIN cases c ON c.id = e.case_id JOIN petitions p ON p.case_id = c.id"
    " WHERE e.type = 'replied' AND " SQL_SINCE(
        "e.at") " AND c.status = $2"
                " AND e.id = (SELECT max(x.id) FROM case_events x"
                "  WHERE x.case_id = c.id AND x.type = 'replied')" SQL_UNSCHEDULED_WHERE;
static const char s_unscheduled_all_sql[] =
    "SELECT c.id, p.id, e.id, (extract(epoch FROM e.at) * 1000000)::bigint, p.channel"
    " FROM cases c"
    " CROSS JOIN LATERAL (SELECT x.id, x.at FROM case_events x"
    "  WHERE x.case_id = c.id AND x.type = 'replied' ORDER BY x.id DESC LIMIT 1) e"
    " JOIN petitions p ON p.case_id = c.id"
    " WHERE c.status = $2 AND $1::float8 IS NULL" SQL_UNSCHEDULED_WHERE;

/* Creates the tasks ($1: JSON rows computed here with the calendar); a
 * task another worker created meanwhile is a conflict and creates nothing,
 * and only the tasks created get their event. */
static const char s_schedule_sql[] =
    "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(case_id bigint,"
    "  petition_id bigint, replied_event_id bigint, kind text, due_at timestamptz,"
    "  expires_at timestamptz)),"
    " ins AS (INSERT INTO callback_tasks (case_id, petition_id, replied_event_id, channel, kind,"
    "  due_at, expires_at)"
    " SELECT x.case_id, x.petition_id, x.replied_event_id, p.channel, x.kind, x.due_at,"
    "  x.expires_at FROM x JOIN petitions p ON p.id = x.petition_id"
    " ON CONFLICT (petition_id, replied_event_id) DO NOTHING"
    " RETURNING id, case_id, petition_id, kind, due_at, expires_at),"
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT ins.case_id, 'fenbo-worker', 'callback_scheduled', jsonb_build_object("
    "  'task_id', ins.id, 'petition_id', ins.petition_id, 'tracking_no', p.tracking_no,"
    "  'kind', ins.kind, 'due_at', ins.due_at, 'expires_at', ins.expires_at)"
    " FROM ins JOIN petitions p ON p.id = ins.petition_id WHERE ins.kind = 'phone'"
    " ORDER BY ins.case_id, ins.id RETURNING id)"
    " SELECT count(*) FROM ins";

/* Issues the rating requests that fell due (and have not expired: a worker
 * back after days does not ask for a rating it is about to close as not
 * given). Issued ones leave the candidates, so no cursor. $1 batch. */
static const char s_request_sql[] =
    "WITH t AS (SELECT t.id FROM callback_tasks t"
    " WHERE t.done_at IS NULL AND t.kind = 'rating_request' AND t.sent_at IS NULL"
    " AND t.due_at <= now() AND t.expires_at > now()"
    " ORDER BY t.due_at, t.id LIMIT $1::int FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE callback_tasks c SET sent_at = now() FROM t WHERE c.id = t.id"
    " RETURNING c.id, c.case_id, c.petition_id, c.channel, c.expires_at),"
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT u.case_id, 'fenbo-worker', 'rating_requested', jsonb_build_object("
    "  'task_id', u.id, 'petition_id', u.petition_id, 'tracking_no', p.tracking_no,"
    "  'channel', u.channel, 'expires_at', u.expires_at)"
    " FROM u JOIN petitions p ON p.id = u.petition_id ORDER BY u.case_id, u.id RETURNING id)"
    " SELECT u.id, 0, true FROM u ORDER BY u.id";

/* Closes, as not rated, the replied cases with an expired task of their
 * latest reply, after the cursor (case id). $1 the status closing is
 * allowed from, $2 the status it leads to (both from the lifecycle table),
 * $3 batch, $4 callback_days (for the record), $5 cursor. The case row is
 * locked and its status re-checked under the lock, so a rating that moved it
 * to 'rated' a moment ago wins. */
static const char s_close_sql[] =
    "WITH todo AS (SELECT c.id, e.id AS replied_event_id FROM cases c"
    " CROSS JOIN LATERAL (SELECT x.id FROM case_events x"
    "  WHERE x.case_id = c.id AND x.type = 'replied' ORDER BY x.id DESC LIMIT 1) e"
    " WHERE c.id IN (SELECT t.case_id FROM callback_tasks t"
    "  WHERE t.done_at IS NULL AND t.expires_at <= now() AND t.case_id > $5::bigint)"
    " AND c.status = $1 AND EXISTS (SELECT 1 FROM callback_tasks t"
    "  WHERE t.case_id = c.id AND t.replied_event_id = e.id AND t.expires_at <= now())"
    " ORDER BY c.id LIMIT $3::int FOR UPDATE OF c SKIP LOCKED),"
    " up AS (UPDATE cases c SET status = $2, updated_at = now() FROM todo"
    " WHERE c.id = todo.id AND c.status = $1 RETURNING c.id),"
    " tk AS (UPDATE callback_tasks t SET done_at = now(), outcome = 'not_rated',"
    "  done_by = 'fenbo-worker'"
    " FROM up WHERE t.case_id = up.id AND t.done_at IS NULL RETURNING t.id),"
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT todo.id, 'fenbo-worker', 'closed', jsonb_build_object('reason', 'not_rated',"
    "  'replied_event_id', todo.replied_event_id, 'callback_days', $4::int)"
    " FROM todo JOIN up ON up.id = todo.id ORDER BY todo.id RETURNING case_id)"
    " SELECT todo.id, 0, up.id IS NOT NULL FROM todo LEFT JOIN up ON up.id = todo.id"
    " ORDER BY todo.id";

/* ---- the sweep ----------------------------------------------------------- */

static const char *const s_step_names[FB_CALLBACK_STEP_COUNT] = {
    [FB_CALLBACK_RATED] = "rated",       [FB_CALLBACK_SUPERSEDED] = "superseded",
    [FB_CALLBACK_SCHEDULE] = "schedule", [FB_CALLBACK_REQUEST] = "request",
    [FB_CALLBACK_CLOSE] = "close",
};

const char *fb_callback_step_name(fb_callback_step_t step) {
    return (unsigned)step < FB_CALLBACK_STEP_COUNT ? s_step_names[step] : NULL;
}

static PGresult *run(PGconn *db, fb_callback_step_t step, const char *sql, int n,
                     const char *const *params) {
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    fb_log(FB_LOG_WARN, "event=db_error op=callback_%s error=\"%s\"", fb_callback_step_name(step),
           fb_db_error(db));
    PQclear(r);
    return NULL;
}

/* Reads the rows (id, id2, done) of a step: counts, logs the cases closed,
 * and moves the cursor to the last row. */
static void read_rows(PGresult *r, fb_callback_step_t step, int callback_days,
                      fb_callback_cursor_t *cur, int *scanned, int *done) {
    *scanned = PQntuples(r);
    for (int i = 0; i < *scanned; i++) {
        if (strcmp(PQgetvalue(r, i, 2), "t") != 0)
            continue;
        (*done)++;
        if (step == FB_CALLBACK_CLOSE)
            fb_log(FB_LOG_INFO, "event=closed_not_rated case_id=%s callback_days=%d",
                   PQgetvalue(r, i, 0), callback_days);
    }
    if (*scanned > 0) {
        cur->a = strtoll(PQgetvalue(r, *scanned - 1, 0), NULL, 10);
        cur->b = strtoll(PQgetvalue(r, *scanned - 1, 1), NULL, 10);
    }
}

/* Finds a batch of replied petitions without their task, computes each
 * task's due and expiry on the calendar, and creates them. */
static int schedule_batch(PGconn *db, const fb_calendar_t *cal, int callback_days, const char *win,
                          const char *lim, fb_callback_cursor_t *cur, int *scanned, int *done) {
    char ca[24], cb[24];
    snprintf(ca, sizeof ca, "%" PRId64, cur->a);
    snprintf(cb, sizeof cb, "%" PRId64, cur->b);
    const char *params[] = {win, fb_case_status_name(FB_CASE_REPLIED), lim, ca, cb};
    PGresult *r = run(db, FB_CALLBACK_SCHEDULE,
                      win ? s_unscheduled_recent_sql : s_unscheduled_all_sql, 5, params);
    if (!r)
        return FB_EDB;
    *scanned = PQntuples(r);
    if (*scanned == 0) {
        PQclear(r);
        return 0;
    }
    json_t *rows = json_array();
    for (int i = 0; i < *scanned; i++) {
        int64_t replied_us = strtoll(PQgetvalue(r, i, 3), NULL, 10), due, expires;
        char due_s[40], exp_s[40];
        fb_callback_schedule(cal, replied_us, callback_days, &due, &expires);
        json_array_append_new(
            rows, json_pack("{s:I,s:I,s:I,s:s,s:s,s:s}", "case_id",
                            (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10), "petition_id",
                            (json_int_t)strtoll(PQgetvalue(r, i, 1), NULL, 10), "replied_event_id",
                            (json_int_t)strtoll(PQgetvalue(r, i, 2), NULL, 10), "kind",
                            fb_callback_kind(PQgetvalue(r, i, 4)), "due_at",
                            fb_time_format(due, due_s, sizeof due_s), "expires_at",
                            fb_time_format(expires, exp_s, sizeof exp_s)));
    }
    cur->a = strtoll(PQgetvalue(r, *scanned - 1, 0), NULL, 10);
    cur->b = strtoll(PQgetvalue(r, *scanned - 1, 1), NULL, 10);
    PQclear(r);
    char *text = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    if (!text)
        return FB_ENOMEM;
    const char *ins_params[] = {text};
    r = run(db, FB_CALLBACK_SCHEDULE, s_schedule_sql, 1, ins_params);
    free(text);
    if (!r)
        return FB_EDB;
    *done = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (*done > 0)
        fb_log(FB_LOG_INFO, "event=callbacks_scheduled tasks=%d", *done);
    return 0;
}

int fb_callback_batch(PGconn *db, const fb_calendar_t *cal, int callback_days,
                      fb_callback_step_t step, double window_s, int batch,
                      fb_callback_cursor_t *cur, int *scanned, int *done) {
    *scanned = *done = 0;
    char win[32], lim[16], days[16], ca[24], open_st[64];
    snprintf(win, sizeof win, "%.3f", window_s);
    snprintf(lim, sizeof lim, "%d", batch);
    snprintf(days, sizeof days, "%d", callback_days);
    snprintf(ca, sizeof ca, "%" PRId64, cur->a);
    snprintf(open_st, sizeof open_st, "{%s,%s}", fb_case_status_name(FB_CASE_REPLIED),
             fb_case_status_name(FB_CASE_RATED));
    const char *w = window_s >= 0 ? win : NULL;
    PGresult *r = NULL;
    switch (step) {
    case FB_CALLBACK_RATED: {
        const char *params[] = {w, ca, lim};
        r = run(db, step, s_rated_sql, 3, params);
        break;
    }
    case FB_CALLBACK_SUPERSEDED: {
        if (w)
            return 0;
        const char *params[] = {open_st, ca, lim};
        r = run(db, step, s_superseded_sql, 3, params);
        break;
    }
    case FB_CALLBACK_SCHEDULE:
        return schedule_batch(db, cal, callback_days, w, lim, cur, scanned, done);
    case FB_CALLBACK_REQUEST: {
        const char *params[] = {lim};
        r = run(db, step, s_request_sql, 1, params);
        break;
    }
    case FB_CALLBACK_CLOSE: {
        /* Closing goes by the lifecycle table like every other move. */
        fb_case_status_t closed;
        if (fb_lifecycle_next(FB_CASE_REPLIED, FB_CASE_CLOSE, &closed) != 0)
            return 0;
        const char *params[] = {fb_case_status_name(FB_CASE_REPLIED), fb_case_status_name(closed),
                                lim, days, ca};
        r = run(db, step, s_close_sql, 5, params);
        break;
    }
    default:
        return FB_EINVAL;
    }
    if (!r)
        return FB_EDB;
    read_rows(r, step, callback_days, cur, scanned, done);
    PQclear(r);
    return 0;
}

/* ---- GET /api/v1/callbacks ----------------------------------------------- */

/*   $1 kind   $2 include tasks not due yet   $3 the statuses whose tasks are
 *   open   $4 the caller's department (scope)   $5 limit */
static const char s_list_sql[] =
    "WITH page AS (SELECT t.* FROM callback_tasks t JOIN cases c ON c.id = t.case_id"
    " WHERE t.done_at IS NULL AND t.kind = $1 AND ($2::boolean OR t.due_at <= now())"
    " AND c.status = ANY($3::text[])"
    " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM assignments sa"
    "  WHERE sa.case_id = c.id AND sa.department_code = $4::text))"
    " ORDER BY t.due_at, t.id LIMIT $5::int)"
    " SELECT json_build_object('now', now(), 'callbacks', coalesce(json_agg(json_build_object("
    "  'task_id', t.id, 'kind', t.kind, 'case_id', t.case_id, 'case_status', c.status,"
    "  'petition_id', t.petition_id, 'tracking_no', p.tracking_no, 'channel', t.channel,"
    "  'created_at', t.created_at, 'due_at', t.due_at, 'expires_at', t.expires_at,"
    "  'sent_at', t.sent_at, 'attempts', t.attempts,"
    "  'caller', json_build_object('name', p.caller_name, 'phone', p.caller_phone),"
    "  'wants_callback', p.callback, 'content', p.content, 'category', p.category,"
    "  'department', c.department_code, 'department_name', d.name,"
    "  'reply', json_build_object('at', e.at, 'result', e.data->>'result',"
    "   'resolved', e.data->'resolved'))"
    "  ORDER BY t.due_at, t.id), '[]'::json))"
    " FROM page t JOIN cases c ON c.id = t.case_id JOIN petitions p ON p.id = t.petition_id"
    " JOIN case_events e ON e.id = t.replied_event_id"
    " LEFT JOIN departments d ON d.code = c.department_code";

void fb_callback_api_list(fb_worker_t *w, fb_http_req_t *req, const char *role,
                          const char *department) {
    const char *kind = fb_http_query(req, "kind");
    long long limit;
    int all;
    if (!kind || !*kind)
        kind = "phone";
    if (strcmp(kind, "phone") != 0 && strcmp(kind, "rating_request") != 0) {
        fb_http_error(req, 400, "invalid", "kind", "kind must be phone or rating_request");
        return;
    }
    if (!fb_api_query_int(req, "limit", 1, LIST_LIMIT_MAX, LIST_LIMIT_DEFAULT, &limit) ||
        !fb_api_query_bool(req, "all", &all))
        return;
    char lim[24], open_st[64];
    snprintf(lim, sizeof lim, "%lld", limit);
    snprintf(open_st, sizeof open_st, "{%s,%s}", fb_case_status_name(FB_CASE_REPLIED),
             fb_case_status_name(FB_CASE_RATED));
    const char *params[] = {kind, all == 1 ? "true" : "false", open_st, department, lim};
    json_t *out;
    if (fb_api_query_json(w, req, s_list_sql, 5, params, &out) != 0)
        return;
    /* The desk calls the residents back; everyone else sees them masked. */
    bool sees_caller = role && (strcmp(role, "operator") == 0 || strcmp(role, "admin") == 0);
    if (!sees_caller) {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(out, "callbacks"), i, t) {
            json_t *caller = json_object_get(t, "caller");
            fb_api_mask_text(t, "content");
            const char *name = json_string_value(json_object_get(caller, "name"));
            const char *phone = json_string_value(json_object_get(caller, "phone"));
            char buf[32];
            if (name)
                json_object_set_new(caller, "name",
                                    json_string(fb_api_mask_name(name, buf, sizeof buf)));
            if (phone)
                json_object_set_new(caller, "phone",
                                    json_string(fb_mask_phone(phone, buf, sizeof buf)));
        }
    }
    fb_http_respond_json(req, 200, out);
}
