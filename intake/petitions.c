/* petitions.c — residents' follow-up: the progress of a petition by its
 * tracking number, and the resident's rating of the outcome.
 *
 *   GET  /api/v1/petitions/{tracking_no}[?proof=…]
 *   POST /api/v1/petitions/{tracking_no}/rating
 *
 * Public reads prove nothing about a person (DESIGN.md): without proof the
 * answer holds category, status, department, times and place only. The
 * resident who filed proves it with the petition's follow-up code (given
 * only to them, in the 202 answer); only then do they see their own text
 * and the reply, and only then may they rate. Wrong codes are limited per
 * tracking number and per client (followup.c: 429 with Retry-After). The
 * last four digits of a phone prove nothing here: they serve an operator on
 * a callback, in the worker. Reads and ratings go to PostgreSQL on the
 * thread pool (intake_db_query). */
#include "fb_log.h"
#include "intake.h"

#include <stdlib.h>
#include <string.h>

/* $2 is "true" when intake has checked the follow-up code (followup.c):
 * nothing secret is in the database, so the proof is not checked there. */
#define PROOF_SQL "$2::boolean"

/* The progress a resident sees: the case's steps, not the office's internal
 * ones (audit reads, timers, anonymisation, merges of other residents). */
static const char *const s_show_sql =
    "SELECT json_build_object("
    " 'tracking_no', p.tracking_no, 'channel', p.channel, 'received_at', p.received_at,"
    " 'category', p.category, 'category_name', cat.name,"
    " 'status', coalesce(c.status, 'received'), 'department', d.name,"
    " 'place', reg.name, 'accept_due', c.accept_due, 'reply_due', c.reply_due,"
    " 'petitions_in_case', (SELECT count(*) FROM petitions q WHERE q.case_id = c.id),"
    " 'progress', (SELECT coalesce(json_agg(json_build_object('at', e.at, 'event', e.type)"
    "                                       ORDER BY e.id), '[]')"
    "              FROM case_events e WHERE e.case_id = c.id AND e.type IN ("
    "                'dispatched', 'manual', 'redispatched', 'assigned', 'delivered',"
    "                'accepted', 'extension_approved', 'replied', 'rated',"
    "                'callback_recorded', 'reopened', 'closed')),"
    " 'rated', EXISTS (SELECT 1 FROM ratings r WHERE r.petition_id = p.id),"
    " 'proven', " PROOF_SQL ","
    " 'content', CASE WHEN " PROOF_SQL " THEN p.content END,"
    " 'reply', CASE WHEN " PROOF_SQL " THEN (SELECT e.data->>'result' FROM case_events e"
    "   WHERE e.case_id = c.id AND e.type = 'replied' ORDER BY e.id DESC LIMIT 1) END)"
    " FROM petitions p LEFT JOIN cases c ON c.id = p.case_id"
    " LEFT JOIN departments d ON d.code = c.department_code"
    " LEFT JOIN categories cat ON cat.code = p.category"
    " LEFT JOIN regions reg ON reg.code = p.region_code"
    " WHERE p.tracking_no = $1";

/* One statement: check the proof and the case's status under a row lock,
 * record the rating (once per petition) and its event, and move a replied
 * case to rated. The counts returned say which check refused. */
static const char *const s_rate_sql =
    "WITH p AS ("
    "  SELECT p.id, p.case_id, p.channel, c.status, " PROOF_SQL " AS proven"
    "  FROM petitions p JOIN cases c ON c.id = p.case_id"
    "  WHERE p.tracking_no = $1 FOR UPDATE OF c),"
    " prior AS (SELECT r.id FROM ratings r JOIN p ON r.petition_id = p.id),"
    " ins AS (INSERT INTO ratings (case_id, petition_id, resolved, satisfaction, comment, source)"
    "  SELECT case_id, id, $3::boolean, $4, nullif($5, ''), channel FROM p"
    "  WHERE proven AND status IN ('replied', 'rated') AND NOT EXISTS (SELECT 1 FROM prior)"
    "  ON CONFLICT (petition_id) DO NOTHING RETURNING id, case_id),"
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"
    "  SELECT ins.case_id, 'resident:' || p.channel, 'rated',"
    "    jsonb_build_object('tracking_no', $1::text, 'resolved', $3::boolean,"
    "                       'satisfaction', $4::text)"
    "  FROM ins, p RETURNING id),"
    " up AS (UPDATE cases SET status = 'rated', updated_at = now()"
    "  WHERE id IN (SELECT case_id FROM ins) AND status = 'replied' RETURNING id) "
    "SELECT (SELECT count(*) FROM p), coalesce((SELECT bool_or(proven) FROM p), false),"
    "  (SELECT min(status) FROM p), (SELECT count(*) FROM prior), (SELECT count(*) FROM ins)";

static const char *const s_roles[] = {"hotline",  "miniapp", "open311",    "mailbox",
                                      "operator", "admin",   "supervisor", NULL};

