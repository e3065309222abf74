/* grid.h — the grid's verifications (核查), their escalation, and the lists
 * of grid workers and street offices (grid.c). */
#ifndef WORKERS_GRID_H
#define WORKERS_GRID_H

#include "actions.h"
#include "casetx.h"
#include "fb_http.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

typedef struct fb_worker fb_worker_t;

/* In a reply's transaction ("resolved": true): a verification task for the
 * grid (or community) holding the case's point, due verify_hours working
 * hours from now, to the street office of that region. Nothing for a case
 * without a location inside a community, or with a task open. The rest of
 * the transaction runs as the system's job. *task: {id, region, due} or
 * NULL (the caller's). Returns 0 or a failure code. */
int fb_grid_open_verification(fb_casetx_t *t, int64_t case_id, int verify_hours, json_t **task);

/* POST /api/v1/cases/{id}/verify by a grid worker: {"confirmed": true|false,
 * "reason": …, "note": …} as JSON, or multipart/form-data with that JSON as
 * part verify and up to 9 photo parts (a rejection needs a reason and a
 * photo). Confirmed: the case goes on to its residents' callback; rejected:
 * reopened to the same department. Only a task in the worker's area is
 * found (404 otherwise). */
void fb_grid_verify(fb_worker_t *w, fb_http_req_t *req, int64_t case_id, const fb_actor_t *who);

/* GET /api/v1/verifications[?status=open|all]: what the caller may see. */
void fb_grid_api_verifications(fb_worker_t *w, fb_http_req_t *req);
/* GET /api/v1/street: a street office's reports, verifications, hotspots. */
void fb_grid_api_street(fb_worker_t *w, fb_http_req_t *req, const char *department);

/* The timers' sweep: escalates up to batch overdue verifications to the
 * street office (event verification_overdue); *done how many. */
int fb_grid_escalate(PGconn *db, int batch, int *done);

#endif
