/* fenboctl_stats.c — `fenboctl stats`: the rates per department, district or
 * street over a period, as a plain table (or the API's JSON with --json).
 *
 * The numbers come from fenbo_stats_json() (schema/0005_stats.sql), the very
 * function behind the worker's GET /api/v1/stats, so the CLI and the
 * dashboard cannot disagree; this file only parses options and lays out the
 * table. A bad --by/--from/--to is refused by that function, which names the
 * field; here it becomes a usage error. */
#include "fenboctl.h"
#include "fb_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_stats_sql[] = "SELECT fenbo_stats_json($1, $2, $3, $4, NULL)";

/* The table's columns: the JSON key, the heading, and whether it is a rate
 * (printed as a percentage) or a count. */
static const struct {
    const char *key;
    const char *head;
    bool rate;
} s_cols[] = {
    {"dispatched", "DISPATCHED", false},       {"response_rate", "RESPONSE", true},
    {"resolution_rate", "RESOLUTION", true},   {"satisfaction_rate", "SATISFACTION", true},
    {"on_time_closure_rate", "ON-TIME", true}, {"return_rate", "RETURN", true},
    {"reopen_rate", "REOPEN", true},           {"rated", "RATED", false},
    {"not_rated", "NOT-RATED", false},         {"overdue_now", "OVERDUE", false},
};

/* Columns a terminal gives a character: East Asian wide characters (the
 * names of departments and streets) take two. Enough of Unicode's wide
 * ranges for CJK text; invalid bytes count one each. */
static int display_width(const char *s) {
    int w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp;
        int n;
        if (*p < 0x80) {
            cp = *p, n = 1;
        } else if ((*p >> 5) == 6 && (p[1] & 0xc0) == 0x80) {
            cp = (unsigned)(*p & 0x1f) << 6 | (p[1] & 0x3f), n = 2;
        } else if ((*p >> 4) == 14 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
            cp = (unsigned)(*p & 0x0f) << 12 | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f), n = 3;
        } else if ((*p >> 3) == 30 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
                   (p[3] & 0xc0) == 0x80) {
            cp = (unsigned)(*p & 0x07) << 18 | (unsigned)(p[1] & 0x3f) << 12 |
                 (unsigned)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
            n = 4;
        } else {
            cp = '?', n = 1;
        }
        bool wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
        w += wide ? 2 : 1;
        p += n;
    }
    return w;
}

/* s padded to width columns, on the left (numbers) or the right (text). */
static void print_cell(const char *s, int width, bool right) {
    int pad = width - display_width(s);
    if (pad < 0)
        pad = 0;
    if (right)
        printf("%*s%s", pad, "", s);
    else
        printf("%s%*s", s, pad, "");
}

/* One cell's text: a count, a rate as "91.7%", or "-" for NULL. */
static void cell_text(const json_t *row, size_t col, char *out, size_t outlen) {
    const json_t *v = json_object_get(row, s_cols[col].key);
    if (!v || json_is_null(v))
        snprintf(out, outlen, "-");
    else if (s_cols[col].rate)
        snprintf(out, outlen, "%.1f%%", json_number_value(v) * 100.0);
    else
        snprintf(out, outlen, "%lld", (long long)json_number_value(v));
}

static const char *row_key(const json_t *row) {
    const char *k = json_string_value(json_object_get(row, "key"));
    return k ? k : "-";
}

static const char *row_name(const json_t *row) {
    const char *n = json_string_value(json_object_get(row, "name"));
    return n ? n : "(unknown)";
}

