/* open311_read.c — GET /open311/v2/requests, requests/{id} and tokens/{token}
 * from PostgreSQL (intake_db_query: off the loop thread, parameters only).
 *
 * Public reads prove nothing about a person (DESIGN.md): a request shows its
 * category, status, department, times and place — never the resident's
 * name, phone, e-mail or device, and not the free text, so description is
 * always null here. The place is no finer than a road or a community: the
 * address cut before the house number (fenbo_public_place, 0014), the point
 * rounded to 0.001° (about 100 m), no address_id. Every channel's tracking number is a
 * service_request_id, so a resident who called the hotline follows the case here as well. */
#include "fb_common.h"
#include "fb_log.h"
#include "fb_text.h"
#include "fb_time.h"
#include "open311_priv.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS       1000                            /* page_size at most, and by default */
#define MAX_SPAN_US    (INT64_C(90) * 86400 * 1000000) /* the spec's 90 days */
#define MAX_ID_BYTES   64
#define MAX_LIST_BYTES 8192

/* The columns both queries return, in this order (see row_json). */
#define SQL_COLUMNS                                                                                \
    "SELECT p.tracking_no, c.status, coalesce(p.category, c.category), cat.name, d.name,"          \
    " floor(extract(epoch FROM p.received_at))::bigint,"                                           \
    " floor(extract(epoch FROM coalesce(c.updated_at, p.stored_at)))::bigint,"                     \
    " floor(extract(epoch FROM c.reply_due))::bigint,"                                             \
    " fenbo_public_place(p.address, p.region_code), NULL::text,"                                   \
    " round(ST_Y(p.location)::numeric, 3), round(ST_X(p.location)::numeric, 3),"                   \
    " CASE WHEN p.channel = 'open311' THEN p.raw->>'media_url' END,"                               \
    " ev.type, p.channel, c.department_code, c.category_source, c.category_confidence,"            \
    " floor(extract(epoch FROM c.accept_due))::bigint"                                             \
    " FROM petitions p"                                                                            \
    " LEFT JOIN cases c ON c.id = p.case_id"                                                       \
    " LEFT JOIN departments d ON d.code = c.department_code"                                       \
    " LEFT JOIN categories cat ON cat.code = coalesce(p.category, c.category)"                     \
    " LEFT JOIN LATERAL (SELECT e.type FROM case_events e WHERE e.case_id = c.id"                  \
    "                    ORDER BY e.id DESC LIMIT 1) ev ON true "

enum {
    COL_ID,
    COL_STATUS,
    COL_CODE,
    COL_NAME,
    COL_AGENCY,
    COL_REQUESTED,
    COL_UPDATED,
    COL_EXPECTED,
    COL_ADDRESS,
    COL_ADDRESS_ID,
    COL_LAT,
    COL_LNG,
    COL_MEDIA,
    COL_EVENT,
    /* extensions=true only */
    COL_CHANNEL,
    COL_DEPARTMENT,
    COL_CATEGORY_SOURCE,
    COL_CATEGORY_CONFIDENCE,
    COL_ACCEPT_DUE,
};

/* $1: comma-separated tracking numbers. */
static const char s_sql_ids[] = SQL_COLUMNS "WHERE p.tracking_no = ANY (string_to_array($1, ','))"
                                            " ORDER BY p.received_at DESC, p.id DESC LIMIT 1000";

/* $1, $2: the range in µs since the epoch; $3: comma-separated service
 * codes or NULL; $4: 'open', 'closed' or NULL for both; $5 page_size, $6 the
 * rows before the page. Newest first, ties by id: pages do not overlap. */
static const char s_sql_filter[] = SQL_COLUMNS
    "WHERE p.received_at >= 'epoch'::timestamptz + $1::bigint * interval '1 microsecond'"
    " AND p.received_at <= 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'"
    " AND ($3::text IS NULL OR coalesce(p.category, c.category) = ANY (string_to_array($3, ',')))"
    " AND ($4::text IS NULL OR coalesce(c.status = 'closed', false) = ($4::text = 'closed'))"
    " ORDER BY p.received_at DESC, p.id DESC LIMIT $5::integer OFFSET $6::bigint";

static const char s_sql_token[] = "SELECT 1 FROM petitions WHERE tracking_no = $1";

/* ---- status ---------------------------------------------------------------- */

/* What a resident reads about each case status: before + department +
 * after, or note alone for the statuses that name no department. */
