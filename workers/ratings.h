/* ratings.h — the ratings job: what a resident's rating does to the case.
 *
 * Intake records a rating (ratings row, event 'rated', a replied case moves
 * to 'rated') without knowing the lifecycle beyond that. This job, on a
 * timer of every fenbo-worker, takes each rating not yet processed exactly
 * once — several workers share the work through FOR UPDATE SKIP LOCKED —
 * and, in one transaction with the case row locked, applies the lifecycle:
 * an unsatisfied rating of the current round reopens the case (重办: the
 * same department, a new lead assignment and new deadlines), satisfied ones
 * close it once every petition of the case is rated (casetx.h,
 * fb_casetx_settle_ratings). The rating is then marked processed_at. */
#ifndef FB_RATINGS_H
#define FB_RATINGS_H

#include <libpq-fe.h>

typedef struct fb_worker fb_worker_t;
typedef struct fb_ratings fb_ratings_t;

/* Starts the job's timer on w's loop. *out is the caller's: fb_ratings_stop(). */
int fb_ratings_start(fb_worker_t *w, fb_ratings_t **out);
/* Stops the timer; the memory is freed once it has closed. Sets *r to NULL. */
void fb_ratings_stop(fb_ratings_t **r);

/* One pass over db: applies up to max unprocessed ratings, each in its own
 * transaction. *applied is how many were processed. A rating whose
 * transaction fails (and the connection is fine) is skipped for this pass
 * and tried again in the next one, so that it cannot hold up the others.
 * Returns 0, or FB_EDB when the connection failed. */
int fb_ratings_pass(PGconn *db, int max, int *applied);

#endif
