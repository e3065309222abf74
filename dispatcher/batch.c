/* batch.c — the dispatcher's transaction. Each statement carries the whole
 * batch as one JSON parameter, so a batch of a thousand petitions costs three
 * round trips, not thousands: BEGIN with the petitions, the duplicate search,
 * and the cases with COMMIT (libpq's pipeline mode sends each pair at
 * once). */
#include "batch.h"
#include "dedup.h"
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
 * before (the same tracking number or idempotency key) are skipped. Each new
 * one is stored with the id of the case it would open (drawn here, the case
 * inserted later in the transaction: the reference is checked at COMMIT), so
 * that only a petition that joins another case is written twice.
 *
 * The parameter is the batch's petitions as they came over the bus, joined
 * into one JSON array: the dispatcher has read and checked each one
 * (fb_petition_loads), and writing them out again only to have PostgreSQL
 * read them back was a fifth of its own time. What the C reading decides —
 * a caller or a location that is not an object counts as none, callback is
 * true only when it is true — is decided here the same way. */
// clang-format off
static const char *const s_insert_petitions =
    "INSERT INTO petitions (tracking_no, channel, idem_key, received_at, spooled_at,"
    "  caller_name, caller_phone, content, content_norm, category, address, location,"
    "  urgency, kind, callback, raw, region_code, case_id) "
    "SELECT x.tracking_no, x.channel, x.idem_key, x.received_at, x.spooled_at,"
    "  x.caller->>'name', x.caller->>'phone', x.content, x.content_norm, x.category, x.address,"
    "  g.pt, x.urgency, x.kind, coalesce(x.callback::text = 'true', false), x.raw,"
    "  " FB_REGION_LOOKUP_SQL("g.pt") ", nextval('cases_id_seq') "
    "FROM json_to_recordset($1::json) AS x(tracking_no text, channel text, idem_key text,"
    "  received_at timestamptz, spooled_at timestamptz, caller json, content text,"
    "  content_norm text, category text, address text, location json, urgency text, kind text,"
    "  callback json, raw jsonb) "
    "CROSS JOIN LATERAL (SELECT CASE WHEN json_typeof(x.location) = 'object'"
    "  THEN ST_SetSRID(ST_MakePoint((x.location->>'lng')::float8,"
    "    (x.location->>'lat')::float8), 4326) END AS pt) g "
    "ON CONFLICT DO NOTHING "
    "RETURNING tracking_no, id, region_code, case_id";
// clang-format on

/* Cases for the new petitions that open one (with the id their petition was
 * stored with), with their assignments (lead and assisting departments) and
 * the first event of each history; petitions that join an open case
 * (join_case, or the case opened by the batch's petition join_i) are linked
 * to it with a "merged" event. Events are appended in case order: each takes
 * its case's row lock (the audit chain), and writers that lock cases in one
 * order cannot deadlock. */
