/* api.c — routes, authentication and the case endpoints of fenbo-worker.
 *
 * The routes are one table (method, path pattern, handler, roles). Each
 * handler runs its SQL through the worker's one connection; when PostgreSQL
 * is away the endpoints that need it answer 503 and the worker keeps serving
 * /healthz and /metrics. */
#include "api.h"
#include "api_util.h"
#include "actions.h"
#include "callback.h"
#include "case_sql.h"
#include "dashboard.h"
#include "deadlines.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_petition.h"
#include "fb_text.h"
#include "fb_token.h"
#include "grid.h"
#include "hotspot.h"
#include "lifecycle.h"
#include "stats.h"
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX     500

/* Roles as bits, so that a route names the roles that may call it. */
enum {
    ROLE_HOTLINE = 1 << 0,
    ROLE_MINIAPP = 1 << 1,
    ROLE_OPEN311 = 1 << 2,
    ROLE_MAILBOX = 1 << 3,
    ROLE_OPERATOR = 1 << 4,
    ROLE_DEPARTMENT = 1 << 5,
    ROLE_SUPERVISOR = 1 << 6,
    ROLE_ADMIN = 1 << 7,
    ROLE_GRID = 1 << 8,
};

static const struct {
    const char *name;
    unsigned bit;
} s_roles[] = {
    {"hotline", ROLE_HOTLINE},       {"miniapp", ROLE_MINIAPP},   {"open311", ROLE_OPEN311},
    {"mailbox", ROLE_MAILBOX},       {"operator", ROLE_OPERATOR}, {"department", ROLE_DEPARTMENT},
    {"supervisor", ROLE_SUPERVISOR}, {"admin", ROLE_ADMIN},       {"grid", ROLE_GRID},
};

/* Who reads cases, and who acts on them (a department only on its own). */
#define CASE_READERS (ROLE_OPERATOR | ROLE_DEPARTMENT | ROLE_SUPERVISOR | ROLE_ADMIN)
#define CASE_ACTORS  (ROLE_OPERATOR | ROLE_DEPARTMENT | ROLE_ADMIN)
/* The case lifecycle's actions (actions.c): the departments' and the desk's. */
#define CASE_WORKERS (ROLE_DEPARTMENT | ROLE_ADMIN)
#define CASE_DESK    (ROLE_OPERATOR | ROLE_ADMIN)
/* Who sees residents' names and phones unmasked: the hotline desk calls them back. */
#define SEES_CALLER (ROLE_OPERATOR | ROLE_ADMIN)

/* One request on its way through. */
typedef struct {
    fb_worker_t *w;
    fb_http_req_t *req;
    unsigned status;
    int64_t id; /* the {id} of the path, when it has one */
    /* The caller, once authenticated. */
    long long token_id;
    const char *role; /* static, from s_roles */
    unsigned role_bit;
    char *department; /* a department token's department, else NULL */
    char *region;     /* a grid token's region (grid or community), else NULL */
    char actor[160];
    char token_name[128]; /* api_tokens.name, for training examples */
    char sqlstate[6];     /* of the last failed statement */
    bool deferred;        /* answered later (statistics: dbpool.h) */
} s_ctx_t;

typedef void (*s_handler_t)(s_ctx_t *c);

/* ---- responding ---------------------------------------------------------- */

static void count(s_ctx_t *c, unsigned status) {
    c->status = status;
    unsigned cls = status / 100;
    c->w->metrics.requests[cls >= 1 && cls <= 5 ? cls : 0]++;
}

static void reply_json(s_ctx_t *c, unsigned status, json_t *j) {
    count(c, status);
    fb_http_respond_json(c->req, status, j);
}

