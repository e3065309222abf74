/* open311.c — placeholder until the open311 channel lands: refuses with 501. */
#include "intake.h"

void intake_open311_http(intake_t *in, fb_http_req_t *req) {
    (void)in;
    fb_http_error(req, 501, "not_implemented", NULL, "this channel is not available yet");
}
