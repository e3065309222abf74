/* fb_http.c — libmicrohttpd on a libuv loop. */
#include "fb_http.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fb_http {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    fb_http_handler_cb cb;
    void *ud;
    size_t max_body;
    fb_http_limit_cb body_limit;
    int port;
    fb_http_handler_cb head_cb;
    unsigned rate_per_s, rate_burst;
    fb_map_t *buckets; /* client address → s_bucket_t, for the rate limit */
};

/* A client's token bucket: rate_per_s tokens a second, at most rate_burst. */
typedef struct {
    double tokens;
    uint64_t at_ms;
} s_bucket_t;

/* More client addresses than this and the buckets start afresh. */
#define MAX_BUCKETS 65536

struct fb_http_req {
    fb_http_t *srv;
    struct MHD_Connection *conn;
    char *method, *path;
    char *body;
    size_t len, cap, limit;
    bool too_large, dispatched, suspended, answered;
    bool orphaned; /* the connection is gone while its answer is awaited */
    struct MHD_Response *response;
    unsigned status;
    char peer[64];
};

static void run(fb_http_t *h);

static void req_free(fb_http_req_t *r) {
    if (r->response)
        MHD_destroy_response(r->response);
    free(r->method);
    free(r->path);
    free(r->body);
    free(r);
}

static void on_timer(uv_timer_t *t) {
    run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events) {
    (void)status;
    (void)events;
    run(p->data);
}

static void run(fb_http_t *h) {
    if (!h->mhd)
        return;
    MHD_run(h->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, ms > 1000 ? 1000 : ms, 0);
    else
        uv_timer_start(&h->timer, on_timer, 1000, 0);
}

static enum MHD_Result queue(fb_http_req_t *r) {
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    MHD_destroy_response(r->response);
    r->response = NULL;
    return ret;
}

/* ---- the request head: refused before the body --------------------------- */

/* A copy of the name (key_size bytes, not NUL-terminated) to name in an
 * answer: into buf when it is clean UTF-8 without NUL or CR, else generic. */
static const char *name_of(const char *key, size_t key_size, char *buf, size_t buflen,
                           const char *generic) {
    if (!key || !fb_utf8_valid(key, key_size) || memchr(key, '\r', key_size) ||
        strnlen(key, key_size) != key_size)
        return generic;
    size_t n = fb_utf8_valid_prefix(key, key_size < buflen - 1 ? key_size : buflen - 1);
    memcpy(buf, key, n);
    buf[n] = '\0';
    return buf;
}

void fb_http_head_note(fb_http_head_t *hd, bool query, const char *key, size_t key_size,
                       const char *value, size_t value_size) {
    if (query) {
        if ((key && !fb_utf8_valid(key, key_size)) || (value && !fb_utf8_valid(value, value_size)))
            hd->bad_query = name_of(key, key_size, hd->bad_query_buf, sizeof hd->bad_query_buf,
                                    "(a query argument)");
        return;
    }
    if (!key)
        return;
    if (key_size == 14 && strncasecmp(key, "Content-Length", 14) == 0)
        hd->content_length++;
    if (key_size == 17 && strncasecmp(key, "Transfer-Encoding", 17) == 0)
        hd->transfer_encoding = true;
    if (key_size == 4 && strncasecmp(key, "Host", 4) == 0)
        hd->has_host = true;
    /* A NUL inside (value_size past the C string), a CR, or bytes that are
     * not UTF-8: nothing a proxy in front would read the same way. */
    if (value && (strnlen(value, value_size) != value_size || memchr(value, '\r', value_size) ||
                  !fb_utf8_valid(value, value_size)))
        hd->bad_header = name_of(key, key_size, hd->bad_header_buf, sizeof hd->bad_header_buf,
                                 "(a header name)");
    if (memchr(key, '\r', key_size) || strnlen(key, key_size) != key_size ||
        !fb_utf8_valid(key, key_size))
        hd->bad_header = "(a header name)";
}

unsigned fb_http_head_verdict(const fb_http_head_t *hd, const char *version, const char *path,
                              const char **code, const char **field, const char **why) {
    *code = "bad_request";
    if (hd->content_length > 1) {
        *field = "Content-Length", *why = "more than one Content-Length";
    } else if (hd->content_length && hd->transfer_encoding) {
        *field = "Transfer-Encoding", *why = "Content-Length and Transfer-Encoding together";
    } else if (hd->bad_header) {
        *field = hd->bad_header, *why = "a header holds a NUL, a CR or invalid UTF-8";
    } else if (version && strcmp(version, "HTTP/1.1") == 0 && !hd->has_host) {
        *field = "Host", *why = "HTTP/1.1 requires a Host header";
    } else if (path && !fb_utf8_valid(path, strlen(path))) {
        *code = "invalid_utf8", *field = "path", *why = "the path is not valid UTF-8";
    } else if (hd->bad_query) {
        *code = "invalid_utf8", *field = hd->bad_query, *why = "a query argument is not UTF-8";
    } else {
        *code = *field = *why = NULL;
        return 0;
    }
    return 400;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size) {
    fb_http_head_note(cls, kind == MHD_GET_ARGUMENT_KIND, key, key_size, value, value_size);
    return MHD_YES;
}

