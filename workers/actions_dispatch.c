/* actions_dispatch.c — the case actions that decide a department: a return
 * (退单) by the department, its approval (re-dispatched by the rules,
 * excluding every department that returned the case, or to the manual
 * queue) or rejection, and an operator's assignment from the manual queue.
 * Operators' choices of category here teach the classifier (teach.c). */
#include "actions_priv.h"
#include "case_sql.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_rule.h"
#include "fb_time.h"
#include "teach.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int act_do_return(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc)
        return rc;
    const char *params[] = {a->id, act_data_str(a, "reason"), a->who->name};
    PGresult *r = fb_casetx_query(&a->t, s_return_sql, 3, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    json_object_set_new(a->data, "return_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    PQclear(r);
    return act_finish(a, to);
}

/* Decides the pending return (approved or rejected); records its id and
 * department in the event's data. */
static int decide_return(act_t *a, const char *decision, const char *note) {
    const char *params[] = {a->id, decision, a->who->name, note};
    PGresult *r = fb_casetx_query(&a->t, s_decide_return_sql, 4, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        act_refuse(a, 409, "no_pending_return", NULL,
                   "case %s has no return waiting for a decision", a->id);
        return FB_EINVAL;
    }
    json_object_set_new(a->data, "return_id", json_integer(atoll(PQgetvalue(r, 0, 0))));
    json_object_set_new(a->data, "returned_by", json_string(PQgetvalue(r, 0, 1)));
    PQclear(r);
    return 0;
}

/* The rules again, without every department that returned the case. */
static int do_approve_return(act_t *a) {
    json_t *excluded = NULL, *rules = NULL, *juris = NULL, *days = NULL;
    fb_ruleset_t *rs = NULL;
    PGresult *in = NULL;
    const char **ex = NULL;
    int rc = decide_return(a, "approved", act_data_str(a, "note"));
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
        act_refuse(a, 500, "internal", NULL, "the routing rules cannot be compiled");
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
        rc = act_exec1(a, s_to_manual_sql);
        if (rc == 0)
            rc = act_finish(a, FB_CASE_MANUAL);
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
        rc = act_finish(a, FB_CASE_DISPATCHED);
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

/* Approving a return says the case's category stands (only the department
 * was wrong): an example of it, whatever the rules chose next. */
int act_do_approve_return_teaching(act_t *a) {
    int rc = do_approve_return(a);
    bool written = false;
    if (rc == 0 && !fb_http_answered(a->req))
        rc = fb_teach_example(&a->t, a->row.id, NULL, act_teacher(a), &written);
    if (rc == 0 && written)
        fb_log(FB_LOG_INFO, "event=training_example case_id=%s source=operator decision=%s", a->id,
               fb_case_action_name(a->action));
    return rc;
}

/* The category an assignment decides: the one asked for; else that of the
 * suggestion whose department the operator picked; else none (the case
 * keeps its own). Sets it on the case and notes it in the event. */
static int assign_category(act_t *a, const char *dept) {
    const char *asked = act_data_str(a, "category");
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
        act_refuse(a, 422, "invalid_field", "category", "no category %s", category);
        return FB_EINVAL;
    }
    if ((rc = fb_teach_set_category(&a->t, a->row.id, category, &changed)) != 0)
        return rc;
    json_object_set_new(a->data, "category", json_string(category));
    if (!asked)
        json_object_set_new(a->data, "category_from", json_string("suggestion"));
    return 0;
}

int act_do_reject_return(act_t *a) {
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc == 0)
        rc = decide_return(a, "rejected", act_data_str(a, "note"));
    return rc ? rc : act_finish(a, to);
}

int act_do_assign(act_t *a) {
    const char *dept = act_data_str(a, "department");
    fb_case_status_t to;
    int rc = act_next_of(a, &to);
    if (rc)
        return rc;
    const char *dp[] = {dept};
    PGresult *r = fb_casetx_query(&a->t, s_department_sql, 1, dp, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    bool known = PQntuples(r) == 1, active = known && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!active) {
        act_refuse(a, 422, "invalid_field", "department",
                   known ? "department %s is not active" : "no department %s", dept);
        return FB_EINVAL;
    }
    if ((rc = assign_category(a, dept)) != 0)
        return rc;
    bool taught = false;
    if ((rc = fb_teach_example(&a->t, a->row.id, NULL, act_teacher(a), &taught)) != 0)
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
    return act_finish(a, to);
}
