/* api_util.c — what the worker's API handlers share (api.c, callback.c,
 * hotspot.c, deadlines.c): one-row JSON queries answered with the right
 * error, query parameters read strictly, and masking. It depends on none of
 * them, so that none depends on another through it. */
#include "api_util.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_text.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fb_api_query_json(fb_worker_t *w, fb_http_req_t *req, const char *sql, int n,
                      const char *const *params, json_t **out) {
    *out = NULL;
    PGconn *db = fb_dblink_conn(w->db);
    if (!db) {
        fb_http_error(req, 503, "db_unavailable", NULL,
                      "the database is unavailable; try again later");
        return FB_EDB;
    }
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        json_error_t e;
        *out = json_loads(PQgetvalue(r, 0, 0), 0, &e);
        PQclear(r);
        if (*out)
            return 0;
        fb_http_error(req, 500, "internal", NULL, "unreadable answer from the database");
        return FB_EDB;
    }
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool busy = st && (strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0);
    fb_log(FB_LOG_WARN, "event=db_error sqlstate=%s error=\"%s\"", st ? st : "-", fb_db_error(db));
    PQclear(r);
    if (fb_dblink_check(w->db) || busy)
        fb_http_error(req, 503, "db_unavailable", NULL,
                      "the database is unavailable; try again later");
    else
        fb_http_error(req, 500, "internal", NULL, "database error");
    return FB_EDB;
}

bool fb_api_query_int(fb_http_req_t *req, const char *key, long long min, long long max,
                      long long def, long long *out) {
    const char *s = fb_http_query(req, key);
    *out = def;
    if (!s || !*s)
        return true;
    char *end = NULL;
    long long v = 0;
    errno = 0;
    /* Digits only: strtoll would take a sign and leading blanks too. */
    if (*s >= '0' && *s <= '9')
        v = strtoll(s, &end, 10);
    if (!end || errno || *end || v < min || v > max) {
        fb_http_error(req, 400, "invalid", key, "%s must be a whole number from %lld to %lld", key,
                      min, max);
        return false;
    }
    *out = v;
    return true;
}

bool fb_api_query_bool(fb_http_req_t *req, const char *key, int *out) {
    const char *s = fb_http_query(req, key);
    *out = -1;
    if (!s || !*s)
        return true;
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = 1;
        return true;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    fb_http_error(req, 400, "invalid", key, "%s must be true or false", key);
    return false;
}

/* ---- masking ------------------------------------------------------------- */

char *fb_api_mask_name(const char *name, char *out, size_t outlen) {
    size_t n = 0;
    if (name && name[0]) {
        unsigned char b = (unsigned char)name[0];
        n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
        /* A cut sequence (bad UTF-8) keeps only what is there. */
        for (size_t i = 1; i < n; i++) {
            if (((unsigned char)name[i] & 0xc0) != 0x80) {
                n = i;
                break;
            }
        }
    }
    if (outlen < n + 2) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    memcpy(out, name ? name : "", n);
    out[n] = '*';
    out[n + 1] = '\0';
    return out;
}

/* Masks phones, ID card numbers and e-mail addresses typed into the text
 * field key of o (fb_text_mask_personal). */
void fb_api_mask_text(json_t *o, const char *key) {
    const char *t = json_string_value(json_object_get(o, key));
    char *masked = NULL;
    if (t && fb_text_mask_personal(t, &masked) == 0)
        json_object_set_new(o, key, json_string(masked));
    else if (t)
        json_object_set_new(o, key, json_string("****"));
    free(masked);
}
