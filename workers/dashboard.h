/* dashboard.h — the supervisors' dashboard page, GET /dashboard.
 *
 * One self-contained HTML page (workers/dashboard.html: HTML, CSS and plain
 * JavaScript, no external resources — the machines have no internet) that
 * CMake embeds into the binary at build time (dashboard_embed.cmake), so the
 * worker serves it with no files to install and no build step of its own.
 * The page itself holds no data and needs no token; its script asks once for
 * a supervisor token, keeps it in localStorage and reads the JSON APIs
 * (/api/v1/stats, /api/v1/stats/daily, /api/v1/overdue, /api/v1/hotspots)
 * with it as `Authorization: Bearer`. A token may also be handed over in the
 * URL fragment, /dashboard#token=…, which the page moves into localStorage
 * and strips from the address (a fragment is never sent to the server). */
#ifndef FB_DASHBOARD_H
#define FB_DASHBOARD_H

#include "fb_http.h"

#include <stddef.h>

/* The page's bytes (UTF-8, not NUL-terminated), generated from
 * dashboard.html. Static. */
extern const unsigned char fb_dashboard_html[];
extern const size_t fb_dashboard_html_len;

/* Answers req with the page: 200 text/html. */
void fb_dashboard_serve(fb_http_req_t *req);

#endif
