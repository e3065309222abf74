/* fenboctl_history.c — `fenboctl history import FILE`: the past work orders a
 * city brings along, as training examples of source 'import'.
 *
 * FILE is CSV with a header row naming `text` and `category` or `department`
 * (RFC 4180 quoting), or JSON lines with the same keys. Every row is checked
 * before anything is written, and the rows go in one transaction: a file
 * with a bad row writes nothing, and each bad row is reported as
 * FILE:LINE: why. A row with only a department gets the leaf category, among
 * those the rules send to that department, that the newest model ranks
 * highest for its text — so a city whose old system knew departments but not
 * matters still teaches the model its words. */
#include "fenboctl.h"
#include "fb_classify.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_map.h"
#include "fb_rule.h"
#include "fb_text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH          5000  /* rows per INSERT */
#define PROGRESS_EVERY 10000 /* rows between progress lines */
#define MAX_BAD_SHOWN  20

typedef struct row {
    size_t line;
    char *text, *category, *department;
} row_t;

typedef struct rows {
    row_t *r;
    size_t n, cap;
} rows_t;

static void rows_free(rows_t *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->r[i].text);
        free(rs->r[i].category);
        free(rs->r[i].department);
    }
    free(rs->r);
}

static row_t *rows_add(rows_t *rs, size_t line) {
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 1024;
        row_t *r = realloc(rs->r, cap * sizeof *r);
        if (!r)
            return NULL;
        rs->r = r, rs->cap = cap;
    }
    row_t *r = &rs->r[rs->n++];
    memset(r, 0, sizeof *r);
    r->line = line;
    return r;
}

/* ---- CSV (RFC 4180) ---------------------------------------------------- */

/* Reads one record of up to max fields starting at *p (advanced past it);
 * fields are the caller's. Returns the field count, -1 on an unterminated
 * quote. *lines counts the newlines consumed (quoted fields may hold some). */
static int csv_record(const char **p, char **fields, int max, size_t *lines) {
    int n = 0;
    const char *s = *p;
    for (;;) {
        size_t cap = 64, len = 0;
        char *f = malloc(cap);
        if (!f)
            return -1;
        bool quoted = *s == '"';
        if (quoted)
            s++;
        for (;;) {
            if (quoted && *s == '"' && s[1] == '"') {
                s++;
            } else if (quoted && *s == '"') {
                s++;
                quoted = false;
                continue;
            } else if (quoted && !*s) {
                free(f);
                return -1;
            } else if (!quoted && (*s == ',' || *s == '\n' || *s == '\r' || !*s)) {
                break;
            }
            if (*s == '\n')
                (*lines)++;
            if (len + 2 > cap) {
                char *g = realloc(f, cap *= 2);
                if (!g) {
                    free(f);
                    return -1;
                }
                f = g;
            }
            f[len++] = *s++;
        }
        f[len] = '\0';
        if (n < max)
            fields[n] = f;
        else
            free(f);
        n++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n') {
            s++;
            (*lines)++;
        }
        *p = s;
        return n;
    }
}

static int column(char **head, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(head[i], name) == 0)
            return i;
    return -1;
}

static void free_fields(char **f, int n, int max) {
    for (int i = 0; i < n && i < max; i++)
        free(f[i]);
}

#define CSV_MAX 32

/* Reads FILE's rows; prints each malformed one and counts it in *bad. */
static int read_csv(ctl_t *ctl, const char *path, const char *data, rows_t *rs, size_t *bad) {
    const char *p = data;
    size_t line = 1;
    char *head[CSV_MAX];
    int nh = csv_record(&p, head, CSV_MAX, &line);
    if (nh < 0)
        return ctl_fail(ctl, "%s:1: unterminated quote in the header", path);
    int ct = column(head, nh, "text"), cc = column(head, nh, "category"),
        cd = column(head, nh, "department");
    free_fields(head, nh, CSV_MAX);
    if (ct < 0 || (cc < 0 && cd < 0))
        return ctl_fail(ctl, "%s:1: the header must name text and category or department", path);
    while (*p) {
        size_t at = line;
        char *f[CSV_MAX] = {0};
        int nf = csv_record(&p, f, CSV_MAX, &line);
        if (nf < 0) {
            fprintf(stderr, "%s:%zu: unterminated quote\n", path, at);
            (*bad)++;
            break;
        }
        if (nf == 1 && !f[0][0]) { /* an empty line */
            free_fields(f, nf, CSV_MAX);
            continue;
        }
        row_t *r = rows_add(rs, at);
        if (!r) {
            free_fields(f, nf, CSV_MAX);
            return ctl_fail(ctl, "out of memory");
        }
        if (nf != nh) {
            fprintf(stderr, "%s:%zu: %d fields, the header has %d\n", path, at, nf, nh);
            (*bad)++;
        } else {
            r->text = strdup(f[ct]);
            r->category = cc >= 0 && f[cc][0] ? strdup(f[cc]) : NULL;
            r->department = cd >= 0 && f[cd][0] ? strdup(f[cd]) : NULL;
        }
        free_fields(f, nf, CSV_MAX);
    }
    return CTL_OK;
}

