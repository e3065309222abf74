/* batch.c — the dispatcher's transaction. Two statements carry the whole
 * batch as one JSON parameter each, so a batch of a thousand petitions costs
 * four round trips (BEGIN, petitions, cases, COMMIT), not thousands. */
#include "batch.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_region.h"
#include "fb_time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* New petitions are inserted and located in one statement; those stored
 * before (the same tracking number or idempotency key) are skipped. */
static const char *const s_insert_petitions =
    "INSERT INTO petitions (tracking_no, channel, idem_key, received_at, spooled_at,"
    "  caller_name, caller_phone, content, content_norm, category, address, location,"
    "  urgency, kind, callback, raw, region_code) "
    "SELECT x.tracking_no, x.channel, x.idem_key, x.received_at, x.spooled_at,"
    "  x.caller_name, x.caller_phone, x.content, x.content_norm, x.category, x.address, g.pt,"
    "  x.urgency, x.kind, x.callback, x.raw, " FB_REGION_LOOKUP_SQL(
        "g.pt") " "
                "FROM json_to_recordset($1::json) AS x(tracking_no text, channel text, idem_key "
                "text,"
                "  received_at timestamptz, spooled_at timestamptz, caller_name text, caller_phone "
                "text,"
                "  content text, content_norm text, category text, address text, lat float8, lng "
                "float8,"
                "  urgency text, kind text, callback boolean, raw jsonb) "
                "CROSS JOIN LATERAL (SELECT CASE WHEN x.lat IS NULL THEN NULL"
                "  ELSE ST_SetSRID(ST_MakePoint(x.lng, x.lat), 4326) END AS pt) g "
                "ON CONFLICT DO NOTHING "
                "RETURNING tracking_no, id, region_code";

/* Cases for the new petitions, linked, with their assignments (lead and
 * assisting departments) and the first event of each history. */
static const char *const s_insert_cases =
    "WITH x AS MATERIALIZED ("
    "  SELECT x.*, nextval('cases_id_seq') AS case_id"
    "  FROM json_to_recordset($1::json) AS x(i integer, petition_id bigint, status text,"
    "    department_code text, rule_id integer, rule_name text, category text, region_code text,"
    "    urgency text, kind text, lat float8, lng float8, accept_due timestamptz,"
    "    reply_due timestamptz, assists json)),"
    " c AS (INSERT INTO cases (id, status, department_code, rule_id, category, region_code,"
    "    urgency, kind, location, accept_due, reply_due)"
    "  SELECT case_id, status, department_code, rule_id, category, region_code, urgency, kind,"
    "    CASE WHEN lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lng, lat), 4326) END,"
    "    accept_due, reply_due FROM x RETURNING id),"
    " p AS (UPDATE petitions SET case_id = x.case_id FROM x"
    "  WHERE petitions.id = x.petition_id RETURNING petitions.id),"
    " a AS (INSERT INTO assignments (case_id, department_code, role, rule_id, accept_due,"
    "    reply_due)"
    "  SELECT case_id, department_code, 'lead', rule_id, accept_due, reply_due FROM x"
    "  WHERE department_code IS NOT NULL"
    "  UNION ALL"
    "  SELECT x.case_id, d.code, 'assist', x.rule_id, x.accept_due, x.reply_due"
    "  FROM x CROSS JOIN LATERAL json_array_elements_text(x.assists) AS d(code)"
    "  WHERE x.department_code IS NOT NULL RETURNING id),"
    " e AS (INSERT INTO case_events (case_id, actor, type, data)"
    "  SELECT case_id, 'fenbo-dispatcher', status,"
    "    jsonb_build_object('department', department_code, 'rule_id', rule_id,"
    "      'rule', rule_name, 'assists', assists, 'accept_due', accept_due,"
    "      'reply_due', reply_due)"
    "  FROM x RETURNING id) "
    "SELECT x.i, x.case_id, (SELECT count(*) FROM c), (SELECT count(*) FROM p),"
    "  (SELECT count(*) FROM a), (SELECT count(*) FROM e) FROM x";

void batch_item_clear(batch_item_t *it) {
    fb_petition_destroy(&it->p);
    free(it->region_code);
    memset(it, 0, sizeof *it);
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t us) {
    char buf[40];
    return us ? json_string(fb_time_format(us, buf, sizeof buf)) : json_null();
}

