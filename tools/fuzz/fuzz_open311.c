/* fuzz_open311.c — POST /open311/v2/requests.{json,xml}, the Open311 form
 * parser: libmicrohttpd's post processor, open311_post.c's field collector,
 * validation, idempotency key and petition, and the answer in either format
 * (open311.c's JSON or XML), through the real handler (intake_open311_http).
 *
 * Input: one selector byte, then the body.
 *   bit 0-1  the request head: 0 form-urlencoded; 1 the same with an
 *            Idempotency-Key header; 2 multipart/form-data, boundary
 *            "fuzzb"; 3 form-urlencoded; charset=utf-8
 *   bit 2    the answer's format: .xml when set, else .json
 * The api_key the directory knows is "fuzz-open311-api-key" (fuzz_http.h).
 *
 * A petition the handler accepts goes to the harness's intake_submit
 * (-Wl,--wrap), which checks it and answers 202: nothing is spooled. */
#include "fuzz_common.h"
#include "fuzz_http.h"

static struct MHD_Connection *s_conn[4];

static const char *const s_heads[4] = {
    "POST /open311/v2/requests.json HTTP/1.1\r\nHost: fuzz\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    "POST /open311/v2/requests.json HTTP/1.1\r\nHost: fuzz\r\nIdempotency-Key: fuzz-idem-1\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    "POST /open311/v2/requests.json HTTP/1.1\r\nHost: fuzz\r\n"
    "Content-Type: multipart/form-data; boundary=fuzzb\r\nContent-Length: 100000000\r\n\r\n",
    "POST /open311/v2/requests.json HTTP/1.1\r\nHost: fuzz\r\n"
    "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
    "Content-Length: 100000000\r\n\r\n",
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init_common();
    (void)fz_intake();
    for (size_t i = 0; i < 4; i++)
        s_conn[i] = fz_http_connection(s_heads[i]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *path = sel & 4 ? "/open311/v2/requests.xml" : "/open311/v2/requests.json";
    fb_http_req_t *r = fz_http_request(s_conn[sel & 3], "POST", path, data + 1, size - 1);
    intake_open311_http(fz_intake(), r);
    fz_http_finish(r);
    return 0;
}
