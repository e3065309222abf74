/* route.h — the dispatcher's routing: the compiled rule table and calendar,
 * reloaded from PostgreSQL on NOTIFY, applied to each new petition. */
#ifndef DISPATCHER_ROUTE_H
#define DISPATCHER_ROUTE_H

#include "fb_calendar.h"
#include "fb_petition.h"
#include "fb_rule.h"

#include <libpq-fe.h>

typedef struct router {
    fb_ruleset_t *rules;
    fb_calendar_t *calendar;
} router_t;

typedef struct route_result {
    const fb_rule_t *rule;  /* NULL: manual queue */
    const char *department; /* NULL: manual queue */
    const char *urgency;    /* the petition's, or the rule's set_urgency */
    int64_t accept_due, reply_due;
} route_result_t;

/* Loads rules, jurisdictions and calendar from db; on failure the router keeps
 * what it had. */
int router_reload(router_t *rt, PGconn *db);
void router_free(router_t *rt);

/* Routes p located in region_code (NULL when unknown). Strings in *out are
 * borrowed from the router or from p. */
void router_route(const router_t *rt, const fb_petition_t *p, const char *region_code,
                  route_result_t *out);

#endif