static const struct {
    const char *status;
    const char *before, *after;
    bool dept;
} s_status_notes[] = {
    {"manual", "待人工派单", "", false},
    {"dispatched", "已派单至", "", true},
    {"accepted", "", "已签收，正在办理", true},
    {"replied", "", "已办结，待回访", true},
    {"rated", "已回访", "", false},
    {"closed", "已办结", "", false},
    {"returned", "已退单，待重新派单", "", false},
    {"reopened", "重新办理中（", "）", true},
};

/* The other events of a case's history, for a status without a note. */
static const struct {
    const char *type;
    const char *note;
} s_event_notes[] = {
    {"delivered", "已送达承办单位"},
    {"extended", "已延期"},
    {"assisted", "协办中"},
    {"overdue", "已超期，督办中"},
    {"reminded", "已催办"},
    {"escalated", "已督办"},
    {"rated", "已回访"},
    {"reopened", "重新办理中"},
};

static json_t *status_notes(const char *status, const char *dept, const char *event) {
    char buf[256];
    for (size_t i = 0; status && i < FB_ARRAY_LEN(s_status_notes); i++) {
        if (strcmp(status, s_status_notes[i].status) != 0)
            continue;
        if (s_status_notes[i].dept && !dept)
            break;
        snprintf(buf, sizeof buf, "%s%s%s", s_status_notes[i].before,
                 s_status_notes[i].dept ? dept : "", s_status_notes[i].after);
        return json_string(buf);
    }
    for (size_t i = 0; event && i < FB_ARRAY_LEN(s_event_notes); i++)
        if (strcmp(event, s_event_notes[i].type) == 0)
            return json_string(s_event_notes[i].note);
    return status ? json_null() : json_string("已受理，等待派单");
}

/* ---- rows ------------------------------------------------------------------ */

static const char *col(const PGresult *r, int row, int c) {
    return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static json_t *time_or_null(const char *epoch_s) {
    char buf[40];
    if (!epoch_s)
        return json_null();
    return json_string(intake_open311_time(strtoll(epoch_s, NULL, 10), buf, sizeof buf));
}

static json_t *real_or_null(const char *s) {
    return s ? json_real(strtod(s, NULL)) : json_null();
}

/* fenbo's own fields (extensions=true), in extended_attributes as the
 * GeoReport extensions do: the channel, the department's code, where the
 * category came from and how sure the model was, the deadlines. */
static json_t *extended(const PGresult *r, int i) {
    const char *conf = col(r, i, COL_CATEGORY_CONFIDENCE);
    return json_pack("{s:s?,s:s?,s:s?,s:o,s:o,s:o}", "channel", col(r, i, COL_CHANNEL),
                     "department", col(r, i, COL_DEPARTMENT), "category_source",
                     col(r, i, COL_CATEGORY_SOURCE), "category_confidence", real_or_null(conf),
                     "accept_due", time_or_null(col(r, i, COL_ACCEPT_DUE)), "reply_due",
                     time_or_null(col(r, i, COL_EXPECTED)));
}

static json_t *row_json(const PGresult *r, int i) {
    const char *status = col(r, i, COL_STATUS), *agency = col(r, i, COL_AGENCY);
    const char *code = col(r, i, COL_CODE);
    return json_pack(
        "{s:s,s:s,s:o,s:s?,s:s,s:n,s:s?,s:n,s:o,s:o,s:o,s:s?,s:s?,s:n,s:o,s:o,s:s?}",
        "service_request_id", col(r, i, COL_ID), "status",
        status && strcmp(status, "closed") == 0 ? "closed" : "open", "status_notes",
        status_notes(status, agency, col(r, i, COL_EVENT)), "service_name", col(r, i, COL_NAME),
        "service_code", code ? code : "", "description", "agency_responsible", agency,
        "service_notice", "requested_datetime", time_or_null(col(r, i, COL_REQUESTED)),
        "updated_datetime", time_or_null(col(r, i, COL_UPDATED)), "expected_datetime",
        time_or_null(col(r, i, COL_EXPECTED)), "address", col(r, i, COL_ADDRESS), "address_id",
        col(r, i, COL_ADDRESS_ID), "zipcode", "lat", real_or_null(col(r, i, COL_LAT)), "long",
        real_or_null(col(r, i, COL_LNG)), "media_url", col(r, i, COL_MEDIA));
}

/* ---- queries --------------------------------------------------------------- */

typedef struct {
    intake_t *in;
    fb_http_req_t *req;
    open311_fmt_t fmt;
    bool single;                  /* requests/{id}: 404 when there is none */
    bool extensions;              /* extensions=true: fenbo's own fields too */
    char token[MAX_ID_BYTES + 1]; /* tokens/{token} */
} s_read_t;

static void on_requests(void *ud, PGresult *res) {
    s_read_t *q = ud;
    json_t *list = res ? json_array() : NULL;
    int n = res ? PQntuples(res) : 0;
    for (int i = 0; list && i < n; i++) {
        json_t *row = row_json(res, i);
        if (row && q->extensions)
            json_object_set_new(row, "extended_attributes", extended(res, i));
        if (json_array_append_new(list, row) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!res)
        intake_open311_error(q->req, q->fmt, 503,
                             "service requests cannot be read right now; try again later");
    else if (!list)
        intake_open311_error(q->req, q->fmt, 503, "out of memory");
    else if (q->single && n == 0) {
        json_decref(list);
        intake_open311_error(q->req, q->fmt, 404, "service_request_id provided was not found");
    } else
        intake_open311_respond(q->req, 200, q->fmt, "service_requests", list);
    intake_open311_count(q->in, q->req);
    free(q);
}

/* Printable ASCII without spaces or commas, up to max bytes. */
static bool id_like(const char *s, size_t len) {
    if (len == 0 || len > MAX_ID_BYTES)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)s[i]) || s[i] == ',')
            return false;
    return true;
}

