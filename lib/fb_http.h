/* fb_http.h — an HTTP server (libmicrohttpd) driven from a libuv loop.
 *
 * libmicrohttpd runs without threads of its own, in epoll mode; its epoll
 * descriptor is watched by a uv_poll_t and its timeouts by a uv_timer_t. The
 * handler is called once a request's whole body has arrived. It answers at
 * once with fb_http_respond*(), or later from the loop: a request the handler
 * left unanswered is suspended until it is answered (that is how intake
 * answers only after the spool's group fsync). */
#ifndef FB_HTTP_H
#define FB_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct fb_http fb_http_t;
typedef struct fb_http_req fb_http_req_t;

typedef void (*fb_http_handler_cb)(void *ud, fb_http_req_t *req);

/* The largest body accepted for a request (413 beyond); called once its
 * method and path are known. NULL: max_body for every request. */
typedef size_t (*fb_http_limit_cb)(void *ud, const char *method, const char *path);

typedef struct fb_http_opts {
    const char *address;
    int port;
    size_t max_body; /* 413 beyond */
    fb_http_limit_cb body_limit;
    unsigned max_connections; /* 0: libmicrohttpd's default */
    unsigned per_ip_connections;
    unsigned timeout_s;
    /* Called once the request head is read, before any of its body: it may
     * answer (a missing or unknown token: 401) and the body is then never
     * read, nor a "100 Continue" sent. NULL: none. */
    fb_http_handler_cb head_cb;
    /* Requests per second per client address, with bursts of rate_burst;
     * beyond: 429 with Retry-After. 0: no limit. */
    unsigned rate_per_s, rate_burst;
} fb_http_opts_t;

int fb_http_start(uv_loop_t *loop, const fb_http_opts_t *o, fb_http_handler_cb cb, void *ud,
                  fb_http_t **out);
/* Stops listening and closes the loop handles; *h is freed once they closed. */
void fb_http_stop(fb_http_t **h);
/* The port actually bound (useful with port 0). */
int fb_http_port(const fb_http_t *h);

/* Request accessors; strings are borrowed for the request's life. */
const char *fb_http_method(const fb_http_req_t *r);
const char *fb_http_path(const fb_http_req_t *r);
const char *fb_http_header(const fb_http_req_t *r, const char *name);
const char *fb_http_query(const fb_http_req_t *r, const char *key);
const char *fb_http_body(const fb_http_req_t *r, size_t *len);
const char *fb_http_peer(const fb_http_req_t *r); /* client address, text */

/* Parses the request's form body (application/x-www-form-urlencoded or
 * multipart/form-data) with libmicrohttpd's post processor, calling field
 * for each piece of each field (a large part arrives in several pieces at
 * increasing offsets). field returns 0 to go on. Returns 0, FB_EINVAL when the
 * body is not a form (or field refused), FB_ENOMEM. */
typedef int (*fb_http_field_cb)(void *ud, const char *name, const char *filename,
                                const char *content_type, const char *data, size_t off, size_t len);
int fb_http_form(fb_http_req_t *r, fb_http_field_cb field, void *ud);

/* The request head's checks, before any body is read (fb_http_start runs
 * them on every request; the fuzz target on arbitrary heads). Note each
 * header and query argument, then ask for the verdict: 0 when the head may
 * pass, else 400 with a code ("bad_request", "invalid_utf8"), the field to
 * name and why (all borrowed: static, or the noted key). Refused:
 * Content-Length with Transfer-Encoding, more than one Content-Length, a NUL,
 * CR or invalid UTF-8 in a header, HTTP/1.1 without Host, a path or query
 * argument that is not UTF-8. */
typedef struct fb_http_head {
    int content_length;
    bool transfer_encoding, has_host;
    const char *bad_header, *bad_query; /* point into the buffers below, or static */
    char bad_header_buf[64], bad_query_buf[64];
} fb_http_head_t;
void fb_http_head_note(fb_http_head_t *hd, bool query, const char *key, size_t key_size,
                       const char *value, size_t value_size);
unsigned fb_http_head_verdict(const fb_http_head_t *hd, const char *version, const char *path,
                              const char **code, const char **field, const char **why);

/* Answers the request (the body is copied). Each request is answered once. */
int fb_http_respond(fb_http_req_t *r, unsigned status, const char *content_type, const char *body,
                    size_t len);
/* Answers with j serialised; takes j's reference. */
int fb_http_respond_json(fb_http_req_t *r, unsigned status, json_t *j);
/* Answers {"error": {"code", "message", "field"}}; field may be NULL. */
int fb_http_error(fb_http_req_t *r, unsigned status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Adds a header to the answer just given (before it leaves: call it right
 * after fb_http_respond*). Returns 0, FB_EINVAL when not answered yet. */
int fb_http_add_header(fb_http_req_t *r, const char *name, const char *value);
bool fb_http_answered(const fb_http_req_t *r);
/* The status answered, 0 while unanswered. */
unsigned fb_http_status(const fb_http_req_t *r);

#endif