static const char *const s_insert_cases =
    "WITH x AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x(i integer, petition_id bigint,"
    "    new_id bigint, tracking_no text,"
    "    join_case bigint, join_i integer, status text, department_code text, rule_id integer,"
    "    rule_name text, category text, region_code text, urgency text, kind text, lat float8,"
    "    lng float8, accept_due timestamptz, reply_due timestamptz, assists json,"
    "    category_source text, model_version integer, category_confidence real,"
    "    suggestions jsonb, emergency boolean, grid_region text, grid_actor text,"
    "    on_site boolean)),"
    " y AS MATERIALIZED (SELECT x.*, coalesce(x.new_id, x.join_case, l.new_id) AS case_id"
    "  FROM x LEFT JOIN x l ON l.i = x.join_i),"
    " c AS (INSERT INTO cases (id, status, department_code, rule_id, category, region_code,"
    "    urgency, kind, location, accept_due, reply_due, category_source, model_version,"
    "    category_confidence, suggestions, found_by, grid_region_code, solved_on_site)"
    "  SELECT new_id, status, department_code, rule_id, category, region_code, urgency, kind,"
    "    CASE WHEN lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lng, lat), 4326) END,"
    "    accept_due, reply_due, category_source, model_version, category_confidence,"
    "    suggestions, CASE WHEN grid_region IS NOT NULL THEN 'grid' END, grid_region,"
    "    coalesce(on_site, false) FROM y WHERE new_id IS NOT NULL RETURNING id),"
    " p AS (UPDATE petitions SET case_id = y.case_id FROM y"
    "  WHERE y.new_id IS NULL AND petitions.id = y.petition_id RETURNING petitions.id),"
    " a AS (INSERT INTO assignments (case_id, department_code, role, rule_id, accept_due,"
    "    reply_due)"
    "  SELECT case_id, department_code, 'lead', rule_id, accept_due, reply_due FROM y"
    "  WHERE new_id IS NOT NULL AND department_code IS NOT NULL"
    "  UNION ALL"
    "  SELECT y.case_id, d.code, 'assist', y.rule_id, y.accept_due, y.reply_due"
    "  FROM y CROSS JOIN LATERAL json_array_elements_text(y.assists) AS d(code)"
    "  WHERE y.new_id IS NOT NULL AND y.department_code IS NOT NULL RETURNING id),"
    " e AS (INSERT INTO case_events (case_id, actor, type, data)"
    "  SELECT case_id, actor, type, data FROM ("
    /* A grid worker's fix on the spot: found and closed by that worker,
     * never dispatched (its status is 'closed'). */
    "  SELECT case_id, i, 0 AS k, CASE WHEN on_site THEN grid_actor ELSE 'fenbo-dispatcher' END"
    "    AS actor, CASE WHEN new_id IS NULL THEN 'merged' WHEN on_site THEN 'solved_on_site'"
    "    ELSE status END AS type,"
    "    CASE WHEN new_id IS NULL"
    "    THEN jsonb_build_object('petition_id', petition_id, 'tracking_no', tracking_no)"
    "    ELSE jsonb_build_object('department', department_code, 'rule_id', rule_id,"
    "      'rule', rule_name, 'assists', assists, 'accept_due', accept_due,"
    "      'reply_due', reply_due, 'tracking_no', tracking_no, 'category', category,"
    "      'category_source', category_source, 'model_version', model_version,"
    "      'category_confidence', category_confidence, 'grid_region', grid_region) END AS data"
    "  FROM y"
    "  UNION ALL SELECT case_id, i, 1, grid_actor, 'closed',"
    "    jsonb_build_object('solved_on_site', true) FROM y WHERE new_id IS NOT NULL AND on_site"
    /* A manual-queue case the model thinks may be an emergency: the
     * supervisors' alert (the case list's emergency_suggested filter). */
    "  UNION ALL SELECT case_id, i, 1, 'fenbo-dispatcher', 'emergency_suggested',"
    "    jsonb_build_object('urgency', urgency, 'suggestions', suggestions) FROM y"
    "  WHERE new_id IS NOT NULL AND emergency) ev ORDER BY case_id, i, k RETURNING id),"
    " u AS (UPDATE cases SET updated_at = now()"
    "  FROM (SELECT DISTINCT join_case FROM y WHERE join_case IS NOT NULL) j"
    "  WHERE cases.id = j.join_case RETURNING cases.id) "
    "SELECT y.i, y.case_id, (SELECT count(*) FROM c), (SELECT count(*) FROM p),"
    "  (SELECT count(*) FROM a), (SELECT count(*) FROM e), (SELECT count(*) FROM u) FROM y";

void batch_item_clear(batch_item_t *it) {
    fb_petition_destroy(&it->p);
    free(it->text);
    free(it->region_code);
    free(it->join_department);
    json_decref(it->suggestions);
    memset(it, 0, sizeof *it);
    it->join_item = -1;
}

bool batch_item_merged(const batch_item_t *it) {
    return it->join_case || it->join_item >= 0;
}

