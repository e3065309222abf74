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
#include <stdint.h>

/* Marks delivered the undelivered assignments of one case (on its bus
 * event). *delivered is how many assignments this call delivered (0 when
 * another worker was first). Returns 0 or FB_EDB. */
int fb_delivery_mark_case(PGconn *db, int64_t case_id, int *delivered);

/* Delivers up to batch undelivered assignments, skipping rows another worker
 * holds (FOR UPDATE SKIP LOCKED). *delivered is how many it delivered.
 * Returns 0 or FB_EDB. */
int fb_delivery_catchup_batch(PGconn *db, int batch, int *delivered);

#endif
