/* fb_bus.c — framing and socket options of fenbo's bus. */
#include "fb_bus.h"
#include "fb_common.h"

#include <errno.h>
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
    zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
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
    size_t len;
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