static json_t *petitions_json(batch_item_t *items, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = fb_petition_to_json(items[i].p);
        json_t *caller = json_object_get(o, "caller"), *loc = json_object_get(o, "location");
        json_object_set(o, "caller_name", json_object_get(caller, "name"));
        json_object_set(o, "caller_phone", json_object_get(caller, "phone"));
        json_object_set(o, "lat", json_object_get(loc, "lat"));
        json_object_set(o, "lng", json_object_get(loc, "lng"));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *assists_json(const fb_rule_t *r) {
    json_t *a = json_array();
    for (size_t i = 0; r && i < r->n_assists; i++)
        json_array_append_new(a, json_string(r->assists[i]));
    return a;
}

static json_t *cases_json(const router_t *rt, batch_item_t *items, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        batch_item_t *it = &items[i];
        if (!it->is_new)
            continue;
        router_route(rt, it->p, it->region_code, &it->route);
        const fb_rule_t *r = it->route.rule;
        json_t *o = json_pack(
            "{s:I,s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "i", (json_int_t)i,
            "petition_id", (json_int_t)it->petition_id, "status",
            it->route.department ? "dispatched" : "manual", "department_code",
            str_or_null(it->route.department), "rule_id", r ? json_integer(r->id) : json_null(),
            "rule_name", str_or_null(r ? r->name : NULL), "category", str_or_null(it->p->category),
            "region_code", str_or_null(it->region_code), "urgency", it->route.urgency, "kind",
            it->p->kind, "lat", it->p->has_location ? json_real(it->p->lat) : json_null(), "lng",
            it->p->has_location ? json_real(it->p->lng) : json_null(), "accept_due",
            time_or_null(it->route.department ? it->route.accept_due : 0), "reply_due",
            time_or_null(it->route.department ? it->route.reply_due : 0), "assists",
            assists_json(r));
        json_array_append_new(arr, o);
    }
    return arr;
}

static int exec_json(PGconn *db, const char *sql, json_t *param, PGresult **res) {
    char *s = json_dumps(param, JSON_COMPACT);
    json_decref(param);
    if (!s)
        return FB_ENOMEM;
    const char *params[1] = {s};
    *res = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
    free(s);
    if (PQresultStatus(*res) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=batch_statement_failed error=\"%s\"", fb_db_error(db));
        PQclear(*res);
        *res = NULL;
        return FB_EDB;
    }
    return 0;
}

int batch_commit(PGconn *db, const router_t *rt, batch_item_t *items, size_t n) {
    PGresult *r = NULL;
    size_t fresh = 0;
    fb_map_t *by_tracking = fb_map_new();
    if (!by_tracking)
        return FB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        fb_map_put(by_tracking, items[i].p->tracking_no, &items[i], NULL);
    int rc = fb_db_exec(db, "BEGIN", 0, NULL);
    if (rc)
        goto fail;
    if ((rc = exec_json(db, s_insert_petitions, petitions_json(items, n), &r)) != 0)
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        batch_item_t *it = fb_map_get(by_tracking, PQgetvalue(r, i, 0));
        if (!it)
            continue;
        it->is_new = true;
        it->petition_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        it->region_code = PQgetisnull(r, i, 2) ? NULL : strdup(PQgetvalue(r, i, 2));
        fresh++;
    }
    PQclear(r);
    r = NULL;
    if (fresh) {
        if ((rc = exec_json(db, s_insert_cases, cases_json(rt, items, n), &r)) != 0)
            goto fail;
        for (int i = 0; i < PQntuples(r); i++) {
            size_t k = (size_t)strtoull(PQgetvalue(r, i, 0), NULL, 10);
            if (k < n)
                items[k].case_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        }
        PQclear(r);
        r = NULL;
    }
    if ((rc = fb_db_exec(db, "COMMIT", 0, NULL)) != 0)
        goto fail;
    fb_map_destroy(&by_tracking, NULL);
    return 0;
fail:
    PQclear(r);
    fb_map_destroy(&by_tracking, NULL);
    if (PQstatus(db) == CONNECTION_OK)
        fb_db_exec(db, "ROLLBACK", 0, NULL);
    for (size_t i = 0; i < n; i++) {
        items[i].is_new = false;
        items[i].case_id = 0;
    }
    return rc ? rc : FB_EDB;
}

json_t *batch_assignment_json(const batch_item_t *it) {
    const fb_rule_t *r = it->route.rule;
    return json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:o}", "case_id",
                     (json_int_t)it->case_id, "tracking_no", it->p->tracking_no, "department",
                     str_or_null(it->route.department), "rule", str_or_null(r ? r->name : NULL),
                     "rule_id", r ? json_integer(r->id) : json_null(), "assists", assists_json(r),
                     "accept_due", time_or_null(it->route.department ? it->route.accept_due : 0),
                     "reply_due", time_or_null(it->route.department ? it->route.reply_due : 0),
                     "status", it->route.department ? "dispatched" : "manual", "region_code",
                     str_or_null(it->region_code), "received_at",
                     time_or_null(it->p->received_at_us));
}
