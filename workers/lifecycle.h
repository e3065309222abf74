/* lifecycle.h — the case lifecycle as one state machine.
 *
 * A case moves between the statuses below only by the actions of the
 * transition table in lifecycle.c; anything else is refused (the case API
 * answers 409 and names the actions that are allowed). The table is the one
 * place that knows which move is legal: the API, the SLA timers and the
 * callback desk all ask it, none of them decides on its own.
 *
 * This module is pure (no I/O, no database): the caller reads the status
 * under `SELECT … FOR UPDATE`, asks here, and writes the new status, the
 * assignment's timestamp and the case event in the same transaction. */
#ifndef FB_LIFECYCLE_H
#define FB_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

/* The values of cases.status (schema/0001_core.sql), in the same words. */
typedef enum {
    FB_CASE_MANUAL = 0, /* waiting for an operator to dispatch it by hand */
    FB_CASE_DISPATCHED,
    FB_CASE_ACCEPTED, /* 签收 */
    FB_CASE_REPLIED,  /* 办结 */
    FB_CASE_RATED,    /* 回访 done */
    FB_CASE_CLOSED,
    FB_CASE_RETURNED, /* 退单 */
    FB_CASE_REOPENED, /* 重办 */
    FB_CASE_STATUS_COUNT
} fb_case_status_t;

/* What someone asks to do to a case. */
typedef enum {
    FB_CASE_ACCEPT = 0, /* the lead department signs for the case */
    FB_CASE_REPLY,      /* the lead department reports the result */
    FB_CASE_ACTION_COUNT
} fb_case_action_t;

/* "dispatched", …; NULL for a value out of range. Borrowed, static. */
const char *fb_case_status_name(fb_case_status_t s);
/* Parses a cases.status word. Returns 0 or FB_EINVAL. */
int fb_case_status_parse(const char *name, fb_case_status_t *out);

/* "accept", "reply"; NULL out of range. Borrowed, static. */
const char *fb_case_action_name(fb_case_action_t a);
int fb_case_action_parse(const char *name, fb_case_action_t *out);
/* The case_events.type an action writes: "accepted", "replied". */
const char *fb_case_action_event(fb_case_action_t a);

/* The status that action leads to from `from`. Returns 0 and sets *to, or
 * FB_EINVAL when the move is not in the table. */
int fb_lifecycle_next(fb_case_status_t from, fb_case_action_t action, fb_case_status_t *to);
bool fb_lifecycle_allowed(fb_case_status_t from, fb_case_action_t action);
/* Writes into out (up to max) the actions allowed from `from`, in the
 * order of the action enum; returns how many there are. */
size_t fb_lifecycle_actions(fb_case_status_t from, fb_case_action_t *out, size_t max);
/* Formats the refusal of an illegal move for people and clients, e.g.
 * "cannot reply a dispatched case; allowed: accept" ("allowed: none" when
 * the status allows nothing). Returns out. */
char *fb_lifecycle_refusal(fb_case_status_t from, fb_case_action_t action, char *out,
                           size_t outlen);

#endif