/* Refuses (400) what request smuggling and confused proxies are made of
 * (fb_http_head_verdict), naming the field. */
static bool head_ok(fb_http_req_t *r, const char *version) {
    fb_http_head_t hd = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, scan_header, &hd);
    const char *code, *field, *why;
    unsigned st = fb_http_head_verdict(&hd, version, r->path, &code, &field, &why);
    if (st)
        fb_http_error(r, st, code, field, "%s: %s", field, why);
    return !r->answered;
}

/* The client's token bucket; false (429 answered) when it is empty. */
static bool rate_allows(fb_http_t *h, fb_http_req_t *r) {
    if (!h->rate_per_s)
        return true;
    if (!h->buckets || fb_map_size(h->buckets) >= MAX_BUCKETS) {
        fb_map_destroy(&h->buckets, free);
        h->buckets = fb_map_new();
    }
    uint64_t now = fb_mono_ms();
    s_bucket_t *b = h->buckets ? fb_map_get(h->buckets, r->peer) : NULL;
    if (!b && h->buckets && (b = calloc(1, sizeof *b)) != NULL) {
        b->tokens = h->rate_burst ? h->rate_burst : h->rate_per_s;
        b->at_ms = now;
        if (fb_map_put(h->buckets, r->peer, b, NULL) != 0) {
            free(b);
            b = NULL;
        }
    }
    if (!b)
        return true; /* out of memory: no limit rather than no service */
    double cap = h->rate_burst ? h->rate_burst : h->rate_per_s;
    b->tokens += (double)(now - b->at_ms) * h->rate_per_s / 1000.0;
    b->tokens = b->tokens > cap ? cap : b->tokens;
    b->at_ms = now;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return true;
    }
    char secs[16];
    snprintf(secs, sizeof secs, "%u", (unsigned)((1 - b->tokens) / h->rate_per_s) + 1);
    fb_http_error(r, 429, "too_many_requests", NULL,
                  "more than %u requests a second from this address; slow down", h->rate_per_s);
    fb_http_add_header(r, "Retry-After", secs);
    return false;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
    (void)version;
    fb_http_t *h = cls;
    fb_http_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = h;
        r->conn = c;
        r->method = strdup(method);
        r->path = strdup(url);
        *con_cls = r;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, r->peer,
                      sizeof r->peer);
        if (!r->method || !r->path)
            return MHD_NO;
        r->limit = h->body_limit ? h->body_limit(h->ud, method, url) : h->max_body;
        /* Everything below answers before a byte of the body is read. */
        if (!rate_allows(h, r) || !head_ok(r, version))
            return queue(r);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > r->limit) {
            fb_http_error(r, 413, "body_too_large", NULL, "request body exceeds %zu bytes",
                          r->limit);
            return queue(r);
        }
        if (h->head_cb) {
            h->head_cb(h->ud, r);
            if (r->response)
                return queue(r);
        }
        return MHD_YES;
    }
    if (r->response)
        return queue(r);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > r->limit) {
            r->too_large = true;
            return MHD_YES;
        }
        return fb_bytes_append(&r->body, &r->len, &r->cap, upload_data, n) == 0 ? MHD_YES : MHD_NO;
    }
    if (r->dispatched)
        return MHD_YES;
    r->dispatched = true;
    if (r->too_large)
        fb_http_error(r, 413, "body_too_large", NULL, "request body exceeds %zu bytes", r->limit);
    else
        h->cb(h->ud, r);
    if (r->response)
        return queue(r);
    if (!r->answered) {
        r->suspended = true;
        MHD_suspend_connection(c);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    fb_http_req_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    if (r->suspended) {
        /* Closed (by the client, a timeout or fb_http_stop) while somebody
         * still holds the request to answer it later: it is freed when that
         * answer comes, which then goes nowhere. */
        r->orphaned = true;
        r->conn = NULL;
        return;
    }
    req_free(r);
}

