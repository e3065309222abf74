/* intake.h — the core of fenbo-intake that every channel adapter uses:
 * submitting a petition (spooled, group-fsync'd, answered, delivered to the
 * dispatcher until acknowledged), checking tokens, and reading PostgreSQL
 * off the loop thread for the read-only endpoints. */
#ifndef INTAKE_INTAKE_H
#define INTAKE_INTAKE_H

#include "directory.h"
#include "fb_config.h"
#include "fb_followup.h"
#include "fb_http.h"
#include "fb_map.h"
#include "fb_petition.h"
#include "fb_spool.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Called once the petition is durable (status 202, or 200 for a retry of a
 * key seen before, with the first tracking number) or could not be stored
 * (503, tracking_no NULL). */
typedef void (*intake_done_cb)(void *ud, unsigned status, const char *tracking_no);

/* What a retry with the same idempotency key gets back. */
typedef struct {
    char tracking_no[40];
    uint64_t idem_seq; /* record in the idempotency journal */
    bool durable;      /* synced: a retry may be answered at once */
} s_idem_t;

/* Oldest first, for expiry. */
typedef struct {
    uint64_t seq;
    int64_t at_us;
    char *key;
} s_idem_age_t;

/* An answer waiting for the next group fsync. */
typedef struct {
    intake_done_cb cb;
    void *ud;
    unsigned status;
    s_idem_t *idem;
} s_pending_t;

/* A spooled petition the dispatcher has not acknowledged yet. */
typedef struct {
    uint64_t seq;
    uint64_t next_ms; /* when to consider resending it */
    uint64_t sent_ms; /* when it was last sent; 0: never left intake */
    uint32_t backoff_ms;
    bool acked;
} s_unacked_t;

typedef struct {
    uint64_t requests[6]; /* by status class 1xx..5xx, [0] unused */
    uint64_t accepted, duplicates, rejected, fsyncs, fsync_batch_max, acks, sends, resends;
    uint64_t proof_failures, proof_limited;
} s_metrics_t;

typedef struct {
    fb_config_t cfg;
    const char *config_path;
    uv_loop_t *loop;
    fb_http_t *http;
    fb_spool_t *spool; /* petitions */
    fb_spool_t *idem;  /* idempotency journal: key → tracking number */
    fb_map_t *keys;    /* "channel:key" → s_idem_t */
    s_idem_age_t *ages;
    size_t ages_head, ages_n, ages_cap;
    intake_directory_t *dir;
    void *zctx, *dealer;
    uv_poll_t zpoll;
    uv_check_t flush;
    uv_timer_t resend, expire;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t drain; /* the grace period between SIGTERM and the stop */
    s_pending_t *pending;
    size_t npending, cappending;
    uint64_t *tosend; /* seqs synced in this round, to send after answering */
    size_t ntosend, captosend;
    s_unacked_t *unacked;
    uint64_t last_ack_ms;        /* when the last acknowledgement arrived */
    uint64_t last_acked_sent_ms; /* the latest send time among acknowledged petitions */
    size_t un_head, un_n, un_cap;
    int tracking_day;
    unsigned tracking_seq;
    s_metrics_t m;
    bool stopping;
    struct intake_mailbox *mailbox; /* mailbox.c's state, NULL when off */
    fb_followup_key_t follow_up_key;
    fb_map_t *proof_failures; /* "t:<tracking_no>" / "c:<address>" → failures (followup.c) */
} intake_t;

/* Opens the spool and the idempotency journal under data_dir, replays what
 * is unacknowledged, connects the DEALER socket and starts the timers.
 * in->cfg and in->loop must be set. */
int intake_open(intake_t *in);
/* Answers what waits for the fsync and closes the loop handles (the spool
 * keeps what the dispatcher has not acknowledged). */
void intake_close_handles(intake_t *in);
/* Frees what remains after the loop ended. */
void intake_free(intake_t *in);

/* Takes p (channel and idem_key set; the rest as the adapter made it):
 * answers a retry of a known key with the first answer, else gives p a
 * tracking number, spools it and calls done after the next group fsync. */
void intake_submit(intake_t *in, fb_petition_t *p, intake_done_cb done, void *ud);
/* intake_submit for an HTTP request: answers {"tracking_no"} with 202/200. */
void intake_submit_http(intake_t *in, fb_http_req_t *req, fb_petition_t *p);

/* followup.c: the residents' follow-up codes and the limit on wrong ones. */
/* Loads (or makes) the follow-up key and the failure table. */
int intake_followup_open(intake_t *in);
void intake_followup_free(intake_t *in);
/* The follow-up code of tracking_no, as every channel hands it to the
 * resident (the 202/200 answer). */
void intake_follow_up_code(const intake_t *in, const char *tracking_no,
                           char out[FB_FOLLOWUP_CODE_LEN + 1]);
/* Before checking a proof for tracking_no from req's client: when either is
 * waiting after wrong codes, answers 429 with Retry-After and returns false. */
bool intake_proof_allowed(intake_t *in, fb_http_req_t *req, const char *tracking_no);
/* Checks proof against tracking_no's code; a wrong one is counted, logged
 * and makes the tracking number and the client wait. Empty proof: false,
 * not counted. */
bool intake_proof_check(intake_t *in, fb_http_req_t *req, const char *tracking_no,
                        const char *proof);

/* Checks that the request's bearer token is known; answers 401 itself and
 * returns NULL, else returns the token's role. */
const char *intake_authenticate(intake_t *in, fb_http_req_t *req);
/* Checks the request's bearer token against roles (NULL-terminated); answers
 * 401/403 itself and returns NULL, else returns the token's role. */
const char *intake_authorize(intake_t *in, fb_http_req_t *req, const char *const *roles);

/* Runs sql with params on libuv's thread pool (one connection per pool
 * thread), then calls cb on the loop thread with the result, or with NULL
 * when PostgreSQL is unavailable. The result is cleared after cb returns. sql
 * must outlive the call (a literal); params are copied. */
typedef void (*intake_db_cb)(void *ud, PGresult *res);
int intake_db_query(intake_t *in, const char *sql, int nparams, const char *const *params,
                    intake_db_cb cb, void *ud);

/* Deletes raw mail and photos older than [intake] raw_retention_days
 * (retention.c); run hourly. */
void intake_retention_sweep(intake_t *in);

/* Channel adapters' HTTP entry points (one file each). */
void intake_hotline_http(intake_t *in, fb_http_req_t *req);   /* hotline.c */
void intake_miniapp_http(intake_t *in, fb_http_req_t *req);   /* miniapp.c */
void intake_grid_http(intake_t *in, fb_http_req_t *req);      /* miniapp.c: grid workers */
void intake_open311_http(intake_t *in, fb_http_req_t *req);   /* open311.c */
void intake_petitions_http(intake_t *in, fb_http_req_t *req); /* petitions.c */

/* The mailbox channel (mailbox.c): watches [mailbox] maildir when set. */
int intake_mailbox_start(intake_t *in);
void intake_mailbox_stop(intake_t *in);

#endif
