/* fb_bus.c — framing and socket options of fenbo's bus. */
#include "fb_bus.h"
#include "fb_common.h"

#include "fb_config.h"
#include "fb_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *fb_bus_socket(void *ctx, int type, int hwm, int maxmsgsize) {
    void *s = zmq_socket(ctx, type);
    if (!s)
        return NULL;
    int linger = 1000, ivl = 2000, ttl = 10000, tmo = 10000, one = 1;
    int64_t max = maxmsgsize;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
    /* Heartbeats find a dead intake or dispatcher in seconds. Not on PUB/SUB:
     * libzmq 4.3 asserts (stream_engine_base.cpp, !_io_error) when a heartbeat
     * fires on a SUB connection that failed while its queue was full
     * (zeromq/libzmq#4841); TCP keepalive covers those. */
    if (type == ZMQ_DEALER || type == ZMQ_ROUTER) {
        zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
        zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
    }
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    /* An intake queues petitions only to dispatchers it is connected to, not
     * to one that is down: they wait in the spool instead, and go to a live
     * dispatcher when there is one. */
    if (type == ZMQ_DEALER)
        zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    return s;
}

int fb_bus_recv(void *sock, fb_bus_msg_t *m, int flags) {
    m->n = 0;
    m->truncated = false;
    for (;;) {
        zmq_msg_t scratch, *f = m->n < FB_BUS_MAX_FRAMES ? &m->frames[m->n] : &scratch;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, m->n == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(f);
            fb_bus_msg_close(m);
            return e == EAGAIN ? FB_EAGAIN : FB_EIO;
        }
        bool more = zmq_msg_more(f);
        if (f == &scratch) {
            zmq_msg_close(f);
            m->truncated = true;
        } else {
            m->n++;
        }
        if (!more)
            return 0;
    }
}

void fb_bus_msg_close(fb_bus_msg_t *m) {
    for (int i = 0; i < m->n; i++)
        zmq_msg_close(&m->frames[i]);
    m->n = 0;
}

const void *fb_bus_frame(const fb_bus_msg_t *m, int i, size_t *len) {
    if (i < 0 || i >= m->n)
        return NULL;
    *len = zmq_msg_size((zmq_msg_t *)&m->frames[i]);
    return zmq_msg_data((zmq_msg_t *)&m->frames[i]);
}

bool fb_bus_frame_is(const fb_bus_msg_t *m, int i, const char *s) {
    size_t len = 0;
    const void *d = fb_bus_frame(m, i, &len);
    return d && len == strlen(s) && memcmp(d, s, len) == 0;
}

void fb_bus_put_seq(uint64_t seq, unsigned char out[8]) {
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(seq & 0xff);
        seq >>= 8;
    }
}

bool fb_bus_get_seq(const fb_bus_msg_t *m, int i, uint64_t *seq) {
    size_t len;
    const unsigned char *d = fb_bus_frame(m, i, &len);
    if (!d || len != 8)
        return false;
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = (v << 8) | d[k];
    *seq = v;
    return true;
}

int fb_bus_connect_all(void *sock, const char *endpoints) {
    char *copy = strdup(endpoints), *save = NULL;
    int rc = copy ? 0 : FB_ENOMEM, n = 0;
    for (char *e = copy ? strtok_r(copy, ", ", &save) : NULL; e && rc == 0;
         e = strtok_r(NULL, ", ", &save), n++)
        if (zmq_connect(sock, e) != 0)
            rc = FB_EINVAL;
    free(copy);
    return rc ? rc : n ? 0 : FB_EINVAL;
}

int fb_bus_sendv(void *sock, const void *const *data, const size_t *lens, int n, int flags) {
    for (int i = 0; i < n; i++) {
        int f = flags | (i + 1 < n ? ZMQ_SNDMORE : 0);
        if (zmq_send(sock, data[i], lens[i], f) < 0) {
            /* ZeroMQ queues a message atomically: a failure can only happen
             * on the first frame, so nothing partial was queued. */
            return errno == EAGAIN ? FB_EAGAIN : FB_EIO;
        }
    }
    return 0;
}

int fb_bus_curve_server(void *sock, const char *secret_key) {
    int one = 1;
    if (!secret_key || strlen(secret_key) != 40)
        return FB_EINVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "fenbo", 5) != 0)
        return FB_EINVAL;
    return 0;
}

