/* grid.c — the grid's part of the closed loop (网格): verifications on site
 * (核查) of a department's "resolved", their escalation to the street office
 * when overdue, and what a street office and a grid worker see.
 *
 * A verification task is opened in the reply's own transaction; the grid
 * worker's decision is checked by PostgreSQL as that worker (row-level
 * security: only tasks in its area, schema/0016_grid.sql) and its
 * consequence — a rejection reopens the case to the same department, as an
 * unsatisfied rating does — is written as the system's job (fenbo.role
 * 'system' for the rest of the transaction only). */
#include "grid.h"
#include "api_util.h"
#include "case_sql.h"
#include "casetx.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_photo.h"
#include "fb_upload.h"
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELD_BYTES 8192

/* A task for the grid (or community) holding the case's point, to the
 * street office of that region, unless one is open already. $1 case, $2 due. */
static const char s_open_sql[] =
    "INSERT INTO verification_tasks (case_id, replied_event_id, department_code, region_code,"
    " street_code, due)"
    " SELECT c.id, (SELECT max(e.id) FROM case_events e WHERE e.case_id = c.id"
    "  AND e.type = 'replied'), c.department_code, v.region, fenbo_street_office(v.region),"
    "  $2::timestamptz"
    " FROM cases c CROSS JOIN LATERAL (SELECT fenbo_verification_region(c.location) AS region) v"
    " WHERE c.id = $1::bigint AND c.location IS NOT NULL AND v.region IS NOT NULL"
    "  AND c.department_code IS NOT NULL"
    " ON CONFLICT DO NOTHING RETURNING id, region_code, due";

int fb_grid_open_verification(fb_casetx_t *t, int64_t case_id, int verify_hours, json_t **task) {
    char due[40], idb[24];
    *task = NULL;
    int rc = fb_casetx_work_hours_due(t, verify_hours, due);
    if (rc)
        return rc;
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    if ((rc = fb_casetx_as_system(t)) != 0)
        return rc;
    const char *params[] = {idb, due};
    PGresult *r = fb_casetx_query(t, s_open_sql, 2, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    if (PQntuples(r) == 1) {
        *task = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)atoll(PQgetvalue(r, 0, 0)), "region",
                          PQgetvalue(r, 0, 1), "due", PQgetvalue(r, 0, 2));
        fb_log(FB_LOG_INFO, "event=verification_opened case_id=%s region=%s due=%s", idb,
               PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    return 0;
}

/* ---- the grid worker's decision -------------------------------------------- */

/* The decision: {"confirmed": bool, "reason": text, "note": text}, as the
 * body (JSON) or its verify part (multipart, with photo parts). */
typedef struct {
    bool confirmed;
    const char *reason, *note;
    json_t *photos; /* [{sha256, content_type, bytes}] once stored */
} s_decision_t;

/* Reads and checks the decision, stores its photos; answers and returns
 * false when it is wrong. *doc holds the strings (the caller's). */
static bool read_decision(fb_worker_t *w, fb_http_req_t *req, json_t **doc, s_decision_t *d) {
    /* Photos as phones send them, compressed: the body's 8 MiB bound them. */
    fb_upload_t f = {.json_name = "verify",
                     .what = "verification",
                     .json_max = MAX_FIELD_BYTES,
                     .photo_max = SIZE_MAX};
    const char *ctype = fb_http_header(req, "Content-Type");
    const char *text;
    size_t len;
    bool ok = false;
    *doc = NULL;
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        if (fb_upload_read(req, &f) != 0) {
            fb_http_error(req, f.refusal.status, f.refusal.code, f.refusal.field, "%s",
                          f.refusal.message);
            goto done;
        }
        if (!f.have_json) {
            fb_http_error(req, 422, "missing_field", "verify",
                          "part verify (the decision as JSON) is required");
            goto done;
        }
        text = f.json.data;
        len = f.json.len;
    } else {
        text = fb_http_body(req, &len);
    }
    json_error_t e;
    *doc = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(*doc)) {
        fb_http_error(req, 400, "bad_json", NULL, "the decision must be a JSON object: %s", e.text);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(*doc, key, v) {
        if (strcmp(key, "confirmed") != 0 && strcmp(key, "reason") != 0 &&
            strcmp(key, "note") != 0) {
            fb_http_error(req, 422, "unknown_field", key, "unknown field '%.64s'", key);
            goto done;
        }
    }
    json_t *c = json_object_get(*doc, "confirmed");
    if (!json_is_boolean(c)) {
        fb_http_error(req, 422, c ? "invalid_field" : "missing_field", "confirmed",
                      "confirmed must be true (the problem is solved) or false (it is not)");
        goto done;
    }
    d->confirmed = json_is_true(c);
    d->reason = json_string_value(json_object_get(*doc, "reason"));
    d->note = json_string_value(json_object_get(*doc, "note"));
    if (!d->confirmed && (!d->reason || !d->reason[strspn(d->reason, " \t\r\n")])) {
        fb_http_error(req, 422, "missing_field", "reason", "a rejection needs its reason");
        goto done;
    }
    if (!d->confirmed && f.nphotos == 0) {
        fb_http_error(req, 422, "missing_field", "photo",
                      "a rejection needs a photo of what is still wrong (multipart part photo)");
        goto done;
    }
    d->photos = json_array();
    for (size_t i = 0; i < f.nphotos; i++) {
        char sha[65];
        const char *type;
        int rc = fb_photo_store(w->cfg.data_dir, f.photos[i].data, f.photos[i].len, sha, &type);
        if (rc == FB_EINVAL) {
            fb_http_error(req, 415, "unsupported_photo", "photo",
                          "photo %zu is not a JPEG or PNG image", i + 1);
            goto done;
        }
        if (rc) {
            fb_http_error(req, 503, "photo_store_failed", "photo", "photo %zu could not be stored",
                          i + 1);
            goto done;
        }
        json_array_append_new(d->photos, json_pack("{s:s,s:s,s:I}", "sha256", sha, "content_type",
                                                   type, "bytes", (json_int_t)f.photos[i].len));
    }
    ok = true;
done:
    fb_upload_free(&f);
    return ok;
}

