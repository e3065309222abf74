/* casetx.h — the database half of the case lifecycle's moves: the steps
 * that the case API (actions.c) and the ratings job (ratings.c) run inside
 * one transaction, with the case row locked.
 *
 * Every function here expects an open transaction on db (BEGIN … COMMIT is
 * the caller's) and runs only parameterised SQL. Errors are logged once,
 * here; the SQLSTATE of the last failed statement is kept in the fb_casetx_t
 * for the caller to decide between "busy, retry" and "broken". */
#ifndef FB_CASETX_H
#define FB_CASETX_H

#include "lifecycle.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct fb_casetx {
    PGconn *db;
    char sqlstate[6]; /* of the last failed statement, "" when it had none */
} fb_casetx_t;

/* A case row read under FOR UPDATE. Strings are borrowed from res. */
typedef struct fb_case_row {
    PGresult *res;
    int64_t id;
    fb_case_status_t status;
    const char *department; /* the lead; NULL in the manual queue */
    const char *urgency, *kind;
    int rule_id;        /* 0: none */
    bool has_reply_due; /* reply_due is set */
} fb_case_row_t;

/* Runs sql; returns its result when its status is `want`, else logs, keeps
 * the SQLSTATE and returns NULL. The result is the caller's. */
PGresult *fb_casetx_query(fb_casetx_t *t, const char *sql, int n, const char *const *params,
                          ExecStatusType want);
/* A command (no rows). Returns 0 or FB_EDB. */
int fb_casetx_exec(fb_casetx_t *t, const char *sql, int n, const char *const *params);

/* The rest of the transaction runs as the worker's own jobs do (fenbo.role
 * 'system', set locally: the session's caller comes back at COMMIT or
 * ROLLBACK). For a move whose right PostgreSQL has just checked as the
 * caller, and whose consequences reach rows the caller's policies do not. */
int fb_casetx_as_system(fb_casetx_t *t);

/* Locks case `id` (SELECT … FOR UPDATE) and reads it. scope: a department
 * code (only a case it has an assignment on is found) or NULL. Returns 0,
 * FB_ENOTFOUND, FB_EDB, or FB_EINVAL for a status the lifecycle does not
 * know. Clear the row with fb_casetx_row_clear() in every case. */
int fb_casetx_lock(fb_casetx_t *t, int64_t id, const char *scope, fb_case_row_t *row);
void fb_casetx_row_clear(fb_case_row_t *row);

/* Appends the case event (data may be NULL: {}). Returns 0 or FB_EDB. */
int fb_casetx_event(fb_casetx_t *t, int64_t case_id, const char *actor, const char *type,
                    const json_t *data);
/* Sets the status (and updated_at). */
int fb_casetx_set_status(fb_casetx_t *t, int64_t case_id, fb_case_status_t to);

/* Deadlines from now on the working-day calendar (lib's fb_deadlines), with
 * the rule's own hours/workdays when rule_id names one (0: the defaults).
 * Sets RFC 3339 texts (40 bytes each). */
int fb_casetx_deadlines(fb_casetx_t *t, const char *urgency, const char *kind, int rule_id,
                        char *accept_due, char *reply_due);

/* The moment `hours` working hours from now (fb_calendar_add_work_hours),
 * as RFC 3339 text (40 bytes). */
int fb_casetx_work_hours_due(fb_casetx_t *t, int hours, char *due);

/* Reopens the case (重办): its department again, a new lead assignment
 * with new deadlines, status 'reopened', event 'reopened' with
 * {"reason": reason, key: why, "department", "accept_due", "reply_due"}. */
int fb_casetx_reopen(fb_casetx_t *t, fb_case_row_t *row, const char *actor, const char *reason,
                     const char *key, json_t *why);

/* Opens a new round for department: a lead assignment with the deadlines,
 * and the case's department, rule, deadlines (and urgency, when given) set
 * to it. The assignment is delivered by the worker's catch-up pass.
 * Returns 0 or FB_EDB. */
int fb_casetx_new_lead(fb_casetx_t *t, int64_t case_id, const char *department, int rule_id,
                       const char *urgency, const char *accept_due, const char *reply_due);

/* Ends the current round without its reply: every assignment of the case
 * not replied yet and not withdrawn gets withdrawn_at. */
int fb_casetx_withdraw_round(fb_casetx_t *t, int64_t case_id);

/* What the ratings of the current round (since the latest reply) say, for
 * a 'rated' case: any 'unsatisfied' reopens it (same department, a new lead
 * assignment with new deadlines, event 'reopened'); otherwise, once every
 * petition of the case has a rating, it is closed (event 'closed', reason
 * 'rated'); otherwise it keeps waiting for the others. Moves go through the
 * lifecycle table; actor is "worker". *status is the status afterwards.
 * A case in any other status is left as it is (a rating that came too
 * late for its round). Returns 0 or FB_EDB. */
int fb_casetx_settle_ratings(fb_casetx_t *t, fb_case_row_t *row, const char *actor,
                             fb_case_status_t *status);

#endif
