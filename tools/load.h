/* load.h — what fenbo-load.c (the run) and load_report.c (its report)
 * share: the run's state and the printing helper. */
#ifndef TOOLS_LOAD_H
#define TOOLS_LOAD_H

#include "fb_bus.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define ORDERS_PATH     "/api/v1/hotline/orders"
#define EXIT_USAGE      2
#define RESP_MAX        8192
#define MAX_STATUSES    16
#define EXIT_INCOMPLETE 3 /* some petitions failed or were never published */

/* One petition of the run. Times are microseconds on the monotonic clock;
 * 0 means "not yet". */
typedef struct order {
    int64_t t_sched; /* due (open loop) or handed to libcurl (closed loop) */
    int64_t t_ack;   /* HTTP answer received */
    int64_t t_pub;   /* assignment event seen on the bus */
    int16_t http;    /* HTTP status; -1 transport error */
    uint8_t asg;     /* index into load_t.statuses of the event's status */
} order_t;

/* Tracking number → order, so that an assignment event finds its order
 * whichever of the HTTP answer and the event arrives first. */
typedef struct track {
    char *tracking_no; /* owned; NULL: empty bucket */
    long order;        /* index into orders; -1: event seen before the HTTP answer */
    int64_t t_pub;     /* for order -1: when the event arrived */
    uint8_t asg;       /* for order -1: the event's status */
} track_t;

typedef struct track_map {
    track_t *b;
    size_t cap; /* power of two */
    size_t len;
} track_map_t;

/* ----------------------------------------------------------- the run */

typedef struct slot {
    CURL *easy;
    long order; /* -1 when idle */
    char *body; /* the request body, owned; libcurl borrows it */
    char resp[RESP_MAX];
    size_t resp_len;
} slot_t;

typedef struct counts {
    long sent, acked, published, errors;
} counts_t;

typedef struct load {
    /* options */
    char *url;
    const char *token, *sub_endpoint, *prefix;
    long total, conns, warmup;
    long free_text_pct; /* orders sent without a category: the classifier's */
    double rate, drain_timeout_s, timeout_s;
    bool json;
    uint64_t seed;

    order_t *orders; /* warmup + total; the measured ones from index warmup */
    long norders;

    CURLM *multi;
    struct curl_slist *headers;
    slot_t *slots;
    long *idle; /* stack of idle slot indices */
    long nidle;

    void *zctx, *sub;
    fb_bus_msg_t *msg;
    track_map_t map;
    char statuses[MAX_STATUSES][24]; /* [0] is "?" (no status) */
    int nstatuses;

    /* the phase being sent: warmup [0, warmup) then measured [warmup, norders) */
    bool measuring;
    long next, phase_end;
    int64_t t0; /* phase start */
    int64_t t_last_ack, t_last_pub;
    long inflight;
    counts_t cnt[2]; /* [0] warmup, [1] measured */
    long http[600];  /* measured answers by status */
    long curl_err[CURL_LAST];
    long bad_answers; /* 2xx without a usable tracking_no */
    long collisions;  /* two orders answered with one tracking number */
    long connects;    /* new connections libcurl opened */
    long events;      /* ASG messages received */
    long bad_events;  /* messages on the bus that are not ASG events we understand */
    uint64_t rng;
} load_t;

/* A report that could not be written is a failed run: a script reading it
 * must not take a truncated report for a good one. */
extern bool load_output_failed;

/* fprintf that sets load_output_failed when it fails. */
void load_say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads the command line into L's options (defaults from the environment:
 * FENBO_INTAKE_URL, FENBO_TOKEN_HOTLINE); *prefix_buf holds a made-up order
 * prefix (the caller's). Prints usage and exits on --help; returns non-zero
 * on bad usage, having said why. */
int load_parse_args(load_t *L, int argc, char **argv, char **prefix_buf);

/* Prints the run's results (human-readable, and JSON with --json); returns
 * the exit status. */
int load_report(load_t *L, int64_t t_end);

#endif
