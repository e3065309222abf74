/* fenboctl_import.c — reference data in and out: `regions|departments|
 * categories|calendar|rules import FILE`, `data import DIR` and `rules export`.
 *
 * Each file is checked in C first, so that a mistake is refused with a
 * message naming the element and field (unknown keys included: a misspelt
 * "keyword_any" would otherwise silently drop a condition and misroute
 * petitions). Then the whole file goes to PostgreSQL as ONE JSON parameter
 * of ONE statement that does the upsert set-wise: no SQL is ever built from
 * the data, and a file is applied wholly or not at all. */
#include "fenboctl.h"
#include "fb_common.h"
#include "fb_rule.h"

#include <ctype.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct s_import s_import_t;

struct s_import {
    const char *what; /* "regions" */
    const char *const *keys;
    /* Checks one element; returns 0 or prints why and returns FB_EINVAL. */
    int (*check)(ctl_t *ctl, const char *label, const json_t *e);
    /* Checks the whole file (a, and text: the same as the JSON parameter)
     * against the database, or NULL. */
    int (*check_db)(ctl_t *ctl, const char *file, const json_t *a, const char *text);
    const char *key; /* the field that must be unique in a file */
    /* $1: the whole file as JSON. Returns one row, one column: a summary. */
    const char *sql;
};

/* ---- element checks ----------------------------------------------------- */

static const char *str(const json_t *e, const char *key) {
    return json_string_value(json_object_get(e, key));
}

static bool absent(const json_t *e, const char *key) {
    const json_t *v = json_object_get(e, key);
    return !v || json_is_null(v);
}

