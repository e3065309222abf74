/* actions.h — the case API's actions: POST /api/v1/cases/{id}/<action>.
 *
 *   accept            lead department (or an assisting one: its part)  {"note"}
 *   return            lead department                       {"reason"} (required)
 *   return/approve    operator: dispatched again by the rules without every
 *                     department that returned the case, or the manual queue
 *   return/reject     operator: back to the department      {"note"}
 *   assign            operator: a manual-queue or returned case to a
 *                     department                            {"department", "note"}
 *   assist            lead department: adds assisting departments (吹哨)
 *                                                           {"departments": […], "note"}
 *   extend            lead department, before the reply deadline
 *                                                           {"until": RFC 3339, "reason"}
 *   extend/approve    operator: the reply deadline moves    {"note"}
 *   extend/reject     operator                              {"note"}
 *   reply             lead department (or an assisting one: its part)
 *                                                           {"result", "resolved"}
 *   callback          operator: the resident's answer by phone (回访)
 *                     {"reached", "resolved", "satisfaction", "comment", "tracking_no"}
 *   close             operator                              {"reason"}
 *
 * Each is one transaction: the case row locked (FOR UPDATE), the move
 * checked against the lifecycle table (409 naming the allowed actions),
 * the status, the assignments and the other rows written, and one
 * append-only case event (actor "dept:<code>", "operator:<token id>",
 * "admin:<token id>"; data: the request's fields and what the move
 * decided). The answer is the case summary, 200.
 *
 * The lead replies for the whole case without waiting for the assisting
 * departments: parts not replied by then end with the reply (withdrawn,
 * and named in the 'replied' event's data as "assists_unanswered").
 *
 * A department acts on cases it leads, and, for accept and reply, on its
 * part of cases it assists; a case it has no assignment on is 404 (it must
 * not learn that the case exists), one it only has an old assignment on is
 * 403. */
#ifndef FB_ACTIONS_H
#define FB_ACTIONS_H

#include "fb_http.h"
#include "lifecycle.h"

#include <stdint.h>

typedef struct fb_worker fb_worker_t;

/* Who calls, as the API authenticated them. Strings borrowed. */
typedef struct fb_actor {
    const char *role;       /* "department", "operator", "admin", … */
    const char *department; /* a department token's department, else NULL */
    const char *name;       /* for case_events.actor */
    const char *token_name; /* the token's name (api_tokens.name), "" when unnamed */
} fb_actor_t;

/* The action a path names: "/api/v1/cases/12/return/approve" →
 * FB_CASE_APPROVE_RETURN. Returns 0 or FB_EINVAL. */
int fb_actions_from_path(const char *path, fb_case_action_t *out);

/* Answers req: does `action` to case `case_id` on behalf of who. */
void fb_actions_handle(fb_worker_t *w, fb_http_req_t *req, int64_t case_id, fb_case_action_t action,
                       const fb_actor_t *who);

/* Answers req: sets case `case_id`'s category on an operator's word
 * (POST /api/v1/cases/{id}/category {"category": …}), category_source
 * 'operator', and records the decision as a training example. Not a move of
 * the lifecycle: the status stays; refused (409) for a closed case. */
void fb_actions_set_category(fb_worker_t *w, fb_http_req_t *req, int64_t case_id,
                             const fb_actor_t *who);

/* The actions who may take on a case in `status`, as a JSON array of names
 * (for the case detail). New reference. */
json_t *fb_actions_allowed_json(fb_case_status_t status, const char *role);

#endif
