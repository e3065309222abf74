/* fb_config.h — fenbo's configuration: one INI file (parsed by inih) read by
 * every daemon, described by one declarative table (fb_config.c) that drives
 * the parser, the defaults, the bounds, `--check-config` and `fenboctl config`. */
#ifndef FB_CONFIG_H
#define FB_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct fb_config {
    /* [general] */
    int instance_id;
    char *data_dir;
    char *timezone;
    char *log_level;
    /* [db] */
    char *db_conninfo;
    /* [bus] */
    char *bus_petitions;   /* dispatcher's ROUTER; intake connects its DEALER */
    char *bus_assignments; /* dispatcher's PUB; workers connect SUB */
    int bus_sndhwm;
    int bus_maxmsgsize;
    int bus_curve;
    char *bus_server_public;
    char *bus_server_secret;
    char *bus_client_public;
    char *bus_client_secret;
    char *bus_allowed_clients;
    /* [intake] */
    char *intake_address;
    int intake_port;
    int intake_max_body;
    int intake_max_upload;
    int intake_photo_max_bytes;
    int intake_max_connections;
    int intake_per_ip_connections;
    int intake_connection_timeout;
    int intake_rate_per_s, intake_rate_burst;
    int intake_raw_retention_days;
    int intake_resend_ms;
    int intake_resend_max_ms;
    int intake_token_refresh_s;
    int intake_idempotency_days;
    char *intake_follow_up_key_file;
    int intake_proof_free_failures;
    int intake_proof_client_free_failures;
    int intake_proof_max_wait_s;
    int spool_segment_bytes;
    /* [mailbox] */
    char *maildir;
    int maildir_scan_s;
    /* [open311] */
    char *open311_jurisdiction;
    char *open311_public_url;
    /* [dispatcher] */
    int dispatch_batch_max;
    int dispatch_batch_wait_ms;
    int dedup_radius_m;
    int dedup_window_h;
    int dedup_similarity_pct;
    double classify_min_confidence; /* the classifier's category is taken at or above it */
    /* [worker] */
    char *worker_address;
    int worker_port;
    int worker_max_connections, worker_per_ip_connections, worker_connection_timeout;
    int worker_rate_per_s, worker_rate_burst;
    int worker_stats_connections;
    int worker_catchup_s;
    char *intake_db_user, *dispatch_db_user, *worker_db_user; /* login roles (0017) */
    int grid_verify_hours;                                    /* [grid] verify_hours */
    char *worker_db_role; /* SET ROLE after connecting: row-level security (0007) */
    /* [worker] SLA timers, callbacks (回访) and hotspots (workers/deadlines.c…) */
    int worker_timers_s;
    int worker_reminder_accept_min;
    int worker_reminder_reply_min;
    int worker_escalate_after_h;
    int worker_callback_days;
    int worker_hotspot_threshold;
    int worker_hotspot_window_min;
    int worker_hotspot_every_s;
    /* [worker] personal data (workers/retention.c) */
    int worker_retention_days;
    /* [worker] retraining the classifier (workers/retrain.c); 0: never */
    int classify_retrain_every_h;
} fb_config_t;

/* Fills cfg with the defaults of the table. */
void fb_config_defaults(fb_config_t *cfg);
/* Loads path over the defaults. On error writes a message naming the line and
 * key to err and returns FB_EINVAL (unknown key, bad number, out of bounds) or
 * FB_EIO (cannot read). */
int fb_config_load(fb_config_t *cfg, const char *path, char *err, size_t errlen);
/* Prints every setting with its value, bounds and whether SIGHUP reloads it. */
void fb_config_print(const fb_config_t *cfg, FILE *out);
void fb_config_free(fb_config_t *cfg);
/* Resolves `name` under data_dir into out. */
void fb_config_path(const fb_config_t *cfg, const char *name, char *out, size_t outlen);

#endif
