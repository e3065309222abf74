/* actions.c — the case API's actions (see actions.h), each one transaction
 * around one move of the lifecycle table. */
#include "actions.h"
#include "case_sql.h"
#include "casetx.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_rule.h"
#include "fb_db.h"
#include "fb_time.h"
#include "teach.h"
#include "worker.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX    4000 /* bytes of a free-text field */
#define ASSISTS_MAX 20   /* departments in one assist request */

/* ---- request bodies ------------------------------------------------------ */

typedef enum {
    F_NOTE,         /* optional free text (null: absent) */
    F_TEXT,         /* free text with something in it */
    F_BOOL,         /* true or false */
    F_TIME,         /* RFC 3339 */
    F_CODE,         /* a department code */
    F_CODES,        /* a list of department codes */
    F_SATISFACTION, /* satisfied | basically_satisfied | unsatisfied */
    F_CATEGORY,     /* a category code */
} s_ftype_t;

typedef struct {
    const char *name;
    s_ftype_t type;
    bool required;
} s_field_t;

#define FIELDS_MAX 5

static const struct {
    const char *path; /* after /api/v1/cases/{id}/ */
    s_field_t fields[FIELDS_MAX];
} s_specs[FB_CASE_ACTION_COUNT] = {
    [FB_CASE_ACCEPT] = {"accept", {{"note", F_NOTE, false}}},
    [FB_CASE_RETURN] = {"return", {{"reason", F_TEXT, true}}},
    [FB_CASE_APPROVE_RETURN] = {"return/approve", {{"note", F_NOTE, false}}},
    [FB_CASE_REJECT_RETURN] = {"return/reject", {{"note", F_NOTE, false}}},
    [FB_CASE_ASSIGN] = {"assign",
                        {{"department", F_CODE, true},
                         {"note", F_NOTE, false},
                         {"category", F_CATEGORY, false}}},
    [FB_CASE_ASSIST] = {"assist", {{"departments", F_CODES, true}, {"note", F_NOTE, false}}},
    [FB_CASE_EXTEND] = {"extend", {{"until", F_TIME, true}, {"reason", F_TEXT, true}}},
    [FB_CASE_APPROVE_EXTENSION] = {"extend/approve", {{"note", F_NOTE, false}}},
    [FB_CASE_REJECT_EXTENSION] = {"extend/reject", {{"note", F_NOTE, false}}},
    [FB_CASE_REPLY] = {"reply", {{"result", F_TEXT, true}, {"resolved", F_BOOL, true}}},
    [FB_CASE_CALLBACK] = {"callback",
                          {{"reached", F_BOOL, true},
                           {"resolved", F_BOOL, false},
                           {"satisfaction", F_SATISFACTION, false},
                           {"comment", F_NOTE, false},
                           {"tracking_no", F_NOTE, false}}},
    [FB_CASE_CLOSE] = {"close", {{"reason", F_NOTE, false}}},
    /* rate (intake) and reopen (the ratings job) have no path here. */
};

int fb_actions_from_path(const char *path, fb_case_action_t *out) {
    static const char prefix[] = "/api/v1/cases/";
    if (!path || strncmp(path, prefix, sizeof prefix - 1) != 0)
        return FB_EINVAL;
    const char *p = path + sizeof prefix - 1;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || p[digits] != '/')
        return FB_EINVAL;
    p += digits + 1;
    for (int a = 0; a < FB_CASE_ACTION_COUNT; a++) {
        if (s_specs[a].path && strcmp(p, s_specs[a].path) == 0) {
            *out = (fb_case_action_t)a;
            return 0;
        }
    }
    return FB_EINVAL;
}

json_t *fb_actions_allowed_json(fb_case_status_t status, const char *role) {
    unsigned by = 0;
    if (role && strcmp(role, "department") == 0)
        by = FB_BY_DEPARTMENT;
    else if (role && strcmp(role, "operator") == 0)
        by = FB_BY_OPERATOR;
    else if (role && strcmp(role, "admin") == 0)
        by = FB_BY_DEPARTMENT | FB_BY_OPERATOR;
    fb_case_action_t acts[FB_CASE_ACTION_COUNT];
    size_t n = fb_lifecycle_actions(status, by, acts, FB_ARRAY_LEN(acts));
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(fb_case_action_name(acts[i])));
    return arr;
}

/* One action on its way through. */
typedef struct {
    fb_worker_t *w;
    fb_http_req_t *req;
    const fb_actor_t *who;
    fb_case_action_t action;
    fb_casetx_t t;
    fb_case_row_t row;
    json_t *data; /* the request's fields, then what the move decided: the event's data */
    char id[24];
} s_act_t;

static void refuse(s_act_t *a, unsigned status, const char *code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void refuse(s_act_t *a, unsigned status, const char *code, const char *field,
                   const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!fb_http_answered(a->req))
        fb_http_error(a->req, status, code, field, "%s", msg);
}

/* A failed statement: 503 when the connection is gone or the case is busy
 * (the client may retry), 500 for anything else. */
