/* fuzz_http.h — an HTTP request for intake's real handlers without a socket
 * round trip per input, and an intake_t that needs no database, bus or spool.
 *
 * A form body goes through libmicrohttpd's post processor, which only exists
 * on a connection (it reads Content-Type, and so the multipart boundary,
 * from the connection's headers). So, once per process, a private MHD daemon
 * without a listening socket is handed one end of a socketpair carrying the
 * request head (method, path, headers; a Content-Length nothing will ever
 * fill); its first callback suspends the connection, which then stays valid,
 * and MHD is not run again. Each input becomes an fb_http_req_t on that
 * connection whose body is the input: fb_http_form, fb_http_header and the
 * answers are lib/fb_http.c's own code (fuzz_http.c includes that file to
 * reach the request's struct).
 *
 * Every answer is checked: given before the handler returns (nothing here
 * completes later), a status a client may get for bad input (never 500 or
 * 503: those mean intake failed on it), a UTF-8 body, and JSON that parses
 * when the type says JSON. */
#ifndef FUZZ_HTTP_H
#define FUZZ_HTTP_H

#include "fb_http.h"
#include "intake.h"

#include <stddef.h>
#include <stdint.h>

/* The bearer tokens the directory knows, and their roles. */
#define FZ_TOKEN_MINIAPP "fuzz-miniapp-token"
#define FZ_TOKEN_OPEN311 "fuzz-open311-api-key"
#define FZ_TOKEN_HOTLINE "fuzz-hotline-token"

/* A suspended connection whose request head is head ("POST /path HTTP/1.1\r\n
 * Header: value\r\n…\r\n", the blank line included). Aborts on failure:
 * a target that cannot set up must not pass. */
struct MHD_Connection *fz_http_connection(const char *head);

/* A request on c with this method, path and body (copied to an exact-size
 * buffer, NUL-terminated as fb_http.c's). */
fb_http_req_t *fz_http_request(struct MHD_Connection *c, const char *method, const char *path,
                               const uint8_t *body, size_t len);

/* Checks the answer (see above) and frees the request. Returns the status. */
unsigned fz_http_finish(fb_http_req_t *r);

/* The intake every target shares: config defaults, data_dir a fresh temporary
 * directory, a directory loaded from a cache file (the three tokens above,
 * categories from config/demo, the city's bounds), no database (an
 * unreachable conninfo), no spool and no bus: targets must keep intake_submit
 * on its answer-at-once path. */
intake_t *fz_intake(void);

#endif
