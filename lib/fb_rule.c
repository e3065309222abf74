/* fb_rule.c — compiled rule table and the first-match matcher. */
#include "fb_rule.h"
#include "fb_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *department;
    char *region;
    size_t region_len;
} s_juris_t;

struct fb_ruleset {
    fb_rule_t *rules;
    size_t n;
    s_juris_t *juris;
    size_t n_juris;
};

static void rule_free(fb_rule_t *r) {
    free(r->name);
    free(r->channel);
    free(r->category_prefix);
    free(r->region_prefix);
    free(r->urgency);
    free(r->kind);
    for (size_t i = 0; i < r->n_any; i++)
        free(r->keywords_any[i]);
    for (size_t i = 0; i < r->n_none; i++)
        free(r->keywords_none[i]);
    for (size_t i = 0; i < r->n_assists; i++)
        free(r->assists[i]);
    free(r->keywords_any);
    free(r->keywords_none);
    free(r->assists);
    free(r->action);
    free(r->set_urgency);
}

void fb_ruleset_destroy(fb_ruleset_t **rsp) {
    fb_ruleset_t *rs = *rsp;
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        rule_free(&rs->rules[i]);
    for (size_t i = 0; i < rs->n_juris; i++) {
        free(rs->juris[i].department);
        free(rs->juris[i].region);
    }
    free(rs->rules);
    free(rs->juris);
    free(rs);
    *rsp = NULL;
}

size_t fb_ruleset_size(const fb_ruleset_t *rs) {
    return rs->n;
}

/* An optional string field: NULL and "" both mean "no condition". */
static char *opt_str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? strdup(s) : NULL;
}

static int str_array(const json_t *o, const char *key, char ***out, size_t *n) {
    const json_t *a = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return FB_EINVAL;
    *out = calloc(json_array_size(a) + 1, sizeof(char *));
    if (!*out)
        return FB_ENOMEM;
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v))
            return FB_EINVAL;
        if (!*json_string_value(v))
            continue;
        (*out)[(*n)++] = strdup(json_string_value(v));
    }
    return 0;
}

/* "22:00" or "22:00:00" → minutes; -1 when absent; -2 when malformed. */
static int opt_time(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || !*s)
        return -1;
    int h, m, n = 0;
    if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || h < 0 || h > 24 || m < 0 || m > 59 ||
        (h == 24 && m != 0) || (s[n] != '\0' && strcmp(s + n, ":00") != 0))
        return -2;
    return h * 60 + m;
}

static int compile_rule(const json_t *o, fb_rule_t *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    const json_t *id = json_object_get(o, "id");
    r->id = json_is_integer(id) ? (int)json_integer_value(id) : 0;
    r->priority = (int)json_integer_value(json_object_get(o, "priority"));
    r->name = opt_str(o, "name");
    r->channel = opt_str(o, "channel");
    r->category_prefix = opt_str(o, "category_prefix");
    r->region_prefix = opt_str(o, "region_prefix");
    r->urgency = opt_str(o, "urgency");
    r->kind = opt_str(o, "kind");
    r->action = opt_str(o, "action_department");
    r->set_urgency = opt_str(o, "set_urgency");
    r->accept_hours = (int)json_integer_value(json_object_get(o, "accept_hours"));
    r->reply_workdays = (int)json_integer_value(json_object_get(o, "reply_workdays"));
    r->time_from = opt_time(o, "time_from");
    r->time_to = opt_time(o, "time_to");
    if (!r->name || !r->action) {
        snprintf(err, errlen, "rule %s: name and action_department are required",
                 r->name ? r->name : "(unnamed)");
        return FB_EINVAL;
    }
    if (!json_is_integer(json_object_get(o, "priority"))) {
        snprintf(err, errlen, "rule %s: priority must be a whole number", r->name);
        return FB_EINVAL;
    }
    if (r->time_from == -2 || r->time_to == -2 || (r->time_from < 0) != (r->time_to < 0)) {
        snprintf(err, errlen, "rule %s: time_from and time_to must both be HH:MM", r->name);
        return FB_EINVAL;
    }
    if (str_array(o, "keywords_any", &r->keywords_any, &r->n_any) ||
        str_array(o, "keywords_none", &r->keywords_none, &r->n_none) ||
        str_array(o, "assist_departments", &r->assists, &r->n_assists)) {
        snprintf(err, errlen, "rule %s: keywords and assist_departments must be string lists",
                 r->name);
        return FB_EINVAL;
    }
    return 0;
}