/* The department a petition ends up with: its route's, or its case's. */
static const char *item_department(const batch_item_t *items, const batch_item_t *it) {
    if (it->join_case)
        return it->join_department;
    if (it->join_item >= 0)
        return items[it->join_item].route.department;
    return it->route.department;
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t us) {
    char buf[40];
    return us ? json_string(fb_time_format(us, buf, sizeof buf)) : json_null();
}

/* The petitions as they came, as one JSON array (see s_insert_petitions). */
static char *petitions_text(const batch_item_t *items, size_t n) {
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += items[i].text_len + 1;
    char *s = malloc(len + 1), *w = s;
    if (!s)
        return NULL;
    *w++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        memcpy(w, items[i].text, items[i].text_len);
        w += items[i].text_len;
    }
    *w++ = ']';
    *w = '\0';
    return s;
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
        json_t *o;
        if (batch_item_merged(it)) {
            o = json_pack("{s:I,s:I,s:s,s:o,s:o}", "i", (json_int_t)i, "petition_id",
                          (json_int_t)it->petition_id, "tracking_no", it->p->tracking_no,
                          "join_case", it->join_case ? json_integer(it->join_case) : json_null(),
                          "join_i", it->join_case ? json_null() : json_integer(it->join_item));
            json_array_append_new(arr, o);
            continue;
        }
        /* Fixed on the spot by a grid worker: closed, no department's work. */
        bool on_site = it->p->resolved_on_site;
        if (!on_site)
            router_route(rt, it->p, it->region_code, &it->route);
        else
            it->route = (route_result_t){.urgency = it->p->urgency};
        const fb_rule_t *r = it->route.rule;
        if (!it->route.department && !on_site) {
            it->suggestions =
                router_suggestions(rt, it->p, it->region_code, &it->cls, &it->emergency);
            /* Safety first: a possible emergency waits in the queue as urgent. */
            if (it->emergency && strcmp(it->route.urgency, "normal") == 0)
                it->route.urgency = "urgent";
        }
        o = json_pack("{s:I,s:I,s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "i",
                      (json_int_t)i, "petition_id", (json_int_t)it->petition_id, "new_id",
                      (json_int_t)it->case_id, "tracking_no", it->p->tracking_no, "status",
                      on_site                ? "closed"
                      : it->route.department ? "dispatched"
                                             : "manual",
                      "department_code", str_or_null(it->route.department), "rule_id",
                      r ? json_integer(r->id) : json_null(), "rule_name",
                      str_or_null(r ? r->name : NULL), "category", str_or_null(it->p->category),
                      "region_code", str_or_null(it->region_code), "urgency", it->route.urgency,
                      "kind", it->p->kind, "lat",
                      it->p->has_location ? json_real(it->p->lat) : json_null(), "lng",
                      it->p->has_location ? json_real(it->p->lng) : json_null(), "accept_due",
                      time_or_null(it->route.department ? it->route.accept_due : 0), "reply_due",
                      time_or_null(it->route.department ? it->route.reply_due : 0), "assists",
                      assists_json(r));
        json_object_set_new(o, "category_source", str_or_null(it->cls.source));
        json_object_set_new(o, "model_version",
                            it->cls.model_version ? json_integer(it->cls.model_version)
                                                  : json_null());
        json_object_set_new(o, "category_confidence",
                            it->cls.model_version ? json_real(it->cls.confidence) : json_null());
        json_object_set(o, "suggestions", it->suggestions ? it->suggestions : json_null());
        json_object_set_new(o, "emergency", json_boolean(it->emergency));
        if (it->p->grid_region) {
            char actor[160];
            snprintf(actor, sizeof actor, "grid:%s", it->p->grid_worker);
            json_object_set_new(o, "grid_region", json_string(it->p->grid_region));
            json_object_set_new(o, "grid_actor", json_string(actor));
            json_object_set_new(o, "on_site", json_boolean(on_site));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static char *cases_text(const router_t *rt, batch_item_t *items, size_t n) {
    json_t *arr = cases_json(rt, items, n);
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s;
}

bool batch_db_usable(PGconn *db) {
    return PQstatus(db) == CONNECTION_OK && PQpipelineStatus(db) == PQ_PIPELINE_OFF;
}

int batch_prepare(PGconn *db) {
    /* A plan of these statements cannot depend on the batch (one JSON
     * document), and planning each anew (about half a millisecond) was a
     * large part of a small batch's cost: plan them once. */
    if (fb_db_exec(db, "SET plan_cache_mode = force_generic_plan", 0, NULL) != 0)
        return FB_EDB;
    /* JIT compiling these statements took 33 ms of a 34 ms duplicate search
     * for two petitions: far more than it ever saves on a batch. */
    if (fb_db_exec(db, "SET jit = off", 0, NULL) != 0)
        return FB_EDB;
    const struct {
        const char *name, *sql;
    } stmts[] = {
        {"insert_petitions", s_insert_petitions},
        {"insert_cases", s_insert_cases},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(stmts); i++) {
        PGresult *r = PQprepare(db, stmts[i].name, stmts[i].sql, 1, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            fb_log(FB_LOG_ERROR, "event=prepare_failed statement=%s error=\"%s\"", stmts[i].name,
                   fb_db_error(db));
            return FB_EDB;
        }
    }
    return dedup_prepare(db);
}

/* Sends a bare command (BEGIN, COMMIT), then the prepared statement `name`
 * with the batch as its one parameter (text, freed here), or the other way
 * round, in one round trip, and reads their results: the statement's rows
 * into *res. A failure of the first aborts the second. The connection
 * leaves pipeline mode unless it broke (the caller then drops it). */
static int exec_pair(PGconn *db, const char *before, const char *name, char *param,
                     const char *after, PGresult **res) {
    *res = NULL;
    if (name && !param)
        return FB_ENOMEM;
    const char *params[1] = {param};
    bool sent = PQenterPipelineMode(db) == 1;
    if (sent && before)
        sent = PQsendQueryParams(db, before, 0, NULL, NULL, NULL, NULL, 0) == 1;
    if (sent && name)
        sent = PQsendQueryPrepared(db, name, 1, params, NULL, NULL, 0) == 1;
    if (sent && after)
        sent = PQsendQueryParams(db, after, 0, NULL, NULL, NULL, NULL, 0) == 1;
    sent = sent && PQpipelineSync(db) == 1;
    free(param);
    int rc = sent ? 0 : FB_EDB;
    int queries = sent ? (before != NULL) + (name != NULL) + (after != NULL) : 0;
    for (int q = 0; q < queries; q++) {
        PGresult *r = PQgetResult(db);
        if (!r && PQstatus(db) != CONNECTION_OK) {
            rc = FB_EDB; /* no result at all: the connection is gone */
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK && !*res) {
            *res = r;
            r = NULL;
        } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !rc) {
            rc = FB_EDB;
            fb_log(FB_LOG_WARN, "event=batch_statement_failed error=\"%s\"",
                   r ? PQresultErrorMessage(r) : fb_db_error(db));
        }
        PQclear(r);
        PQclear(PQgetResult(db)); /* the NULL that ends each query's results */
    }
    if (sent && PQstatus(db) == CONNECTION_OK)
        PQclear(PQgetResult(db)); /* PGRES_PIPELINE_SYNC */
    if (PQexitPipelineMode(db) != 1 && !rc)
        rc = FB_EDB;
    if (!sent)
        fb_log(FB_LOG_WARN, "event=batch_statement_failed error=\"%s\"", fb_db_error(db));
    if (rc) {
        PQclear(*res);
        *res = NULL;
    }
    return rc;
}

