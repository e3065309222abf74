/* dashboard.c — serves the embedded dashboard page (see dashboard.h). */
#include "dashboard.h"

void fb_dashboard_serve(fb_http_req_t *req) {
    fb_http_respond(req, 200, "text/html; charset=utf-8", (const char *)fb_dashboard_html,
                    fb_dashboard_html_len);
}
