/* api_util.h — what the worker's API handlers share (api_util.c). */
#ifndef WORKERS_API_UTIL_H
#define WORKERS_API_UTIL_H

#include "fb_http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct fb_worker fb_worker_t;

/* Runs a query whose one row and column is JSON (NULL is "not found") on the
 * worker's connection. On failure answers the request (503 when the
 * database is away or busy, 500 otherwise) and returns FB_EDB; *out is the
 * caller's. */
int fb_api_query_json(fb_worker_t *w, fb_http_req_t *req, const char *sql, int n,
                      const char *const *params, json_t **out);
/* Reads query parameter `key` as a whole number in [min, max] into *out
 * (def when absent). Answers 400 naming the field and returns false when it
 * is there but not such a number. */
bool fb_api_query_int(fb_http_req_t *req, const char *key, long long min, long long max,
                      long long def, long long *out);
/* Reads query parameter `key` as true/false/1/0 into *out (-1 when absent).
 * Answers 400 and returns false for anything else. */
bool fb_api_query_bool(fb_http_req_t *req, const char *key, int *out);

/* "张三" → "张*": the first character (UTF-8) and a star; "" and NULL give
 * "*". out needs at least 6 bytes. Returns out. */
char *fb_api_mask_name(const char *name, char *out, size_t outlen);
/* Masks phones, ID card numbers and e-mail addresses typed into o's text
 * field key, in place (fb_text_mask_personal). */
void fb_api_mask_text(json_t *o, const char *key);

#endif
