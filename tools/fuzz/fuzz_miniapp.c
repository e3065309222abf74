/* fuzz_miniapp.c — POST /api/v1/miniapp/reports, the multipart/photo path:
 * libmicrohttpd's multipart parser, miniapp.c's part collector (one part
 * report, up to nine parts photo, size limits), photo sniffing, the report's
 * JSON, GCJ-02 conversion, the EXIF/PNG GPS of the photos and the petition,
 * through the real handler (intake_miniapp_http).
 *
 * Input: the whole body, multipart/form-data with boundary "fuzzboundary"
 * (the connection's Content-Type), Authorization and Idempotency-Key already
 * right. Photos are sniffed but not stored, and an accepted report is
 * checked and answered 202 by the harness (-Wl,--wrap of
 * fb_photo_store and intake_submit_http): nothing is written. */
#include "fuzz_common.h"
#include "fuzz_http.h"

static struct MHD_Connection *s_conn;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init_common();
    (void)fz_intake();
    s_conn = fz_http_connection("POST /api/v1/miniapp/reports HTTP/1.1\r\nHost: fuzz\r\n"
                                "Authorization: Bearer " FZ_TOKEN_MINIAPP "\r\n"
                                "Idempotency-Key: fuzz-report-1\r\n"
                                "Content-Type: multipart/form-data; boundary=fuzzboundary\r\n"
                                "Content-Length: 100000000\r\n\r\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fb_http_req_t *r = fz_http_request(s_conn, "POST", "/api/v1/miniapp/reports", data, size);
    intake_miniapp_http(fz_intake(), r);
    fz_http_finish(r);
    return 0;
}
