/* route.c — applies lib's matcher (the same code as `fenboctl rules explain`)
 * and the working-day calendar to a petition, after the classifier
 * (lib/fb_classify.h) has chosen a category for a petition that came without
 * one. The rules stay the one authority on departments: the model only
 * supplies the category they match on. */
#include "route.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A category's place in the tree. */
typedef struct {
    bool leaf, emergency;
    char parent[]; /* "" for a root */
} s_category_t;

static const char *const s_categories_sql =
    "SELECT coalesce(json_agg(json_build_object('code', c.code, 'parent', c.parent_code,"
    "  'emergency', c.emergency,"
    "  'leaf', NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_code = c.code))),"
    "  '[]'::json) FROM categories c";

static int load_categories(PGconn *db, fb_map_t **out) {
    json_t *rows = NULL;
    int rc = fb_db_query_json(db, s_categories_sql, 0, NULL, &rows);
    if (rc)
        return rc;
    fb_map_t *m = fb_map_new();
    if (!m) {
        json_decref(rows);
        return FB_ENOMEM;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *code = json_string_value(json_object_get(row, "code"));
        const char *parent = json_string_value(json_object_get(row, "parent"));
        size_t plen = parent ? strlen(parent) : 0;
        s_category_t *c = malloc(sizeof *c + plen + 1);
        if (!code || !c || fb_map_put(m, code, c, NULL) != 0) {
            free(c);
            fb_map_destroy(&m, free);
            json_decref(rows);
            return FB_ENOMEM;
        }
        c->leaf = json_is_true(json_object_get(row, "leaf"));
        c->emergency = json_is_true(json_object_get(row, "emergency"));
        memcpy(c->parent, parent ? parent : "", plen + 1);
    }
    json_decref(rows);
    *out = m;
    return 0;
}

int router_reload(router_t *rt, PGconn *db) {
    json_t *rules, *juris, *days;
    int rc = fb_db_load_routing(db, &rules, &juris, &days);
    if (rc)
        return rc;
    char err[256];
    fb_ruleset_t *rs = NULL;
    fb_calendar_t *cal = fb_calendar_new();
    fb_map_t *cats = NULL;
    rc = fb_ruleset_from_json(rules, juris, &rs, err, sizeof err);
    if (rc)
        fb_log(FB_LOG_ERROR, "event=rules_invalid error=\"%s\"", err);
    else if (!cal || (rc = fb_calendar_load_json(cal, days)) != 0)
        fb_log(FB_LOG_ERROR, "event=calendar_invalid");
    else if ((rc = load_categories(db, &cats)) != 0)
        fb_log(FB_LOG_ERROR, "event=categories_unreadable error=\"%s\"", fb_db_error(db));
    if (rc == 0) {
        fb_ruleset_destroy(&rt->rules);
        fb_calendar_destroy(&rt->calendar);
        fb_map_destroy(&rt->categories, free);
        rt->rules = rs;
        rt->calendar = cal;
        rt->categories = cats;
        fb_log(FB_LOG_INFO, "event=rules_loaded rules=%zu calendar_days=%zu categories=%zu",
               fb_ruleset_size(rs), json_array_size(days), fb_map_size(cats));
    } else {
        fb_ruleset_destroy(&rs);
        fb_calendar_destroy(&cal);
    }
    json_decref(rules);
    json_decref(juris);
    json_decref(days);
    return rc;
}

int router_load_model(router_t *rt, PGconn *db) {
    fb_classifier_t *model = NULL;
    int version = 0;
    int rc = fb_classifier_load_latest(db, &model, &version);
    if (rc) {
        fb_log(FB_LOG_ERROR, "event=model_load_failed error=%d kept_version=%d", rc,
               rt->model_version);
        return rc;
    }
    if (!model) {
        fb_log(FB_LOG_INFO, "event=model_none kept_version=%d", rt->model_version);
        return 0; /* no model yet, or all removed: keep serving with what we have */
    }
    fb_classifier_destroy(&rt->model);
    rt->model = model;
    rt->model_version = version;
    fb_log(FB_LOG_INFO, "event=model_loaded version=%d categories=%zu", version,
           fb_classifier_categories(model));
    return 0;
}

