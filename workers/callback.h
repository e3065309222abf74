/* callback.h — callbacks (回访): asking each resident of a replied case
 * whether the problem was resolved and whether they are satisfied.
 *
 * When a case has been replied to (its latest case event 'replied'), the
 * sweep gives each of its petitions a callback task (callback_tasks), due
 * at the start of the next working day (calendar_days):
 *
 *   hotline petitions    a 'phone' task: the operators call the resident back
 *                        and record the answer (POST /api/v1/cases/{id}/callback);
 *                        their list is GET /api/v1/callbacks; event
 *                        'callback_scheduled';
 *   the other channels   a 'rating_request': when it falls due the sweep issues
 *                        it (event 'rating_requested') and the resident rates
 *                        through intake (POST /api/v1/petitions/{no}/rating).
 *
 * A task is done when its petition's rating arrives (outcome 'rated'). When
 * no rating at all has come for the case [worker] callback_days working days
 * after the task fell due, the case is closed as not rated: status 'closed'
 * (by the lifecycle table's close action), event 'closed' with data
 * {"reason": "not_rated"}, and its open tasks get outcome 'not_rated'.
 *
 * Every step is one statement keyed so that it happens once however many
 * workers sweep: tasks are UNIQUE (petition, reply event), a rating request
 * is issued by setting sent_at under FOR UPDATE SKIP LOCKED, and a case is
 * closed only from 'replied' under its row lock. */
#ifndef FB_CALLBACK_H
#define FB_CALLBACK_H

#include "fb_calendar.h"
#include "fb_http.h"

#include <libpq-fe.h>
#include <stdint.h>

typedef struct fb_worker fb_worker_t;

/* When the callback of a reply at replied_us falls due — 00:00 (local time)
 * of the first working day after the reply's day — and when it expires:
 * callback_days working days after that, again at 00:00, so that the
 * resident has callback_days whole working days. Pure (the calendar and TZ). */
void fb_callback_schedule(const fb_calendar_t *cal, int64_t replied_us, int callback_days,
                          int64_t *due_us, int64_t *expires_us);

/* The kind of task a petition of this channel gets: "phone" for the
 * hotline, "rating_request" for the mini-program, Open311 and the mailbox. */
const char *fb_callback_kind(const char *channel);

/* The steps of the callback desk, in the order a sweep takes them. */
typedef enum {
    FB_CALLBACK_RATED = 0,  /* finish the tasks whose petition was rated */
    FB_CALLBACK_SUPERSEDED, /* finish the tasks of rounds that are over (full sweeps) */
    FB_CALLBACK_SCHEDULE,   /* create the tasks of newly replied cases */
    FB_CALLBACK_REQUEST,    /* issue the rating requests that fell due */
    FB_CALLBACK_CLOSE,      /* close, as not rated, the cases whose tasks expired */
    FB_CALLBACK_STEP_COUNT
} fb_callback_step_t;

/* "rated", "superseded", "schedule", "request", "close". */
const char *fb_callback_step_name(fb_callback_step_t step);

/* Where a step has got to (a task or case id, and a petition id). */
typedef struct fb_callback_cursor {
    int64_t a, b;
} fb_callback_cursor_t;

/* One batch (up to `batch` rows) of one step after *cur, advancing it.
 * window_s >= 0: a recent sweep (replies and ratings of the last window_s
 * seconds); < 0: a full one. *scanned: rows that needed the step (fewer
 * than batch: the step is through); *done: what this call did — tasks
 * finished, created, requests issued, cases closed. Returns 0, FB_EDB or
 * FB_ENOMEM. */
int fb_callback_batch(PGconn *db, const fb_calendar_t *cal, int callback_days,
                      fb_callback_step_t step, double window_s, int batch,
                      fb_callback_cursor_t *cur, int *scanned, int *done);

/* GET /api/v1/callbacks — the callback tasks still open, due first (the
 * oldest due at the top). Query: kind=phone|rating_request (default phone),
 * all=true to include the ones not due yet, limit (1..1000, default 100).
 * Residents' names and phones are masked unless role is operator or admin.
 * Answers the request. */
void fb_callback_api_list(fb_worker_t *w, fb_http_req_t *req, const char *role,
                          const char *department);

#endif
