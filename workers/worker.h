/* worker.h — the state of one fenbo-worker process, shared by its parts:
 * main.c (loop, signals, catch-up timer), feed.c (the assignment events on
 * the bus), api.c (the case API) and dblink.c (the PostgreSQL connection).
 * Everything runs on the one libuv loop, so nothing here needs a lock. */
#ifndef FB_WORKER_H
#define FB_WORKER_H

#include "dblink.h"
#include "fb_config.h"
#include "fb_http.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct fb_feed fb_feed_t;
typedef struct fb_timers fb_timers_t;   /* deadlines.h: SLA timers, callbacks, hotspots */
typedef struct fb_ratings fb_ratings_t; /* ratings.h: a rating reopens or closes its case */
/* retention.h: closed cases' personal data anonymised after retention_days */
typedef struct fb_retention fb_retention_t;
typedef struct fb_retrain fb_retrain_t; /* retrain.h: the classifier's schedule */

/* Counters behind GET /metrics. Only ever increased. */
typedef struct fb_worker_metrics {
    uint64_t requests[6];       /* by status class: [1] 1xx … [5] 5xx, [0] anything else */
    uint64_t assignment_events; /* well-formed assignment events off the bus */
    uint64_t bus_bad_messages;  /* dropped as malformed or of another version */
    uint64_t delivered_bus;     /* assignments marked delivered on a bus event */
    uint64_t delivered_catchup; /* … by the catch-up pass (the bus missed them) */
    uint64_t catchup_runs;      /* catch-up passes that reached the database */
} fb_worker_metrics_t;

typedef struct fb_worker {
    fb_config_t cfg;
    const char *config_path; /* borrowed from argv */
    uv_loop_t loop;
    fb_http_t *http;
    fb_feed_t *feed;
    fb_dblink_t *db;
    fb_timers_t *timers;
    fb_ratings_t *ratings;
    fb_retention_t *retention;
    fb_retrain_t *retrain;
    struct fb_dbpool *pool; /* dbpool.h: slow reads (statistics) off the loop */
    uv_timer_t catchup;
    uv_signal_t sigterm, sigint, sighup;
    bool stopping;
    fb_worker_metrics_t metrics;
} fb_worker_t;

/* Marks delivered every assignment that is still waiting, in batches, and
 * counts them. Called by the catch-up timer and when the database returns. */
void fb_worker_catchup(fb_worker_t *w);

#endif