static int read_jsonl(ctl_t *ctl, const char *path, const char *data, rows_t *rs, size_t *bad) {
    size_t line = 0;
    for (const char *p = data; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (strspn(p, " \t\r") >= len) {
            p += len + (nl != NULL);
            continue;
        }
        json_error_t je;
        json_t *o = json_loadb(p, len, 0, &je);
        p += len + (nl != NULL);
        row_t *r = rows_add(rs, line);
        if (!r) {
            json_decref(o);
            return ctl_fail(ctl, "out of memory");
        }
        if (!json_is_object(o)) {
            fprintf(stderr, "%s:%zu: not a JSON object (%s)\n", path, line, je.text);
            (*bad)++;
            json_decref(o);
            continue;
        }
        const char *t = json_string_value(json_object_get(o, "text"));
        const char *c = json_string_value(json_object_get(o, "category"));
        const char *d = json_string_value(json_object_get(o, "department"));
        r->text = t ? strdup(t) : NULL;
        r->category = c && *c ? strdup(c) : NULL;
        r->department = d && *d ? strdup(d) : NULL;
        json_decref(o);
    }
    return CTL_OK;
}

/* ---- checks against the database ---------------------------------------- */

/* First column → 2 when the second is true, 1 when false. */
static int load_codes(ctl_t *ctl, const char *sql, fb_map_t **out) {
    PGresult *res = NULL;
    if (ctl_query(ctl, "reading reference data", sql, 0, NULL, &res))
        return CTL_FAIL;
    fb_map_t *m = fb_map_new();
    for (int i = 0; m && i < PQntuples(res); i++)
        fb_map_put(m, PQgetvalue(res, i, 0),
                   (void *)(uintptr_t)(1 + (PQgetvalue(res, i, 1)[0] == 't')), NULL);
    PQclear(res);
    if (!m)
        return ctl_fail(ctl, "out of memory");
    *out = m;
    return CTL_OK;
}

/* Among the leaf categories the rules send to dept (the category alone, no
 * location), the one the model ranks highest for norm; NULL if none. */
static const char *best_for_department(const fb_classifier_t *model, const fb_ruleset_t *rs,
                                       const char *norm, const char *dept) {
    size_t all = fb_classifier_categories(model);
    fb_class_score_t *s = malloc(all * sizeof *s);
    const char *best = NULL;
    size_t n = s ? fb_classifier_classify(model, norm, s, all) : 0;
    for (size_t i = 0; i < n && !best; i++) {
        fb_rule_input_t in = {.channel = "hotline",
                              .category = s[i].category,
                              .content_norm = "",
                              .local_minutes = 600,
                              .urgency = "normal",
                              .kind = "complaint"};
        fb_rule_match_t m;
        if (fb_rule_match(rs, &in, &m, NULL, NULL) && strcmp(m.department, dept) == 0)
            best = s[i].category;
    }
    free(s);
    return best;
}

static int insert_batch(ctl_t *ctl, const rows_t *rs, size_t from, size_t to) {
    json_t *a = json_array();
    for (size_t i = from; a && i < to; i++)
        json_array_append_new(a, json_pack("[s,s]", rs->r[i].text, rs->r[i].category));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return ctl_fail(ctl, "out of memory");
    const char *params[1] = {text};
    int rc = ctl_query(ctl, "inserting training examples",
                       "INSERT INTO training_examples (text, category, source, who)"
                       " SELECT e->>0, e->>1, 'import', 'history import'"
                       "   FROM json_array_elements($1::json) AS e",
                       1, params, NULL);
    free(text);
    return rc ? CTL_FAIL : CTL_OK;
}