static void db_fail(s_act_t *a) {
    static const char *const retry[] = {"55P03", "57014", "40001", "40P01"};
    if (!fb_dblink_conn(a->w->db) || fb_dblink_check(a->w->db)) {
        refuse(a, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
        return;
    }
    for (size_t i = 0; i < FB_ARRAY_LEN(retry); i++) {
        if (strcmp(a->t.sqlstate, retry[i]) == 0) {
            refuse(a, 503, "busy", NULL, "the case is busy; try again");
            return;
        }
    }
    refuse(a, 500, "internal", NULL, "database error");
}

static bool is_code(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Checks one field; answers 422 naming it and returns false when wrong. */
static bool field_ok(s_act_t *a, const s_field_t *f, json_t *v) {
    const char *s = json_string_value(v);
    switch (f->type) {
    case F_NOTE:
        if (json_is_null(v) || (s && json_string_length(v) <= TEXT_MAX))
            return true;
        refuse(a, 422, "invalid_field", f->name, "%s must be a string of at most %d bytes", f->name,
               TEXT_MAX);
        return false;
    case F_TEXT:
        if (s && s[strspn(s, " \t\r\n")] != '\0' && json_string_length(v) <= TEXT_MAX)
            return true;
        refuse(a, 422, "invalid_field", f->name,
               "%s must be a non-empty string of at most %d bytes", f->name, TEXT_MAX);
        return false;
    case F_BOOL:
        if (json_is_boolean(v))
            return true;
        refuse(a, 422, "invalid_field", f->name, "%s must be true or false", f->name);
        return false;
    case F_TIME: {
        int64_t us;
        if (s && fb_time_parse(s, &us) == 0)
            return true;
        refuse(a, 422, "invalid_field", f->name,
               "%s must be a time in RFC 3339, e.g. 2026-11-30T18:00:00+08:00", f->name);
        return false;
    }
    case F_CODE:
        if (is_code(s))
            return true;
        refuse(a, 422, "invalid_field", f->name, "%s must be a department code", f->name);
        return false;
    case F_CODES: {
        size_t n = json_array_size(v);
        if (!json_is_array(v) || n == 0 || n > ASSISTS_MAX) {
            refuse(a, 422, "invalid_field", f->name,
                   "%s must be a list of 1 to %d department codes", f->name, ASSISTS_MAX);
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            const char *code = json_string_value(json_array_get(v, i));
            if (!is_code(code)) {
                refuse(a, 422, "invalid_field", f->name, "%s[%zu] is not a department code",
                       f->name, i);
                return false;
            }
            for (size_t j = 0; j < i; j++) {
                if (strcmp(code, json_string_value(json_array_get(v, j))) == 0) {
                    refuse(a, 422, "invalid_field", f->name, "%s names %s twice", f->name, code);
                    return false;
                }
            }
        }
        return true;
    }
    case F_SATISFACTION:
        if (s && (strcmp(s, "satisfied") == 0 || strcmp(s, "basically_satisfied") == 0 ||
                  strcmp(s, "unsatisfied") == 0))
            return true;
        refuse(a, 422, "invalid_field", f->name,
               "%s must be satisfied, basically_satisfied or unsatisfied", f->name);
        return false;
    case F_CATEGORY:
        if (is_code(s))
            return true;
        refuse(a, 422, "invalid_field", f->name, "%s must be a category code", f->name);
        return false;
    }
    return false;
}

/* Reads the body into a->data: only the action's fields, each checked, so
 * that bad input is refused before anything changes. An empty body is {}.
 * Answers (400, 422) and returns false when the body is wrong. */
static bool read_body(s_act_t *a) {
    size_t len;
    const char *body = fb_http_body(a->req, &len);
    json_t *in;
    if (len == 0) {
        in = json_object();
    } else {
        json_error_t e;
        in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!in) {
            refuse(a, 400, "bad_json", NULL, "malformed JSON at line %d column %d: %s", e.line,
                   e.column, e.text);
            return false;
        }
    }
    if (!json_is_object(in)) {
        json_decref(in);
        refuse(a, 400, "bad_json", NULL, "the body must be a JSON object");
        return false;
    }
    const s_field_t *fields = s_specs[a->action].fields;
    a->data = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        const s_field_t *f = NULL;
        for (int i = 0; i < FIELDS_MAX && fields[i].name; i++)
            if (strcmp(key, fields[i].name) == 0)
                f = &fields[i];
        if (!f) {
            refuse(a, 422, "unknown_field", key, "unknown field '%.64s'", key);
            goto fail;
        }
        if (!field_ok(a, f, v))
            goto fail;
        if (!json_is_null(v))
            json_object_set(a->data, key, v);
    }
    for (int i = 0; i < FIELDS_MAX && fields[i].name; i++) {
        if (fields[i].required && !json_object_get(a->data, fields[i].name)) {
            refuse(a, 422, "missing_field", fields[i].name, "%s is required", fields[i].name);
            goto fail;
        }
    }
    json_decref(in);
    return true;
fail:
    json_decref(in);
    json_decref(a->data);
    a->data = NULL;
    return false;
}

static const char *data_str(s_act_t *a, const char *key) {
    return json_string_value(json_object_get(a->data, key));
}

/* ---- SQL ----------------------------------------------------------------- */

/* The current lead assignment of the case's department. */
#define SQL_LEAD_ID                                                                                \
    "(SELECT max(id) FROM assignments WHERE case_id = $1::bigint AND role = 'lead'"                \
    " AND department_code = (SELECT department_code FROM cases WHERE id = $1::bigint)"             \
    " AND withdrawn_at IS NULL)"

static const char s_stamp_accept_sql[] =
    "UPDATE assignments SET accepted_at = coalesce(accepted_at, now()) WHERE id = " SQL_LEAD_ID;
static const char s_stamp_reply_sql[] = "UPDATE assignments SET replied_at = now()"
                                        " WHERE id = " SQL_LEAD_ID;

static const char s_return_sql[] =
    "INSERT INTO case_returns (case_id, assignment_id, department_code, reason, requested_by)"
    " SELECT $1::bigint, " SQL_LEAD_ID ", c.department_code, $2, $3"
    " FROM cases c WHERE c.id = $1::bigint RETURNING id";

/* Decides the pending return: $2 approved|rejected. */
static const char s_decide_return_sql[] =
    "UPDATE case_returns SET status = $2, decided_by = $3, decided_at = now(), note = $4"
    " WHERE case_id = $1::bigint AND status = 'pending' RETURNING id, department_code";

static const char s_excluded_sql[] =
    "SELECT coalesce(json_agg(DISTINCT department_code), '[]'::json) FROM case_returns"
    " WHERE case_id = $1::bigint AND status = 'approved'";

/* What the matcher looks at: the case's category and region, its first
 * petition's channel, text, time of reception and urgency (as it came in:
 * the case's may have been raised by the rule that dispatched it first). */
static const char s_route_input_sql[] =
    "SELECT p.channel, p.content_norm, c.category, c.region_code,"
    " (extract(epoch FROM p.received_at) * 1000000)::bigint, coalesce(p.urgency, c.urgency)"
    " FROM cases c LEFT JOIN LATERAL (SELECT * FROM petitions q WHERE q.case_id = c.id"
    "  ORDER BY q.id LIMIT 1) p ON true WHERE c.id = $1::bigint";

static const char s_to_manual_sql[] =
    "UPDATE cases SET department_code = NULL, rule_id = NULL, accept_due = NULL,"
    " reply_due = NULL, updated_at = now() WHERE id = $1::bigint";

