/* actions_priv.h — what actions.c (request bodies, the transaction, most
 * moves) and actions_dispatch.c (the moves that choose a department:
 * return, its approval or rejection, assign) share. No other file includes
 * it. */
#ifndef WORKERS_ACTIONS_PRIV_H
#define WORKERS_ACTIONS_PRIV_H

#include "actions.h"
#include "casetx.h"
#include "fb_http.h"
#include "lifecycle.h"
#include "worker.h"

#include <jansson.h>

/* One action on its way through. */
typedef struct {
    fb_worker_t *w;
    fb_http_req_t *req;
    const fb_actor_t *who;
    fb_case_action_t action;
    fb_casetx_t t;
    fb_case_row_t row;
    json_t *data; /* the request's fields, then what the move decided: the event's data */
    bool street;  /* a street office 吹哨 on a case in its street it does not lead */
    char id[24];
} act_t;

/* Answers a refusal (once: a later one is dropped). */
void act_refuse(act_t *a, unsigned status, const char *code, const char *field, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
/* A failed statement: 503 when the connection is gone or the case is busy
 * (the client may retry), 500 for anything else. */
void act_db_fail(act_t *a);
/* Runs sql with the case id as $1 in the action's transaction. */
int act_exec1(act_t *a, const char *sql);
/* Writes the move to status to and its event; 0 or a failure code. */
int act_finish(act_t *a, fb_case_status_t to);
/* The status the lifecycle table moves the case to with this action. */
int act_next_of(act_t *a, fb_case_status_t *to);
/* A string field of the request's data, NULL when absent or null. */
const char *act_data_str(act_t *a, const char *key);
/* The operator's name in training examples: the token's name, else the
 * actor. */
const char *act_teacher(const act_t *a);

/* The current lead assignment of the case's department. */
#define SQL_LEAD_ID                                                                                \
    "(SELECT max(id) FROM assignments WHERE case_id = $1::bigint AND role = 'lead'"                \
    " AND department_code = (SELECT department_code FROM cases WHERE id = $1::bigint)"             \
    " AND withdrawn_at IS NULL)"

/* The moves of actions_assist.c (assist, extend, decide an extension, an
 * assisting department's part), as those of actions_dispatch.c below. */
int act_do_assist(act_t *a);
int act_do_extend(act_t *a);
int act_do_decide_extension(act_t *a);
int act_do_part(act_t *a);

/* The moves of actions_dispatch.c: 0 when written, FB_EINVAL when refused
 * (answered), another code when a statement failed. */
int act_do_return(act_t *a);
/* Approving a return says the case's category stands: it also writes a
 * training example. */
int act_do_approve_return_teaching(act_t *a);
int act_do_reject_return(act_t *a);
int act_do_assign(act_t *a);

#endif