int ctl_cmd_history_import(ctl_t *ctl, int argc, char **argv) {
    char *pos[1];
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, pos, 1, 1, NULL);
    if (rc)
        return rc;
    const char *path = pos[0];
    char *data = NULL;
    size_t len = 0, bad = 0;
    rows_t rs = {0};
    fb_map_t *cats = NULL, *depts = NULL;
    fb_classifier_t *model = NULL;
    fb_ruleset_t *ruleset = NULL;
    json_t *rules = NULL, *juris = NULL, *days = NULL;
    rc = CTL_FAIL;
    if (ctl_read_file(ctl, path, &data, &len))
        goto done;
    if (!fb_utf8_valid(data, len)) {
        size_t ok = fb_utf8_valid_prefix(data, len), line = 1;
        for (size_t i = 0; i < ok; i++)
            line += data[i] == '\n';
        ctl_fail(ctl, "%s:%zu: not valid UTF-8", path, line);
        goto done;
    }
    /* JSON lines when the first non-blank character opens an object. */
    const char *first = data + strspn(data, " \t\r\n");
    if ((*first == '{' ? read_jsonl : read_csv)(ctl, path, data, &rs, &bad))
        goto done;
    fprintf(stderr, "%s: %zu rows read\n", path, rs.n);
    if (fb_text_init() != 0) {
        ctl_fail(ctl, "cannot open OpenCC's traditional-to-simplified data (t2s.json)");
        goto done;
    }
    if (ctl_connect(ctl) ||
        load_codes(ctl,
                   "SELECT code, NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_code = "
                   "c.code) FROM categories c",
                   &cats) ||
        load_codes(ctl, "SELECT code, true FROM departments", &depts))
        goto done;

    bool need_model = false;
    for (size_t i = 0; i < rs.n; i++) {
        row_t *r = &rs.r[i];
        const char *why = NULL;
        uintptr_t k = r->category ? (uintptr_t)fb_map_get(cats, r->category) : 0;
        if (!r->text && !r->category && !r->department)
            continue; /* already reported as malformed */
        if (!r->text || !r->text[strspn(r->text, " \t\r\n")])
            why = "text is empty";
        else if (!r->category && !r->department)
            why = "neither category nor department given";
        else if (r->category && k == 0)
            why = "no such category";
        else if (r->category && k != 2)
            why = "category is not a leaf of the catalogue";
        else if (!r->category && !fb_map_get(depts, r->department))
            why = "no such department";
        if (why) {
            if (bad < MAX_BAD_SHOWN)
                fprintf(stderr, "%s:%zu: %s\n", path, r->line, why);
            bad++;
        }
        need_model |= !r->category;
    }
    if (bad) {
        ctl_fail(ctl, "%s: %zu bad rows; nothing imported", path, bad);
        goto done;
    }
    if (need_model) {
        int version;
        char err[256] = "";
        if (fb_classifier_load_latest(ctl->db, &model, &version) != 0 || !model) {
            ctl_fail(ctl,
                     "%s: rows with a department only need a model to choose their category: "
                     "run `fenboctl classify train` first",
                     path);
            goto done;
        }
        if (fb_db_load_routing(ctl->db, &rules, &juris, &days) != 0 ||
            fb_ruleset_from_json(rules, juris, &ruleset, err, sizeof err) != 0) {
            ctl_fail(ctl, "cannot load the rules: %s", err);
            goto done;
        }
        for (size_t i = 0; i < rs.n; i++) {
            row_t *r = &rs.r[i];
            if (r->category)
                continue;
            char *norm = NULL;
            const char *best = NULL;
            if (fb_text_normalize(r->text, &norm) == 0)
                best = best_for_department(model, ruleset, norm, r->department);
            free(norm);
            if (!best) {
                if (bad < MAX_BAD_SHOWN)
                    fprintf(stderr, "%s:%zu: the rules send no category to %s\n", path, r->line,
                            r->department);
                bad++;
            } else {
                r->category = strdup(best);
            }
        }
        if (bad) {
            ctl_fail(ctl, "%s: %zu bad rows; nothing imported", path, bad);
            goto done;
        }
    }

    if (ctl_begin(ctl))
        goto done;
    for (size_t i = 0; i < rs.n; i += BATCH) {
        size_t to = i + BATCH < rs.n ? i + BATCH : rs.n;
        if (insert_batch(ctl, &rs, i, to)) {
            ctl_rollback(ctl);
            goto done;
        }
        if (to / PROGRESS_EVERY != i / PROGRESS_EVERY || to == rs.n)
            fprintf(stderr, "%s: %zu of %zu rows written\n", path, to, rs.n);
    }
    if (ctl_commit(ctl))
        goto done;
    printf("%s: %zu training examples imported (source import); `fenboctl classify train` "
           "makes a model of them\n",
           path, rs.n);
    rc = CTL_OK;
done:
    free(data);
    rows_free(&rs);
    fb_map_destroy(&cats, NULL);
    fb_map_destroy(&depts, NULL);
    fb_classifier_destroy(&model);
    fb_ruleset_destroy(&ruleset);
    json_decref(rules);
    json_decref(juris);
    json_decref(days);
    fb_text_shutdown();
    return rc;
}