static int cmp_rule(const void *a, const void *b) {
    const fb_rule_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int fb_ruleset_from_json(const json_t *rules, const json_t *jurisdictions, fb_ruleset_t **out,
                         char *err, size_t errlen) {
    *out = NULL;
    if (!json_is_array(rules) || (jurisdictions && !json_is_array(jurisdictions))) {
        snprintf(err, errlen, "rules and jurisdictions must be JSON arrays");
        return FB_EINVAL;
    }
    fb_ruleset_t *rs = calloc(1, sizeof *rs);
    if (!rs)
        return FB_ENOMEM;
    size_t nr = json_array_size(rules), nj = json_array_size(jurisdictions);
    rs->rules = calloc(nr ? nr : 1, sizeof *rs->rules);
    rs->juris = calloc(nj ? nj : 1, sizeof *rs->juris);
    if (!rs->rules || !rs->juris) {
        fb_ruleset_destroy(&rs);
        return FB_ENOMEM;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(rules, i, v) {
        if (json_is_false(json_object_get(v, "enabled")))
            continue;
        fb_rule_t *r = &rs->rules[rs->n++];
        int rc = compile_rule(v, r, err, errlen);
        /* Rules without an id (from a file) keep their order in the file. */
        if (!json_object_get(v, "id"))
            r->id = (int)i + 1;
        if (rc) {
            fb_ruleset_destroy(&rs);
            return rc;
        }
    }
    qsort(rs->rules, rs->n, sizeof *rs->rules, cmp_rule);
    json_array_foreach(jurisdictions, i, v) {
        const char *d = json_string_value(json_object_get(v, "department_code"));
        const char *r = json_string_value(json_object_get(v, "region_code"));
        if (!d || !r) {
            snprintf(err, errlen, "jurisdiction %zu: department_code and region_code required", i);
            fb_ruleset_destroy(&rs);
            return FB_EINVAL;
        }
        s_juris_t *j = &rs->juris[rs->n_juris++];
        j->department = strdup(d);
        j->region = strdup(r);
        j->region_len = strlen(r);
    }
    *out = rs;
    return 0;
}

static bool has_prefix(const char *s, const char *prefix) {
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Region code lengths of the demo and of China's division codes: district 6,
 * street 9, community 12, grid 15. */
static size_t level_len(int level) {
    return level == 3 ? 9 : level == 4 ? 12 : 0;
}

const char *fb_ruleset_owner(const fb_ruleset_t *rs, const char *region_code, int level) {
    if (!region_code)
        return NULL;
    size_t want = level_len(level);
    const s_juris_t *best = NULL;
    for (size_t i = 0; i < rs->n_juris; i++) {
        const s_juris_t *j = &rs->juris[i];
        if (j->region_len == want && has_prefix(region_code, j->region))
            best = j;
    }
    return best ? best->department : NULL;
}

static bool excluded(const fb_rule_input_t *in, const char *dept) {
    for (size_t i = 0; i < in->n_exclude; i++)
        if (strcmp(in->exclude[i], dept) == 0)
            return true;
    return false;
}

/* Refusals are only formatted when somebody traces them (explain). */
#define REFUSE(...)                                                                                \
    do {                                                                                           \
        if (why)                                                                                   \
            snprintf(why, whylen, __VA_ARGS__);                                                    \
        return why ? why : "refused";                                                              \
    } while (0)

/* Returns NULL when r matches (with *dept set), else why not. */
static const char *try_rule(const fb_ruleset_t *rs, const fb_rule_t *r, const fb_rule_input_t *in,
                            const char **dept, char *why, size_t whylen) {
    if (r->channel && (!in->channel || strcmp(r->channel, in->channel) != 0))
        REFUSE("channel is not %s", r->channel);
    if (r->category_prefix && !has_prefix(in->category, r->category_prefix))
        REFUSE("category %s is not under %s", in->category ? in->category : "(none)",
               r->category_prefix);
    if (r->region_prefix && !has_prefix(in->region_code, r->region_prefix))
        REFUSE("region %s is not under %s", in->region_code ? in->region_code : "(none)",
               r->region_prefix);
    if (r->urgency && (!in->urgency || strcmp(r->urgency, in->urgency) != 0))
        REFUSE("urgency is not %s", r->urgency);
    if (r->kind && (!in->kind || strcmp(r->kind, in->kind) != 0))
        REFUSE("kind is not %s", r->kind);
    if (r->time_from >= 0) {
        int t = in->local_minutes, f = r->time_from, to = r->time_to;
        bool inside = f <= to ? (t >= f && t < to) : (t >= f || t < to);
        if (!inside)
            REFUSE("received at %02d:%02d, outside %02d:%02d-%02d:%02d", t / 60, t % 60, f / 60,
                   f % 60, to / 60, to % 60);
    }
    const char *text = in->content_norm ? in->content_norm : "";
    if (r->n_any) {
        size_t i = 0;
        while (i < r->n_any && !strstr(text, r->keywords_any[i]))
            i++;
        if (i == r->n_any)
            REFUSE("none of its keywords occurs");
    }
    for (size_t i = 0; i < r->n_none; i++)
        if (strstr(text, r->keywords_none[i]))
            REFUSE("excluded keyword \"%s\" occurs", r->keywords_none[i]);
    if (strcmp(r->action, "@street") == 0 || strcmp(r->action, "@community") == 0) {
        int level = r->action[1] == 's' ? 3 : 4;
        *dept = fb_ruleset_owner(rs, in->region_code, level);
        if (!*dept)
            REFUSE("no office owns region %s", in->region_code ? in->region_code : "(no location)");
    } else {
        *dept = r->action;
    }
    if (excluded(in, *dept))
        REFUSE("department %s returned this case", *dept);
    return NULL;
}

bool fb_rule_match(const fb_ruleset_t *rs, const fb_rule_input_t *in, fb_rule_match_t *out,
                   fb_rule_trace_cb trace, void *ud) {
    char buf[256];
    char *why = trace ? buf : NULL;
    out->rule = NULL;
    out->department = NULL;
    for (size_t i = 0; i < rs->n; i++) {
        const char *dept = NULL;
        const char *reason = try_rule(rs, &rs->rules[i], in, &dept, why, sizeof buf);
        if (trace)
            trace(ud, &rs->rules[i], reason);
        if (!reason) {
            out->rule = &rs->rules[i];
            out->department = dept;
            return true;
        }
    }
    return false;
}
