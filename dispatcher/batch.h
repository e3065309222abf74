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
    char *text; /* p as it came over the bus (JSON), stored as it is */
    size_t text_len;
    /* Filled by batch_commit: */
    bool is_new; /* false: stored before (a resend); only acknowledged */
    int64_t petition_id, case_id;
    char *region_code;
    route_class_t cls; /* where the case's category came from (router_classify) */
    bool classified;   /* cls is set (and p->category may be the model's): a
                          batch tried again must not take it for the resident's */
    route_result_t route;
    json_t *suggestions; /* manual queue: the model's top 3 (router_suggestions) */
    bool emergency;      /* … one of which is an emergency category */
    /* Duplicates (并案): the petition joins an open case instead of opening
     * one — a stored case (join_case) or the case of an earlier petition of
     * this batch (join_item). */
    int64_t join_case;
    int join_item; /* -1: none */
    char *join_department;
} batch_item_t;

/* When a new petition joins an open case (config [dispatcher] dedup_*). */
typedef struct dedup_opts {
    int radius_m; /* 0: never */
    int window_h;
    double similarity; /* pg_trgm similarity, 0..1 */
} dedup_opts_t;

/* Prepares the batch's statements on a new connection (once per connection:
 * the large statements are planned once, not per batch). */
int batch_prepare(PGconn *db);

/* Stores items in one transaction. On success (0) every item is durable and
 * may be acknowledged; on failure nothing was written (rolled back), and
 * the connection can take another batch if batch_db_usable says so. */
int batch_commit(PGconn *db, const router_t *rt, const dedup_opts_t *dd, batch_item_t *items,
                 size_t n);
/* The connection can take a statement: connected, and out of the pipeline
 * mode a batch uses (which it leaves unless the connection broke). */
bool batch_db_usable(PGconn *db);

/* The assignment event of items[k] published after COMMIT: caller's json_t. */
json_t *batch_assignment_json(const batch_item_t *items, const batch_item_t *it);
/* The department the petition went to (its case's, when merged), or NULL. */
const char *batch_item_department(const batch_item_t *items, const batch_item_t *it);
bool batch_item_merged(const batch_item_t *it);

void batch_item_clear(batch_item_t *it);

#endif
