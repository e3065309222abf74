/* open311_priv.h — what the files of the Open311 GeoReport v2 channel
 * (open311.c: routing, discovery, services, output; open311_post.c:
 * POST requests; open311_read.c: GET requests and tokens) share. Not for
 * the rest of intake: intake.h's intake_open311_http is the channel's door. */
#ifndef INTAKE_OPEN311_PRIV_H
#define INTAKE_OPEN311_PRIV_H

#include "intake.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The response format the client chose with the path's suffix. */
typedef enum { OPEN311_JSON = 0, OPEN311_XML } open311_fmt_t;

/* Answers j (reference taken) as JSON, or as XML under the element root,
 * the spec's mapping: an array's items are named by the singular of the
 * array's name ("service_requests" → "request", "errors" → "error", …). */
void intake_open311_respond(fb_http_req_t *req, unsigned status, open311_fmt_t fmt,
                            const char *root, json_t *j);
/* Answers the spec's error body, [{"code", "description"}] / <errors>, with
 * one error whose code is the HTTP status. */
void intake_open311_error(fb_http_req_t *req, open311_fmt_t fmt, unsigned status,
                          const char *desc_fmt, ...) __attribute__((format(printf, 4, 5)));
/* Appends {"code": code, "description": …} to the errors array. */
void intake_open311_add_error(json_t *errors, unsigned code, const char *desc_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies s into out (outlen bytes), cut at a character boundary when it
 * does not fit, for echoing a client's value in an error. Returns out. */
char *intake_open311_clip(const char *s, char *out, size_t outlen);

/* Serialises j as XML under root (with the XML declaration); the caller
 * frees the result. NULL when out of memory. */
char *intake_open311_xml(const char *root, const json_t *j);

/* "2026-11-22T09:30:00+08:00" (w3 format, the city's zone) of epoch seconds
 * into out (at least 32 bytes). Returns out. */
char *intake_open311_time(int64_t epoch_s, char *out, size_t outlen);

/* True when a request for a jurisdiction_id other than ours must be
 * refused: answers 404 itself then. Empty counts as absent (the spec). */
bool intake_open311_wrong_jurisdiction(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                                       const char *jurisdiction_id);

/* The service (category) with code, as the services list shows it, or NULL
 * when it is not offered. The result is the caller's. */
json_t *intake_open311_service(intake_t *in, const char *code);
/* True when a POST may name code: an offered service, or any code while the
 * category tree was never loaded (intake keeps accepting without the
 * database, as directory.h does). */
bool intake_open311_service_known(intake_t *in, const char *code);

/* The attributes every service defines (GET services/{code}). */
json_t *intake_open311_attributes(void);

/* Counts an answer given after the handler returned (main.c counts those
 * given inside it). */
void intake_open311_count(intake_t *in, fb_http_req_t *req);

/* The endpoints (fmt from the path's suffix; id is the path's last segment
 * for requests/{id} and tokens/{token}). */
void intake_open311_post_request(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt);
void intake_open311_get_requests(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                                 const char *id);
void intake_open311_get_token(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                              const char *token);

#endif
