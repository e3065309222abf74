/* dedup.h — duplicates (并案): a new petition close in space, time, category
 * and text to an open case joins that case instead of opening a new one. */
#ifndef DISPATCHER_DEDUP_H
#define DISPATCHER_DEDUP_H

#include "batch.h"

#include <libpq-fe.h>

/* For the new petitions of items (those with a location and a category),
 * finds the open case each joins: sets join_case/join_department for a
 * stored case, or join_item for an earlier petition of the same batch that
 * opens a case itself. One round trip for the whole batch. */
/* Prepares the search's statement on a new connection. */
int dedup_prepare(PGconn *db);

int dedup_find(PGconn *db, const dedup_opts_t *dd, batch_item_t *items, size_t n);

#endif