static void reply_error(s_ctx_t *c, unsigned status, const char *code, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void reply_error(s_ctx_t *c, unsigned status, const char *code, const char *field,
                        const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    count(c, status);
    fb_http_error(c->req, status, code, field, "%s", msg);
}

static void reply_db_down(s_ctx_t *c) {
    reply_error(c, 503, "db_unavailable", NULL, "the database is unavailable; try again later");
}

/* ---- database helpers ---------------------------------------------------- */

/* Runs sql; returns its result when the status is `want`. Otherwise logs,
 * keeps the SQLSTATE for db_fail() and returns NULL. The result is the
 * caller's: PQclear(). */
static PGresult *query(s_ctx_t *c, const char *sql, int n, const char *const *params,
                       ExecStatusType want) {
    c->sqlstate[0] = '\0';
    PGconn *db = fb_dblink_conn(c->w->db);
    if (!db)
        return NULL;
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", st ? st : "");
    fb_log(FB_LOG_WARN, "event=db_error sqlstate=%s error=\"%s\"",
           c->sqlstate[0] ? c->sqlstate : "-", fb_db_error(db));
    PQclear(r);
    return NULL;
}

/* Runs a query whose one column is JSON. Returns 0 with *out (the caller's),
 * FB_ENOTFOUND when it returned no row, FB_EDB on failure. */
static int query_json(s_ctx_t *c, const char *sql, int n, const char *const *params, json_t **out) {
    *out = NULL;
    PGresult *r = query(c, sql, n, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    int rc = FB_ENOTFOUND;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        json_error_t e;
        *out = json_loads(PQgetvalue(r, 0, 0), 0, &e);
        rc = *out ? 0 : FB_EDB;
    }
    PQclear(r);
    return rc;
}

/* Answers a failed statement: 503 when the connection is gone or the case
 * is busy (the client may retry), 500 for anything else. */
static void db_fail(s_ctx_t *c) {
    if (!fb_dblink_conn(c->w->db) || fb_dblink_check(c->w->db)) {
        reply_db_down(c);
        return;
    }
    static const char *const retry[] = {"55P03", "57014", "40001", "40P01"};
    for (size_t i = 0; i < FB_ARRAY_LEN(retry); i++) {
        if (strcmp(c->sqlstate, retry[i]) == 0) {
            reply_error(c, 503, "busy", NULL, "the case is busy; try again");
            return;
        }
    }
    reply_error(c, 500, "internal", NULL, "database error");
}

/* ---- authentication ------------------------------------------------------ */

/* Sets the caller from the bearer token. Answers (401, 503…) and returns
 * false when there is no valid caller. */
static bool authenticate(s_ctx_t *c) {
    const char *token = fb_token_from_header(fb_http_header(c->req, "Authorization"));
    if (!token) {
        reply_error(c, 401, "unauthorized", NULL, "a bearer token is required");
        return false;
    }
    char hash[FB_TOKEN_HASH_HEX];
    if (fb_token_hash_hex(token, hash) != 0) {
        reply_error(c, 500, "internal", NULL, "cannot hash the token");
        return false;
    }
    if (!fb_dblink_conn(c->w->db)) {
        reply_db_down(c);
        return false;
    }
    const char *params[] = {hash};
    PGresult *r = query(c,
                        "SELECT id, role, department_code, name, region_code FROM api_tokens"
                        " WHERE token_hash = decode($1, 'hex') AND revoked_at IS NULL"
                        " AND (expires_at IS NULL OR expires_at > now())",
                        1, params, PGRES_TUPLES_OK);
    if (!r) {
        db_fail(c);
        return false;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        reply_error(c, 401, "unauthorized", NULL, "unknown, revoked or expired token");
        return false;
    }
    c->token_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    const char *role = PQgetvalue(r, 0, 1);
    for (size_t i = 0; i < FB_ARRAY_LEN(s_roles); i++) {
        if (strcmp(role, s_roles[i].name) == 0) {
            c->role = s_roles[i].name;
            c->role_bit = s_roles[i].bit;
        }
    }
    if (!PQgetisnull(r, 0, 2))
        c->department = strdup(PQgetvalue(r, 0, 2));
    snprintf(c->token_name, sizeof c->token_name, "%s", PQgetvalue(r, 0, 3));
    if (!PQgetisnull(r, 0, 4))
        c->region = strdup(PQgetvalue(r, 0, 4));
    PQclear(r);
    if (!c->role || (c->role_bit == ROLE_DEPARTMENT && !c->department) ||
        (c->role_bit == ROLE_GRID && !c->region)) {
        reply_error(c, 500, "internal", NULL, "token has no usable role");
        return false;
    }
    if (c->role_bit == ROLE_DEPARTMENT)
        snprintf(c->actor, sizeof c->actor, "dept:%s", c->department);
    else if (c->role_bit == ROLE_GRID) /* as intake names the reporter */
        snprintf(c->actor, sizeof c->actor, "grid:%s", c->token_name);
    else
        snprintf(c->actor, sizeof c->actor, "%s:%lld", c->role, c->token_id);
    return true;
}

static void mask_callers(json_t *petitions) {
    size_t i;
    json_t *p;
    json_array_foreach(petitions, i, p) {
        fb_api_mask_text(p, "content");
        fb_api_mask_text(p, "address");
        json_t *caller = json_object_get(p, "caller");
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

/* ---- SQL ----------------------------------------------------------------- */

static const char s_list_sql[] =
    "WITH page AS ("
    " SELECT c.* FROM cases c"
    " WHERE ($1::text IS NULL OR c.status = $1::text)"
    " AND ($2::text IS NULL OR c.department_code = $2::text)"
    " AND " SQL_SCOPE("$3") " AND c.id > $4::bigint"
                            /* what waits for the desk: a return, an extension */
                            " AND ($6::text IS NULL"
                            "  OR ($6::text = 'return' AND c.status = 'returned')"
                            "  OR ($6::text = 'extension' AND EXISTS (SELECT 1 FROM extensions x"
                            "   WHERE x.case_id = c.id AND x.status = 'pending')))"
                            " AND ($7::text IS NULL OR c.urgency = $7::text)"
                            " ORDER BY c.id LIMIT $5::int)"
                            " SELECT json_build_object("
                            " 'cases', coalesce(json_agg(" SQL_CASE_SUMMARY
                            " ORDER BY c.id), '[]'::json),"
                            " 'next_after_id', CASE WHEN count(*) = $5::int THEN max(c.id) END)"
                            " FROM page c";

static const char s_show_sql[] =
    "SELECT json_build_object('case', " SQL_CASE_SUMMARY ","
    " 'assignments', (SELECT coalesce(json_agg(json_build_object("
    "  'id', a.id, 'department', a.department_code, 'role', a.role, 'rule_id', a.rule_id,"
    "  'assigned_at', a.assigned_at, 'accept_due', a.accept_due, 'reply_due', a.reply_due,"
    "  'delivered_at', a.delivered_at, 'accepted_at', a.accepted_at,"
    "  'replied_at', a.replied_at, 'withdrawn_at', a.withdrawn_at) ORDER BY a.id), '[]'::json)"
    "  FROM assignments a WHERE a.case_id = c.id),"
    " 'petitions', (SELECT coalesce(json_agg(json_build_object("
    "  'id', p.id, 'tracking_no', p.tracking_no, 'channel', p.channel,"
    "  'received_at', p.received_at, 'content', p.content, 'address', p.address,"
    "  'category', p.category, 'urgency', p.urgency, 'kind', p.kind,"
    "  'caller', json_build_object('name', p.caller_name, 'phone', p.caller_phone))"
    "  ORDER BY p.id), '[]'::json)"
    "  FROM petitions p WHERE p.case_id = c.id),"
    " 'returns', (SELECT coalesce(json_agg(json_build_object('id', r.id,"
    "  'department', r.department_code, 'reason', r.reason, 'status', r.status,"
    "  'requested_by', r.requested_by, 'requested_at', r.requested_at,"
    "  'decided_by', r.decided_by, 'decided_at', r.decided_at, 'note', r.note)"
    "  ORDER BY r.id), '[]'::json) FROM case_returns r WHERE r.case_id = c.id),"
    " 'extensions', (SELECT coalesce(json_agg(json_build_object('id', x.id,"
    "  'department', x.department_code, 'reason', x.reason, 'previous_due', x.previous_due,"
    "  'until', x.until, 'status', x.status, 'requested_by', x.requested_by,"
    "  'requested_at', x.requested_at, 'decided_by', x.decided_by,"
    "  'decided_at', x.decided_at, 'note', x.note)"
    "  ORDER BY x.id), '[]'::json) FROM extensions x WHERE x.case_id = c.id),"
    " 'events', (SELECT coalesce(json_agg(json_build_object("
    "  'id', e.id, 'at', e.at, 'actor', e.actor, 'type', e.type, 'data', e.data)"
    "  ORDER BY e.id), '[]'::json)"
    "  FROM case_events e WHERE e.case_id = c.id)),"
    /* $3, the actor of an unmasked read: the read records itself (0008) */
    " CASE WHEN $3::text IS NOT NULL THEN fenbo_pii_read(c.id, $3::text) END"
    " FROM cases c WHERE c.id = $1::bigint AND " SQL_SCOPE("$2");

/* ---- handlers ------------------------------------------------------------ */

static void h_healthz(s_ctx_t *c) {
    /* Ask the server, so that a connection PostgreSQL dropped is noticed
     * (and reconnected) here rather than by the next client. */
    PGconn *db = fb_dblink_conn(c->w->db);
    if (db) {
        PGresult *r = PQexec(db, "SELECT 1");
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fb_dblink_check(c->w->db);
        PQclear(r);
    }
    reply_json(c, 200, json_pack("{s:s,s:b}", "status", "ok", "db", fb_dblink_up(c->w->db)));
}

static void h_metrics(s_ctx_t *c) {
    const fb_worker_metrics_t *m = &c->w->metrics;
    char buf[4096];
    static const char *const cls[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    int n = snprintf(buf, sizeof buf,
                     "# HELP fenbo_worker_http_requests_total HTTP requests answered, by status "
                     "class.\n# TYPE fenbo_worker_http_requests_total counter\n");
    for (int i = 0; i < 6 && n > 0 && (size_t)n < sizeof buf; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      "fenbo_worker_http_requests_total{class=\"%s\"} %llu\n", cls[i],
                      (unsigned long long)m->requests[i]);
    if (n > 0 && (size_t)n < sizeof buf)
        n += snprintf(
            buf + n, sizeof buf - (size_t)n,
            "# HELP fenbo_worker_assignment_events_total Assignment events received on the bus.\n"
            "# TYPE fenbo_worker_assignment_events_total counter\n"
            "fenbo_worker_assignment_events_total %llu\n"
            "# HELP fenbo_worker_bus_bad_messages_total Bus messages dropped as malformed.\n"
            "# TYPE fenbo_worker_bus_bad_messages_total counter\n"
            "fenbo_worker_bus_bad_messages_total %llu\n"
            "# HELP fenbo_worker_delivered_total Assignments delivered, by the bus event or by "
            "the catch-up pass.\n"
            "# TYPE fenbo_worker_delivered_total counter\n"
            "fenbo_worker_delivered_total{via=\"bus\"} %llu\n"
            "fenbo_worker_delivered_total{via=\"catchup\"} %llu\n"
            "# HELP fenbo_worker_catchup_runs_total Catch-up passes that reached the database.\n"
            "# TYPE fenbo_worker_catchup_runs_total counter\n"
            "fenbo_worker_catchup_runs_total %llu\n"
            "# HELP fenbo_worker_db_reconnects_total Connections to PostgreSQL re-established.\n"
            "# TYPE fenbo_worker_db_reconnects_total counter\n"
            "fenbo_worker_db_reconnects_total %llu\n"
            "# HELP fenbo_worker_db_up Whether the worker is connected to PostgreSQL.\n"
            "# TYPE fenbo_worker_db_up gauge\n"
            "fenbo_worker_db_up %d\n",
            (unsigned long long)m->assignment_events, (unsigned long long)m->bus_bad_messages,
            (unsigned long long)m->delivered_bus, (unsigned long long)m->delivered_catchup,
            (unsigned long long)m->catchup_runs, (unsigned long long)fb_dblink_reconnects(c->w->db),
            fb_dblink_up(c->w->db) ? 1 : 0);
    if (n > 0 && (size_t)n < sizeof buf) {
        int k = fb_timers_metrics(c->w->timers, buf + n, sizeof buf - (size_t)n);
        n = k < 0 ? -1 : n + k;
    }
    if (n < 0 || (size_t)n >= sizeof buf) {
        reply_error(c, 500, "internal", NULL, "metrics do not fit");
        return;
    }
    count(c, 200);
    fb_http_respond(c->req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)n);
}

/* Parses a whole decimal number in [min, max]; false for anything else. */
static bool parse_int(const char *s, long long min, long long max, long long *out) {
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void h_case_list(s_ctx_t *c) {
    const char *status = fb_http_query(c->req, "status");
    const char *dept = fb_http_query(c->req, "department");
    const char *limit_s = fb_http_query(c->req, "limit");
    const char *after_s = fb_http_query(c->req, "after_id");
    const char *pending = fb_http_query(c->req, "pending");
    const char *urgency = fb_http_query(c->req, "urgency");
    fb_case_status_t st;
    long long limit = LIST_LIMIT_DEFAULT, after = 0;
    if (status && !*status)
        status = NULL;
    if (dept && !*dept)
        dept = NULL;
    if (pending && !*pending)
        pending = NULL;
    if (urgency && !*urgency)
        urgency = NULL;
    if (urgency && !fb_urgency_valid(urgency)) {
        reply_error(c, 400, "invalid", "urgency", "urgency must be normal, urgent or emergency");
        return;
    }
    if (pending && strcmp(pending, "return") != 0 && strcmp(pending, "extension") != 0) {
        reply_error(c, 400, "invalid", "pending", "pending must be return or extension");
        return;
    }
    if (status && fb_case_status_parse(status, &st) != 0) {
        reply_error(c, 400, "invalid", "status", "unknown status '%.40s'", status);
        return;
    }
    if (limit_s && !parse_int(limit_s, 1, INT64_MAX, &limit)) {
        reply_error(c, 400, "invalid", "limit", "limit must be a whole number from 1");
        return;
    }
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    if (after_s && !parse_int(after_s, 0, INT64_MAX, &after)) {
        reply_error(c, 400, "invalid", "after_id", "after_id must be a whole number from 0");
        return;
    }
    /* A department's own filter is its scope; what it asks for is ignored. */
    if (c->role_bit == ROLE_DEPARTMENT)
        dept = NULL;
    char limit_b[24], after_b[24];
    snprintf(limit_b, sizeof limit_b, "%lld", limit);
    snprintf(after_b, sizeof after_b, "%lld", after);
    const char *params[] = {status, dept, c->department, after_b, limit_b, pending, urgency};
    json_t *out;
    int rc = query_json(c, s_list_sql, 7, params, &out);
    if (rc != 0) {
        db_fail(c);
        return;
    }
    reply_json(c, 200, out);
}

static void h_case_show(s_ctx_t *c) {
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, c->id);
    /* Every read of full phone numbers and names is an event of the case,
     * written by the read's own statement (fenbo_pii_read). */
    const char *params[] = {id, c->department, (c->role_bit & SEES_CALLER) ? c->actor : NULL};
    json_t *doc;
    int rc = query_json(c, s_show_sql, 3, params, &doc);
    if (rc == FB_ENOTFOUND) {
        reply_error(c, 404, "not_found", NULL, "no case %s", id);
        return;
    }
    if (rc != 0) {
        db_fail(c);
        return;
    }
    json_t *cs = json_incref(json_object_get(doc, "case"));
    json_t *petitions = json_object_get(doc, "petitions");
    if (!(c->role_bit & SEES_CALLER))
        mask_callers(petitions);
    json_object_set(cs, "assignments", json_object_get(doc, "assignments"));
    json_object_set(cs, "petitions", petitions);
    json_object_set(cs, "events", json_object_get(doc, "events"));
    json_object_set(cs, "returns", json_object_get(doc, "returns"));
    json_object_set(cs, "extensions", json_object_get(doc, "extensions"));
    /* What this caller may do next, from the lifecycle table. */
    fb_case_status_t st;
    if (fb_case_status_parse(json_string_value(json_object_get(cs, "status")), &st) == 0)
        json_object_set_new(cs, "actions", fb_actions_allowed_json(st, c->role));
    json_decref(doc);
    reply_json(c, 200, cs);
}

/* The lifecycle's actions (accept, return, assign, …): actions.c, one
 * transaction each around a move of the table in lifecycle.c. */
static void h_case_action(s_ctx_t *c) {
    fb_case_action_t action;
    if (fb_actions_from_path(fb_http_path(c->req), &action) != 0) {
        reply_error(c, 404, "not_found", NULL, "no such resource");
        return;
    }
    fb_actor_t who = {.role = c->role,
                      .department = c->department,
                      .name = c->actor,
                      .token_name = c->token_name};
    fb_actions_handle(c->w, c->req, c->id, action, &who);
    count(c, fb_http_status(c->req));
}

/* An operator's change of a case's category: not a move of the lifecycle
 * (actions.c, with the training example it teaches). */
static void h_case_category(s_ctx_t *c) {
    fb_actor_t who = {.role = c->role,
                      .department = c->department,
                      .name = c->actor,
                      .token_name = c->token_name};
    fb_actions_set_category(c->w, c->req, c->id, &who);
    count(c, fb_http_status(c->req));
}

/* ---- stats and the dashboard (stats.c, dashboard.c) ----------------------- */

/* A department token gets its own row only; the others see every row. */
static void h_stats(s_ctx_t *c) {
    fb_stats_rates(c->w, c->req, c->role, c->role_bit == ROLE_DEPARTMENT ? c->department : NULL);
    c->deferred = !fb_http_answered(c->req);
    count(c, fb_http_status(c->req));
}

static void h_stats_daily(s_ctx_t *c) {
    fb_stats_daily(c->w, c->req, c->role);
    c->deferred = !fb_http_answered(c->req);
    count(c, fb_http_status(c->req));
}

/* The page is public: it holds no data, and asks for a token itself. */
static void h_dashboard(s_ctx_t *c) {
    fb_dashboard_serve(c->req);
    count(c, fb_http_status(c->req));
}

/* ---- timers: overdue, callbacks, hotspots (deadlines.c, callback.c, hotspot.c) */

static const char *scope_of(const s_ctx_t *c) {
    return c->role_bit == ROLE_DEPARTMENT ? c->department : NULL;
}

static void h_overdue(s_ctx_t *c) {
    fb_deadlines_api_overdue(c->w, c->req, c->role, scope_of(c));
    count(c, fb_http_status(c->req));
}

static void h_callbacks(s_ctx_t *c) {
    fb_callback_api_list(c->w, c->req, c->role, scope_of(c));
    count(c, fb_http_status(c->req));
}

static void h_hotspots(s_ctx_t *c) {
    fb_hotspot_api_list(c->w, c->req, c->role, scope_of(c));
    count(c, fb_http_status(c->req));
}

/* ---- the grid (grid.c) ------------------------------------------------------ */

static void h_case_verify(s_ctx_t *c) {
    fb_actor_t who = {.role = c->role, .name = c->actor, .token_name = c->token_name};
    fb_grid_verify(c->w, c->req, c->id, &who);
    count(c, fb_http_status(c->req));
}

static void h_verifications(s_ctx_t *c) {
    fb_grid_api_verifications(c->w, c->req);
    count(c, fb_http_status(c->req));
}

static void h_street(s_ctx_t *c) {
    fb_grid_api_street(c->w, c->req, c->department);
    count(c, fb_http_status(c->req));
}

/* ---- routing ------------------------------------------------------------- */

/* roles == 0: public (no token). */
static const struct {
    const char *method;
    const char *path; /* "{id}" matches a positive case id */
    s_handler_t handler;
    unsigned roles;
} s_routes[] = {
    {"GET", "/healthz", h_healthz, 0},
    {"GET", "/metrics", h_metrics, 0},
    {"GET", "/api/v1/cases", h_case_list, CASE_READERS},
    {"GET", "/api/v1/cases/{id}", h_case_show, CASE_READERS},
    {"POST", "/api/v1/cases/{id}/accept", h_case_action, CASE_WORKERS},
    {"POST", "/api/v1/cases/{id}/return", h_case_action, CASE_WORKERS},
    {"POST", "/api/v1/cases/{id}/return/approve", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/return/reject", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/assign", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/assist", h_case_action, CASE_WORKERS},
    {"POST", "/api/v1/cases/{id}/extend", h_case_action, CASE_WORKERS},
    {"POST", "/api/v1/cases/{id}/extend/approve", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/extend/reject", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/reply", h_case_action, CASE_WORKERS},
    {"POST", "/api/v1/cases/{id}/callback", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/close", h_case_action, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/category", h_case_category, CASE_DESK},
    {"POST", "/api/v1/cases/{id}/verify", h_case_verify, ROLE_GRID | ROLE_ADMIN},
    {"GET", "/api/v1/verifications", h_verifications, CASE_READERS | ROLE_GRID},
    {"GET", "/api/v1/street", h_street, ROLE_DEPARTMENT},
    {"GET", "/api/v1/stats", h_stats, CASE_READERS},
    {"GET", "/api/v1/stats/daily", h_stats_daily, ROLE_OPERATOR | ROLE_SUPERVISOR | ROLE_ADMIN},
    {"GET", "/dashboard", h_dashboard, 0},
    {"GET", "/api/v1/overdue", h_overdue, CASE_READERS},
    {"GET", "/api/v1/callbacks", h_callbacks, ROLE_OPERATOR | ROLE_SUPERVISOR | ROLE_ADMIN},
    {"GET", "/api/v1/hotspots", h_hotspots, CASE_READERS},
};

/* Matches path against pattern, segment by segment; fills *id for {id}. */
static bool match(const char *pattern, const char *path, int64_t *id) {
    while (*pattern && *path) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            size_t n = strspn(path, "0123456789");
            long long v;
            char digits[20];
            if (n == 0 || n >= sizeof digits)
                return false;
            memcpy(digits, path, n);
            digits[n] = '\0';
            if (!parse_int(digits, 1, INT64_MAX, &v))
                return false;
            *id = v;
            pattern += 4;
            path += n;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

/* The path as it may appear in a log line: no spaces, quotes or controls. */
static void log_path(const char *s, char *out, size_t outlen) {
    size_t k = 0;
    for (; *s && k + 5 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x21 || ch == '"' || ch == '\\' || ch == 0x7f)
            k += (size_t)snprintf(out + k, outlen - k, "%%%02X", ch);
        else
            out[k++] = (char)ch;
    }
    out[k] = '\0';
}

bool fb_api_is_upload(const char *path) {
    size_t n = strlen(path);
    return n > 7 && strncmp(path, "/api/v1/cases/", 14) == 0 &&
           strcmp(path + n - 7, "/verify") == 0;
}

void fb_api_head(void *ud, fb_http_req_t *req) {
    if (!fb_api_is_upload(fb_http_path(req)))
        return;
    s_ctx_t c = {.w = ud, .req = req};
    if (authenticate(&c) && !(c.role_bit & (ROLE_GRID | ROLE_ADMIN)))
        reply_error(&c, 403, "forbidden", NULL, "a %s token may not verify cases", c.role);
    free(c.department);
    free(c.region);
}

void fb_api_handle(void *ud, fb_http_req_t *req) {
    s_ctx_t c = {.w = ud, .req = req};
    uint64_t t0 = fb_mono_ms();
    const char *method = fb_http_method(req);
    const char *path = fb_http_path(req);
    bool path_known = false;
    size_t i;
    for (i = 0; i < FB_ARRAY_LEN(s_routes); i++) {
        if (!match(s_routes[i].path, path, &c.id))
            continue;
        path_known = true;
        if (strcmp(s_routes[i].method, method) == 0)
            break;
    }
    if (i == FB_ARRAY_LEN(s_routes)) {
        if (path_known)
            reply_error(&c, 405, "method_not_allowed", NULL, "%s is not allowed here", method);
        else
            reply_error(&c, 404, "not_found", NULL, "no such resource");
        goto done;
    }
    if (s_routes[i].roles) {
        if (!authenticate(&c))
            goto done;
        if (!(s_routes[i].roles & c.role_bit)) {
            reply_error(&c, 403, "forbidden", NULL, "a %s token may not do this", c.role);
            goto done;
        }
    }
    /* Row-level security (schema/0007_rls.sql) sees this caller and nobody
     * else: a public route runs for nobody. The routes with a token refuse
     * to run when the database cannot be told. */
    if (fb_dblink_context_set(c.w->db, c.role, c.role_bit == ROLE_GRID ? c.region : c.department) !=
            0 &&
        s_routes[i].roles) {
        reply_db_down(&c);
        goto done;
    }
    s_routes[i].handler(&c);
done:
    fb_dblink_context_clear(c.w->db);
    if (!fb_http_answered(req) && !c.deferred)
        reply_error(&c, 500, "internal", NULL, "no answer");
    char p[256];
    log_path(path, p, sizeof p);
    fb_log(FB_LOG_INFO, "event=request method=%.10s path=%s status=%u ms=%llu actor=%s", method, p,
           c.status, (unsigned long long)(fb_mono_ms() - t0), c.actor[0] ? c.actor : "-");
    free(c.department);
    free(c.region);
}
