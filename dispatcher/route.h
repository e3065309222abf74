/* route.h — the dispatcher's routing: the compiled rule table, calendar,
 * category tree and classifier, reloaded from PostgreSQL on NOTIFY, applied
 * to each new petition. */
#ifndef DISPATCHER_ROUTE_H
#define DISPATCHER_ROUTE_H

#include "fb_calendar.h"
#include "fb_classify.h"
#include "fb_map.h"
#include "fb_petition.h"
#include "fb_rule.h"

#include <libpq-fe.h>
#include <stdbool.h>

#define ROUTE_SUGGESTIONS 3

typedef struct router {
    fb_ruleset_t *rules;
    fb_calendar_t *calendar;
    fb_map_t *categories;   /* code → its place in the tree (route.c) */
    fb_classifier_t *model; /* NULL: no model yet; petitions route as given */
    int model_version;
    double min_confidence; /* [dispatcher] classify_min_confidence */
} router_t;

typedef struct route_result {
    const fb_rule_t *rule;  /* NULL: manual queue */
    const char *department; /* NULL: manual queue */
    const char *urgency;    /* the petition's, or the rule's set_urgency */
    int64_t accept_due, reply_due;
} route_result_t;

/* Where a petition's case category comes from, and the model's ranking.
 * Strings are borrowed from the router's model or the petition. */
typedef struct route_class {
    const char *source; /* "given", "model", or NULL (no category) */
    int model_version;  /* the model that chose the category; 0: none did */
    double confidence;  /* the chosen category's confidence when the model chose */
    fb_class_score_t top[ROUTE_SUGGESTIONS];
    size_t n_top;        /* 0: the model was not asked */
    int64_t classify_ns; /* what asking it cost */
} route_class_t;

/* Loads rules, jurisdictions, calendar and the category tree from db; on
 * failure the router keeps what it had. */
int router_reload(router_t *rt, PGconn *db);
/* Loads the newest classifier (fb_classifier_load_latest); on failure the
 * router keeps the model it had. */
int router_load_model(router_t *rt, PGconn *db);
void router_free(router_t *rt);

/* Decides the category of a new petition: a leaf category given by the
 * channel stays ("given"); a missing or coarse (non-leaf) one is classified —
 * a coarse one among its descendants only — and the model's best category is
 * taken when its confidence reaches min_confidence ("model"). The chosen
 * category is written into p->category (the case's category), so that the
 * duplicate search and the rules see it. */
void router_classify(const router_t *rt, fb_petition_t *p, route_class_t *c);

/* Routes p located in region_code (NULL when unknown). Strings in *out are
 * borrowed from the router or from p. */
void router_route(const router_t *rt, const fb_petition_t *p, const char *region_code,
                  route_result_t *out);

/* For a petition the rules sent to the manual queue: the model's top 3 (asked
 * now when router_classify did not), each with the department the rules would
 * choose with that category: [{"category","department","confidence"}], or
 * NULL without a model. *emergency tells whether one of them is an emergency
 * category. The json_t is the caller's. */
json_t *router_suggestions(const router_t *rt, const fb_petition_t *p, const char *region_code,
                           route_class_t *c, bool *emergency);

#endif
