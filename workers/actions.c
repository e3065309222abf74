/* actions.c — the case API's actions (see actions.h), each one transaction
 * around one move of the lifecycle table: the request bodies, the
 * transaction, and the moves of signing for, replying, the callback and
 * closing. The moves that decide a department are in actions_dispatch.c,
 * those of assists and extensions in actions_assist.c. */
#include "actions.h"
#include "actions_priv.h"
#include "case_sql.h"
#include "casetx.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_rule.h"
#include "fb_db.h"
#include "fb_time.h"
#include "grid.h"
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

void act_refuse(act_t *a, unsigned status, const char *code, const char *field, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

void act_refuse(act_t *a, unsigned status, const char *code, const char *field, const char *fmt,
                ...) {
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
void act_db_fail(act_t *a) {
    static const char *const retry[] = {"55P03", "57014", "40001", "40P01"};
    if (!fb_dblink_conn(a->w->db) || fb_dblink_check(a->w->db)) {
        act_refuse(a, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
        return;
    }
    for (size_t i = 0; i < FB_ARRAY_LEN(retry); i++) {
        if (strcmp(a->t.sqlstate, retry[i]) == 0) {
            act_refuse(a, 503, "busy", NULL, "the case is busy; try again");
            return;
        }
    }
    act_refuse(a, 500, "internal", NULL, "database error");
}

static bool is_code(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Checks one field; answers 422 naming it and returns false when wrong. */
static bool field_ok(act_t *a, const s_field_t *f, json_t *v) {
    const char *s = json_string_value(v);
    switch (f->type) {
    case F_NOTE:
        if (json_is_null(v) || (s && json_string_length(v) <= TEXT_MAX))
            return true;
        act_refuse(a, 422, "invalid_field", f->name, "%s must be a string of at most %d bytes",
                   f->name, TEXT_MAX);
        return false;
    case F_TEXT:
        if (s && s[strspn(s, " \t\r\n")] != '\0' && json_string_length(v) <= TEXT_MAX)
            return true;
        act_refuse(a, 422, "invalid_field", f->name,
                   "%s must be a non-empty string of at most %d bytes", f->name, TEXT_MAX);
        return false;
    case F_BOOL:
        if (json_is_boolean(v))
            return true;
        act_refuse(a, 422, "invalid_field", f->name, "%s must be true or false", f->name);
        return false;
    case F_TIME: {
        int64_t us;
        if (s && fb_time_parse(s, &us) == 0)
            return true;
        act_refuse(a, 422, "invalid_field", f->name,
                   "%s must be a time in RFC 3339, e.g. 2026-11-30T18:00:00+08:00", f->name);
        return false;
    }
    case F_CODE:
        if (is_code(s))
            return true;
        act_refuse(a, 422, "invalid_field", f->name, "%s must be a department code", f->name);
        return false;
    case F_CODES: {
        size_t n = json_array_size(v);
        if (!json_is_array(v) || n == 0 || n > ASSISTS_MAX) {
            act_refuse(a, 422, "invalid_field", f->name,
                       "%s must be a list of 1 to %d department codes", f->name, ASSISTS_MAX);
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            const char *code = json_string_value(json_array_get(v, i));
            if (!is_code(code)) {
                act_refuse(a, 422, "invalid_field", f->name, "%s[%zu] is not a department code",
                           f->name, i);
                return false;
            }
            for (size_t j = 0; j < i; j++) {
                if (strcmp(code, json_string_value(json_array_get(v, j))) == 0) {
                    act_refuse(a, 422, "invalid_field", f->name, "%s names %s twice", f->name,
                               code);
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
        act_refuse(a, 422, "invalid_field", f->name,
                   "%s must be satisfied, basically_satisfied or unsatisfied", f->name);
        return false;
    case F_CATEGORY:
        if (is_code(s))
            return true;
        act_refuse(a, 422, "invalid_field", f->name, "%s must be a category code", f->name);
        return false;
    }
    return false;
}

/* Reads the body into a->data: only the action's fields, each checked, so
 * that bad input is refused before anything changes. An empty body is {}.
 * Answers (400, 422) and returns false when the body is wrong. */
static bool read_body(act_t *a) {
    size_t len;
    const char *body = fb_http_body(a->req, &len);
    json_t *in;
    if (len == 0) {
        in = json_object();
    } else {
        json_error_t e;
        in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!in) {
            act_refuse(a, 400, "bad_json", NULL, "malformed JSON at line %d column %d: %s", e.line,
                       e.column, e.text);
            return false;
        }
    }
    if (!json_is_object(in)) {
        json_decref(in);
        act_refuse(a, 400, "bad_json", NULL, "the body must be a JSON object");
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
            act_refuse(a, 422, "unknown_field", key, "unknown field '%.64s'", key);
            goto fail;
        }
        if (!field_ok(a, f, v))
            goto fail;
        if (!json_is_null(v))
            json_object_set(a->data, key, v);
    }
    for (int i = 0; i < FIELDS_MAX && fields[i].name; i++) {
        if (fields[i].required && !json_object_get(a->data, fields[i].name)) {
            act_refuse(a, 422, "missing_field", fields[i].name, "%s is required", fields[i].name);
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

const char *act_data_str(act_t *a, const char *key) {
    return json_string_value(json_object_get(a->data, key));
}

const char *act_teacher(const act_t *a) {
    return a->who->token_name && a->who->token_name[0] ? a->who->token_name : a->who->name;
}

/* ---- SQL ----------------------------------------------------------------- */

static const char s_stamp_accept_sql[] =
    "UPDATE assignments SET accepted_at = coalesce(accepted_at, now()) WHERE id = " SQL_LEAD_ID;
static const char s_stamp_reply_sql[] = "UPDATE assignments SET replied_at = now()"
                                        " WHERE id = " SQL_LEAD_ID;

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

int act_exec1(act_t *a, const char *sql) {
    const char *params[] = {a->id};
    return fb_casetx_exec(&a->t, sql, 1, params);
}

/* Writes the status and the event of the move (from, action, to). */
int act_finish(act_t *a, fb_case_status_t to) {
    const char *event;
    if (fb_lifecycle_move(a->row.status, a->action, to, &event) != 0) {
        fb_log(FB_LOG_ERROR, "event=lifecycle_bug case_id=%s action=%s to=%s", a->id,
               fb_case_action_name(a->action), fb_case_status_name(to));
        act_refuse(a, 500, "internal", NULL, "the move is not in the lifecycle table");
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

int act_next_of(act_t *a, fb_case_status_t *to) {
    if (fb_lifecycle_next(a->row.status, a->action, to) == 0)
        return 0;
    act_refuse(a, 500, "internal", NULL, "the move is not in the lifecycle table");
    return FB_EINVAL;
}

static int do_accept(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc == 0)
        rc = act_exec1(a, s_stamp_accept_sql);
    return rc ? rc : act_finish(a, to);
}

/* The lead replies for the whole case when it sees fit (主办单位统一答复):
 * it does not wait for assisting departments that have not replied their
 * parts — a rule's assists are often copies (同步), and a silent one must
 * not hold the case — but their parts end with the reply (withdrawn) and
 * the event names them, so that their silence stays on record. */
static int do_reply(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc)
        return rc;
    const char *params[] = {a->id};
    PGresult *r = fb_casetx_query(&a->t, s_open_assists_sql, 1, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (atol(PQgetvalue(r, 0, 1)) > 0) {
        json_object_set_new(a->data, "assists_unanswered",
                            json_loads(PQgetvalue(r, 0, 0), 0, NULL));
        rc = act_exec1(a, s_withdraw_assists_sql);
    }
    PQclear(r);
    const char *wp[] = {a->id, a->who->name};
    if (rc == 0)
        rc = fb_casetx_exec(&a->t, s_withdraw_extension_sql, 2, wp);
    if (rc == 0)
        rc = act_exec1(a, s_stamp_reply_sql);
    if (rc == 0)
        rc = act_finish(a, to);
    /* "Resolved" is verified on site by the grid before the residents are
     * asked (核查); the task is the event's too. */
    json_t *task = NULL;
    if (rc == 0 && json_is_true(json_object_get(a->data, "resolved")))
        rc = fb_grid_open_verification(&a->t, a->row.id, a->w->cfg.grid_verify_hours, &task);
    if (task)
        rc = fb_casetx_event(&a->t, a->row.id, "fenbo-worker", "verification_requested", task);
    json_decref(task);
    return rc;
}

/* The callback desk: the answer recorded as a rating (source 'callback')
 * and applied at once, as the ratings job applies one from intake; or, when
 * the resident was not reached, an attempt. */
static int do_callback(act_t *a) {
    bool reached = json_is_true(json_object_get(a->data, "reached"));
    const json_t *resolved = json_object_get(a->data, "resolved");
    const char *sat = act_data_str(a, "satisfaction");
    if (reached && (!resolved || !sat)) {
        const char *f = !resolved ? "resolved" : "satisfaction";
        act_refuse(a, 422, "missing_field", f, "%s is required when the resident was reached", f);
        return FB_EINVAL;
    }
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc)
        return rc;
    const char *tracking = act_data_str(a, "tracking_no");
    const char *cp[] = {a->id, tracking};
    PGresult *r = fb_casetx_query(&a->t, s_callee_sql, 2, cp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        act_refuse(a, 422, "invalid_field", "tracking_no", "no petition of case %s has this number",
                   a->id);
        return FB_EINVAL;
    }
    char petition[24], tno[64];
    snprintf(petition, sizeof petition, "%s", PQgetvalue(r, 0, 0));
    snprintf(tno, sizeof tno, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    json_object_set_new(a->data, "tracking_no", json_string(tno));
    const char *tp[] = {a->id, petition, reached ? "true" : "false", a->who->name,
                        act_data_str(a, "comment")};
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
                        act_data_str(a, "comment")};
    r = fb_casetx_query(&a->t, s_callback_rating_sql, 5, rp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    json_object_set_new(a->data, "rating_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    PQclear(r);
    if ((rc = act_finish(a, to)) != 0)
        return rc;
    a->row.status = to;
    fb_case_status_t settled;
    return fb_casetx_settle_ratings(&a->t, &a->row, "worker", &settled);
}

/* The callback tasks of a closed case are finished by the timers' sweep. */
static int do_close(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    return rc ? rc : act_finish(a, to);
}

static int (*const s_moves[FB_CASE_ACTION_COUNT])(act_t *a) = {
    [FB_CASE_ACCEPT] = do_accept,
    [FB_CASE_RETURN] = act_do_return,
    [FB_CASE_APPROVE_RETURN] = act_do_approve_return_teaching,
    [FB_CASE_REJECT_RETURN] = act_do_reject_return,
    [FB_CASE_ASSIGN] = act_do_assign,
    [FB_CASE_ASSIST] = act_do_assist,
    [FB_CASE_EXTEND] = act_do_extend,
    [FB_CASE_APPROVE_EXTENSION] = act_do_decide_extension,
    [FB_CASE_REJECT_EXTENSION] = act_do_decide_extension,
    [FB_CASE_REPLY] = do_reply,
    [FB_CASE_CALLBACK] = do_callback,
    [FB_CASE_CLOSE] = do_close,
};

/* ---- the transaction ----------------------------------------------------- */

typedef int (*s_move_fn)(act_t *a);

/* Which move this caller makes: the lead department's or an operator's
 * (a move of the table), an assisting department's on its part, or none
 * (answered). The route table lets only departments, operators and admins
 * through; an admin may take every action, as the lead or as the desk. */
static s_move_fn choose(act_t *a) {
    const fb_actor_t *who = a->who;
    const char *role = who->role ? who->role : "";
    unsigned by = fb_case_action_by(a->action);
    bool dept = strcmp(role, "department") == 0;
    bool allowed = strcmp(role, "admin") == 0 || (dept && (by & FB_BY_DEPARTMENT)) ||
                   (strcmp(role, "operator") == 0 && (by & FB_BY_OPERATOR));
    if (!s_moves[a->action] || !allowed) {
        act_refuse(a, 403, "forbidden", NULL, "a %s token may not %s cases", role,
                   fb_case_action_name(a->action));
        return NULL;
    }
    if (dept && (!a->row.department || strcmp(a->row.department, who->department) != 0)) {
        if (a->action == FB_CASE_ACCEPT || a->action == FB_CASE_REPLY)
            return act_do_part;
        if (a->street && a->action == FB_CASE_ASSIST) {
            if (fb_lifecycle_allowed(a->row.status, a->action))
                return act_do_assist;
            char msg[256];
            act_refuse(a, 409, "illegal_transition", NULL, "%s",
                       fb_lifecycle_refusal(a->row.status, a->action, msg, sizeof msg));
            return NULL;
        }
        act_refuse(a, 403, "forbidden", NULL, "only the lead department may %s case %s",
                   fb_case_action_name(a->action), a->id);
        return NULL;
    }
    if (!fb_lifecycle_allowed(a->row.status, a->action)) {
        char msg[256];
        act_refuse(a, 409, "illegal_transition", NULL, "%s",
                   fb_lifecycle_refusal(a->row.status, a->action, msg, sizeof msg));
        return NULL;
    }
    return s_moves[a->action];
}

/* 1 when department is the street office of the case's street and not
 * its lead, 0 when not, -1 on failure. */
static int street_office_of(act_t *a, const char *department) {
    const char *params[] = {a->id, department};
    PGresult *r =
        fb_casetx_query(&a->t,
                        "SELECT fenbo_street_covers(coalesce(region_code, grid_region_code))"
                        " AND department_code IS DISTINCT FROM $2 FROM cases WHERE id = $1::bigint",
                        2, params, PGRES_TUPLES_OK);
    if (!r)
        return -1;
    int yes = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return yes;
}

void fb_actions_handle(fb_worker_t *w, fb_http_req_t *req, int64_t case_id, fb_case_action_t action,
                       const fb_actor_t *who) {
    act_t a = {.w = w, .req = req, .who = who, .action = action};
    json_t *summary = NULL;
    bool in_tx = false;
    snprintf(a.id, sizeof a.id, "%" PRId64, case_id);
    if ((unsigned)action >= FB_CASE_ACTION_COUNT || !s_specs[action].path) {
        act_refuse(&a, 404, "not_found", NULL, "no such action");
        return;
    }
    if (!read_body(&a))
        return;
    a.t.db = fb_dblink_conn(w->db);
    if (!a.t.db) {
        act_refuse(&a, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
        goto done;
    }
    if (fb_casetx_exec(&a.t, "BEGIN", 0, NULL) != 0)
        goto db_failed;
    in_tx = true;
    bool dept = who->role && strcmp(who->role, "department") == 0;
    /* 吹哨: the street office summons departments to a case in its street
     * even when a city bureau leads it (事权归街道). PostgreSQL says whether
     * the case lies in its street, as the department; the assist is then
     * written as the system's job (its assignments reach other
     * departments' rows). */
    if (dept && action == FB_CASE_ASSIST) {
        int street = street_office_of(&a, who->department);
        if (street < 0)
            goto db_failed;
        if (street == 1 && fb_casetx_as_system(&a.t) != 0)
            goto db_failed;
        a.street = street == 1;
    }
    int rc = fb_casetx_lock(&a.t, case_id, dept && !a.street ? who->department : NULL, &a.row);
    if (rc == FB_ENOTFOUND) {
        act_refuse(&a, 404, "not_found", NULL, "no case %s", a.id);
        goto done;
    }
    if (rc == FB_EINVAL) {
        act_refuse(&a, 500, "internal", NULL, "case %s has an unknown status", a.id);
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
    act_db_fail(&a);
done:
    if (in_tx && a.t.db && PQstatus(a.t.db) == CONNECTION_OK)
        PQclear(PQexec(a.t.db, "ROLLBACK"));
    if (!fb_http_answered(req))
        act_refuse(&a, 500, "internal", NULL, "no answer");
    fb_casetx_row_clear(&a.row);
    json_decref(summary);
    json_decref(a.data);
}

/* ---- the category, on an operator's word ---------------------------------- */

/* Reads {"category": code} (and nothing else) into *category (borrowed from
 * *in, the caller's). Answers 400/422 and returns false when wrong. */
static bool read_category(act_t *a, json_t **in, const char **category) {
    size_t len;
    const char *body = fb_http_body(a->req, &len);
    json_error_t e;
    *in = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    if (!*in) {
        if (len)
            act_refuse(a, 400, "bad_json", NULL, "malformed JSON at line %d column %d: %s", e.line,
                       e.column, e.text);
        else
            act_refuse(a, 422, "missing_field", "category", "category is required");
        return false;
    }
    if (!json_is_object(*in)) {
        act_refuse(a, 400, "bad_json", NULL, "the body must be a JSON object");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(*in, key, v) {
        if (strcmp(key, "category") != 0) {
            act_refuse(a, 422, "unknown_field", key, "unknown field '%.64s'", key);
            return false;
        }
    }
    json_t *c = json_object_get(*in, "category");
    if (!c) {
        act_refuse(a, 422, "missing_field", "category", "category is required");
        return false;
    }
    if (!is_code(json_string_value(c))) {
        act_refuse(a, 422, "invalid_field", "category", "category must be a category code");
        return false;
    }
    *category = json_string_value(c);
    return true;
}

void fb_actions_set_category(fb_worker_t *w, fb_http_req_t *req, int64_t case_id,
                             const fb_actor_t *who) {
    act_t a = {.w = w, .req = req, .who = who};
    json_t *in = NULL, *summary = NULL;
    const char *category = NULL;
    bool in_tx = false;
    snprintf(a.id, sizeof a.id, "%" PRId64, case_id);
    const char *role = who->role ? who->role : "";
    if (strcmp(role, "operator") != 0 && strcmp(role, "admin") != 0) {
        act_refuse(&a, 403, "forbidden", NULL, "a %s token may not change a case's category", role);
        return;
    }
    if (!read_category(&a, &in, &category))
        goto done;
    a.t.db = fb_dblink_conn(w->db);
    if (!a.t.db) {
        act_refuse(&a, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
        goto done;
    }
    if (fb_casetx_exec(&a.t, "BEGIN", 0, NULL) != 0)
        goto db_failed;
    in_tx = true;
    int rc = fb_casetx_lock(&a.t, case_id, NULL, &a.row);
    if (rc == FB_ENOTFOUND) {
        act_refuse(&a, 404, "not_found", NULL, "no case %s", a.id);
        goto done;
    }
    if (rc)
        goto db_failed;
    if (a.row.status == FB_CASE_CLOSED) {
        act_refuse(&a, 409, "illegal_transition", NULL,
                   "cannot change the category of a closed case");
        goto done;
    }
    bool known = false, leaf = false, changed = false, taught = false;
    if (fb_teach_category_known(&a.t, category, &known, &leaf) != 0)
        goto db_failed;
    if (!known) {
        act_refuse(&a, 422, "invalid_field", "category", "no category %s", category);
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
        fb_teach_example(&a.t, case_id, category, act_teacher(&a), &taught) != 0)
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
    act_db_fail(&a);
done:
    if (in_tx && a.t.db && PQstatus(a.t.db) == CONNECTION_OK)
        PQclear(PQexec(a.t.db, "ROLLBACK"));
    if (!fb_http_answered(req))
        act_refuse(&a, 500, "internal", NULL, "no answer");
    fb_casetx_row_clear(&a.row);
    json_decref(summary);
    json_decref(a.data);
    json_decref(in);
}
