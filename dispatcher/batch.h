/* batch.h — one transaction for a whole batch of petitions (group commit):
 * idempotent insert, region lookup, routing, cases, assignments and events. */
#ifndef DISPATCHER_BATCH_H
#define DISPATCHER_BATCH_H

#include "fb_petition.h"
#include "route.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct batch_item {
    unsigned char peer[256]; /* ROUTER identity of the intake that sent it */
    size_t peer_len;
    uint64_t seq; /* that intake's spool sequence number */
    fb_petition_t *p;
    /* Filled by batch_commit: */
    bool is_new; /* false: stored before (a resend); only acknowledged */
    int64_t petition_id, case_id;
    char *region_code;
    route_result_t route;
} batch_item_t;

/* Stores items in one transaction. On success (0) every item is durable and
 * may be acknowledged; on failure nothing was written (rolled back). */
int batch_commit(PGconn *db, const router_t *rt, batch_item_t *items, size_t n);

/* The assignment event published after COMMIT: caller's json_t. */
json_t *batch_assignment_json(const batch_item_t *it);

void batch_item_clear(batch_item_t *it);

#endif