/* The open task of the case, as the grid worker sees it (only in its
 * area), locked. $1 case. */
static const char s_task_sql[] = "SELECT id, region_code FROM verification_tasks"
                                 " WHERE case_id = $1::bigint AND outcome IS NULL FOR UPDATE";

static const char s_decide_sql[] =
    "UPDATE verification_tasks SET outcome = $2, reason = nullif($3, ''), photos = $4::jsonb,"
    " decided_by = $5, decided_at = now() WHERE id = $1::bigint"
    " RETURNING decided_at <= due, decided_at";

static const char s_summary_sql[] =
    "SELECT json_build_object('case', " SQL_CASE_SUMMARY ", 'verification', (SELECT row_to_json(v)"
    " FROM verification_tasks v WHERE v.id = $2::bigint)) FROM cases c WHERE c.id = $1::bigint";

void fb_grid_verify(fb_worker_t *w, fb_http_req_t *req, int64_t case_id, const fb_actor_t *who) {
    fb_casetx_t t = {0};
    fb_case_row_t row = {0};
    json_t *doc = NULL, *summary = NULL, *data = NULL;
    s_decision_t d = {0};
    bool in_tx = false;
    char idb[24], task[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    if (!read_decision(w, req, &doc, &d))
        goto done;
    t.db = fb_dblink_conn(w->db);
    if (!t.db || fb_casetx_exec(&t, "BEGIN", 0, NULL) != 0)
        goto db_failed;
    in_tx = true;
    const char *tp[] = {idb};
    PGresult *r = fb_casetx_query(&t, s_task_sql, 1, tp, PGRES_TUPLES_OK);
    if (!r)
        goto db_failed;
    if (PQntuples(r) != 1) {
        PQclear(r);
        fb_http_error(req, 404, "not_found", NULL, "no open verification of case %s in your area",
                      idb);
        goto done;
    }
    snprintf(task, sizeof task, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    int rc = fb_casetx_lock(&t, case_id, NULL, &row);
    if (rc == FB_ENOTFOUND) {
        fb_http_error(req, 404, "not_found", NULL, "no open verification of case %s in your area",
                      idb);
        goto done;
    }
    if (rc)
        goto db_failed;
    if (row.status != FB_CASE_REPLIED && row.status != FB_CASE_RATED) {
        fb_http_error(req, 409, "illegal_transition", NULL,
                      "case %s is %s: only a replied case is verified", idb,
                      fb_case_status_name(row.status));
        goto done;
    }
    char *photos = json_dumps(d.photos, JSON_COMPACT);
    const char *dp[] = {task, d.confirmed ? "confirmed" : "rejected", d.reason ? d.reason : "",
                        photos, who->name};
    r = photos ? fb_casetx_query(&t, s_decide_sql, 5, dp, PGRES_TUPLES_OK) : NULL;
    free(photos);
    if (!r)
        goto db_failed;
    bool on_time = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    data = json_pack("{s:I,s:b,s:b,s:O}", "task_id", (json_int_t)atoll(task), "confirmed",
                     d.confirmed, "on_time", on_time, "photos", d.photos);
    if (d.reason)
        json_object_set_new(data, "reason", json_string(d.reason));
    if (d.note)
        json_object_set_new(data, "note", json_string(d.note));
    if (fb_casetx_event(&t, case_id, who->name, d.confirmed ? "verified" : "verification_rejected",
                        data) != 0)
        goto db_failed;
    /* The case's own row: updated_at, and the lifecycle's move on a
     * rejection (written as the system's job, as the ratings job reopens). */
    if (fb_casetx_as_system(&t) != 0)
        goto db_failed;
    if (!d.confirmed) {
        if (fb_casetx_reopen(&t, &row, who->name, "verification_rejected", "verification", data) !=
            0)
            goto db_failed;
    } else if (fb_casetx_set_status(&t, case_id, row.status) != 0) {
        goto db_failed;
    }
    const char *sp[] = {idb, task};
    if (fb_db_query_json(t.db, s_summary_sql, 2, sp, &summary) != 0 ||
        fb_casetx_exec(&t, "COMMIT", 0, NULL) != 0)
        goto db_failed;
    in_tx = false;
    fb_log(FB_LOG_INFO, "event=case_%s case_id=%s task_id=%s actor=%s on_time=%d",
           d.confirmed ? "verified" : "verification_rejected", idb, task, who->name, on_time);
    fb_http_respond_json(req, 200, summary);
    summary = NULL;
    goto done;
db_failed:
    if (!t.db || fb_dblink_check(w->db))
        fb_http_error(req, 503, "db_unavailable", NULL,
                      "the database is unavailable; try again later");
    else
        fb_http_error(req, 500, "internal", NULL, "database error");
done:
    if (in_tx && t.db && PQstatus(t.db) == CONNECTION_OK)
        PQclear(PQexec(t.db, "ROLLBACK"));
    fb_casetx_row_clear(&row);
    json_decref(summary);
    json_decref(data);
    json_decref(d.photos);
    json_decref(doc);
}

/* ---- lists ------------------------------------------------------------------- */

/* The verification tasks the caller may see (row-level security: a grid
 * worker its area's, a department those of its cases and, as a street
 * office, those escalated to it; the desk and supervisors all), open ones
 * or all ($1 'open'|'all'), with their case's summary. */
static const char s_list_sql[] =
    "SELECT coalesce(json_agg(json_build_object('id', v.id, 'case_id', v.case_id,"
    " 'department', v.department_code, 'region_code', v.region_code, 'region', r.name,"
    " 'street_office', v.street_code, 'due', v.due, 'created_at', v.created_at,"
    " 'outcome', v.outcome, 'reason', v.reason, 'photos', v.photos,"
    " 'decided_by', v.decided_by, 'decided_at', v.decided_at, 'escalated_at', v.escalated_at,"
    " 'overdue', v.outcome IS NULL AND v.due < now(),"
    " 'case', (SELECT json_build_object('status', c.status, 'category', c.category,"
    "   'reply', (SELECT e.data->>'result' FROM case_events e WHERE e.id = v.replied_event_id))"
    "   FROM cases c WHERE c.id = v.case_id))"
    " ORDER BY v.due, v.id), '[]'::json)"
    " FROM (SELECT * FROM verification_tasks v WHERE ($1 = 'all' OR v.outcome IS NULL)"
    "  ORDER BY v.due, v.id LIMIT 500) v LEFT JOIN regions r ON r.code = v.region_code";

void fb_grid_api_verifications(fb_worker_t *w, fb_http_req_t *req) {
    const char *status = fb_http_query(req, "status");
    if (status && strcmp(status, "open") != 0 && strcmp(status, "all") != 0) {
        fb_http_error(req, 400, "invalid_query", "status",
                      "status must be open (the default) or all");
        return;
    }
    const char *params[] = {status ? status : "open"};
    json_t *rows;
    if (fb_api_query_json(w, req, s_list_sql, 1, params, &rows) != 0)
        return;
    fb_http_respond_json(req, 200, json_pack("{s:o}", "verifications", rows));
}

/* A street office's one list (事权归街道、指挥在社区): the street it holds,
 * the grid's reports in it (the last 30 days), its open verifications and
 * the hotspots in it. $1 the department. */
static const char s_street_sql[] =
    "WITH s AS (SELECT r.code, r.name FROM jurisdictions j JOIN regions r"
    "  ON r.code = j.region_code WHERE j.department_code = $1 AND r.level = 3)"
    " SELECT json_build_object("
    " 'streets', (SELECT coalesce(json_agg(json_build_object('code', code, 'name', name)"
    "   ORDER BY code), '[]'::json) FROM s),"
    " 'reports', (SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]'::json) FROM ("
    "   SELECT c.id, c.status, c.category, c.department_code AS department,"
    "    c.grid_region_code AS grid, c.solved_on_site, c.created_at FROM cases c"
    "   WHERE c.found_by = 'grid' AND c.created_at > now() - interval '30 days'"
    "    AND EXISTS (SELECT 1 FROM s WHERE starts_with(c.grid_region_code, s.code))"
    "   ORDER BY c.id DESC LIMIT 200) x),"
    " 'verifications', (SELECT coalesce(json_agg(json_build_object('id', v.id,"
    "   'case_id', v.case_id, 'department', v.department_code, 'region_code', v.region_code,"
    "   'due', v.due, 'escalated_at', v.escalated_at, 'overdue', v.due < now())"
    "   ORDER BY v.due), '[]'::json) FROM verification_tasks v"
    "   WHERE v.outcome IS NULL AND (v.street_code = $1"
    "    OR EXISTS (SELECT 1 FROM s WHERE starts_with(v.region_code, s.code)))),"
    " 'hotspots', (SELECT coalesce(json_agg(json_build_object('id', h.id,"
    "   'category', h.category, 'region_code', h.region_code, 'petitions', h.petitions,"
    "   'first_at', h.first_at, 'last_at', h.last_at) ORDER BY h.id DESC), '[]'::json)"
    "   FROM hotspot_alerts h WHERE h.alerted_at > now() - interval '7 days'"
    "    AND (h.department_code = $1"
    "     OR EXISTS (SELECT 1 FROM s WHERE starts_with(h.region_code, s.code)))))";

void fb_grid_api_street(fb_worker_t *w, fb_http_req_t *req, const char *department) {
    if (!department) {
        fb_http_error(req, 403, "forbidden", NULL, "the street's list is a street office's");
        return;
    }
    const char *params[] = {department};
    json_t *doc;
    if (fb_api_query_json(w, req, s_street_sql, 1, params, &doc) != 0)
        return;
    if (json_array_size(json_object_get(doc, "streets")) == 0) {
        json_decref(doc);
        fb_http_error(req, 403, "forbidden", NULL, "department %s holds no street", department);
        return;
    }
    fb_http_respond_json(req, 200, doc);
}

/* ---- escalation ------------------------------------------------------------- */

/* Open verifications past due, not escalated yet, of cases still waiting
 * for their residents: to the street office, with an event on the case. $1
 * batch. */
static const char s_escalate_sql[] =
    "WITH d AS (SELECT v.id, v.case_id, v.street_code, v.region_code, v.due"
    "  FROM verification_tasks v JOIN cases c ON c.id = v.case_id"
    "  WHERE v.outcome IS NULL AND v.escalated_at IS NULL AND v.due <= now()"
    "   AND c.status IN ('replied', 'rated')"
    "  ORDER BY v.case_id LIMIT $1::int FOR UPDATE OF v SKIP LOCKED),"
    " u AS (UPDATE verification_tasks t SET escalated_at = now() FROM d WHERE t.id = d.id"
    "  RETURNING t.id),"
    " e AS (INSERT INTO case_events (case_id, actor, type, data)"
    "  SELECT case_id, 'fenbo-worker', 'verification_overdue', jsonb_build_object('task_id', id,"
    "   'region_code', region_code, 'street_office', street_code, 'due', due)"
    "  FROM d ORDER BY case_id RETURNING id)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM e)";

int fb_grid_escalate(PGconn *db, int batch, int *done) {
    char b[16];
    snprintf(b, sizeof b, "%d", batch);
    const char *params[] = {b};
    *done = 0;
    PGresult *r = PQexecParams(db, s_escalate_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=verification_escalation_failed error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    *done = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (*done)
        fb_log(FB_LOG_INFO, "event=verifications_escalated count=%d", *done);
    return 0;
}