/* Tracking numbers are short and printable: anything else cannot exist. */
static bool tracking_like(const char *s, size_t n) {
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void db_unavailable(fb_http_req_t *req) {
    fb_http_error(req, 503, "db_unavailable", NULL,
                  "petition records cannot be read right now; try again shortly");
}

static void on_shown(void *ud, PGresult *res) {
    fb_http_req_t *req = ud;
    if (!res) {
        db_unavailable(req);
        return;
    }
    if (PQntuples(res) != 1) {
        fb_http_error(req, 404, "not_found", "tracking_no", "no petition has this tracking number");
        return;
    }
    json_t *j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    /* Unproven reads carry no text at all, not even empty fields. */
    if (j && !json_is_true(json_object_get(j, "proven"))) {
        json_object_del(j, "content");
        json_object_del(j, "reply");
    }
    fb_http_respond_json(req, j ? 200 : 500, j);
}

static void on_rated(void *ud, PGresult *res) {
    fb_http_req_t *req = ud;
    if (!res) {
        db_unavailable(req);
        return;
    }
    long found = atol(PQgetvalue(res, 0, 0)), prior = atol(PQgetvalue(res, 0, 3));
    bool proven = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    const char *status = PQgetvalue(res, 0, 2);
    long inserted = atol(PQgetvalue(res, 0, 4));
    if (inserted == 1) {
        fb_http_respond_json(req, 200, json_pack("{s:b}", "rated", 1));
    } else if (!found) {
        fb_http_error(req, 404, "not_found", "tracking_no",
                      "no petition has this tracking number (yet)");
    } else if (!proven) {
        fb_http_error(req, 403, "proof_required", "proof",
                      "the proof does not match this petition: give the follow-up code you "
                      "received with your tracking number");
    } else if (prior) {
        fb_http_error(req, 409, "already_rated", NULL, "this petition has been rated already");
    } else {
        fb_http_error(req, 409, "not_replied", NULL,
                      "the case is %s: it can be rated once the department has replied", status);
    }
}

static void rate(intake_t *in, fb_http_req_t *req, const char *tracking_no) {
    size_t len;
    const char *body = fb_http_body(req, &len);
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    const char *proof = json_string_value(json_object_get(j, "proof"));
    const json_t *resolved = json_object_get(j, "resolved");
    const char *sat = json_string_value(json_object_get(j, "satisfaction"));
    const json_t *comment = json_object_get(j, "comment");
    if (!json_is_object(j)) {
        fb_http_error(req, 400,
                      json_error_code(&je) == json_error_invalid_utf8 ? "invalid_utf8"
                                                                      : "malformed_json",
                      NULL, "body must be a JSON object");
    } else if (!proof || !*proof) {
        fb_http_error(req, 403, "proof_required", "proof",
                      "proof is required: the follow-up code you received with your tracking "
                      "number");
    } else if (!json_is_boolean(resolved)) {
        fb_http_error(req, 422, "invalid_field", "resolved", "resolved must be true or false");
    } else if (!sat || (strcmp(sat, "satisfied") != 0 && strcmp(sat, "basically_satisfied") != 0 &&
                        strcmp(sat, "unsatisfied") != 0)) {
        fb_http_error(req, 422, "invalid_field", "satisfaction",
                      "satisfaction must be satisfied, basically_satisfied or unsatisfied");
    } else if (comment && !json_is_null(comment) &&
               (!json_is_string(comment) || json_string_length(comment) > 2000)) {
        fb_http_error(req, 422, "invalid_field", "comment",
                      "comment must be a string of at most 2000 bytes");
    } else if (intake_proof_allowed(in, req, tracking_no)) {
        bool proven = intake_proof_check(in, req, tracking_no, proof);
        const char *params[5] = {tracking_no, proven ? "true" : "false",
                                 json_is_true(resolved) ? "true" : "false", sat,
                                 comment ? json_string_value(comment) : NULL};
        if (!params[4])
            params[4] = "";
        if (intake_db_query(in, s_rate_sql, 5, params, on_rated, req) != 0)
            db_unavailable(req);
    }
    json_decref(j);
}

void intake_petitions_http(intake_t *in, fb_http_req_t *req) {
    const char *rest = fb_http_path(req) + strlen("/api/v1/petitions/");
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    bool is_rating = slash && strcmp(slash, "/rating") == 0;
    const char *method = fb_http_method(req);
    if (!tracking_like(rest, n) || (slash && !is_rating)) {
        fb_http_error(req, 404, "not_found", "tracking_no", "no petition has this tracking number");
        return;
    }
    if (strcmp(method, is_rating ? "POST" : "GET") != 0) {
        fb_http_error(req, 405, "method_not_allowed", NULL, "use %s", is_rating ? "POST" : "GET");
        return;
    }
    if (!intake_authorize(in, req, s_roles))
        return;
    char tracking_no[48];
    memcpy(tracking_no, rest, n);
    tracking_no[n] = '\0';
    if (is_rating) {
        rate(in, req, tracking_no);
        return;
    }
    const char *proof = fb_http_query(req, "proof");
    bool proven = false;
    if (proof && *proof) {
        if (!intake_proof_allowed(in, req, tracking_no))
            return;
        proven = intake_proof_check(in, req, tracking_no, proof);
    }
    const char *params[2] = {tracking_no, proven ? "true" : "false"};
    if (intake_db_query(in, s_show_sql, 2, params, on_shown, req) != 0)
        db_unavailable(req);
}
