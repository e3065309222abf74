/* delivery.h — handing assignments to the departments' desks.
 *
 * An assignment is delivered once: its delivered_at is set and one case
 * event 'delivered' (actor 'fenbo-worker') is appended, in one statement, so
 * that several workers receiving the same bus event, or catching up at the
 * same time, never deliver it twice. The bus event is the fast path; the
 * catch-up pass finds in PostgreSQL whatever the bus did not bring (a worker
 * that was down, a dropped message). */
#ifndef FB_DELIVERY_H
#define FB_DELIVERY_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Marks delivered the undelivered assignments of the cases case_ids[0..n)
 * (on their bus events), all in one statement and so one transaction: a
 * burst of events costs one commit, not one per case. Each case gets one
 * 'delivered' event naming the departments just reached; a case listed
 * twice still gets one. delivered[i] (an array of n, the caller's) is how
 * many assignments this call delivered for case_ids[i]: 0 when another
 * worker was first, and 0 at every place of a repeated case but its first,
 * so that the counts add up to the assignments delivered. n may be 0.
 * Returns 0, FB_ENOMEM, or FB_EDB (then every delivered[i] is 0 and nothing
 * was delivered). */
int fb_delivery_mark_cases(PGconn *db, const int64_t *case_ids, size_t n, int *delivered);

/* Delivers the undelivered assignments of the cases of the oldest `batch`
 * ones, skipping cases another writer holds (SKIP LOCKED). *delivered is how
 * many it delivered: at least `batch` when more may be waiting. Returns 0 or
 * FB_EDB. */
int fb_delivery_catchup_batch(PGconn *db, int batch, int *delivered);

#endif