static bool one_of(const char *s, const char *const *set) {
    for (; s && *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

static int bad(ctl_t *ctl, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(ctl_t *ctl, const char *label, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctl_fail(ctl, "%s: %s", label, msg);
    return FB_EINVAL;
}

static int need_str(ctl_t *ctl, const char *label, const json_t *e, const char *key) {
    const char *s = str(e, key);
    if (!s || !*s)
        return bad(ctl, label, "%s is required (a non-empty string)", key);
    return 0;
}

static int opt_str(ctl_t *ctl, const char *label, const json_t *e, const char *key) {
    if (!absent(e, key) && !json_is_string(json_object_get(e, key)))
        return bad(ctl, label, "%s must be a string or null", key);
    return 0;
}

static int opt_enum(ctl_t *ctl, const char *label, const json_t *e, const char *key,
                    const char *const *set) {
    if (absent(e, key))
        return 0;
    const char *s = str(e, key);
    if (one_of(s, set) || (s && !*s))
        return 0;
    char list[256] = "";
    for (size_t i = 0; set[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", set[i]);
    return bad(ctl, label, "%s must be one of %s", key, list);
}

static int str_list(ctl_t *ctl, const char *label, const json_t *e, const char *key) {
    const json_t *a = json_object_get(e, key);
    size_t i;
    const json_t *v;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return bad(ctl, label, "%s must be a list of strings", key);
    json_array_foreach(a, i, v) {
        if (!json_is_string(v))
            return bad(ctl, label, "%s must be a list of strings", key);
    }
    return 0;
}

static int check_keys(ctl_t *ctl, const char *label, const json_t *e, const char *const *keys) {
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)e, k, v) {
        (void)v;
        if (!one_of(k, keys))
            return bad(ctl, label, "unknown field \"%s\"", k);
    }
    return 0;
}

/* ---- regions ------------------------------------------------------------ */

static const char *const s_region_keys[] = {"code", "parent_code", "level",
                                            "name", "geometry",    NULL};

static int check_region(ctl_t *ctl, const char *label, const json_t *e) {
    if (need_str(ctl, label, e, "code") || need_str(ctl, label, e, "name") ||
        opt_str(ctl, label, e, "parent_code"))
        return FB_EINVAL;
    const json_t *level = json_object_get(e, "level");
    if (!json_is_integer(level) || json_integer_value(level) < 1 || json_integer_value(level) > 5)
        return bad(ctl, label, "level must be a whole number from 1 (city) to 5 (grid)");
    /* Rules match regions by code prefix, so a child's code must extend its
     * parent's, as the schema says. */
    const char *code = str(e, "code"), *parent = str(e, "parent_code");
    if (parent && (strncmp(code, parent, strlen(parent)) != 0 || strlen(code) <= strlen(parent)))
        return bad(ctl, label, "code must extend its parent's code %s", parent);
    if (absent(e, "geometry"))
        return 0;
    const json_t *g = json_object_get(e, "geometry");
    const char *type = str(g, "type");
    if (!json_is_object(g) || !type ||
        (strcmp(type, "Polygon") != 0 && strcmp(type, "MultiPolygon") != 0) ||
        !json_is_array(json_object_get(g, "coordinates")))
        return bad(ctl, label, "geometry must be a GeoJSON Polygon or MultiPolygon");
    return 0;
}

/* An invalid polygon (self-intersecting, say) would make every lookup that
 * touches it fail in the dispatcher, as GEOS refuses it: refuse it here,
 * naming the region. */
static int check_regions_db(ctl_t *ctl, const char *file, const json_t *a, const char *text) {
    (void)a;
    static const char *const sql = "SELECT s.e->>'code', ST_IsValidReason(s.g) FROM ("
                                   " SELECT e, ST_GeomFromGeoJSON(e->>'geometry') AS g"
                                   " FROM json_array_elements($1::json) AS e"
                                   " WHERE json_typeof(e->'geometry') = 'object') AS s"
                                   " WHERE NOT ST_IsValid(s.g) LIMIT 1";
    const char *params[1] = {text};
    PGresult *res = NULL;
    if (ctl_query(ctl, file, sql, 1, params, &res))
        return FB_EDB;
    int rc = 0;
    if (PQntuples(res) > 0)
        rc = bad(ctl, file, "region %s: invalid geometry: %s", PQgetvalue(res, 0, 0),
                 PQgetvalue(res, 0, 1));
    PQclear(res);
    return rc;
}

static const s_import_t s_regions = {
    "regions",
    s_region_keys,
    check_region,
    check_regions_db,
    "code",
    "WITH up AS ("
    " INSERT INTO regions (code, parent_code, level, name, geom)"
    " SELECT e->>'code', e->>'parent_code', (e->>'level')::smallint, e->>'name',"
    "        CASE WHEN json_typeof(e->'geometry') = 'object'"
    "             THEN ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(e->>'geometry'), 4326)) END"
    " FROM json_array_elements($1::json) AS e"
    " ON CONFLICT (code) DO UPDATE SET parent_code = EXCLUDED.parent_code,"
    "     level = EXCLUDED.level, name = EXCLUDED.name, geom = EXCLUDED.geom"
    " RETURNING 1)"
    "SELECT format('%s regions', count(*)) FROM up",
};

/* ---- departments -------------------------------------------------------- */

static const char *const s_department_keys[] = {"code",         "name",   "kind",
                                                "jurisdiction", "active", NULL};
static const char *const s_department_kinds[] = {"bureau", "street_office", "utility", "other",
                                                 NULL};

static int check_department(ctl_t *ctl, const char *label, const json_t *e) {
    if (need_str(ctl, label, e, "code") || need_str(ctl, label, e, "name"))
        return FB_EINVAL;
    for (const char *p = str(e, "code"); *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-'))
            return bad(ctl, label, "code may hold only a-z, 0-9, _ and -");
    if (!one_of(str(e, "kind"), s_department_kinds))
        return bad(ctl, label, "kind must be one of bureau, street_office, utility, other");
    if (!absent(e, "active") && !json_is_boolean(json_object_get(e, "active")))
        return bad(ctl, label, "active must be true or false");
    return str_list(ctl, label, e, "jurisdiction");
}

static const s_import_t s_departments = {
    "departments",
    s_department_keys,
    check_department,
    NULL,
    "code",
    /* The jurisdiction of each listed department becomes exactly its list:
     * rows no longer listed are deleted, new ones inserted. The two touch
     * disjoint rows, so they can share one statement. */
    "WITH src AS ("
    " SELECT e->>'code' AS code, e->>'name' AS name, e->>'kind' AS kind,"
    "        coalesce((e->>'active')::boolean, true) AS active,"
    "        CASE WHEN json_typeof(e->'jurisdiction') = 'array'"
    "             THEN e->'jurisdiction' ELSE '[]' END AS j"
    " FROM json_array_elements($1::json) AS e),"
    " jur AS ("
    " SELECT DISTINCT s.code AS department_code, r AS region_code"
    " FROM src s, json_array_elements_text(s.j) AS r),"
    " up AS ("
    " INSERT INTO departments (code, name, kind, active)"
    " SELECT code, name, kind, active FROM src"
    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
    "     active = EXCLUDED.active"
    " RETURNING 1),"
    " gone AS ("
    " DELETE FROM jurisdictions AS j USING src s"
    " WHERE j.department_code = s.code AND NOT EXISTS ("
    "     SELECT 1 FROM jur WHERE jur.department_code = j.department_code"
    "     AND jur.region_code = j.region_code)"
    " RETURNING 1),"
    " ins AS ("
    " INSERT INTO jurisdictions (department_code, region_code)"
    " SELECT department_code, region_code FROM jur ON CONFLICT DO NOTHING RETURNING 1)"
    "SELECT format('%s departments, %s jurisdictions (%s added, %s removed)',"
    "              (SELECT count(*) FROM up), (SELECT count(*) FROM jur),"
    "              (SELECT count(*) FROM ins), (SELECT count(*) FROM gone))",
};

/* ---- categories --------------------------------------------------------- */

/* A leaf of the catalogue carries the words residents use for it (terms)
 * and example sentences: both train the classifier, as training_examples of
 * source 'catalogue', replaced wholesale by each import. emergency flags a
 * category whose suggestion makes a manual-queue case urgent. */
static const char *const s_category_keys[] = {"code",     "parent_code", "name", "terms",
                                              "examples", "emergency",   NULL};

/* A list of non-empty strings, or absent. */
static int nonempty_list(ctl_t *ctl, const char *label, const json_t *e, const char *key) {
    if (str_list(ctl, label, e, key))
        return FB_EINVAL;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(e, key), i, v) {
        if (!*json_string_value(v))
            return bad(ctl, label, "%s[%zu] is empty", key, i);
    }
    return 0;
}

static int check_category(ctl_t *ctl, const char *label, const json_t *e) {
    if (need_str(ctl, label, e, "code") || need_str(ctl, label, e, "name") ||
        opt_str(ctl, label, e, "parent_code") || nonempty_list(ctl, label, e, "terms") ||
        nonempty_list(ctl, label, e, "examples"))
        return FB_EINVAL;
    if (!absent(e, "emergency") && !json_is_boolean(json_object_get(e, "emergency")))
        return bad(ctl, label, "emergency must be true or false");
    return 0;
}

/* Terms train as examples too: a resident may write only "井盖没了". */
static const s_import_t s_categories = {
    "categories",
    s_category_keys,
    check_category,
    NULL,
    "code",
    "WITH up AS ("
    " INSERT INTO categories (code, parent_code, name, terms, emergency)"
    " SELECT e->>'code', e->>'parent_code', e->>'name',"
    "        ARRAY(SELECT json_array_elements_text(coalesce(e->'terms', '[]'))),"
    "        coalesce((e->>'emergency')::boolean, false)"
    "   FROM json_array_elements($1::json) AS e"
    " ON CONFLICT (code) DO UPDATE SET parent_code = EXCLUDED.parent_code, name = EXCLUDED.name,"
    "   terms = EXCLUDED.terms, emergency = EXCLUDED.emergency"
    " RETURNING 1),"
    "gone AS (DELETE FROM training_examples WHERE source = 'catalogue' RETURNING 1),"
    "ex AS ("
    " INSERT INTO training_examples (text, category, source, who)"
    " SELECT t.text, e->>'code', 'catalogue', 'catalogue'"
    "   FROM json_array_elements($1::json) AS e,"
    "        LATERAL (SELECT json_array_elements_text(coalesce(e->'examples', '[]'))"
    "                 UNION ALL SELECT json_array_elements_text(coalesce(e->'terms', '[]'))) AS "
    "t(text)"
    " RETURNING 1)"
    "SELECT format('%s categories, %s training examples (replacing %s)', (SELECT count(*) FROM up),"
    "              (SELECT count(*) FROM ex), (SELECT count(*) FROM gone))",
};

/* ---- calendar ----------------------------------------------------------- */

static const char *const s_calendar_keys[] = {"day", "kind", "name", NULL};
static const char *const s_day_kinds[] = {"holiday", "workday", NULL};

static int check_day(ctl_t *ctl, const char *label, const json_t *e) {
    const char *day = str(e, "day");
    int y, m, d, used = 0;
    if (!day || sscanf(day, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10 ||
        strlen(day) != 10 || m < 1 || m > 12 || d < 1 || d > 31)
        return bad(ctl, label, "day must be a date YYYY-MM-DD");
    if (!one_of(str(e, "kind"), s_day_kinds))
        return bad(ctl, label, "kind must be holiday or workday");
    return opt_str(ctl, label, e, "name");
}

static const s_import_t s_calendar = {
    "calendar days",
    s_calendar_keys,
    check_day,
    NULL,
    "day",
    "WITH up AS ("
    " INSERT INTO calendar_days (day, kind, name)"
    " SELECT (e->>'day')::date, e->>'kind', coalesce(e->>'name', '')"
    " FROM json_array_elements($1::json) AS e"
    " ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name"
    " RETURNING 1)"
    "SELECT format('%s calendar days', count(*)) FROM up",
};

/* ---- rules -------------------------------------------------------------- */

/* route_rules' columns but id, which the database assigns. An "id" in the
 * file (a json_agg of the table, say) is accepted and ignored. */
static const char *const s_rule_keys[] = {"id",
                                          "priority",
                                          "name",
                                          "channel",
                                          "category_prefix",
                                          "region_prefix",
                                          "keywords_any",
                                          "keywords_none",
                                          "time_from",
                                          "time_to",
                                          "urgency",
                                          "kind",
                                          "action_department",
                                          "assist_departments",
                                          "set_urgency",
                                          "accept_hours",
                                          "reply_workdays",
                                          "enabled",
                                          "note",
                                          NULL};
static const char *const s_channels[] = {"hotline", "miniapp", "mailbox", "open311", NULL};
static const char *const s_urgencies[] = {"normal", "urgent", "emergency", NULL};
static const char *const s_kinds[] = {"consult",    "help",   "complaint", "report",
                                      "suggestion", "praise", NULL};

static int opt_positive(ctl_t *ctl, const char *label, const json_t *e, const char *key) {
    const json_t *v = json_object_get(e, key);
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 100000))
        return bad(ctl, label, "%s must be a positive whole number or null", key);
    return 0;
}

static int check_rule(ctl_t *ctl, const char *label, const json_t *e) {
    if (need_str(ctl, label, e, "name") || need_str(ctl, label, e, "action_department") ||
        opt_str(ctl, label, e, "category_prefix") || opt_str(ctl, label, e, "region_prefix") ||
        opt_str(ctl, label, e, "note") || opt_enum(ctl, label, e, "channel", s_channels) ||
        opt_enum(ctl, label, e, "urgency", s_urgencies) ||
        opt_enum(ctl, label, e, "set_urgency", s_urgencies) ||
        opt_enum(ctl, label, e, "kind", s_kinds) || opt_positive(ctl, label, e, "accept_hours") ||
        opt_positive(ctl, label, e, "reply_workdays"))
        return FB_EINVAL;
    if (!json_is_integer(json_object_get(e, "priority")))
        return bad(ctl, label, "priority must be a whole number");
    if (!absent(e, "enabled") && !json_is_boolean(json_object_get(e, "enabled")))
        return bad(ctl, label, "enabled must be true or false");
    return 0;
}

static bool department_exists(const PGresult *codes, const char *code) {
    for (int i = 0; i < PQntuples(codes); i++)
        if (strcmp(PQgetvalue(codes, i, 0), code) == 0)
            return true;
    return false;
}

/* Two things only the database knows or the matcher decides: the rules
 * must compile exactly as the dispatcher will compile them, and every
 * department they name must exist (an unknown one would make the
 * dispatcher's whole batch fail on the assignments' foreign key). */
static int check_rules_db(ctl_t *ctl, const char *file, const json_t *a, const char *text) {
    char err[512] = "";
    fb_ruleset_t *rs = NULL;
    PGresult *codes = NULL;
    /* The matcher skips disabled rules; a disabled rule must still be
     * well-formed, since enabling it is one UPDATE away. */
    json_t *all = json_deep_copy(a);
    size_t i;
    json_t *e;
    int rc = FB_EINVAL;
    (void)text;
    if (!all) {
        ctl_fail(ctl, "out of memory");
        return FB_ENOMEM;
    }
    json_array_foreach(all, i, e) {
        json_object_del(e, "enabled");
    }
    if (fb_ruleset_from_json(all, NULL, &rs, err, sizeof err) != 0) {
        ctl_fail(ctl, "%s: %s", file, *err ? err : "cannot compile the rules");
        goto done;
    }
    if (ctl_query(ctl, "reading departments", "SELECT code FROM departments", 0, NULL, &codes))
        goto done;
    json_array_foreach(a, i, e) {
        const char *name = str(e, "name"), *action = str(e, "action_department");
        if (strcmp(action, "@street") != 0 && strcmp(action, "@community") != 0 &&
            !department_exists(codes, action)) {
            ctl_fail(ctl,
                     "%s: rule #%zu \"%s\": action_department \"%s\" is neither @street, "
                     "@community nor a department",
                     file, i + 1, name, action);
            goto done;
        }
        size_t j;
        const json_t *d;
        json_array_foreach(json_object_get(e, "assist_departments"), j, d) {
            const char *code = json_string_value(d);
            if (*code && !department_exists(codes, code)) {
                ctl_fail(ctl, "%s: rule #%zu \"%s\": assist department \"%s\" does not exist", file,
                         i + 1, name, code);
                goto done;
            }
        }
    }
    rc = 0;
done:
    PQclear(codes);
    fb_ruleset_destroy(&rs);
    json_decref(all);
    return rc;
}

/* Strings: "" is stored as NULL ("no condition"), as the matcher reads it.
 * Lists: the empty strings the matcher ignores are dropped. Ids come from
 * the sequence in file order, so ties in priority keep the file's order. */
#define RULE_LIST(k)                                                                               \
    "ARRAY(SELECT x FROM json_array_elements_text(CASE WHEN json_typeof(e->'" k "') = 'array'"     \
    " THEN e->'" k "' ELSE '[]' END) AS x WHERE x <> '')"

static const s_import_t s_rules = {
    "rules",
    s_rule_keys,
    check_rule,
    check_rules_db,
    NULL,
    /* DELETE, not TRUNCATE: a dispatcher reloading meanwhile still sees
     * the old table whole (TRUNCATE is not MVCC-safe). */
    "WITH gone AS (DELETE FROM route_rules RETURNING 1),"
    " ins AS ("
    " INSERT INTO route_rules (priority, name, channel, category_prefix, region_prefix,"
    "     keywords_any, keywords_none, time_from, time_to, urgency, kind, action_department,"
    "     assist_departments, set_urgency, accept_hours, reply_workdays, enabled, note)"
    " SELECT (e->>'priority')::integer, e->>'name', nullif(e->>'channel', ''),"
    "     nullif(e->>'category_prefix', ''), nullif(e->>'region_prefix', ''),"
    "     " RULE_LIST("keywords_any") ", " RULE_LIST(
        "keywords_none") ","
                         "     nullif(e->>'time_from', '')::time, nullif(e->>'time_to', '')::time,"
                         "     nullif(e->>'urgency', ''), nullif(e->>'kind', ''), "
                         "e->>'action_department',"
                         "     " RULE_LIST(
                             "assist_departments") ", nullif(e->>'set_urgency', ''),"
                                                   "     (e->>'accept_hours')::integer, "
                                                   "(e->>'reply_workdays')::integer,"
                                                   "     coalesce((e->>'enabled')::boolean, true), "
                                                   "e->>'note'"
                                                   " FROM json_array_elements($1::json) WITH "
                                                   "ORDINALITY AS t(e, i) ORDER BY t.i"
                                                   " RETURNING 1)"
                                                   "SELECT format('%s rules (replacing %s)', "
                                                   "(SELECT count(*) FROM ins),"
                                                   "              (SELECT count(*) FROM gone))",
};

/* ---- the import itself -------------------------------------------------- */

static int check_unique(ctl_t *ctl, const char *file, const json_t *a, const char *key) {
    size_t i, j;
    for (i = 0; key && i < json_array_size(a); i++) {
        const char *k = str(json_array_get(a, i), key);
        for (j = 0; j < i; j++)
            if (strcmp(k, str(json_array_get(a, j), key)) == 0) {
                ctl_fail(ctl, "%s: %s %s appears twice (#%zu and #%zu)", file, key, k, j + 1,
                         i + 1);
                return FB_EINVAL;
            }
    }
    return 0;
}

/* Checks and applies one file inside the caller's transaction; prints
 * "FILE: summary". */
static int import_file(ctl_t *ctl, const s_import_t *im, const char *path) {
    json_t *a = NULL;
    char *text = NULL;
    PGresult *res = NULL;
    int rc = FB_EINVAL;
    if (ctl_load_json(ctl, path, &a))
        goto done;
    if (!json_is_array(a)) {
        ctl_fail(ctl, "%s: expected a JSON array of %s", path, im->what);
        goto done;
    }
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        char label[512];
        const char *id = im->key ? str(e, im->key) : str(e, "name");
        snprintf(label, sizeof label, "%s: #%zu%s%s%s", path, i + 1, id ? " (" : "", id ? id : "",
                 id ? ")" : "");
        if (!json_is_object(e)) {
            bad(ctl, label, "expected an object");
            goto done;
        }
        if (check_keys(ctl, label, e, im->keys) || im->check(ctl, label, e))
            goto done;
    }
    if (check_unique(ctl, path, a, im->key))
        goto done;
    text = json_dumps(a, JSON_COMPACT);
    if (!text) {
        ctl_fail(ctl, "%s: out of memory", path);
        goto done;
    }
    if (im->check_db && im->check_db(ctl, path, a, text))
        goto done;
    const char *params[1] = {text};
    rc = ctl_query(ctl, path, im->sql, 1, params, &res);
    if (rc)
        goto done;
    printf("%s: %s\n", path, PQgetvalue(res, 0, 0));
done:
    PQclear(res);
    free(text);
    json_decref(a);
    return rc;
}

static int import_one(ctl_t *ctl, const s_import_t *im, int argc, char **argv) {
    char *pos[1];
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, pos, 1, 1, NULL);
    if (rc)
        return rc;
    if (ctl_connect(ctl) || ctl_begin(ctl))
        return CTL_FAIL;
    if (import_file(ctl, im, pos[0]) || ctl_commit(ctl)) {
        ctl_rollback(ctl);
        return CTL_FAIL;
    }
    return CTL_OK;
}

