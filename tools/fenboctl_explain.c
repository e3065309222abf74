/* fenboctl_explain.c — `fenboctl rules explain`: routes one imagined petition
 * through the very code the dispatcher runs (lib's normaliser, GCJ-02
 * conversion, PostGIS region lookup, rule compiler and matcher, working-day
 * deadlines) on the rules, jurisdictions and calendar now in the database, and
 * shows every rule tried and why it did or did not match. Nothing is written. */
#include "fenboctl.h"
#include "fb_calendar.h"
#include "fb_classify.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_geo.h"
#include "fb_region.h"
#include "fb_rule.h"
#include "fb_text.h"
#include "fb_time.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const s_channels[] = {"hotline", "miniapp", "mailbox", "open311", NULL};
static const char *const s_urgencies[] = {"normal", "urgent", "emergency", NULL};
static const char *const s_kinds[] = {"consult",    "help",   "complaint", "report",
                                      "suggestion", "praise", NULL};

static bool one_of(const char *s, const char *const *set) {
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

static int parse_coord(const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (errno || end == s || *end != '\0' || !isfinite(*out)) ? FB_EINVAL : 0;
}

/* The rules the matcher refused, in the order it tried them. */
static void on_rule(void *ud, const fb_rule_t *rule, const char *reason) {
    json_t *tried = ud;
    if (reason)
        json_array_append_new(tried,
                              json_pack("{s:i,s:s,s:i,s:s}", "id", rule->id, "name", rule->name,
                                        "priority", rule->priority, "reason", reason));
}

/* name of code in a reference table, or NULL (the caller's: free()). */
static char *lookup_name(ctl_t *ctl, const char *sql, const char *code) {
    PGresult *res = NULL;
    char *name = NULL;
    const char *params[1] = {code};
    if (!code || ctl_query(ctl, "looking up a name", sql, 1, params, &res))
        return NULL;
    if (PQntuples(res) == 1)
        name = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return name;
}

/* The newest model's top 3 for norm with each one's weightiest n-grams, as
 * JSON: {"model_version", "top": [{"category", "name", "confidence",
 * "ngrams": [[ngram, weight]…]}]}; NULL without a model. *top_out is the best
 * category (borrowed from the answer) and *top_conf its confidence. */
static json_t *classification(ctl_t *ctl, const char *norm, const char **top_out,
                              double *top_conf) {
    fb_classifier_t *model = NULL;
    int version = 0;
    *top_out = NULL;
    *top_conf = 0;
    if (fb_classifier_load_latest(ctl->db, &model, &version) != 0 || !model)
        return NULL;
    fb_class_score_t s[3];
    size_t n = fb_classifier_classify(model, norm, s, 3);
    json_t *top = json_array();
    for (size_t i = 0; i < n; i++) {
        fb_ngram_weight_t w[5];
        size_t nw = fb_classifier_explain(model, norm, s[i].category, w, 5);
        json_t *ng = json_array();
        for (size_t k = 0; k < nw; k++)
            json_array_append_new(ng, json_pack("[s,f]", w[k].ngram, w[k].weight));
        char *name = lookup_name(ctl, "SELECT name FROM categories WHERE code = $1", s[i].category);
        json_array_append_new(top,
                              json_pack("{s:s,s:s?,s:f,s:o}", "category", s[i].category, "name",
                                        name, "confidence", s[i].confidence, "ngrams", ng));
        free(name);
    }
    fb_classifier_destroy(&model);
    json_t *out = json_pack("{s:i,s:o}", "model_version", version, "top", top);
    if (out && n) {
        *top_out = json_string_value(json_object_get(json_array_get(top, 0), "category"));
        *top_conf = s[0].confidence;
    }
    return out;
}

static void human_time(int64_t us, char *out, size_t outlen) {
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%d %H:%M %a", &tm);
}

static json_t *time_or_null(bool set, int64_t us) {
    char buf[40];
    return set ? json_string(fb_time_format(us, buf, sizeof buf)) : json_null();
}

int ctl_cmd_rules_explain(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {{"text", true, NULL},    {"category", true, NULL}, {"lat", true, NULL},
                        {"lng", true, NULL},     {"crs", true, NULL},      {"channel", true, NULL},
                        {"urgency", true, NULL}, {"kind", true, NULL},     {"at", true, NULL},
                        {"json", false, NULL}};
    const size_t nopts = FB_ARRAY_LEN(opts);
    int rc = ctl_args_parse(ctl, argc, argv, opts, nopts, NULL, 0, 0, NULL);
    if (rc)
        return rc;
    const char *text = ctl_opt(opts, nopts, "text");
    const char *category = ctl_opt(opts, nopts, "category");
    const char *lat_s = ctl_opt(opts, nopts, "lat"), *lng_s = ctl_opt(opts, nopts, "lng");
    const char *crs = ctl_opt(opts, nopts, "crs");
    const char *channel = ctl_opt(opts, nopts, "channel");
    const char *urgency = ctl_opt(opts, nopts, "urgency");
    const char *kind = ctl_opt(opts, nopts, "kind");
    const char *at_s = ctl_opt(opts, nopts, "at");
    bool as_json = ctl_opt(opts, nopts, "json") != NULL;
    channel = channel ? channel : "hotline";
    urgency = urgency ? urgency : "normal";
    kind = kind ? kind : "complaint";
    crs = crs ? crs : "wgs84";
    if (category && !*category)
        category = NULL;

    if (!text)
        return ctl_usage(ctl, "--text is required");
    if (!one_of(channel, s_channels))
        return ctl_usage(ctl, "--channel must be hotline, miniapp, mailbox or open311");
    if (!one_of(urgency, s_urgencies))
        return ctl_usage(ctl, "--urgency must be normal, urgent or emergency");
    if (!one_of(kind, s_kinds))
        return ctl_usage(ctl,
                         "--kind must be consult, help, complaint, report, suggestion or praise");
    if (strcmp(crs, "wgs84") != 0 && strcmp(crs, "gcj02") != 0)
        return ctl_usage(ctl, "--crs must be wgs84 or gcj02");
    fb_point_t pt = {false, 0, 0};
    if (!lat_s != !lng_s)
        return ctl_usage(ctl, "--lat and --lng go together");
    if (lat_s) {
        if (parse_coord(lat_s, &pt.lat) || parse_coord(lng_s, &pt.lng) ||
            !fb_geo_valid(pt.lat, pt.lng))
            return ctl_usage(ctl, "--lat/--lng: not a coordinate (%s, %s)", lat_s, lng_s);
        pt.valid = true;
        if (strcmp(crs, "gcj02") == 0)
            fb_geo_gcj02_to_wgs84(pt.lat, pt.lng, &pt.lat, &pt.lng);
    }
    int64_t at = fb_now_us();
    if (at_s && fb_time_parse(at_s, &at) != 0)
        return ctl_usage(ctl, "--at must be an RFC 3339 time, e.g. 2026-11-23T10:00:00+08:00");

    char *norm = NULL, *region = NULL, *region_name = NULL, *dept_name = NULL;
    json_t *rules = NULL, *juris = NULL, *days = NULL, *tried = json_array(), *out = NULL;
    json_t *cls = NULL;
    fb_ruleset_t *rs = NULL;
    fb_calendar_t *cal = fb_calendar_new();
    char err[512] = "";
    rc = CTL_FAIL;
    if (!tried || !cal) {
        ctl_fail(ctl, "out of memory");
        goto done;
    }
    if (fb_text_init() != 0) {
        ctl_fail(ctl, "cannot open OpenCC's traditional-to-simplified data (t2s.json)");
        goto done;
    }
    int nrc = fb_text_normalize(text, &norm);
    if (nrc == FB_EUTF8) {
        rc = ctl_usage(ctl, "--text is not valid UTF-8");
        goto done;
    }
    if (nrc) {
        ctl_fail(ctl, "out of memory");
        goto done;
    }
    if (ctl_connect(ctl))
        goto done;
    if (pt.valid && fb_region_resolve(ctl->db, &pt, 1, &region) != 0) {
        ctl_fail(ctl, "region lookup failed: %s", ctl_pg_error(ctl->db, NULL));
        goto done;
    }
    region_name = lookup_name(ctl, "SELECT name FROM regions WHERE code = $1", region);
    if (fb_db_load_routing(ctl->db, &rules, &juris, &days) != 0) {
        ctl_fail(ctl, "cannot load the rules: %s", ctl_pg_error(ctl->db, NULL));
        goto done;
    }
    if (fb_ruleset_from_json(rules, juris, &rs, err, sizeof err) != 0) {
        ctl_fail(ctl, "the rules in the database do not compile: %s", err);
        goto done;
    }
    if (fb_calendar_load_json(cal, days) != 0) {
        ctl_fail(ctl, "calendar_days holds a malformed day");
        goto done;
    }

    /* As the dispatcher does: a petition without a category takes the
     * model's best one when it is confident enough. */
    const char *top = NULL, *source = category ? "given" : NULL;
    double top_conf = 0;
    cls = classification(ctl, norm, &top, &top_conf);
    if (!category && top && top_conf >= ctl->cfg.classify_min_confidence) {
        category = top;
        source = "model";
    }

    fb_rule_input_t in = {
        .channel = channel,
        .category = category,
        .region_code = region,
        .content_norm = norm,
        .local_minutes = fb_time_local_minutes(at),
        .urgency = urgency,
        .kind = kind,
    };
    fb_rule_match_t m;
    bool matched = fb_rule_match(rs, &in, &m, on_rule, tried);
    const fb_rule_t *r = matched ? m.rule : NULL;
    const char *eff_urgency = r && r->set_urgency ? r->set_urgency : urgency;
    int64_t accept_due = 0, reply_due = 0;
    if (r) {
        dept_name = lookup_name(ctl, "SELECT name FROM departments WHERE code = $1", m.department);
        fb_deadlines(cal, at, eff_urgency, kind, r->accept_hours, r->reply_workdays, &accept_due,
                     &reply_due);
    }

    if (as_json) {
        json_t *assists = json_array();
        for (size_t i = 0; r && i < r->n_assists; i++)
            json_array_append_new(assists, json_string(r->assists[i]));
        out = json_pack(
            "{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:o,s:O}", "text_norm", norm, "region",
            region ? json_string(region) : json_null(), "region_name",
            region_name ? json_string(region_name) : json_null(), "category",
            category ? json_string(category) : json_null(), "rule",
            r ? json_pack("{s:i,s:s,s:i}", "id", r->id, "name", r->name, "priority", r->priority)
              : json_null(),
            "department", r ? json_string(m.department) : json_null(), "department_name",
            dept_name ? json_string(dept_name) : json_null(), "assist_departments", assists,
            "received_at", time_or_null(true, at), "urgency", eff_urgency, "accept_due",
            time_or_null(r, accept_due), "reply_due", time_or_null(r, reply_due), "tried", tried);
        if (out) {
            json_object_set(out, "classification", cls ? cls : json_null());
            json_object_set_new(out, "category_source", source ? json_string(source) : json_null());
        }
        char *s = out ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (!s) {
            ctl_fail(ctl, "cannot format the answer");
            goto done;
        }
        printf("%s\n", s);
        free(s);
        rc = CTL_OK;
        goto done;
    }

    char when[64];
    human_time(at, when, sizeof when);
    printf("text:     %s\n", norm);
    printf("received: %s, %s, %s, %s\n", when, channel, urgency, kind);
    if (cls) {
        printf("classifier (model version %d, routes at ≥ %.2f):\n",
               (int)json_integer_value(json_object_get(cls, "model_version")),
               ctl->cfg.classify_min_confidence);
        size_t ci;
        const json_t *c;
        json_array_foreach(json_object_get(cls, "top"), ci, c) {
            printf("  %zu. %s %s %.1f%% —", ci + 1,
                   json_string_value(json_object_get(c, "category")),
                   json_string_value(json_object_get(c, "name")),
                   json_real_value(json_object_get(c, "confidence")) * 100);
            size_t k;
            const json_t *g;
            json_array_foreach(json_object_get(c, "ngrams"), k, g) {
                printf("%s %s %.2f", k ? "," : "", json_string_value(json_array_get(g, 0)),
                       json_real_value(json_array_get(g, 1)));
            }
            printf("\n");
        }
    } else {
        printf("classifier: no model (fenboctl classify train)\n");
    }
    if (category)
        printf("category: %s (%s)\n", category, source);
    if (region)
        printf("region:   %s %s\n", region, region_name ? region_name : "");
    else
        printf("region:   %s\n", pt.valid ? "(outside every region)" : "(no location)");
    printf("rules (%zu enabled):\n", fb_ruleset_size(rs));
    size_t i;
    const json_t *t;
    json_array_foreach(tried, i, t) {
        printf("  ✗ #%d [%d] %s — %s\n", (int)json_integer_value(json_object_get(t, "id")),
               (int)json_integer_value(json_object_get(t, "priority")),
               json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "reason")));
    }
    if (!r) {
        printf("no rule matched → manual queue\n");
        rc = CTL_OK;
        goto done;
    }
    printf("  ✓ #%d [%d] %s → %s (%s)\n", r->id, r->priority, r->name, m.department,
           dept_name ? dept_name : "unknown department");
    if (r->n_assists) {
        printf("assisted by:");
        for (size_t k = 0; k < r->n_assists; k++)
            printf(" %s", r->assists[k]);
        printf("\n");
    }
    if (r->set_urgency)
        printf("urgency:  %s (set by the rule)\n", r->set_urgency);
    char due[64];
    human_time(accept_due, due, sizeof due);
    printf("sign for by: %s\n", due);
    human_time(reply_due, due, sizeof due);
    printf("reply by:    %s\n", due);
    rc = CTL_OK;
done:
    json_decref(out);
    json_decref(cls);
    json_decref(tried);
    json_decref(rules);
    json_decref(juris);
    json_decref(days);
    fb_ruleset_destroy(&rs);
    fb_calendar_destroy(&cal);
    free(norm);
    free(region);
    free(region_name);
    free(dept_name);
    fb_text_shutdown();
    return rc;
}