static const char s_rule_assists_sql[] =
    "INSERT INTO assignments (case_id, department_code, role, rule_id, accept_due, reply_due)"
    " SELECT $1::bigint, d.code, 'assist', nullif($3::integer, 0), $4::timestamptz,"
    "  $5::timestamptz FROM json_array_elements_text($2::json) AS d(code)"
    " WHERE EXISTS (SELECT 1 FROM departments x WHERE x.code = d.code)";

static const char s_department_sql[] = "SELECT active FROM departments WHERE code = $1";

/* The first of $2 that is no active department. */
static const char s_unknown_dept_sql[] =
    "SELECT d.code FROM json_array_elements_text($1::json) AS d(code)"
    " WHERE NOT EXISTS (SELECT 1 FROM departments x WHERE x.code = d.code AND x.active)"
    " LIMIT 1";

static const char s_assisting_sql[] =
    "SELECT department_code FROM assignments WHERE case_id = $1::bigint AND role = 'assist'"
    " AND withdrawn_at IS NULL AND replied_at IS NULL"
    " AND department_code IN (SELECT json_array_elements_text($2::json)) LIMIT 1";

/* Parts are due by the case's own reply deadline. */
static const char s_add_assists_sql[] =
    "INSERT INTO assignments (case_id, department_code, role, rule_id, accept_due, reply_due)"
    " SELECT c.id, d.code, 'assist', c.rule_id, least($3::timestamptz, c.reply_due), c.reply_due"
    " FROM cases c CROSS JOIN json_array_elements_text($2::json) AS d(code)"
    " WHERE c.id = $1::bigint";

static const char s_extend_check_sql[] =
    "SELECT c.reply_due IS NULL, c.reply_due <= now(), $2::timestamptz <= c.reply_due,"
    " EXISTS (SELECT 1 FROM extensions x WHERE x.case_id = c.id AND x.status = 'pending'),"
    " c.reply_due FROM cases c WHERE c.id = $1::bigint";

static const char s_extend_sql[] =
    "INSERT INTO extensions (case_id, assignment_id, department_code, reason, previous_due,"
    " until, requested_by)"
    " SELECT c.id, " SQL_LEAD_ID ", c.department_code, $3, c.reply_due, $2::timestamptz, $4"
    " FROM cases c WHERE c.id = $1::bigint RETURNING id, previous_due, until";

static const char s_decide_extension_sql[] =
    "UPDATE extensions SET status = $2, decided_by = $3, decided_at = now(), note = $4"
    " WHERE case_id = $1::bigint AND status = 'pending' RETURNING id, until, previous_due";

static const char s_move_due_sql[] =
    "WITH a AS (UPDATE assignments SET reply_due = $2::timestamptz WHERE id = " SQL_LEAD_ID
    " RETURNING id)"
    " UPDATE cases SET reply_due = $2::timestamptz, updated_at = now() WHERE id = $1::bigint";

static const char s_open_assists_sql[] =
    "SELECT coalesce(json_agg(department_code ORDER BY id), '[]'::json), count(*)"
    " FROM assignments WHERE case_id = $1::bigint AND role = 'assist'"
    " AND withdrawn_at IS NULL AND replied_at IS NULL";

static const char s_withdraw_assists_sql[] =
    "UPDATE assignments SET withdrawn_at = now() WHERE case_id = $1::bigint AND role = 'assist'"
    " AND withdrawn_at IS NULL AND replied_at IS NULL";

static const char s_withdraw_extension_sql[] =
    "UPDATE extensions SET status = 'withdrawn', decided_by = $2, decided_at = now(),"
    " note = 'the case was replied' WHERE case_id = $1::bigint AND status = 'pending'";

/* The department's open part of the case: the latest not withdrawn, one
 * still to be replied before one that is done. */
static const char s_part_sql[] =
    "SELECT id, accepted_at IS NOT NULL, replied_at IS NOT NULL FROM assignments"
    " WHERE case_id = $1::bigint AND department_code = $2 AND role = 'assist'"
    " AND withdrawn_at IS NULL ORDER BY (replied_at IS NULL) DESC, id DESC LIMIT 1";

static const char s_part_accept_sql[] =
    "WITH u AS (UPDATE assignments SET accepted_at = now() WHERE id = $2::bigint RETURNING id)"
    " UPDATE cases SET updated_at = now() WHERE id = $1::bigint";
static const char s_part_reply_sql[] =
    "WITH u AS (UPDATE assignments SET replied_at = now() WHERE id = $2::bigint RETURNING id)"
    " UPDATE cases SET updated_at = now() WHERE id = $1::bigint";

/* The petition an operator called back: the one named, else one with an
 * open phone task, else one not rated yet, else the first. */
static const char s_callee_sql[] =
    "SELECT p.id, p.tracking_no FROM petitions p WHERE p.case_id = $1::bigint"
    " AND ($2::text IS NULL OR p.tracking_no = $2::text)"
    " ORDER BY EXISTS (SELECT 1 FROM callback_tasks t WHERE t.petition_id = p.id"
    "   AND t.done_at IS NULL AND t.kind = 'phone') DESC,"
    "  NOT EXISTS (SELECT 1 FROM ratings r WHERE r.petition_id = p.id) DESC, p.id LIMIT 1";

/* A resident rates once (ratings_petition_idx): a later round's rating by
 * phone is kept without the petition link. */
static const char s_callback_rating_sql[] =
    "INSERT INTO ratings (case_id, petition_id, resolved, satisfaction, comment, source,"
    " processed_at) SELECT $1::bigint, CASE WHEN EXISTS (SELECT 1 FROM ratings r"
    "  WHERE r.petition_id = $2::bigint) THEN NULL ELSE $2::bigint END, $3::boolean, $4,"
    " $5, 'callback', now() RETURNING id";

/* The callback desk's attempt on the petition's open task ($3: reached). */
static const char s_callback_task_sql[] =
    "UPDATE callback_tasks SET attempts = attempts + 1, note = coalesce($5, note),"
    " done_at = CASE WHEN $3::boolean THEN now() END,"
    " done_by = CASE WHEN $3::boolean THEN $4 END,"
    " outcome = CASE WHEN $3::boolean THEN 'rated' END"
    " WHERE id = (SELECT max(id) FROM callback_tasks WHERE case_id = $1::bigint"
    "  AND petition_id = $2::bigint AND done_at IS NULL)";

