/* fuzz_hotline.c — the hotline work-order validator on arbitrary bytes: the
 * body of POST /api/v1/hotline/orders through the real handler
 * (intake_hotline_http: intake_hotline_parse, then the answer), with a
 * hotline token and the demo categories.
 *
 * Input: the whole body. Beyond "does not crash": a refusal is a 4xx whose
 * JSON error says why (fuzz_http.h), and an accepted order is a petition
 * that survives the spool, checked by the harness's intake_submit_http
 * (-Wl,--wrap), which answers 202 without writing anything. */
#include "fuzz_common.h"
#include "fuzz_http.h"

static struct MHD_Connection *s_conn;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init_common();
    (void)fz_intake();
    s_conn = fz_http_connection("POST /api/v1/hotline/orders HTTP/1.1\r\nHost: fuzz\r\n"
                                "Authorization: Bearer " FZ_TOKEN_HOTLINE "\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 100000000\r\n\r\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fb_http_req_t *r = fz_http_request(s_conn, "POST", "/api/v1/hotline/orders", data, size);
    intake_hotline_http(fz_intake(), r);
    fz_http_finish(r);
    return 0;
}
