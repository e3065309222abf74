/* api.h — the worker's HTTP API: /healthz, /metrics and the case API
 * (/api/v1/cases…), answered from PostgreSQL.
 *
 * Every /api/ request carries `Authorization: Bearer <token>`; the token's
 * SHA-256 is looked up in api_tokens (not revoked) for its role and, for a
 * department token, its department. A department sees only the cases it has
 * an assignment on, and that condition is part of every query's WHERE
 * clause: a case of another department is "not found", not "forbidden".
 * Residents' names and phones are masked for department and supervisor
 * tokens. Errors are {"error": {"code", "message", "field"}}. */
#ifndef FB_API_H
#define FB_API_H

#include "fb_http.h"

#include <stdbool.h>

/* The fb_http handler; ud is the fb_worker_t. Answers every request before
 * returning (the database calls are blocking in this version). */
void fb_api_handle(void *ud, fb_http_req_t *req);

/* Whether path takes an upload (a verification's photos): a larger body. */
bool fb_api_is_upload(const char *path);
/* The fb_http head handler: an upload without a known grid or admin token is
 * answered (401/403) before a byte of its body is read. */
void fb_api_head(void *ud, fb_http_req_t *req);

#endif
