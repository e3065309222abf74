/* feed.h — the assignment events the dispatchers publish, as the worker
 * receives them: a ZeroMQ SUB socket subscribed to every topic, watched by a
 * uv_poll_t on its ZMQ_FD.
 *
 *   topic (department code or "@manual")  "FB1"  "ASG"  assignment-json
 *
 * Messages of any other shape or version are logged (event=bus_bad_message)
 * and dropped. Losing one is harmless: the catch-up pass finds the
 * assignment in PostgreSQL. Events are delivered together, in one
 * transaction (delivery.h): those read in one loop turn, and under load
 * those of up to 20 ms (a few hundred at most). */
#ifndef FB_FEED_H
#define FB_FEED_H

#include "fb_bus.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fb_worker fb_worker_t;
typedef struct fb_feed fb_feed_t;

/* One well-formed assignment event. The strings are borrowed from doc,
 * which fb_feed_event_clear() releases. */
typedef struct fb_feed_event {
    json_t *doc;
    int64_t case_id;
    const char *tracking_no;
    const char *department; /* NULL for a case in the manual queue */
    const char *status;     /* "dispatched", "manual" or "merged" */
    size_t assists;
} fb_feed_event_t;

/* Checks one received message and reads it into ev. Returns 0, or FB_EINVAL
 * with the reason (for the log) in why. Pure: no I/O. */
int fb_feed_parse(const fb_bus_msg_t *m, fb_feed_event_t *ev, char *why, size_t whylen);
void fb_feed_event_clear(fb_feed_event_t *ev);

/* Creates the SUB socket on zctx, connects it to the configured endpoint and
 * starts watching it on w's loop. *out is the caller's: fb_feed_stop(). */
int fb_feed_start(fb_worker_t *w, void *zctx, fb_feed_t **out);
/* Stops watching, closes the loop handles and the socket; the memory is
 * freed once the handles have closed. Sets *f to NULL. */
void fb_feed_stop(fb_feed_t **f);

#endif
