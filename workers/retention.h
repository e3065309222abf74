/* retention.h — the retention job: residents' personal data is kept only as
 * long as their case needs it.
 *
 * On a timer of every fenbo-worker (hourly, and at once when the database
 * connects or SIGHUP reloads the settings), the petitions of cases closed
 * more than [worker] retention_days ago are anonymised: caller_name and
 * caller_phone keep only their masked form (张*, 138****5678), the
 * identifying fields of raw are removed (schema/0008_retention.sql,
 * fenbo_anonymise_raw), an idempotency key that may name a device, account
 * or mail sender is replaced by its digest, and the case gets an
 * 'anonymised' event naming the petitions (by id: an event is append-only
 * and must carry no personal data itself). Cases are taken in batches with
 * FOR UPDATE SKIP LOCKED, one transaction each, so several workers share
 * the work and never do a case twice. retention_days = 0 keeps everything. */
#ifndef FB_RETENTION_H
#define FB_RETENTION_H

#include "fb_config.h"

#include <libpq-fe.h>
#include <stdint.h>

typedef struct fb_worker fb_worker_t;
typedef struct fb_retention fb_retention_t;

/* Starts the job's timer on w's loop; the first pass comes with the database
 * connection (fb_retention_kick). *out is the caller's: fb_retention_stop(). */
int fb_retention_start(fb_worker_t *w, fb_retention_t **out);
/* Stops the timer; the memory is freed once it has closed. Sets *r to NULL. */
void fb_retention_stop(fb_retention_t **r);
/* Runs a pass on the next loop turn (the database is back). r may be NULL. */
void fb_retention_kick(fb_retention_t *r);
/* Takes retention_days from cfg (SIGHUP) and runs a pass soon. */
void fb_retention_reload(fb_retention_t *r, const fb_config_t *cfg);

/* One batch on db: anonymises the petitions of up to max cases closed more
 * than days days ago, in one transaction. *cases and *petitions are how
 * many were anonymised. Returns 0, or FB_EDB (rolled back). */
int fb_retention_batch(PGconn *db, int days, int max, int *cases, int *petitions);

#endif