int ctl_cmd_regions_import(ctl_t *ctl, int argc, char **argv) {
    return import_one(ctl, &s_regions, argc, argv);
}

int ctl_cmd_departments_import(ctl_t *ctl, int argc, char **argv) {
    return import_one(ctl, &s_departments, argc, argv);
}

int ctl_cmd_categories_import(ctl_t *ctl, int argc, char **argv) {
    return import_one(ctl, &s_categories, argc, argv);
}

int ctl_cmd_calendar_import(ctl_t *ctl, int argc, char **argv) {
    return import_one(ctl, &s_calendar, argc, argv);
}

int ctl_cmd_rules_import(ctl_t *ctl, int argc, char **argv) {
    return import_one(ctl, &s_rules, argc, argv);
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* All of DIR in one transaction: the demo (or a city's reference data) is
 * loaded wholly or not at all, and the dispatcher reloads once. */
int ctl_cmd_data_import(ctl_t *ctl, int argc, char **argv) {
    char *pos[1];
    glob_t cal = {0};
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, pos, 1, 1, NULL);
    if (rc)
        return rc;
    const char *dir = pos[0];
    char path[4096];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ctl_fail(ctl, "%s is not a directory", dir);

    snprintf(path, sizeof path, "%s/calendar-*.json", dir);
    int g = glob(path, 0, NULL, &cal);
    if (g != 0 && g != GLOB_NOMATCH)
        return ctl_fail(ctl, "cannot list %s", path);

    const struct {
        const s_import_t *im;
        const char *name;
    } steps[] = {{&s_regions, "regions.json"},
                 {&s_departments, "departments.json"},
                 {&s_categories, "categories.json"},
                 {&s_calendar, NULL},
                 {&s_rules, "rules.json"}};
    int found = 0;
    rc = CTL_FAIL;
    if (ctl_connect(ctl) || ctl_begin(ctl))
        goto done;
    for (size_t i = 0; i < FB_ARRAY_LEN(steps); i++) {
        if (!steps[i].name) {
            for (size_t j = 0; j < cal.gl_pathc; j++, found++)
                if (import_file(ctl, steps[i].im, cal.gl_pathv[j]))
                    goto fail;
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, steps[i].name);
        if (!file_exists(path)) {
            printf("%s: skipped (no such file)\n", path);
            continue;
        }
        found++;
        if (import_file(ctl, steps[i].im, path))
            goto fail;
    }
    if (found == 0) {
        ctl_fail(ctl,
                 "%s holds none of regions.json, departments.json, categories.json, "
                 "calendar-*.json, rules.json",
                 dir);
        goto fail;
    }
    if (ctl_commit(ctl))
        goto fail;
    rc = CTL_OK;
    goto done;
fail:
    ctl_rollback(ctl);
done:
    globfree(&cal);
    return rc;
}

/* ---- rules export ------------------------------------------------------- */

/* The inverse of rules import: no id, nulls and empty lists left out, times
 * as HH:MM when they have no seconds, ordered by (priority, id) — so that
 * importing the output rebuilds the same table, in the same order. */
static const char *const s_export_sql =
    "SELECT coalesce(json_agg(json_strip_nulls(json_build_object("
    " 'priority', priority, 'name', name, 'channel', channel,"
    " 'category_prefix', category_prefix, 'region_prefix', region_prefix,"
    " 'keywords_any', nullif(keywords_any, '{}'), 'keywords_none', nullif(keywords_none, '{}'),"
    " 'time_from', regexp_replace(time_from::text, ':00$', ''),"
    " 'time_to', regexp_replace(time_to::text, ':00$', ''),"
    " 'urgency', urgency, 'kind', kind, 'action_department', action_department,"
    " 'assist_departments', nullif(assist_departments, '{}'), 'set_urgency', set_urgency,"
    " 'accept_hours', accept_hours, 'reply_workdays', reply_workdays, 'enabled', enabled,"
    " 'note', note)) ORDER BY priority, id), '[]') FROM route_rules";

int ctl_cmd_rules_export(ctl_t *ctl, int argc, char **argv) {
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, NULL, 0, 0, NULL);
    if (rc)
        return rc;
    PGresult *res = NULL;
    json_t *rules = NULL;
    char *text = NULL;
    json_error_t e;
    rc = CTL_FAIL;
    if (ctl_connect(ctl) || ctl_query(ctl, "reading route_rules", s_export_sql, 0, NULL, &res))
        goto done;
    rules = json_loads(PQgetvalue(res, 0, 0), 0, &e);
    /* Pretty, and UTF-8 as is: jansson escapes nothing unless asked to. */
    text = rules ? json_dumps(rules, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (!text) {
        ctl_fail(ctl, "cannot format the rules");
        goto done;
    }
    printf("%s\n", text);
    rc = CTL_OK;
done:
    free(text);
    json_decref(rules);
    PQclear(res);
    return rc;
}
