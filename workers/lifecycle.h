/* lifecycle.h — the case lifecycle as one state machine.
 *
 * A case moves between the statuses below only by the moves of the
 * transition table in lifecycle.c; anything else is refused (the case API
 * answers 409 and names the actions that are allowed). The table is the one
 * place that knows which move is legal: the API, the ratings job, the SLA
 * timers and the callback desk all ask it, none of them decides on its own.
 *
 * Each move is (from, action, to, event): the status before, what was done,
 * the status after, and the case_events.type the move writes. Most actions
 * have one outcome per status; approving a return has two (a rule matched:
 * dispatched; none did: the manual queue), and fb_lifecycle_move() checks
 * the one the caller computed. Some moves keep the status (assist, extend
 * and its approval): they are legal only from that status and still write
 * their event.
 *
 * The departments that assist (协办) a case have their own small machine per
 * assignment ("part"): assigned → accepted → replied, legal only while the
 * case itself is being worked on (fb_lifecycle_parts_open). It does not
 * change the case's status.
 *
 * This module is pure (no I/O, no database): the caller reads the status
 * under `SELECT … FOR UPDATE`, asks here, and writes the new status, the
 * assignment's timestamps and the case event in the same transaction. */
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
    FB_CASE_RATED,    /* the resident's rating (回访) is in */
    FB_CASE_CLOSED,
    FB_CASE_RETURNED, /* 退单: a return waits for an operator's decision */
    FB_CASE_REOPENED, /* 重办: back to the same department, new deadlines */
    FB_CASE_STATUS_COUNT
} fb_case_status_t;

/* What someone asks to do to a case, in the order the refusal lists them. */
typedef enum {
    FB_CASE_ACCEPT = 0,        /* lead department: signs for the case (签收) */
    FB_CASE_RETURN,            /* lead department: not ours (退单), with a reason */
    FB_CASE_APPROVE_RETURN,    /* operator: re-dispatch without the returners */
    FB_CASE_REJECT_RETURN,     /* operator: it is theirs after all */
    FB_CASE_ASSIGN,            /* operator: dispatch by hand to a department */
    FB_CASE_ASSIST,            /* lead department: asks others to join (吹哨) */
    FB_CASE_EXTEND,            /* lead department: asks for a later reply deadline */
    FB_CASE_APPROVE_EXTENSION, /* operator */
    FB_CASE_REJECT_EXTENSION,  /* operator */
    FB_CASE_REPLY,             /* lead department: the result (办结) */
    FB_CASE_RATE,              /* resident, through intake's rating endpoint */
    FB_CASE_CALLBACK,          /* operator: the resident's answer by phone (回访) */
    FB_CASE_REOPEN,            /* automatic: an unsatisfied rating (重办) */
    FB_CASE_CLOSE,             /* operator, or automatic after a satisfied rating */
    FB_CASE_ACTION_COUNT
} fb_case_action_t;

/* Who may take an action (a bit set: close is both an operator's and
 * fenbo's own). */
enum {
    FB_BY_DEPARTMENT = 1 << 0, /* the lead department (or an assisting one, for its part) */
    FB_BY_OPERATOR = 1 << 1,   /* an operator (and admin) through the case API */
    FB_BY_RESIDENT = 1 << 2,   /* through intake */
    FB_BY_FENBO = 1 << 3,      /* fenbo itself: the ratings job, the timers */
};

/* The state of one assisting department's part (an 'assist' assignment). */
typedef enum {
    FB_PART_ASSIGNED = 0,
    FB_PART_ACCEPTED,
    FB_PART_REPLIED,
    FB_PART_STATUS_COUNT
} fb_part_status_t;

/* "dispatched", …; NULL for a value out of range. Borrowed, static. */
const char *fb_case_status_name(fb_case_status_t s);
/* Parses a cases.status word. Returns 0 or FB_EINVAL. */
int fb_case_status_parse(const char *name, fb_case_status_t *out);

/* "accept", "approve_return", …; NULL out of range. Borrowed, static. */
const char *fb_case_action_name(fb_case_action_t a);
int fb_case_action_parse(const char *name, fb_case_action_t *out);
/* The case_events.type an action writes in its usual outcome: "accepted",
 * "replied", … (approve_return: "redispatched", or "manual" — see
 * fb_lifecycle_move). */
const char *fb_case_action_event(fb_case_action_t a);
/* FB_BY_* bits: who takes the action. 0 out of range. */
unsigned fb_case_action_by(fb_case_action_t a);

/* The status that action leads to from `from` (its first outcome). Returns 0
 * and sets *to, or FB_EINVAL when the move is not in the table. */
int fb_lifecycle_next(fb_case_status_t from, fb_case_action_t action, fb_case_status_t *to);
/* Whether (from, action, to) is a move of the table; sets *event (may be
 * NULL) to the case_events.type it writes. Returns 0 or FB_EINVAL. */
int fb_lifecycle_move(fb_case_status_t from, fb_case_action_t action, fb_case_status_t to,
                      const char **event);
bool fb_lifecycle_allowed(fb_case_status_t from, fb_case_action_t action);
/* Writes into out (up to max) the actions allowed from `from` whose takers
 * include any of `by` (FB_BY_* bits), in the order of the action enum;
 * returns how many there are (possibly more than max). */
size_t fb_lifecycle_actions(fb_case_status_t from, unsigned by, fb_case_action_t *out, size_t max);
/* Formats the refusal of an illegal move for people and clients, naming the
 * actions a caller of the case API (a department or an operator) may take
 * instead, e.g. "cannot reply a dispatched case; allowed: accept, return"
 * ("allowed: none" when there are none). Returns out. */
char *fb_lifecycle_refusal(fb_case_status_t from, fb_case_action_t action, char *out,
                           size_t outlen);

/* Assist parts. Only accept and reply apply to them. */
const char *fb_part_status_name(fb_part_status_t s);
/* The part's status from its assignment's timestamps. */
fb_part_status_t fb_part_status_of(bool accepted, bool replied);
/* Returns 0 with *to and *event ("assist_accepted", "assist_replied"), or
 * FB_EINVAL when the move is not legal for the part. */
int fb_lifecycle_part_next(fb_part_status_t from, fb_case_action_t action, fb_part_status_t *to,
                           const char **event);
/* Whether the case, in status s, is being worked on, so that its assisting
 * departments may act on their parts: dispatched, accepted, reopened. */
bool fb_lifecycle_parts_open(fb_case_status_t s);
/* "cannot reply an assigned assist part; allowed: accept", or, when the
 * case is not open for parts, "cannot accept an assist part of a closed
 * case". Returns out. */
char *fb_lifecycle_part_refusal(fb_case_status_t case_status, fb_part_status_t from,
                                fb_case_action_t action, char *out, size_t outlen);

#endif