static void print_table(const json_t *doc) {
    const json_t *rows = json_object_get(doc, "rows");
    const json_t *total = json_object_get(doc, "total");
    const char *to = json_string_value(json_object_get(doc, "to"));
    printf("rates by %s, %s .. %s (to exclusive, %s)\n\n",
           json_string_value(json_object_get(doc, "by")),
           json_string_value(json_object_get(doc, "from")), to ? to : "?",
           json_string_value(json_object_get(doc, "timezone")));

    /* Widths: the widest of heading and cells, over the rows and the total. */
    int wkey = display_width("KEY"), wname = display_width("NAME");
    int wcol[FB_ARRAY_LEN(s_cols)];
    for (size_t c = 0; c < FB_ARRAY_LEN(s_cols); c++)
        wcol[c] = display_width(s_cols[c].head);
    size_t n = json_array_size(rows);
    char buf[64];
    for (size_t i = 0; i <= n; i++) {
        const json_t *row = i < n ? json_array_get(rows, i) : total;
        if (!json_is_object(row))
            continue;
        int w = display_width(row_key(row));
        wkey = w > wkey ? w : wkey;
        w = display_width(row_name(row));
        wname = w > wname ? w : wname;
        for (size_t c = 0; c < FB_ARRAY_LEN(s_cols); c++) {
            cell_text(row, c, buf, sizeof buf);
            w = display_width(buf);
            wcol[c] = w > wcol[c] ? w : wcol[c];
        }
    }

    print_cell("KEY", wkey, false);
    printf("  ");
    print_cell("NAME", wname, false);
    for (size_t c = 0; c < FB_ARRAY_LEN(s_cols); c++) {
        printf("  ");
        print_cell(s_cols[c].head, wcol[c], true);
    }
    printf("\n");
    for (size_t i = 0; i <= n; i++) {
        const json_t *row = i < n ? json_array_get(rows, i) : total;
        if (i == n && n == 0)
            printf("(no cases dispatched in this period)\n");
        if (!json_is_object(row))
            continue;
        print_cell(row_key(row), wkey, false);
        printf("  ");
        print_cell(row_name(row), wname, false);
        for (size_t c = 0; c < FB_ARRAY_LEN(s_cols); c++) {
            cell_text(row, c, buf, sizeof buf);
            printf("  ");
            print_cell(buf, wcol[c], true);
        }
        printf("\n");
    }
}

int ctl_cmd_stats(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {
        {"by", true, NULL}, {"from", true, NULL}, {"to", true, NULL}, {"json", false, NULL}};
    int rc = ctl_args_parse(ctl, argc, argv, opts, FB_ARRAY_LEN(opts), NULL, 0, 0, NULL);
    if (rc)
        return rc;
    const char *by = ctl_opt(opts, FB_ARRAY_LEN(opts), "by");
    const char *params[4] = {by ? by : "department", ctl_opt(opts, FB_ARRAY_LEN(opts), "from"),
                             ctl_opt(opts, FB_ARRAY_LEN(opts), "to"), ctl->cfg.timezone};
    bool as_json = ctl_opt(opts, FB_ARRAY_LEN(opts), "json") != NULL;
    if (ctl_connect(ctl))
        return CTL_FAIL;

    PGresult *res = PQexecParams(ctl->db, s_stats_sql, 4, NULL, params, NULL, NULL, 0);
    json_t *doc = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        /* The function names the option it refused (by, from, to). */
        if (state && strcmp(state, "22023") == 0 && column)
            rc = ctl_usage(ctl, "--%s: %s", column, msg ? msg : "invalid");
        else
            rc = ctl_fail(ctl, "computing the rates: %s", ctl_pg_error(ctl->db, res));
        goto done;
    }
    json_error_t e;
    doc = json_loads(PQgetvalue(res, 0, 0), 0, &e);
    if (!doc) {
        rc = ctl_fail(ctl, "unreadable answer from fenbo_stats_json: %s", e.text);
        goto done;
    }
    if (as_json) {
        /* Four decimals are what the function rounds to: no float noise. */
        char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (!s) {
            rc = ctl_fail(ctl, "out of memory");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        print_table(doc);
    }
    rc = CTL_OK;
done:
    json_decref(doc);
    PQclear(res);
    return rc;
}