void router_free(router_t *rt) {
    fb_ruleset_destroy(&rt->rules);
    fb_calendar_destroy(&rt->calendar);
    fb_map_destroy(&rt->categories, free);
    fb_classifier_destroy(&rt->model);
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether code lies below ancestor in the tree. */
static bool is_below(const router_t *rt, const char *code, const char *ancestor) {
    const s_category_t *c;
    for (int depth = 0; depth < 32 && (c = fb_map_get(rt->categories, code)) != NULL; depth++) {
        if (!c->parent[0])
            return false;
        if (strcmp(c->parent, ancestor) == 0)
            return true;
        code = c->parent;
    }
    return false;
}

/* The model's best categories below coarse: all are ranked, those outside
 * are dropped, and the confidences of the rest are divided by their sum — the
 * probability of each given that the petition belongs under coarse. */
static size_t classify_below(const router_t *rt, const char *text, const char *coarse,
                             fb_class_score_t *out, size_t k) {
    size_t all = fb_classifier_categories(rt->model);
    fb_class_score_t *ranked = all ? malloc(all * sizeof *ranked) : NULL;
    if (!ranked)
        return 0;
    size_t n = fb_classifier_classify(rt->model, text, ranked, all), kept = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_below(rt, ranked[i].category, coarse))
            continue;
        sum += ranked[i].confidence;
        if (kept < k)
            out[kept++] = ranked[i];
    }
    for (size_t i = 0; sum > 0 && i < kept; i++)
        out[i].confidence /= sum;
    free(ranked);
    return kept;
}

void router_classify(const router_t *rt, fb_petition_t *p, route_class_t *c) {
    memset(c, 0, sizeof *c);
    const s_category_t *given =
        p->category && rt->categories ? fb_map_get(rt->categories, p->category) : NULL;
    if (p->category)
        c->source = "given";
    /* A leaf (or a code the tree does not know: intake checked it) is final. */
    if (p->category && (!given || given->leaf))
        return;
    if (!rt->model || !p->content_norm || !p->content_norm[0])
        return;
    int64_t t0 = mono_ns();
    c->n_top = p->category
                   ? classify_below(rt, p->content_norm, p->category, c->top, ROUTE_SUGGESTIONS)
                   : fb_classifier_classify(rt->model, p->content_norm, c->top, ROUTE_SUGGESTIONS);
    c->classify_ns = mono_ns() - t0;
    if (c->n_top == 0 || c->top[0].confidence < rt->min_confidence)
        return;
    char *category = strdup(c->top[0].category);
    if (!category)
        return;
    free(p->category);
    p->category = category;
    c->source = "model";
    c->model_version = rt->model_version;
    c->confidence = c->top[0].confidence;
}

static void match(const router_t *rt, const fb_petition_t *p, const char *category,
                  const char *region_code, fb_rule_match_t *m) {
    fb_rule_input_t in = {
        .channel = p->channel,
        .category = category,
        .region_code = region_code,
        .content_norm = p->content_norm,
        .local_minutes = fb_time_local_minutes(p->received_at_us),
        .urgency = p->urgency,
        .kind = p->kind,
    };
    memset(m, 0, sizeof *m);
    if (rt->rules)
        fb_rule_match(rt->rules, &in, m, NULL, NULL);
}

void router_route(const router_t *rt, const fb_petition_t *p, const char *region_code,
                  route_result_t *out) {
    fb_rule_match_t m;
    match(rt, p, p->category, region_code, &m);
    out->rule = m.rule;
    out->department = m.department;
    out->urgency = m.rule && m.rule->set_urgency ? m.rule->set_urgency : p->urgency;
    fb_deadlines(rt->calendar, p->received_at_us, out->urgency, p->kind,
                 m.rule ? m.rule->accept_hours : 0, m.rule ? m.rule->reply_workdays : 0,
                 &out->accept_due, &out->reply_due);
}

json_t *router_suggestions(const router_t *rt, const fb_petition_t *p, const char *region_code,
                           route_class_t *c, bool *emergency) {
    *emergency = false;
    if (!rt->model)
        return NULL;
    if (c->n_top == 0 && p->content_norm && p->content_norm[0]) {
        int64_t t0 = mono_ns();
        c->n_top = fb_classifier_classify(rt->model, p->content_norm, c->top, ROUTE_SUGGESTIONS);
        c->classify_ns += mono_ns() - t0;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < c->n_top; i++) {
        fb_rule_match_t m;
        match(rt, p, c->top[i].category, region_code, &m);
        const s_category_t *cat =
            rt->categories ? fb_map_get(rt->categories, c->top[i].category) : NULL;
        *emergency = *emergency || (cat && cat->emergency);
        json_array_append_new(arr, json_pack("{s:s,s:o,s:f}", "category", c->top[i].category,
                                             "department",
                                             m.department ? json_string(m.department) : json_null(),
                                             "confidence", c->top[i].confidence));
    }
    return arr;
}
