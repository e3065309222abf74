/* fuzz_http.c — requests and an intake for the fuzz targets (fuzz_http.h).
 *
 * lib/fb_http.c is compiled into this file (and so into each target that
 * uses it, in place of libfenbo's copy: the linker then never pulls fb_http.o
 * out of the archive) because a request is a struct private to it. */
#include <microhttpd.h>

/* Each answer's body, seen on its way into libmicrohttpd: the public API has
 * no way to read a response's body back. */
static struct MHD_Response *fz_response_from_buffer(size_t size, void *buffer,
                                                    enum MHD_ResponseMemoryMode mode);
#define MHD_create_response_from_buffer fz_response_from_buffer
#include "fb_http.c"
#undef MHD_create_response_from_buffer

#include "fuzz_common.h"
#include "fuzz_http.h"

#include "fb_config.h"
#include "fb_map.h"
#include "fb_text.h"
#include "fb_token.h"
#include "fb_photo.h"

#ifdef FZ_HAVE_LIBXML2
#include <libxml/parser.h>
#endif
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *s_body; /* the last answer's body */
static size_t s_body_len;

static struct MHD_Response *fz_response_from_buffer(size_t size, void *buffer,
                                                    enum MHD_ResponseMemoryMode mode) {
    free(s_body);
    s_body = malloc(size + 1);
    FZ_CHECK(s_body != NULL, "out of memory in the harness");
    memcpy(s_body, buffer, size);
    s_body[size] = '\0';
    s_body_len = size;
    return MHD_create_response_from_buffer(size, buffer, mode);
}

/* ---- the held connection ------------------------------------------------- */

static struct MHD_Daemon *s_mhd;
static struct MHD_Connection *s_held;

static enum MHD_Result fz_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (!s_held) {
        s_held = c;
        MHD_suspend_connection(c);
    }
    return MHD_YES;
}

struct MHD_Connection *fz_http_connection(const char *head) {
    if (!s_mhd) {
        /* No listening socket, no thread: nothing runs unless MHD_run is
         * called, and it is only called here. */
        s_mhd = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                                 fz_access, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 0u,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                                 MHD_OPTION_END);
        FZ_CHECK(s_mhd != NULL, "MHD_start_daemon");
    }
    int sv[2];
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    size_t n = strlen(head);
    FZ_CHECK(write(sv[1], head, n) == (ssize_t)n, "writing the request head");
    /* sv[1] stays open for the life of the process: the connection waits for
     * a body that never comes. */
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    s_held = NULL;
    FZ_CHECK(MHD_add_connection(s_mhd, sv[0], (const struct sockaddr *)&peer, sizeof peer) ==
                 MHD_YES,
             "MHD_add_connection");
    for (int i = 0; i < 1000 && !s_held; i++) {
        MHD_run(s_mhd);
        if (!s_held)
            usleep(1000);
    }
    FZ_CHECK(s_held != NULL, "libmicrohttpd read the request head");
    return s_held;
}

fb_http_req_t *fz_http_request(struct MHD_Connection *c, const char *method, const char *path,
                               const uint8_t *body, size_t len) {
    static fb_http_t srv; /* nothing of it is used while a request is not suspended */
    fb_http_req_t *r = calloc(1, sizeof *r);
    FZ_CHECK(r != NULL, "out of memory in the harness");
    r->srv = &srv;
    r->conn = c;
    r->method = strdup(method);
    r->path = strdup(path);
    r->body = malloc(len + 1);
    FZ_CHECK(r->method && r->path && r->body, "out of memory in the harness");
    if (len)
        memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
    r->cap = len + 1;
    r->limit = SIZE_MAX;
    r->dispatched = true;
    snprintf(r->peer, sizeof r->peer, "127.0.0.1");
    return r;
}