/* A comma-separated list of id_like items (empty items skipped, as
 * "a,,b" means a and b). */
static bool list_like(const char *s) {
    if (strlen(s) > MAX_LIST_BYTES || !fb_utf8_valid(s, strlen(s)))
        return false;
    bool any = false;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n) {
            /* Service codes may be Chinese; only commas and controls are out. */
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] <= ' ')
                    return false;
            any = true;
        }
        s += n + (s[n] == ',');
    }
    return any;
}

/* The status filter: "open", "closed", both (NULL) or invalid (false). */
static bool parse_status(const char *s, const char **out) {
    bool open = false, closed = false;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 4 && strncmp(s, "open", 4) == 0)
            open = true;
        else if (n == 6 && strncmp(s, "closed", 6) == 0)
            closed = true;
        else if (n)
            return false;
        s += n + (s[n] == ',');
    }
    *out = open && !closed ? "open" : closed && !open ? "closed" : NULL;
    return true;
}

/* A whole number in [min, max], digits only. */
static bool parse_whole(const char *s, long min, long max, long *out) {
    if (!*s || strlen(s) > 9 || strspn(s, "0123456789") != strlen(s))
        return false;
    long v = strtol(s, NULL, 10);
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static const char *opt_query(fb_http_req_t *req, const char *key) {
    const char *v = fb_http_query(req, key);
    return v && *v ? v : NULL;
}

static void start_query(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt, bool single,
                        const char *sql, int nparams, const char *const *params, intake_db_cb cb,
                        const char *token) {
    s_read_t *q = calloc(1, sizeof *q);
    if (!q) {
        intake_open311_error(req, fmt, 503, "out of memory");
        return;
    }
    const char *ext = fb_http_query(req, "extensions");
    *q = (s_read_t){.in = in,
                    .req = req,
                    .fmt = fmt,
                    .single = single,
                    .extensions = ext && strcmp(ext, "true") == 0};
    if (token)
        snprintf(q->token, sizeof q->token, "%s", token);
    if (intake_db_query(in, sql, nparams, params, cb, q) != 0) {
        free(q);
        intake_open311_error(req, fmt, 503, "out of memory");
    }
}

void intake_open311_get_requests(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                                 const char *id) {
    if (id) {
        if (!id_like(id, strlen(id))) {
            intake_open311_error(req, fmt, 404, "service_request_id provided was not found");
            return;
        }
        const char *params[] = {id};
        start_query(in, req, fmt, true, s_sql_ids, 1, params, on_requests, NULL);
        return;
    }
    /* The spec: service_request_id overrides every other argument. */
    const char *ids = opt_query(req, "service_request_id");
    if (ids) {
        if (!list_like(ids)) {
            intake_open311_error(req, fmt, 400,
                                 "service_request_id must be tracking numbers separated by "
                                 "commas");
            return;
        }
        const char *params[] = {ids};
        start_query(in, req, fmt, false, s_sql_ids, 1, params, on_requests, NULL);
        return;
    }
    const char *codes = opt_query(req, "service_code"), *status = opt_query(req, "status");
    const char *page_s = opt_query(req, "page"), *size_s = opt_query(req, "page_size");
    long page = 1, size = MAX_ROWS;
    const char *start_s = opt_query(req, "start_date"), *end_s = opt_query(req, "end_date");
    const char *status_filter = NULL;
    json_t *errors = json_array();
    int64_t start = 0, end = fb_now_us();
    if (codes && !list_like(codes))
        intake_open311_add_error(errors, 400,
                                 "service_code must be service codes separated by commas");
    if (page_s && !parse_whole(page_s, 1, 1000000, &page))
        intake_open311_add_error(errors, 400, "page must be a whole number from 1");
    if (size_s && !parse_whole(size_s, 1, MAX_ROWS, &size))
        intake_open311_add_error(errors, 400, "page_size must be a whole number from 1 to 1000");
    if (status && !parse_status(status, &status_filter))
        intake_open311_add_error(errors, 400, "status must be open, closed or open,closed");
    if (start_s && fb_time_parse(start_s, &start) != 0)
        intake_open311_add_error(errors, 400,
                                 "start_date must be a w3 date-time, e.g. 2026-01-01T00:00:00Z");
    if (end_s && fb_time_parse(end_s, &end) != 0)
        intake_open311_add_error(errors, 400,
                                 "end_date must be a w3 date-time, e.g. 2026-03-31T23:59:59Z");
    if (json_array_size(errors) == 0) {
        /* The default range is the most recent 90 days, and no range may be
         * longer: one end alone reaches 90 days from it. */
        if (!start_s)
            start = end - MAX_SPAN_US;
        else if (!end_s)
            end = start + MAX_SPAN_US;
        if (end < start)
            intake_open311_add_error(errors, 400, "end_date lies before start_date");
        else if (end - start > MAX_SPAN_US)
            intake_open311_add_error(errors, 400,
                                     "start_date and end_date may not span more than 90 days");
    }
    if (json_array_size(errors)) {
        intake_open311_respond(req, 400, fmt, "errors", errors);
        return;
    }
    json_decref(errors);
    char a[24], b[24], lim[24], off[24];
    snprintf(a, sizeof a, "%" PRId64, start);
    snprintf(b, sizeof b, "%" PRId64, end);
    snprintf(lim, sizeof lim, "%ld", size);
    snprintf(off, sizeof off, "%ld", (page - 1) * size);
    const char *params[] = {a, b, codes, status_filter, lim, off};
    start_query(in, req, fmt, false, s_sql_filter, 6, params, on_requests, NULL);
}

/* ---- tokens ------------------------------------------------------------------ */

/* True when this instance handed out tracking_no today: it is in the spool
 * even while the dispatcher has not stored it yet. */
static bool issued_here(const intake_t *in, const char *tracking_no) {
    int day, inst, end = 0;
    unsigned seq;
    if (sscanf(tracking_no, "%8d-%d-%u%n", &day, &inst, &seq, &end) != 3 ||
        tracking_no[end] != '\0')
        return false;
    return inst == in->cfg.instance_id && day == in->tracking_day && seq >= 1 &&
           seq <= in->tracking_seq;
}

static void on_token(void *ud, PGresult *res) {
    s_read_t *q = ud;
    if ((res && PQntuples(res) > 0) || issued_here(q->in, q->token))
        intake_open311_respond(
            q->req, 200, q->fmt, "service_requests",
            json_pack("[{s:s,s:s}]", "service_request_id", q->token, "token", q->token));
    else if (!res)
        intake_open311_error(q->req, q->fmt, 503,
                             "tokens cannot be looked up right now; try again later");
    else
        intake_open311_error(q->req, q->fmt, 404, "token provided was not found");
    intake_open311_count(q->in, q->req);
    free(q);
}

/* fenbo answers every POST with its service_request_id at once, so a token
 * is the service_request_id itself. */
void intake_open311_get_token(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                              const char *token) {
    if (!id_like(token, strlen(token))) {
        intake_open311_error(req, fmt, 404, "token provided was not found");
        return;
    }
    const char *params[] = {token};
    start_query(in, req, fmt, false, s_sql_token, 1, params, on_token, token);
}