static const char s_summary_sql[] =
    "SELECT " SQL_CASE_SUMMARY " FROM cases c WHERE c.id = $1::bigint";

/* ---- moves --------------------------------------------------------------- */

/* Each returns 0 when the move is written, FB_EINVAL when it answered a
 * refusal, another code (FB_EDB…) when a statement failed. */

static int exec1(s_act_t *a, const char *sql) {
    const char *params[] = {a->id};
    return fb_casetx_exec(&a->t, sql, 1, params);
}

/* Writes the status and the event of the move (from, action, to). */
static int finish(s_act_t *a, fb_case_status_t to) {
    const char *event;
    if (fb_lifecycle_move(a->row.status, a->action, to, &event) != 0) {
        fb_log(FB_LOG_ERROR, "event=lifecycle_bug case_id=%s action=%s to=%s", a->id,
               fb_case_action_name(a->action), fb_case_status_name(to));
        refuse(a, 500, "internal", NULL, "the move is not in the lifecycle table");
        return FB_EINVAL;
    }
    int rc = fb_casetx_set_status(&a->t, a->row.id, to);
    if (rc == 0)
        rc = fb_casetx_event(&a->t, a->row.id, a->who->name, event, a->data);
    if (rc == 0)
        fb_log(FB_LOG_INFO, "event=case_%s case_id=%s actor=%s from=%s to=%s", event, a->id,
               a->who->name, fb_case_status_name(a->row.status), fb_case_status_name(to));
    return rc;
}

static int next_of(s_act_t *a, fb_case_status_t *to) {
    if (fb_lifecycle_next(a->row.status, a->action, to) == 0)
        return 0;
    refuse(a, 500, "internal", NULL, "the move is not in the lifecycle table");
    return FB_EINVAL;
}

static int do_accept(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc == 0)
        rc = exec1(a, s_stamp_accept_sql);
    return rc ? rc : finish(a, to);
}

