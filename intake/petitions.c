/* petitions.c — placeholder until residents' follow-up lands. */
#include "intake.h"

void intake_petitions_http(intake_t *in, fb_http_req_t *req) {
    (void)in;
    fb_http_error(req, 501, "not_implemented", NULL, "not available yet");
}
