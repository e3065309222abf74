/* fb_rule.h — the routing rule table compiled in memory, and the matcher that
 * both fenbo-dispatcher and `fenboctl rules explain` run.
 *
 * Rules are tried in ascending priority (ties by id); the first rule whose
 * every condition holds wins:
 *   channel          equals the petition's channel
 *   category_prefix  the petition's category code starts with it
 *   region_prefix    the deepest region containing the location starts with it
 *   keywords_any     one of them occurs in the normalised text
 *   keywords_none    none of them occurs in the normalised text
 *   time_from/to     local time of reception in [from, to), wrapping midnight
 *   urgency, kind    equal the petition's
 * A NULL or empty condition holds for every petition. The action names a
 * department, or "@street"/"@community" for the office whose jurisdiction
 * contains the location; when no office does, the rule does not match. A
 * department in the input's exclusion list (a case returned by it) is never
 * chosen. No match: the manual queue. */
#ifndef FB_RULE_H
#define FB_RULE_H

#include <jansson.h>
#include <stdbool.h>

typedef struct fb_rule {
    int id;
    int priority;
    char *name;
    char *channel, *category_prefix, *region_prefix, *urgency, *kind;
    char **keywords_any, **keywords_none;
    size_t n_any, n_none;
    int time_from, time_to; /* minutes after midnight, -1 when unset */
    char *action;           /* department code, "@street" or "@community" */
    char **assists;
    size_t n_assists;
    char *set_urgency;
    int accept_hours, reply_workdays; /* 0 when unset */
} fb_rule_t;

typedef struct fb_ruleset fb_ruleset_t;

/* What the matcher looks at. All strings borrowed; NULL when unknown. */
typedef struct fb_rule_input {
    const char *channel;
    const char *category;
    const char *region_code; /* deepest region containing the location */
    const char *content_norm;
    int local_minutes; /* local time of reception, minutes after midnight */
    const char *urgency;
    const char *kind;
    const char *const *exclude; /* departments not to choose */
    size_t n_exclude;
} fb_rule_input_t;

typedef struct fb_rule_match {
    const fb_rule_t *rule;  /* NULL: manual queue */
    const char *department; /* resolved code, borrowed from the ruleset */
} fb_rule_match_t;

/* Called for each rule tried: why it did not match (reason) or NULL when it
 * matched. */
typedef void (*fb_rule_trace_cb)(void *ud, const fb_rule_t *rule, const char *reason);

/* Compiles rules (route_rules rows as JSON objects) and jurisdictions
 * ([{"department_code","region_code"}]). *out is the caller's. Returns
 * FB_EINVAL with a message in err for a malformed rule. */
int fb_ruleset_from_json(const json_t *rules, const json_t *jurisdictions, fb_ruleset_t **out,
                         char *err, size_t errlen);
void fb_ruleset_destroy(fb_ruleset_t **rs);
size_t fb_ruleset_size(const fb_ruleset_t *rs);

/* Finds the first matching rule. Returns true when one matched. */
bool fb_rule_match(const fb_ruleset_t *rs, const fb_rule_input_t *in, fb_rule_match_t *out,
                   fb_rule_trace_cb trace, void *ud);

/* The street/community office owning region_code, or NULL. level is 3 for
 * "@street", 4 for "@community" (the length of the owning region's code
 * decides: the longest jurisdiction prefix at that level wins). */
const char *fb_ruleset_owner(const fb_ruleset_t *rs, const char *region_code, int level);

#endif