int fb_http_start(uv_loop_t *loop, const fb_http_opts_t *o, fb_http_handler_cb cb, void *ud,
                  fb_http_t **out) {
    *out = NULL;
    fb_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return FB_ENOMEM;
    h->cb = cb;
    h->ud = ud;
    h->max_body = o->max_body;
    h->body_limit = o->body_limit;
    h->head_cb = o->head_cb;
    h->rate_per_s = o->rate_per_s;
    h->rate_burst = o->rate_burst;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->address, &sa.sin_addr) != 1) {
        fb_log(FB_LOG_ERROR, "event=http_bad_address address=%s", o->address);
        free(h);
        return FB_EINVAL;
    }
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, (uint16_t)o->port, NULL, NULL,
        on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(o->max_connections ? o->max_connections : 1024),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(o->timeout_s ? o->timeout_s : 30), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        /* libmicrohttpd's strict parsing: no whitespace in header names or
         * the URL, and the rest of what it knows to refuse. */
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!h->mhd) {
        fb_log(FB_LOG_ERROR, "event=http_start_failed address=%s port=%d error=\"%s\"", o->address,
               o->port, strerror(errno));
        free(h);
        return FB_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = pi ? pi->port : o->port;
    uv_poll_init(loop, &h->poll, di->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    h->open_handles = 2;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    uv_timer_start(&h->timer, on_timer, 0, 0);
    *out = h;
    return 0;
}

static void on_closed(uv_handle_t *handle) {
    fb_http_t *h = handle->data;
    if (--h->open_handles == 0) {
        fb_map_destroy(&h->buckets, free);
        free(h);
    }
}

void fb_http_stop(fb_http_t **hp) {
    fb_http_t *h = *hp;
    if (!h)
        return;
    uv_poll_stop(&h->poll);
    MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->timer, on_closed);
    *hp = NULL;
}

int fb_http_port(const fb_http_t *h) {
    return h->port;
}

const char *fb_http_method(const fb_http_req_t *r) {
    return r->method;
}

const char *fb_http_path(const fb_http_req_t *r) {
    return r->path;
}

const char *fb_http_header(const fb_http_req_t *r, const char *name) {
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *fb_http_query(const fb_http_req_t *r, const char *key) {
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key) : NULL;
}

const char *fb_http_body(const fb_http_req_t *r, size_t *len) {
    *len = r->len;
    return r->body ? r->body : "";
}

const char *fb_http_peer(const fb_http_req_t *r) {
    return r->peer;
}

bool fb_http_answered(const fb_http_req_t *r) {
    return r->answered;
}

typedef struct {
    fb_http_field_cb field;
    void *ud;
    bool refused;
} s_form_t;

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size) {
    (void)kind;
    (void)transfer_encoding;
    s_form_t *f = cls;
    if (f->field(f->ud, key, filename, content_type, data, (size_t)off, size) != 0) {
        f->refused = true;
        return MHD_NO;
    }
    return MHD_YES;
}

int fb_http_form(fb_http_req_t *r, fb_http_field_cb field, void *ud) {
    s_form_t f = {field, ud, false};
    struct MHD_PostProcessor *pp = MHD_create_post_processor(r->conn, 64 * 1024, on_field, &f);
    if (!pp)
        return FB_EINVAL; /* not a form content type */
    enum MHD_Result ok = MHD_post_process(pp, r->body ? r->body : "", r->len);
    enum MHD_Result done = MHD_destroy_post_processor(pp);
    return (ok == MHD_YES && done == MHD_YES && !f.refused) ? 0 : FB_EINVAL;
}

unsigned fb_http_status(const fb_http_req_t *r) {
    return r->answered ? r->status : 0;
}

int fb_http_respond(fb_http_req_t *r, unsigned status, const char *content_type, const char *body,
                    size_t len) {
    if (r->answered)
        return FB_EINVAL;
    r->response = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r->response)
        return FB_ENOMEM;
    MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    r->status = status;
    r->answered = true;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        uv_timer_start(&r->srv->timer, on_timer, 0, 0);
    }
    return 0;
}

int fb_http_add_header(fb_http_req_t *r, const char *name, const char *value) {
    if (!r->answered || !r->response)
        return FB_EINVAL;
    return MHD_add_response_header(r->response, name, value) == MHD_YES ? 0 : FB_ENOMEM;
}

int fb_http_respond_json(fb_http_req_t *r, unsigned status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    if (!s)
        return fb_http_respond(r, 500, "application/json", oom, sizeof oom - 1);
    int rc = fb_http_respond(r, status, "application/json; charset=utf-8", s, strlen(s));
    free(s);
    return rc;
}

int fb_http_error(fb_http_req_t *r, unsigned status, const char *code, const char *field,
                  const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A message cut in the middle of a character, or quoting a parser's view
     * of broken input, must still be text: keep its well-formed prefix. */
    msg[fb_utf8_valid_prefix(msg, strlen(msg))] = '\0';
    json_t *err = json_pack("{s:s,s:s}", "code", code, "message", msg);
    if (err && field)
        json_object_set_new(err, "field", json_string(field));
    return fb_http_respond_json(r, status, json_pack("{s:o}", "error", err));
}