static int do_return(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    const char *params[] = {a->id, data_str(a, "reason"), a->who->name};
    PGresult *r = fb_casetx_query(&a->t, s_return_sql, 3, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    json_object_set_new(a->data, "return_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    PQclear(r);
    return finish(a, to);
}

/* Decides the pending return (approved or rejected); records its id and
 * department in the event's data. */
static int decide_return(s_act_t *a, const char *decision, const char *note) {
    const char *params[] = {a->id, decision, a->who->name, note};
    PGresult *r = fb_casetx_query(&a->t, s_decide_return_sql, 4, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        refuse(a, 409, "no_pending_return", NULL, "case %s has no return waiting for a decision",
               a->id);
        return FB_EINVAL;
    }
    json_object_set_new(a->data, "return_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    json_object_set_new(a->data, "returned_by", json_string(PQgetvalue(r, 0, 1)));
    PQclear(r);
    return 0;
}

/* The rules again, without every department that returned the case. */
static int do_approve_return(s_act_t *a) {
    json_t *excluded = NULL, *rules = NULL, *juris = NULL, *days = NULL;
    fb_ruleset_t *rs = NULL;
    PGresult *in = NULL;
    const char **ex = NULL;
    int rc = decide_return(a, "approved", data_str(a, "note"));
    if (rc)
        goto done;
    if ((rc = fb_casetx_withdraw_round(&a->t, a->row.id)) != 0)
        goto done;
    const char *params[] = {a->id};
    rc = FB_EDB;
    if (fb_db_query_json(a->t.db, s_excluded_sql, 1, params, &excluded) != 0)
        goto done;
    in = fb_casetx_query(&a->t, s_route_input_sql, 1, params, PGRES_TUPLES_OK);
    if (!in || PQntuples(in) != 1)
        goto done;
    if (fb_db_load_routing(a->t.db, &rules, &juris, &days) != 0)
        goto done;
    char err[256];
    if (fb_ruleset_from_json(rules, juris, &rs, err, sizeof err) != 0) {
        fb_log(FB_LOG_ERROR, "event=rules_invalid error=\"%s\"", err);
        refuse(a, 500, "internal", NULL, "the routing rules cannot be compiled");
        rc = FB_EINVAL;
        goto done;
    }
    size_t n_ex = json_array_size(excluded);
    ex = calloc(n_ex + 1, sizeof *ex);
    if (!ex) {
        rc = FB_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_ex; i++)
        ex[i] = json_string_value(json_array_get(excluded, i));
    int64_t received = PQgetisnull(in, 0, 4) ? fb_now_us() : atoll(PQgetvalue(in, 0, 4));
    fb_rule_input_t ri = {
        .channel = PQgetisnull(in, 0, 0) ? NULL : PQgetvalue(in, 0, 0),
        .content_norm = PQgetisnull(in, 0, 1) ? "" : PQgetvalue(in, 0, 1),
        .category = PQgetisnull(in, 0, 2) ? NULL : PQgetvalue(in, 0, 2),
        .region_code = PQgetisnull(in, 0, 3) ? NULL : PQgetvalue(in, 0, 3),
        .local_minutes = fb_time_local_minutes(received),
        .urgency = PQgetvalue(in, 0, 5),
        .kind = a->row.kind,
        .exclude = ex,
        .n_exclude = n_ex,
    };
    fb_rule_match_t m = {0};
    fb_rule_match(rs, &ri, &m, NULL, NULL);
    json_object_set(a->data, "excluded", excluded);
    json_object_set_new(a->data, "previous_department",
                        a->row.department ? json_string(a->row.department) : json_null());
    if (!m.department) {
        json_object_set_new(a->data, "reason", json_string("no_rule"));
        rc = exec1(a, s_to_manual_sql);
        if (rc == 0)
            rc = finish(a, FB_CASE_MANUAL);
        goto done;
    }
    const fb_rule_t *rule = m.rule;
    /* As the dispatcher does: the rule's urgency, else the petition's. */
    const char *urgency = rule->set_urgency ? rule->set_urgency : ri.urgency;
    char acc[40], rep[40];
    rc = fb_casetx_deadlines(&a->t, urgency, a->row.kind, rule->id, acc, rep);
    if (rc == 0)
        rc = fb_casetx_new_lead(&a->t, a->row.id, m.department, rule->id, urgency, acc, rep);
    if (rc)
        goto done;
    json_t *assists = json_array();
    for (size_t i = 0; i < rule->n_assists; i++) {
        bool skip = strcmp(rule->assists[i], m.department) == 0;
        for (size_t j = 0; j < n_ex; j++)
            skip = skip || strcmp(rule->assists[i], ex[j]) == 0;
        if (!skip)
            json_array_append_new(assists, json_string(rule->assists[i]));
    }
    char *assists_s = json_dumps(assists, JSON_COMPACT);
    char rb[16];
    snprintf(rb, sizeof rb, "%d", rule->id);
    const char *ap[] = {a->id, assists_s ? assists_s : "[]", rb, acc, rep};
    rc = fb_casetx_exec(&a->t, s_rule_assists_sql, 5, ap);
    free(assists_s);
    json_object_set_new(a->data, "department", json_string(m.department));
    json_object_set_new(a->data, "rule_id", json_integer(rule->id));
    json_object_set_new(a->data, "rule", json_string(rule->name ? rule->name : ""));
    json_object_set_new(a->data, "assists", assists);
    json_object_set_new(a->data, "accept_due", json_string(acc));
    json_object_set_new(a->data, "reply_due", json_string(rep));
    if (rc == 0)
        rc = finish(a, FB_CASE_DISPATCHED);
done:
    free(ex);
    fb_ruleset_destroy(&rs);
    PQclear(in);
    json_decref(excluded);
    json_decref(rules);
    json_decref(juris);
    json_decref(days);
    return rc;
}

/* The operator's name in training examples: the token's name, else the
 * actor. */
static const char *teacher(const s_act_t *a) {
    return a->who->token_name && a->who->token_name[0] ? a->who->token_name : a->who->name;
}

/* Approving a return says the case's category stands (only the department
 * was wrong): an example of it, whatever the rules chose next. */
static int do_approve_return_teaching(s_act_t *a) {
    int rc = do_approve_return(a);
    bool written = false;
    if (rc == 0 && !fb_http_answered(a->req))
        rc = fb_teach_example(&a->t, a->row.id, NULL, teacher(a), &written);
    if (rc == 0 && written)
        fb_log(FB_LOG_INFO, "event=training_example case_id=%s source=operator decision=%s", a->id,
               fb_case_action_name(a->action));
    return rc;
}

/* The category an assignment decides: the one asked for; else that of the
 * suggestion whose department the operator picked; else none (the case
 * keeps its own). Sets it on the case and notes it in the event. */
static int assign_category(s_act_t *a, const char *dept) {
    const char *asked = data_str(a, "category");
    char picked[128] = "";
    int rc;
    if (!asked &&
        (rc = fb_teach_suggested_category(&a->t, a->row.id, dept, picked, sizeof picked)) != 0)
        return rc;
    const char *category = asked ? asked : picked[0] ? picked : NULL;
    if (!category)
        return 0;
    bool known = false, leaf = false, changed = false;
    if ((rc = fb_teach_category_known(&a->t, category, &known, &leaf)) != 0)
        return rc;
    if (!known) {
        refuse(a, 422, "invalid_field", "category", "no category %s", category);
        return FB_EINVAL;
    }
    if ((rc = fb_teach_set_category(&a->t, a->row.id, category, &changed)) != 0)
        return rc;
    json_object_set_new(a->data, "category", json_string(category));
    if (!asked)
        json_object_set_new(a->data, "category_from", json_string("suggestion"));
    return 0;
}

static int do_reject_return(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc == 0)
        rc = decide_return(a, "rejected", data_str(a, "note"));
    return rc ? rc : finish(a, to);
}

static int do_assign(s_act_t *a) {
    const char *dept = data_str(a, "department");
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    const char *dp[] = {dept};
    PGresult *r = fb_casetx_query(&a->t, s_department_sql, 1, dp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    bool known = PQntuples(r) == 1, active = known && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!active) {
        refuse(a, 422, "invalid_field", "department",
               known ? "department %s is not active" : "no department %s", dept);
        return FB_EINVAL;
    }
    if ((rc = assign_category(a, dept)) != 0)
        return rc;
    bool taught = false;
    if ((rc = fb_teach_example(&a->t, a->row.id, NULL, teacher(a), &taught)) != 0)
        return rc;
    json_object_set_new(a->data, "training_example", json_boolean(taught));
    if (a->row.status == FB_CASE_RETURNED) {
        char note[128];
        snprintf(note, sizeof note, "assigned to %s", dept);
        if ((rc = decide_return(a, "approved", note)) != 0)
            return rc;
        if ((rc = fb_casetx_withdraw_round(&a->t, a->row.id)) != 0)
            return rc;
    }
    char acc[40], rep[40];
    rc = fb_casetx_deadlines(&a->t, a->row.urgency, a->row.kind, 0, acc, rep);
    if (rc == 0)
        rc = fb_casetx_new_lead(&a->t, a->row.id, dept, 0, NULL, acc, rep);
    if (rc)
        return rc;
    json_object_set_new(a->data, "previous_department",
                        a->row.department ? json_string(a->row.department) : json_null());
    json_object_set_new(a->data, "accept_due", json_string(acc));
    json_object_set_new(a->data, "reply_due", json_string(rep));
    return finish(a, to);
}

static int do_assist(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    json_t *depts = json_object_get(a->data, "departments");
    char *list = json_dumps(depts, JSON_COMPACT);
    PGresult *r = NULL;
    if (!list)
        return FB_ENOMEM;
    rc = FB_EINVAL;
    for (size_t i = 0; i < json_array_size(depts); i++) {
        if (a->row.department &&
            strcmp(json_string_value(json_array_get(depts, i)), a->row.department) == 0) {
            refuse(a, 422, "invalid_field", "departments",
                   "%s leads this case: it cannot also assist it", a->row.department);
            goto done;
        }
    }
    const char *lp[] = {list};
    if (!(r = fb_casetx_query(&a->t, s_unknown_dept_sql, 1, lp, PGRES_TUPLES_OK))) {
        rc = FB_EDB;
        goto done;
    }
    if (PQntuples(r) > 0) {
        refuse(a, 422, "invalid_field", "departments", "no active department %s",
               PQgetvalue(r, 0, 0));
        goto done;
    }
    PQclear(r);
    const char *cp[] = {a->id, list};
    if (!(r = fb_casetx_query(&a->t, s_assisting_sql, 2, cp, PGRES_TUPLES_OK))) {
        rc = FB_EDB;
        goto done;
    }
    if (PQntuples(r) > 0) {
        refuse(a, 409, "already_assisting", "departments",
               "%s already assists this case and has not replied its part yet",
               PQgetvalue(r, 0, 0));
        goto done;
    }
    char acc[40], rep[40];
    if ((rc = fb_casetx_deadlines(&a->t, a->row.urgency, a->row.kind, 0, acc, rep)) != 0)
        goto done;
    const char *ip[] = {a->id, list, acc};
    if ((rc = fb_casetx_exec(&a->t, s_add_assists_sql, 3, ip)) != 0)
        goto done;
    rc = finish(a, to);
done:
    PQclear(r);
    free(list);
    return rc;
}

static int do_extend(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    const char *until = data_str(a, "until");
    const char *cp[] = {a->id, until};
    PGresult *r = fb_casetx_query(&a->t, s_extend_check_sql, 2, cp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    bool none = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    bool passed = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    bool not_later = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    bool pending = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
    char due[64];
    snprintf(due, sizeof due, "%s", PQgetvalue(r, 0, 4));
    PQclear(r);
    if (none) {
        refuse(a, 409, "no_deadline", NULL, "case %s has no reply deadline to extend", a->id);
        return FB_EINVAL;
    }
    if (passed) {
        refuse(a, 409, "deadline_passed", NULL,
               "the reply deadline %s has passed: an extension must be asked for before it", due);
        return FB_EINVAL;
    }
    if (pending) {
        refuse(a, 409, "extension_pending", NULL,
               "an extension of case %s is already waiting for a decision", a->id);
        return FB_EINVAL;
    }
    if (not_later) {
        refuse(a, 422, "invalid_field", "until",
               "until must be later than the current reply deadline %s", due);
        return FB_EINVAL;
    }
    const char *ip[] = {a->id, until, data_str(a, "reason"), a->who->name};
    r = fb_casetx_query(&a->t, s_extend_sql, 4, ip, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    json_object_set_new(a->data, "extension_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    json_object_set_new(a->data, "previous_due", json_string(PQgetvalue(r, 0, 1)));
    PQclear(r);
    return finish(a, to);
}

static int do_decide_extension(s_act_t *a) {
    bool approve = a->action == FB_CASE_APPROVE_EXTENSION;
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    const char *params[] = {a->id, approve ? "approved" : "rejected", a->who->name,
                            data_str(a, "note")};
    PGresult *r = fb_casetx_query(&a->t, s_decide_extension_sql, 4, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        refuse(a, 409, "no_pending_extension", NULL,
               "case %s has no extension waiting for a decision", a->id);
        return FB_EINVAL;
    }
    json_object_set_new(a->data, "extension_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    json_object_set_new(a->data, "until", json_string(PQgetvalue(r, 0, 1)));
    json_object_set_new(a->data, "previous_due", json_string(PQgetvalue(r, 0, 2)));
    if (approve) {
        const char *mp[] = {a->id, PQgetvalue(r, 0, 1)};
        rc = fb_casetx_exec(&a->t, s_move_due_sql, 2, mp);
    }
    PQclear(r);
    return rc ? rc : finish(a, to);
}

/* The lead replies for the whole case when it sees fit (主办单位统一答复):
 * it does not wait for assisting departments that have not replied their
 * parts — a rule's assists are often copies (同步), and a silent one must
 * not hold the case — but their parts end with the reply (withdrawn) and
 * the event names them, so that their silence stays on record. */
static int do_reply(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    const char *params[] = {a->id};
    PGresult *r = fb_casetx_query(&a->t, s_open_assists_sql, 1, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (atol(PQgetvalue(r, 0, 1)) > 0) {
        json_object_set_new(a->data, "assists_unanswered",
                            json_loads(PQgetvalue(r, 0, 0), 0, NULL));
        rc = exec1(a, s_withdraw_assists_sql);
    }
    PQclear(r);
    const char *wp[] = {a->id, a->who->name};
    if (rc == 0)
        rc = fb_casetx_exec(&a->t, s_withdraw_extension_sql, 2, wp);
    if (rc == 0)
        rc = exec1(a, s_stamp_reply_sql);
    return rc ? rc : finish(a, to);
}

/* An assisting department's accept or reply of its part. */
static int do_part(s_act_t *a) {
    const char *params[] = {a->id, a->who->department};
    PGresult *r = fb_casetx_query(&a->t, s_part_sql, 2, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        refuse(a, 403, "forbidden", NULL, "only the lead department may %s case %s",
               fb_case_action_name(a->action), a->id);
        return FB_EINVAL;
    }
    char part_id[24];
    snprintf(part_id, sizeof part_id, "%s", PQgetvalue(r, 0, 0));
    fb_part_status_t from = fb_part_status_of(strcmp(PQgetvalue(r, 0, 1), "t") == 0,
                                              strcmp(PQgetvalue(r, 0, 2), "t") == 0);
    PQclear(r);
    fb_part_status_t to;
    const char *event;
    if (!fb_lifecycle_parts_open(a->row.status) ||
        fb_lifecycle_part_next(from, a->action, &to, &event) != 0) {
        char msg[256];
        refuse(a, 409, "illegal_transition", NULL, "%s",
               fb_lifecycle_part_refusal(a->row.status, from, a->action, msg, sizeof msg));
        return FB_EINVAL;
    }
    const char *up[] = {a->id, part_id};
    int rc = fb_casetx_exec(
        &a->t, a->action == FB_CASE_ACCEPT ? s_part_accept_sql : s_part_reply_sql, 2, up);
    if (rc)
        return rc;
    json_object_set_new(a->data, "department", json_string(a->who->department));
    json_object_set_new(a->data, "assignment_id", json_integer(atoll(part_id)));
    rc = fb_casetx_event(&a->t, a->row.id, a->who->name, event, a->data);
    if (rc == 0)
        fb_log(FB_LOG_INFO, "event=case_%s case_id=%s actor=%s part=%s", event, a->id, a->who->name,
               fb_part_status_name(to));
    return rc;
}

/* The callback desk: the answer recorded as a rating (source 'callback')
 * and applied at once, as the ratings job applies one from intake; or, when
 * the resident was not reached, an attempt. */
static int do_callback(s_act_t *a) {
    bool reached = json_is_true(json_object_get(a->data, "reached"));
    const json_t *resolved = json_object_get(a->data, "resolved");
    const char *sat = data_str(a, "satisfaction");
    if (reached && (!resolved || !sat)) {
        const char *f = !resolved ? "resolved" : "satisfaction";
        refuse(a, 422, "missing_field", f, "%s is required when the resident was reached", f);
        return FB_EINVAL;
    }
    fb_case_status_t to;
    int rc = next_of(a, &to);
    if (rc)
        return rc;
    const char *tracking = data_str(a, "tracking_no");
    const char *cp[] = {a->id, tracking};
    PGresult *r = fb_casetx_query(&a->t, s_callee_sql, 2, cp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        refuse(a, 422, "invalid_field", "tracking_no", "no petition of case %s has this number",
               a->id);
        return FB_EINVAL;
    }
    char petition[24], tno[64];
    snprintf(petition, sizeof petition, "%s", PQgetvalue(r, 0, 0));
    snprintf(tno, sizeof tno, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    json_object_set_new(a->data, "tracking_no", json_string(tno));
    const char *tp[] = {a->id, petition, reached ? "true" : "false", a->who->name,
                        data_str(a, "comment")};
    if ((rc = fb_casetx_exec(&a->t, s_callback_task_sql, 5, tp)) != 0)
        return rc;
    if (!reached) {
        /* Not a move: the case waits as it was; the attempt is history. */
        rc = fb_casetx_event(&a->t, a->row.id, a->who->name, "callback_attempted", a->data);
        if (rc == 0)
            rc = fb_casetx_set_status(&a->t, a->row.id, a->row.status);
        return rc;
    }
    const char *rp[] = {a->id, petition, json_is_true(resolved) ? "true" : "false", sat,
                        data_str(a, "comment")};
    r = fb_casetx_query(&a->t, s_callback_rating_sql, 5, rp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    json_object_set_new(a->data, "rating_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    PQclear(r);
    if ((rc = finish(a, to)) != 0)
        return rc;
    a->row.status = to;
    fb_case_status_t settled;
    return fb_casetx_settle_ratings(&a->t, &a->row, "worker", &settled);
}

/* The callback tasks of a closed case are finished by the timers' sweep. */
static int do_close(s_act_t *a) {
    fb_case_status_t to;
    int rc = next_of(a, &to);
    return rc ? rc : finish(a, to);
}

static int (*const s_moves[FB_CASE_ACTION_COUNT])(s_act_t *a) = {
    [FB_CASE_ACCEPT] = do_accept,
    [FB_CASE_RETURN] = do_return,
    [FB_CASE_APPROVE_RETURN] = do_approve_return_teaching,
    [FB_CASE_REJECT_RETURN] = do_reject_return,
    [FB_CASE_ASSIGN] = do_assign,
    [FB_CASE_ASSIST] = do_assist,
    [FB_CASE_EXTEND] = do_extend,
    [FB_CASE_APPROVE_EXTENSION] = do_decide_extension,
    [FB_CASE_REJECT_EXTENSION] = do_decide_extension,
    [FB_CASE_REPLY] = do_reply,
    [FB_CASE_CALLBACK] = do_callback,
    [FB_CASE_CLOSE] = do_close,
};

/* ---- the transaction ----------------------------------------------------- */

typedef int (*s_move_fn)(s_act_t *a);

/* Which move this caller makes: the lead department's or an operator's
 * (a move of the table), an assisting department's on its part, or none
 * (answered). The route table lets only departments, operators and admins
 * through; an admin may take every action, as the lead or as the desk. */
static s_move_fn choose(s_act_t *a) {
    const fb_actor_t *who = a->who;
    const char *role = who->role ? who->role : "";
    unsigned by = fb_case_action_by(a->action);
    bool dept = strcmp(role, "department") == 0;
    bool allowed = strcmp(role, "admin") == 0 || (dept && (by & FB_BY_DEPARTMENT)) ||
                   (strcmp(role, "operator") == 0 && (by & FB_BY_OPERATOR));
    if (!s_moves[a->action] || !allowed) {
        refuse(a, 403, "forbidden", NULL, "a %s token may not %s cases", role,
               fb_case_action_name(a->action));
        return NULL;
    }
    if (dept && (!a->row.department || strcmp(a->row.department, who->department) != 0)) {
        if (a->action == FB_CASE_ACCEPT || a->action == FB_CASE_REPLY)
            return do_part;
        refuse(a, 403, "forbidden", NULL, "only the lead department may %s case %s",
               fb_case_action_name(a->action), a->id);
        return NULL;
    }
    if (!fb_lifecycle_allowed(a->row.status, a->action)) {
        char msg[256];
        refuse(a, 409, "illegal_transition", NULL, "%s",
               fb_lifecycle_refusal(a->row.status, a->action, msg, sizeof msg));
        return NULL;
    }
    return s_moves[a->action];
}

void fb_actions_handle(fb_worker_t *w, fb_http_req_t *req, int64_t case_id, fb_case_action_t action,
                       const fb_actor_t *who) {
    s_act_t a = {.w = w, .req = req, .who = who, .action = action};
    json_t *summary = NULL;
    bool in_tx = false;
    snprintf(a.id, sizeof a.id, "%" PRId64, case_id);
    if ((unsigned)action >= FB_CASE_ACTION_COUNT || !s_specs[action].path) {
        refuse(&a, 404, "not_found", NULL, "no such action");
        return;
    }
    if (!read_body(&a))
        return;
    a.t.db = fb_dblink_conn(w->db);
    if (!a.t.db) {
        refuse(&a, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
        goto done;
    }
    if (fb_casetx_exec(&a.t, "BEGIN", 0, NULL) != 0)
        goto db_failed;
    in_tx = true;
    bool dept = who->role && strcmp(who->role, "department") == 0;
    int rc = fb_casetx_lock(&a.t, case_id, dept ? who->department : NULL, &a.row);
    if (rc == FB_ENOTFOUND) {
        refuse(&a, 404, "not_found", NULL, "no case %s", a.id);
        goto done;
    }
    if (rc == FB_EINVAL) {
        refuse(&a, 500, "internal", NULL, "case %s has an unknown status", a.id);
        goto done;
    }
    if (rc)
        goto db_failed;
    s_move_fn move = choose(&a);
    if (!move)
        goto done;
    rc = move(&a);
    if (rc == FB_EINVAL || fb_http_answered(req))
        goto done;
    if (rc)
        goto db_failed;
    const char *params[] = {a.id};
    if (fb_db_query_json(a.t.db, s_summary_sql, 1, params, &summary) != 0)
        goto db_failed;
    if (fb_casetx_exec(&a.t, "COMMIT", 0, NULL) != 0)
        goto db_failed;
    in_tx = false;
    fb_http_respond_json(req, 200, summary);
    summary = NULL;
    goto done;
db_failed:
    db_fail(&a);
done:
    if (in_tx && a.t.db && PQstatus(a.t.db) == CONNECTION_OK)
        PQclear(PQexec(a.t.db, "ROLLBACK"));
    if (!fb_http_answered(req))
        refuse(&a, 500, "internal", NULL, "no answer");
    fb_casetx_row_clear(&a.row);
    json_decref(summary);
    json_decref(a.data);
}

/* ---- the category, on an operator's word ---------------------------------- */

/* Reads {"category": code} (and nothing else) into *category (borrowed from
 * *in, the caller's). Answers 400/422 and returns false when wrong. */
static bool read_category(s_act_t *a, json_t **in, const char **category) {
    size_t len;
    const char *body = fb_http_body(a->req, &len);
    json_error_t e;
    *in = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    if (!*in) {
        if (len)
            refuse(a, 400, "bad_json", NULL, "malformed JSON at line %d column %d: %s", e.line,
                   e.column, e.text);
        else
            refuse(a, 422, "missing_field", "category", "category is required");
        return false;
    }
    if (!json_is_object(*in)) {
        refuse(a, 400, "bad_json", NULL, "the body must be a JSON object");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(*in, key, v) {
        if (strcmp(key, "category") != 0) {
            refuse(a, 422, "unknown_field", key, "unknown field '%.64s'", key);
            return false;
        }
    }
    json_t *c = json_object_get(*in, "category");
    if (!c) {
        refuse(a, 422, "missing_field", "category", "category is required");
        return false;
    }
    if (!is_code(json_string_value(c))) {
        refuse(a, 422, "invalid_field", "category", "category must be a category code");
        return false;
    }
    *category = json_string_value(c);
    return true;
}

void fb_actions_set_category(fb_worker_t *w, fb_http_req_t *req, int64_t case_id,
                             const fb_actor_t *who) {
    s_act_t a = {.w = w, .req = req, .who = who};
    json_t *in = NULL, *summary = NULL;
    const char *category = NULL;
    bool in_tx = false;
    snprintf(a.id, sizeof a.id, "%" PRId64, case_id);
    const char *role = who->role ? who->role : "";
    if (strcmp(role, "operator") != 0 && strcmp(role, "admin") != 0) {
        refuse(&a, 403, "forbidden", NULL, "a %s token may not change a case's category", role);
        return;
    }
    if (!read_category(&a, &in, &category))
        goto done;
    a.t.db = fb_dblink_conn(w->db);
    if (!a.t.db) {
        refuse(&a, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
        goto done;
    }
    if (fb_casetx_exec(&a.t, "BEGIN", 0, NULL) != 0)
        goto db_failed;
    in_tx = true;
    int rc = fb_casetx_lock(&a.t, case_id, NULL, &a.row);
    if (rc == FB_ENOTFOUND) {
        refuse(&a, 404, "not_found", NULL, "no case %s", a.id);
        goto done;
    }
    if (rc)
        goto db_failed;
    if (a.row.status == FB_CASE_CLOSED) {
        refuse(&a, 409, "illegal_transition", NULL, "cannot change the category of a closed case");
        goto done;
    }
    bool known = false, leaf = false, changed = false, taught = false;
    if (fb_teach_category_known(&a.t, category, &known, &leaf) != 0)
        goto db_failed;
    if (!known) {
        refuse(&a, 422, "invalid_field", "category", "no category %s", category);
        goto done;
    }
    PGresult *r = fb_casetx_query(&a.t, "SELECT category FROM cases WHERE id = $1::bigint", 1,
                                  (const char *[]){a.id}, PGRES_TUPLES_OK);
    if (!r)
        goto db_failed;
    a.data = json_pack("{s:o,s:s}", "previous_category",
                       PQgetisnull(r, 0, 0) ? json_null() : json_string(PQgetvalue(r, 0, 0)),
                       "category", category);
    PQclear(r);
    if (fb_teach_set_category(&a.t, case_id, category, &changed) != 0 ||
        fb_teach_example(&a.t, case_id, category, teacher(&a), &taught) != 0)
        goto db_failed;
    json_object_set_new(a.data, "training_example", json_boolean(taught));
    if (changed && fb_casetx_event(&a.t, case_id, who->name, "category_changed", a.data) != 0)
        goto db_failed;
    if (fb_db_query_json(a.t.db, s_summary_sql, 1, (const char *[]){a.id}, &summary) != 0)
        goto db_failed;
    if (fb_casetx_exec(&a.t, "COMMIT", 0, NULL) != 0)
        goto db_failed;
    in_tx = false;
    fb_log(FB_LOG_INFO,
           "event=case_category_changed case_id=%s actor=%s category=%s changed=%d "
           "training_example=%d",
           a.id, who->name, category, changed, taught);
    fb_http_respond_json(req, 200, summary);
    summary = NULL;
    goto done;
db_failed:
    db_fail(&a);
done:
    if (in_tx && a.t.db && PQstatus(a.t.db) == CONNECTION_OK)
        PQclear(PQexec(a.t.db, "ROLLBACK"));
    if (!fb_http_answered(req))
        refuse(&a, 500, "internal", NULL, "no answer");
    fb_casetx_row_clear(&a.row);
    json_decref(summary);
    json_decref(a.data);
    json_decref(in);
}