int fb_bus_curve_client(void *sock, const char *server_public, const char *public_key,
                        const char *secret_key) {
    if (!server_public || !public_key || !secret_key || strlen(server_public) != 40 ||
        strlen(public_key) != 40 || strlen(secret_key) != 40)
        return FB_EINVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0)
        return FB_EINVAL;
    return 0;
}

int fb_bus_client_security(void *sock, const fb_config_t *cfg) {
    if (!cfg->bus_curve)
        return 0;
    int rc = fb_bus_curve_client(sock, cfg->bus_server_public, cfg->bus_client_public,
                                 cfg->bus_client_secret);
    if (rc)
        fb_log(FB_LOG_ERROR, "event=bus_curve_misconfigured need=\"[bus] server_public_key, "
                             "client_public_key and client_secret_key (40 Z85 characters each)\"");
    return rc;
}

struct fb_zap {
    void *rep;
    uint8_t (*keys)[32];
    size_t n;
};

int fb_zap_start(void *ctx, const char *allowed, fb_zap_t **out) {
    *out = NULL;
    fb_zap_t *z = calloc(1, sizeof *z);
    if (!z)
        return FB_ENOMEM;
    /* Count and decode the allowed keys. */
    size_t cap = 1;
    for (const char *p = allowed; p && *p; p++)
        cap += *p == ',';
    z->keys = calloc(cap, sizeof *z->keys);
    char *copy = allowed ? strdup(allowed) : NULL;
    char *save = NULL;
    for (char *k = copy ? strtok_r(copy, ", ", &save) : NULL; k; k = strtok_r(NULL, ", ", &save)) {
        if (strlen(k) != 40 || !zmq_z85_decode(z->keys[z->n], k)) {
            fb_log(FB_LOG_ERROR, "event=zap_bad_key key=%.8s…", k);
            free(copy);
            fb_zap_stop(&z);
            return FB_EINVAL;
        }
        z->n++;
    }
    free(copy);
    z->rep = zmq_socket(ctx, ZMQ_REP);
    if (!z->rep || zmq_bind(z->rep, "inproc://zeromq.zap.01") != 0) {
        fb_log(FB_LOG_ERROR, "event=zap_bind_failed error=\"%s\"", zmq_strerror(errno));
        fb_zap_stop(&z);
        return FB_EIO;
    }
    *out = z;
    return 0;
}

void *fb_zap_socket(fb_zap_t *z) {
    return z->rep;
}

static bool zap_admits(const fb_zap_t *z, const fb_bus_msg_t *m) {
    size_t len = 0;
    const void *key = fb_bus_frame(m, 6, &len);
    if (!fb_bus_frame_is(m, 2, "fenbo") || !fb_bus_frame_is(m, 5, "CURVE") || !key || len != 32)
        return false;
    for (size_t i = 0; i < z->n; i++)
        if (memcmp(z->keys[i], key, 32) == 0)
            return true;
    return false;
}

void fb_zap_handle(fb_zap_t *z) {
    fb_bus_msg_t m;
    while (fb_bus_recv(z->rep, &m, ZMQ_DONTWAIT) == 0) {
        /* version, request id, domain, address, identity, mechanism, credentials… */
        bool ok = m.n >= 6 && fb_bus_frame_is(&m, 0, "1.0") && zap_admits(z, &m);
        size_t idlen = 0, addrlen = 0;
        const void *id = fb_bus_frame(&m, 1, &idlen);
        const char *addr = fb_bus_frame(&m, 3, &addrlen);
        if (!ok)
            fb_log(FB_LOG_WARN, "event=bus_peer_refused address=%.*s", (int)(addr ? addrlen : 0),
                   addr ? addr : "");
        const void *frames[] = {
            "1.0", id ? id : "", ok ? "200" : "400", ok ? "OK" : "not an admitted key", "", ""};
        const size_t lens[] = {3, id ? idlen : 0, 3, ok ? 2 : 19, 0, 0};
        fb_bus_sendv(z->rep, frames, lens, 6, 0);
        fb_bus_msg_close(&m);
    }
}

void fb_zap_stop(fb_zap_t **zp) {
    fb_zap_t *z = *zp;
    if (!z)
        return;
    if (z->rep)
        zmq_close(z->rep);
    free(z->keys);
    free(z);
    *zp = NULL;
}
