/* actions_assist.c — the case actions that share a case out or stretch its
 * time: assisting departments asked for (吹哨/协办), their own part signed
 * for and replied (assist_accepted, assist_replied), and extensions (延期)
 * asked for and decided. */
#include "actions_priv.h"
#include "case_sql.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parts are due by the case's own reply deadline. */
static const char s_add_assists_sql[] =
    "INSERT INTO assignments (case_id, department_code, role, rule_id, accept_due, reply_due)"
    " SELECT c.id, d.code, 'assist', c.rule_id, least($3::timestamptz, c.reply_due), c.reply_due"
    " FROM cases c CROSS JOIN json_array_elements_text($2::json) AS d(code)"
    " WHERE c.id = $1::bigint";

static const char s_assisting_sql[] =
    "SELECT department_code FROM assignments WHERE case_id = $1::bigint AND role = 'assist'"
    " AND withdrawn_at IS NULL AND replied_at IS NULL"
    " AND department_code IN (SELECT json_array_elements_text($2::json)) LIMIT 1";

static const char s_decide_extension_sql[] =
    "UPDATE extensions SET status = $2, decided_by = $3, decided_at = now(), note = $4"
    " WHERE case_id = $1::bigint AND status = 'pending' RETURNING id, until, previous_due";

static const char s_extend_check_sql[] =
    "SELECT c.reply_due IS NULL, c.reply_due <= now(), $2::timestamptz <= c.reply_due,"
    " EXISTS (SELECT 1 FROM extensions x WHERE x.case_id = c.id AND x.status = 'pending'),"
    " c.reply_due FROM cases c WHERE c.id = $1::bigint";

static const char s_extend_sql[] =
    "INSERT INTO extensions (case_id, assignment_id, department_code, reason, previous_due,"
    " until, requested_by)"
    " SELECT c.id, " SQL_LEAD_ID ", c.department_code, $3, c.reply_due, $2::timestamptz, $4"
    " FROM cases c WHERE c.id = $1::bigint RETURNING id, previous_due, until";

static const char s_move_due_sql[] =
    "WITH a AS (UPDATE assignments SET reply_due = $2::timestamptz WHERE id = " SQL_LEAD_ID
    " RETURNING id)"
    " UPDATE cases SET reply_due = $2::timestamptz, updated_at = now() WHERE id = $1::bigint";

static const char s_part_accept_sql[] =
    "WITH u AS (UPDATE assignments SET accepted_at = now() WHERE id = $2::bigint RETURNING id)"
    " UPDATE cases SET updated_at = now() WHERE id = $1::bigint";
static const char s_part_reply_sql[] =
    "WITH u AS (UPDATE assignments SET replied_at = now() WHERE id = $2::bigint RETURNING id)"
    " UPDATE cases SET updated_at = now() WHERE id = $1::bigint";

/* The department's open part of the case: the latest not withdrawn, one
 * still to be replied before one that is done. */
static const char s_part_sql[] =
    "SELECT id, accepted_at IS NOT NULL, replied_at IS NOT NULL FROM assignments"
    " WHERE case_id = $1::bigint AND department_code = $2 AND role = 'assist'"
    " AND withdrawn_at IS NULL ORDER BY (replied_at IS NULL) DESC, id DESC LIMIT 1";

/* The first of $2 that is no active department. */
static const char s_unknown_dept_sql[] =
    "SELECT d.code FROM json_array_elements_text($1::json) AS d(code)"
    " WHERE NOT EXISTS (SELECT 1 FROM departments x WHERE x.code = d.code AND x.active)"
    " LIMIT 1";

int act_do_assist(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
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
            act_refuse(a, 422, "invalid_field", "departments",
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
        act_refuse(a, 422, "invalid_field", "departments", "no active department %s",
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
        act_refuse(a, 409, "already_assisting", "departments",
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
    if (a->street) /* 吹哨 by the street office, not by the lead */
        json_object_set_new(a->data, "street_office", json_string(a->who->department));
    rc = act_finish(a, to);
done:
    PQclear(r);
    free(list);
    return rc;
}

int act_do_extend(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc)
        return rc;
    const char *until = act_data_str(a, "until");
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
        act_refuse(a, 409, "no_deadline", NULL, "case %s has no reply deadline to extend", a->id);
        return FB_EINVAL;
    }
    if (passed) {
        act_refuse(a, 409, "deadline_passed", NULL,
                   "the reply deadline %s has passed: an extension must be asked for before it",
                   due);
        return FB_EINVAL;
    }
    if (pending) {
        act_refuse(a, 409, "extension_pending", NULL,
                   "an extension of case %s is already waiting for a decision", a->id);
        return FB_EINVAL;
    }
    if (not_later) {
        act_refuse(a, 422, "invalid_field", "until",
                   "until must be later than the current reply deadline %s", due);
        return FB_EINVAL;
    }
    const char *ip[] = {a->id, until, act_data_str(a, "reason"), a->who->name};
    r = fb_casetx_query(&a->t, s_extend_sql, 4, ip, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    json_object_set_new(a->data, "extension_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    json_object_set_new(a->data, "previous_due", json_string(PQgetvalue(r, 0, 1)));
    PQclear(r);
    return act_finish(a, to);
}

int act_do_decide_extension(act_t *a) {
    bool approve = a->action == FB_CASE_APPROVE_EXTENSION;
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc)
        return rc;
    const char *params[] = {a->id, approve ? "approved" : "rejected", a->who->name,
                            act_data_str(a, "note")};
    PGresult *r = fb_casetx_query(&a->t, s_decide_extension_sql, 4, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        act_refuse(a, 409, "no_pending_extension", NULL,
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
    return rc ? rc : act_finish(a, to);
}

/* An assisting department's accept or reply of its part. */
int act_do_part(act_t *a) {
    const char *params[] = {a->id, a->who->department};
    PGresult *r = fb_casetx_query(&a->t, s_part_sql, 2, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        act_refuse(a, 403, "forbidden", NULL, "only the lead department may %s case %s",
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
        act_refuse(a, 409, "illegal_transition", NULL, "%s",
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
