/* deadlines.h — the SLA timers of fenbo-worker, and the one periodic sweep
 * that runs every timer of the worker.
 *
 * The deadlines themselves are on the case (cases.accept_due for signing
 * for, 签收, and cases.reply_due for the reply, 办结): the dispatcher computes
 * them on the working-day calendar, the case API moves reply_due on an
 * extension or a reopened case. Around each deadline the sweep does, once:
 *
 *   reminder_accept / reminder_reply  [worker] reminder_*_min before it, while
 *                                     it has not passed and the case waits;
 *   overdue_accept / overdue_reply    when it passes and the case still waits;
 *   escalated (督办)                  [worker] escalate_after_h after that,
 *                                     for the supervisors' overdue list.
 *
 * "Once" is the database's promise, not the worker's: every action is a row
 * of timer_actions keyed by (case, action, the deadline's value), inserted
 * with ON CONFLICT DO NOTHING in the same statement as its case event. A
 * worker killed and restarted, or two workers sweeping at once, find the row
 * and do nothing; a deadline that moved is a new key and gets its own timers.
 * A worker that was down finds whatever fell due meanwhile on its first
 * sweep (reminders excepted: one for a deadline already passed is pointless).
 *
 * The sweep (fb_timers) is a uv_timer on the worker's loop, every
 * [worker] timers_s seconds and at once when the database (re)connects: SLA
 * timers, then callbacks (callback.h), then hotspots (hotspot.h). Each step
 * works in batches along a keyset cursor, and a sweep yields the loop after
 * a fraction of a second and goes on at the next turn, so that a long
 * backlog (a worker down for a day) neither blocks the API nor costs more
 * than one pass over it. Most sweeps are recent ones: they look only at what
 * fell due, or changed, since the previous sweep began (plus a margin); a
 * full sweep, when the worker starts and every minute, looks at everything,
 * so that nothing a recent sweep could not see waits longer than that. */
#ifndef FB_DEADLINES_H
#define FB_DEADLINES_H

#include "fb_calendar.h"
#include "fb_config.h"
#include "fb_http.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fb_worker fb_worker_t;
typedef struct fb_timers fb_timers_t;

/* The actions, in the order a sweep does them (so that a case's history
 * reads reminder, overdue, escalated even after a long outage). */
typedef enum {
    FB_TIMER_REMINDER_ACCEPT = 0,
    FB_TIMER_REMINDER_REPLY,
    FB_TIMER_OVERDUE_ACCEPT,
    FB_TIMER_OVERDUE_REPLY,
    FB_TIMER_ESCALATED_ACCEPT,
    FB_TIMER_ESCALATED_REPLY,
    FB_TIMER_ACTION_COUNT
} fb_timer_action_t;

/* timer_actions.action: "reminder_accept", …, "escalated_reply". NULL out of
 * range. Borrowed, static. */
const char *fb_timer_action_name(fb_timer_action_t a);
/* The case_events.type it writes: "reminder_accept", "reminder_reply",
 * "overdue_accept", "overdue_reply", "escalated" (both deadlines; the data
 * says which). */
const char *fb_timer_action_event(fb_timer_action_t a);
/* The deadline it is about: "accept" or "reply". */
const char *fb_timer_action_deadline(fb_timer_action_t a);

/* What the timers need of the configuration. */
typedef struct fb_deadline_opts {
    int reminder_accept_min; /* 0: no reminder */
    int reminder_reply_min;
    int escalate_after_h;
    int batch; /* cases per statement */
} fb_deadline_opts_t;

void fb_deadline_opts_from_config(fb_deadline_opts_t *o, const fb_config_t *cfg);

/* When action a falls due, in seconds relative to the deadline (negative:
 * before it): the sweep does it once now >= deadline + offset, on a case
 * still waiting for that deadline (and, for a reminder, only while the
 * deadline has not passed). Returns false when the configuration disables it
 * (a reminder of 0 minutes). Pure. */
bool fb_timer_action_offset(const fb_deadline_opts_t *o, fb_timer_action_t a, int64_t *offset_s);

/* Where a sweep of one action has got to: the last case it looked at, in
 * (deadline, case id) order. */
typedef struct fb_timer_cursor {
    char due[64]; /* a timestamptz as PostgreSQL prints it, or "-infinity" */
    int64_t id;
} fb_timer_cursor_t;

/* Back to the start. */
void fb_timer_cursor_reset(fb_timer_cursor_t *cur);

/* Does action a for up to o->batch cases after *cur that need it, each
 * exactly once, logs each, and advances *cur. window_s >= 0: a recent sweep,
 * which looks only at the deadlines that fell due within the last window_s
 * seconds and at the waiting cases changed within them (cases.updated_at);
 * window_s < 0: a full sweep, every waiting case. *scanned is how many
 * cases needed it (fewer than o->batch: this action is through), *done how
 * many this call did (fewer when another worker was first). Returns 0 or
 * FB_EDB. */
int fb_deadlines_batch(PGconn *db, const fb_deadline_opts_t *o, fb_timer_action_t a,
                       double window_s, fb_timer_cursor_t *cur, int *scanned, int *done);

/* GET /api/v1/overdue — the cases whose sign-for or reply deadline has
 * passed while they still wait for it, longest overdue first, with whether
 * and when they were escalated. Query: deadline=accept|reply,
 * department=CODE, escalated=true|false, limit (1..1000, default 100).
 * department (the caller's, for a department token; else NULL) limits the
 * list to cases it takes part in. Answers the request. */
void fb_deadlines_api_overdue(fb_worker_t *w, fb_http_req_t *req, const char *role,
                              const char *department);

/* ---- the sweep ------------------------------------------------------------ */

/* Starts the sweep on w's loop: every [worker] timers_s seconds, and at once
 * on fb_timers_kick(). *out is the caller's: fb_timers_stop(). */
int fb_timers_start(fb_worker_t *w, fb_timers_t **out);
/* Stops the timer; the memory is freed once its handle has closed. Sets *t
 * to NULL. */
void fb_timers_stop(fb_timers_t **t);
/* Sweeps on the next loop turn (the database has just come back). */
void fb_timers_kick(fb_timers_t *t);
/* SIGHUP: takes the reloadable timer settings of cfg into the worker's,
 * reads the calendar again and makes the next sweep a full one (at once). */
void fb_timers_reload(fb_timers_t *t, const fb_config_t *cfg);
/* Appends the sweep's Prometheus metrics to out (at most outlen bytes, NUL
 * terminated; nothing for t NULL). Returns the length written, or -1 when it
 * did not fit. */
int fb_timers_metrics(const fb_timers_t *t, char *out, size_t outlen);

#endif