int batch_commit(PGconn *db, const router_t *rt, const dedup_opts_t *dd, batch_item_t *items,
                 size_t n) {
    PGresult *r = NULL;
    size_t fresh = 0;
    fb_map_t *by_tracking = fb_map_new();
    if (!by_tracking)
        return FB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        fb_map_put(by_tracking, items[i].p->tracking_no, &items[i], NULL);
    int64_t t0 = fb_now_us(), t1 = 0, t2 = 0;
    int rc = exec_pair(db, "BEGIN", "insert_petitions", petitions_text(items, n), NULL, &r);
    if (rc)
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        batch_item_t *it = fb_map_get(by_tracking, PQgetvalue(r, i, 0));
        if (!it)
            continue;
        it->is_new = true;
        it->petition_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        it->region_code = PQgetisnull(r, i, 2) ? NULL : strdup(PQgetvalue(r, i, 2));
        it->case_id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        fresh++;
    }
    /* The category first: the duplicate search and the rules need it. */
    int64_t classify_ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].is_new && !items[i].classified) {
            router_classify(rt, items[i].p, &items[i].cls);
            items[i].classified = true;
            classify_ns += items[i].cls.classify_ns;
        }
    }
    PQclear(r);
    r = NULL;
    t1 = fb_now_us();
    if (fresh && (rc = dedup_find(db, dd, items, n)) != 0)
        goto fail;
    t2 = fb_now_us();
    rc = exec_pair(db, NULL, fresh ? "insert_cases" : NULL, fresh ? cases_text(rt, items, n) : NULL,
                   "COMMIT", &r);
    if (rc)
        goto fail;
    for (int i = 0; r && i < PQntuples(r); i++) {
        size_t k = (size_t)strtoull(PQgetvalue(r, i, 0), NULL, 10);
        if (k < n)
            items[k].case_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    r = NULL;
    fb_log(FB_LOG_DEBUG,
           "event=batch_timing petitions=%zu new=%zu store_us=%" PRId64 " dedup_us=%" PRId64
           " cases_commit_us=%" PRId64 " classify_us=%" PRId64,
           n, fresh, t1 - t0, t2 - t1, fb_now_us() - t2, classify_ns / 1000);
    fb_map_destroy(&by_tracking, NULL);
    return 0;
fail:
    PQclear(r);
    fb_map_destroy(&by_tracking, NULL);
    if (batch_db_usable(db))
        fb_db_exec(db, "ROLLBACK", 0, NULL);
    /* As they came, but for the classification (batch_item_t.classified):
     * the items may be tried again. */
    for (size_t i = 0; i < n; i++) {
        items[i].is_new = false;
        items[i].petition_id = 0;
        items[i].case_id = 0;
        free(items[i].region_code);
        items[i].region_code = NULL;
        items[i].join_case = 0;
        items[i].join_item = -1;
        free(items[i].join_department);
        items[i].join_department = NULL;
        json_decref(items[i].suggestions);
        items[i].suggestions = NULL;
        items[i].emergency = false;
    }
    return rc ? rc : FB_EDB;
}

json_t *batch_assignment_json(const batch_item_t *items, const batch_item_t *it) {
    const fb_rule_t *r = batch_item_merged(it) ? NULL : it->route.rule;
    const char *dept = item_department(items, it);
    bool routed = !batch_item_merged(it) && dept;
    return json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:o}", "case_id",
                     (json_int_t)it->case_id, "tracking_no", it->p->tracking_no, "department",
                     str_or_null(dept), "rule", str_or_null(r ? r->name : NULL), "rule_id",
                     r ? json_integer(r->id) : json_null(), "assists", assists_json(r),
                     "accept_due", time_or_null(routed ? it->route.accept_due : 0), "reply_due",
                     time_or_null(routed ? it->route.reply_due : 0), "status",
                     batch_item_merged(it) ? "merged"
                     : dept                ? "dispatched"
                                           : "manual",
                     "region_code", str_or_null(it->region_code), "received_at",
                     time_or_null(it->p->received_at_us));
}

const char *batch_item_department(const batch_item_t *items, const batch_item_t *it) {
    return item_department(items, it);
}