unsigned fz_http_finish(fb_http_req_t *r) {
    FZ_CHECK(r->answered && r->response, "the handler answered before returning");
    unsigned st = r->status;
    FZ_CHECK(st != 500 && st != 503, "no 500/503 answer to bad input");
    FZ_CHECK(st == 200 || st == 202 || (st >= 400 && st < 500), "a 2xx or 4xx status");
    FZ_CHECK(s_body != NULL, "the answer has a body");
    FZ_CHECK(fb_utf8_valid(s_body, s_body_len), "the answer is UTF-8");
    const char *type = MHD_get_response_header(r->response, MHD_HTTP_HEADER_CONTENT_TYPE);
    FZ_CHECK(type != NULL, "the answer has a Content-Type");
    if (strncmp(type, "application/json", 16) == 0) {
        json_error_t je;
        json_t *j = json_loadb(s_body, s_body_len, 0, &je);
        FZ_CHECK(j != NULL, "a JSON answer parses");
        json_decref(j);
    } else {
        FZ_CHECK(strncmp(type, "text/xml", 8) == 0 || strncmp(type, "application/xml", 15) == 0,
                 "the answer is JSON or XML");
        FZ_CHECK(strncmp(s_body, "<?xml", 5) == 0, "an XML answer starts with its declaration");
#ifdef FZ_HAVE_LIBXML2
        xmlDocPtr doc = xmlReadMemory(s_body, (int)s_body_len, "answer.xml", "utf-8",
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        FZ_CHECK(doc != NULL, "an XML answer is well-formed (libxml2)");
        xmlFreeDoc(doc);
#endif
    }
    free(s_body);
    s_body = NULL;
    req_free(r);
    return st;
}

/* ---- intake -------------------------------------------------------------- */

/* What the targets put in place of intake's writes (linked with
 * -Wl,--wrap=NAME, which sends the adapters' calls here): the answer a new
 * key gets, after the petition passed the checks every accepted one must. */
void __wrap_intake_submit(intake_t *in, fb_petition_t *p, intake_done_cb cb, void *ud);
void __wrap_intake_submit_http(intake_t *in, fb_http_req_t *req, fb_petition_t *p);
int __wrap_fb_photo_store(const char *data_dir, const void *bytes, size_t len, char sha256_hex[65],
                          const char **content_type);

void __wrap_intake_submit(intake_t *in, fb_petition_t *p, intake_done_cb cb, void *ud) {
    (void)in;
    fz_check_petition(p, p->channel);
    fb_petition_destroy(&p);
    cb(ud, 202, "20261122-1-000001");
}

void __wrap_intake_submit_http(intake_t *in, fb_http_req_t *req, fb_petition_t *p) {
    (void)in;
    fz_check_petition(p, p->channel);
    fb_petition_destroy(&p);
    fb_http_respond_json(req, 202, json_pack("{s:s}", "tracking_no", "20261122-1-000001"));
}

/* Photos are only sniffed (what the real store refuses), not hashed or
 * written: a fuzzer's thousands of new photos stay off the disk. */
int __wrap_fb_photo_store(const char *data_dir, const void *bytes, size_t len, char sha256_hex[65],
                          const char **content_type) {
    (void)data_dir;
    const char *type = fb_photo_sniff(bytes, len);
    if (!type)
        return FB_EINVAL;
    snprintf(sha256_hex, 65, "%064zx", len);
    if (content_type)
        *content_type = type;
    return 0;
}

static json_t *load_demo(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", FZ_DEMO_DIR, name);
    json_t *j = json_load_file(path, 0, NULL);
    FZ_CHECK(j != NULL, "reading config/demo (FZ_DEMO_DIR)");
    return j;
}

static json_t *token(const char *tok, const char *role) {
    char hex[FB_TOKEN_HASH_HEX];
    FZ_CHECK(fb_token_hash_hex(tok, hex) == 0, "fb_token_hash_hex");
    return json_pack("{s:s,s:s}", "hash", hex, "role", role);
}

intake_t *fz_intake(void) {
    static intake_t in;
    static uv_loop_t loop;
    if (in.loop)
        return &in;
    FZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
    fb_config_defaults(&in.cfg);
    char dir[] = "/tmp/fenbo-fuzz-XXXXXX";
    FZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    free(in.cfg.data_dir);
    in.cfg.data_dir = strdup(dir);
    in.loop = &loop;
    in.keys = fb_map_new();
    FZ_CHECK(in.cfg.data_dir && in.keys, "out of memory in the harness");

    /* The directory's cache file, as directory.c writes it from the
     * database; the bounds are the demo city's extent. */
    json_t *cache =
        json_pack("{s:[o,o,o],s:o,s:[f,f,f,f]}", "tokens", token(FZ_TOKEN_MINIAPP, "miniapp"),
                  token(FZ_TOKEN_OPEN311, "open311"), token(FZ_TOKEN_HOTLINE, "hotline"),
                  "categories", load_demo("categories.json"), "bounds", 29.9, 119.8, 30.6, 120.6);
    char cache_path[4096];
    snprintf(cache_path, sizeof cache_path, "%s/directory.json", dir);
    FZ_CHECK(cache && json_dump_file(cache, cache_path, 0) == 0, "writing the directory cache");
    json_decref(cache);
    /* An unreachable database: the one synchronous fetch fails at once, and
     * the refresh timer never fires (the loop is never run). */
    FZ_CHECK(intake_directory_open(&loop, "host=/nonexistent-fenbo-fuzz", cache_path, 3600,
                                   &in.dir) == 0,
             "intake_directory_open");
    unlink(cache_path);
    rmdir(dir); /* nothing may be written there: a write the wraps missed fails loudly */
    return &in;
}
