/* fb_bus.h — fenbo's messages on ZeroMQ.
 *
 *   intake → dispatcher (DEALER → ROUTER):  "FB1" "PET" seq(8, big-endian) petition-json
 *   dispatcher → intake (ROUTER → DEALER):  "FB1" "ACK" seq seq …
 *   dispatcher → workers (PUB → SUB):       department-code "FB1" "ASG" assignment-json
 *
 * The version frame comes first after the routing id or topic, so that a peer
 * speaking another version is recognised and dropped, never misread. */
#ifndef FB_BUS_H
#define FB_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define FB_BUS_VERSION    "FB1"
#define FB_BUS_MAX_FRAMES 1100

typedef struct fb_bus_msg {
    zmq_msg_t frames[FB_BUS_MAX_FRAMES];
    int n;
    bool truncated; /* more frames arrived than fit; the rest were dropped */
} fb_bus_msg_t;

/* Creates a socket of type with fenbo's options: high-water marks, largest
 * message, TCP keepalive, heartbeats on DEALER/ROUTER, no linger beyond 1 s;
 * ROUTER_MANDATORY on ROUTERs.
 * Returns NULL (errno set) on failure. */
void *fb_bus_socket(void *ctx, int type, int hwm, int maxmsgsize);

/* Receives one whole multi-part message (non-blocking when flags has
 * ZMQ_DONTWAIT). Returns 0, FB_EAGAIN or FB_EIO. Close with fb_bus_msg_close. */
int fb_bus_recv(void *sock, fb_bus_msg_t *m, int flags);
void fb_bus_msg_close(fb_bus_msg_t *m);
/* Frame i as bytes; NULL when i is out of range. */
const void *fb_bus_frame(const fb_bus_msg_t *m, int i, size_t *len);
/* True when frame i equals the NUL-terminated s. */
bool fb_bus_frame_is(const fb_bus_msg_t *m, int i, const char *s);

void fb_bus_put_seq(uint64_t seq, unsigned char out[8]);
bool fb_bus_get_seq(const fb_bus_msg_t *m, int i, uint64_t *seq);

/* Connects sock to every endpoint of a comma-separated list: an intake's
 * DEALER spreads petitions over several dispatchers (and resends to another
 * when one is down), a worker's SUB hears all of them. */
int fb_bus_connect_all(void *sock, const char *endpoints);

/* Sends n frames as one message. Returns 0, FB_EAGAIN (queue full with
 * ZMQ_DONTWAIT) or FB_EIO. */
int fb_bus_sendv(void *sock, const void *const *data, const size_t *lens, int n, int flags);

/* CURVE (encryption and authentication of the bus). Keys are Z85 text, as
 * `fenboctl keygen` prints them. */

/* Makes sock a CURVE server with secret_key, whose peers the ZAP handler
 * (domain "fenbo") must admit. libzmq admits every CURVE peer when no ZAP
 * handler is bound, so a daemon binds its handler (fb_zap_start) before its
 * sockets and refuses to start without it. */
int fb_bus_curve_server(void *sock, const char *secret_key);
/* Makes sock a CURVE client of the server with server_public. */
int fb_bus_curve_client(void *sock, const char *server_public, const char *public_key,
                        const char *secret_key);

/* Applies [bus] curve settings of cfg to a client socket (intake's DEALER,
 * a worker's SUB); a no-op when curve = 0. FB_EINVAL for missing keys. */
struct fb_config;
int fb_bus_client_security(void *sock, const struct fb_config *cfg);

/* The ZAP handler (RFC 27): a REP socket on inproc://zeromq.zap.01 in ctx that
 * admits CURVE peers whose public key is in allowed (comma-separated Z85)
 * and refuses everything else. The owner polls fb_zap_socket() and calls
 * fb_zap_handle() when it is readable. */
typedef struct fb_zap fb_zap_t;
int fb_zap_start(void *ctx, const char *allowed, fb_zap_t **out);
void *fb_zap_socket(fb_zap_t *z);
void fb_zap_handle(fb_zap_t *z);
void fb_zap_stop(fb_zap_t **z);

#endif
