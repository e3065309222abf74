/* fb_config.c — the one table of settings, and the inih-driven loader. */
#include "fb_config.h"
#include "fb_common.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_STR, T_DOUBLE } s_type_t;

typedef struct {
    const char *section;
    const char *name;
    s_type_t type;
    size_t offset;
    long min, max;
    const char *def;
    bool reloadable;
    const char *help;
} s_option_t;

#define OPT(sec, key, type, field, min, max, def, rel, help)                                       \
    { sec, key, type, offsetof(fb_config_t, field), min, max, def, rel, help }

static const s_option_t s_options[] = {
    OPT("general", "instance_id", T_INT, instance_id, 0, 999, "1", false,
        "number of this intake instance, part of every tracking number"),
    OPT("general", "data_dir", T_STR, data_dir, 0, 0, "var/data", false,
        "spool, token cache and photos live here"),
    OPT("general", "timezone", T_STR, timezone, 0, 0, "Asia/Shanghai", false,
        "the city's time zone for deadlines and the calendar"),
    OPT("general", "log_level", T_STR, log_level, 0, 0, "info", true, "debug|info|warn|error"),
    OPT("db", "conninfo", T_STR, db_conninfo, 0, 0, "dbname=fenbo", false,
        "libpq connection string"),
    OPT("bus", "petitions", T_STR, bus_petitions, 0, 0, "tcp://127.0.0.1:5555", false,
        "dispatcher ROUTER endpoint; intake and workers take a comma-separated list of "
        "several dispatchers"),
    OPT("bus", "assignments", T_STR, bus_assignments, 0, 0, "tcp://127.0.0.1:5556", false,
        "dispatcher PUB endpoint (workers subscribe; a list for several dispatchers)"),
    OPT("bus", "sndhwm", T_INT, bus_sndhwm, 100, 10000000, "2000", false,
        "high-water mark of the bus sockets, in messages; beyond it petitions wait in the "
        "spool, so it bounds the daemons' memory, not what intake accepts"),
    OPT("bus", "maxmsgsize", T_INT, bus_maxmsgsize, 4096, 64 << 20, "4194304", false,
        "largest bus message accepted, in bytes"),
    OPT("bus", "curve", T_INT, bus_curve, 0, 1, "0", false,
        "1: encrypt and authenticate the bus with CURVE (keys from fenboctl keygen)"),
    OPT("bus", "server_public_key", T_STR, bus_server_public, 0, 0, "", false,
        "the dispatcher's CURVE public key (Z85), known to every client"),
    OPT("bus", "server_secret_key", T_STR, bus_server_secret, 0, 0, "", false,
        "the dispatcher's CURVE secret key (Z85), on the dispatcher's host only"),
    OPT("bus", "client_public_key", T_STR, bus_client_public, 0, 0, "", false,
        "this intake's or worker's CURVE public key (Z85)"),
    OPT("bus", "client_secret_key", T_STR, bus_client_secret, 0, 0, "", false,
        "this intake's or worker's CURVE secret key (Z85)"),
    OPT("bus", "allowed_clients", T_STR, bus_allowed_clients, 0, 0, "", false,
        "public keys (Z85, comma-separated) the dispatcher's ZAP handler admits"),
    OPT("intake", "db_user", T_STR, intake_db_user, 0, 0, "fenbo_intake", false,
        "the role intake logs in as (overrides the user of [db] conninfo; empty: conninfo's), "
        "with only the privileges schema/0017_login_roles.sql grants it"),
    OPT("intake", "address", T_STR, intake_address, 0, 0, "127.0.0.1", false,
        "HTTP listen address"),
    OPT("intake", "port", T_INT, intake_port, 1, 65535, "12345", false, "HTTP listen port"),
    OPT("intake", "max_body", T_INT, intake_max_body, 1024, 64 << 20, "1048576", false,
        "largest request body, in bytes (413 beyond)"),
    OPT("intake", "max_upload", T_INT, intake_max_upload, 1024, 1 << 30, "50331648", false,
        "largest body of an upload with photos, in bytes (413 beyond)"),
    OPT("intake", "photo_max_bytes", T_INT, intake_photo_max_bytes, 1024, 64 << 20, "5242880",
        false, "largest photo accepted, in bytes"),
    OPT("intake", "max_connections", T_INT, intake_max_connections, 1, 100000, "4096", false,
        "open HTTP connections at most"),
    OPT("intake", "per_ip_connections", T_INT, intake_per_ip_connections, 0, 100000, "256", false,
        "open HTTP connections per client address (0 = no limit)"),
    OPT("intake", "rate_per_s", T_INT, intake_rate_per_s, 0, 1000000, "0", false,
        "requests per second per client address, beyond: 429 (0 = no limit; a hotline "
        "centre's gateway or a proxy is one address for many)"),
    OPT("intake", "raw_retention_days", T_INT, intake_raw_retention_days, 0, 36500, "365", true,
        "days raw mail (data_dir/mail, the Maildir's cur/) and photos are kept, like personal "
        "data (0: forever)"),
    OPT("intake", "rate_burst", T_INT, intake_rate_burst, 0, 1000000, "0", false,
        "requests a client address may send at once before rate_per_s applies"),
    OPT("intake", "connection_timeout", T_INT, intake_connection_timeout, 1, 3600, "30", false,
        "seconds an idle connection is kept"),
    OPT("intake", "resend_ms", T_INT, intake_resend_ms, 10, 600000, "1000", true,
        "first resend of an unacknowledged petition, in ms (doubles each time)"),
    OPT("intake", "resend_max_ms", T_INT, intake_resend_max_ms, 10, 3600000, "8000", true,
        "longest wait between resends, in ms"),
    OPT("intake", "token_refresh_s", T_INT, intake_token_refresh_s, 1, 86400, "30", true,
        "how often intake copies the token table from PostgreSQL"),
    OPT("intake", "idempotency_days", T_INT, intake_idempotency_days, 1, 365, "7", false,
        "how long a retry with the same key gets the first answer"),
    OPT("intake", "follow_up_key_file", T_STR, intake_follow_up_key_file, 0, 0, "", false,
        "key of the residents' follow-up codes, 64 hex digits, the same for every intake "
        "(empty: data_dir/follow_up.key, made at first start)"),
    OPT("intake", "proof_free_failures", T_INT, intake_proof_free_failures, 1, 1000, "5", false,
        "wrong follow-up codes per tracking number before each further one waits (429)"),
    OPT("intake", "proof_client_free_failures", T_INT, intake_proof_client_free_failures, 1, 100000,
        "20", false, "wrong follow-up codes per client address before it waits (429)"),
    OPT("intake", "proof_max_wait_s", T_INT, intake_proof_max_wait_s, 1, 86400, "3600", false,
        "longest wait after wrong follow-up codes (it doubles with each failure)"),
    OPT("intake", "spool_segment_bytes", T_INT, spool_segment_bytes, 4096, 1 << 30, "16777216",
        false, "size at which the spool starts a new segment file"),
    OPT("mailbox", "maildir", T_STR, maildir, 0, 0, "", false,
        "Maildir watched for petitions by e-mail (empty: no mailbox channel)"),
    OPT("mailbox", "scan_s", T_INT, maildir_scan_s, 1, 3600, "5", true,
        "how often new/ is scanned besides the file-system events"),
    OPT("open311", "jurisdiction_id", T_STR, open311_jurisdiction, 0, 0, "binjiang.example.gov.cn",
        false, "the Open311 jurisdiction_id this server answers for"),
    OPT("open311", "public_url", T_STR, open311_public_url, 0, 0, "", false,
        "the server's address as clients reach it, e.g. https://12345.example.gov.cn (behind a "
        "TLS proxy); empty: from the request's Host and X-Forwarded-Proto"),
    OPT("dispatcher", "db_user", T_STR, dispatch_db_user, 0, 0, "fenbo_dispatcher", false,
        "the role the dispatcher logs in as (overrides the user of [db] conninfo; empty: "
        "conninfo's)"),
    OPT("dispatcher", "batch_max", T_INT, dispatch_batch_max, 1, 100000, "1000", true,
        "petitions per transaction at most"),
    OPT("dispatcher", "batch_wait_ms", T_INT, dispatch_batch_wait_ms, 0, 10000, "0", true,
        "how long a batch waits for more petitions, in ms (0: a batch is what arrived during "
        "the last commit)"),
    OPT("dispatcher", "dedup_radius_m", T_INT, dedup_radius_m, 0, 10000, "50", true,
        "a new petition this close to an open case of its category may join it (0: never)"),
    OPT("dispatcher", "dedup_window_h", T_INT, dedup_window_h, 1, 24 * 365, "24", true,
        "how recent that case must be, in hours"),
    OPT("dispatcher", "dedup_similarity_pct", T_INT, dedup_similarity_pct, 0, 100, "20", true,
        "pg_trgm similarity of the texts needed, in percent (on characters)"),
    OPT("dispatcher", "classify_min_confidence", T_DOUBLE, classify_min_confidence, 0, 1, "0.15",
        true,
        "a petition without a category (or with a coarse one) takes the classifier's best "
        "category when its confidence is at least this (0..1); below, the rules decide on what "
        "was given"),
    OPT("worker", "address", T_STR, worker_address, 0, 0, "127.0.0.1", false,
        "HTTP listen address"),
    OPT("worker", "port", T_INT, worker_port, 1, 65535, "12346", false, "HTTP listen port"),
    OPT("worker", "max_connections", T_INT, worker_max_connections, 1, 100000, "4096", false,
        "open HTTP connections at most"),
    OPT("worker", "per_ip_connections", T_INT, worker_per_ip_connections, 0, 100000, "64", false,
        "open HTTP connections per client address (0 = no limit): a client holding many slow "
        "connections cannot take the others' places"),
    OPT("worker", "connection_timeout", T_INT, worker_connection_timeout, 1, 3600, "15", false,
        "seconds an idle or stalled connection is kept"),
    OPT("worker", "rate_per_s", T_INT, worker_rate_per_s, 0, 1000000, "0", false,
        "requests per second per client address, beyond: 429 (0 = no limit)"),
    OPT("worker", "stats_connections", T_INT, worker_stats_connections, 1, 64, "2", false,
        "connections of the worker's own for statistics queries, run off its loop so that a "
        "slow one never stalls a department's request"),
    OPT("worker", "rate_burst", T_INT, worker_rate_burst, 0, 1000000, "0", false,
        "requests a client address may send at once before rate_per_s applies"),
    OPT("worker", "catchup_s", T_INT, worker_catchup_s, 1, 3600, "5", true,
        "how often a worker looks in PostgreSQL for what the bus did not bring"),
    OPT("worker", "db_user", T_STR, worker_db_user, 0, 0, "fenbo_worker", false,
        "the role a worker logs in as (overrides the user of [db] conninfo; empty: conninfo's); "
        "a member of db_role, so row-level security applies from the first statement"),
    OPT("worker", "db_role", T_STR, worker_db_role, 0, 0, "fenbo_app", false,
        "the role a worker's queries run as (SET ROLE after connecting), under row-level "
        "security; empty: the login role itself"),
    OPT("worker", "timers_s", T_INT, worker_timers_s, 1, 3600, "2", true,
        "how often a worker sweeps for due timers: reminders, overdue, 督办, callbacks, hotspots"),
    OPT("worker", "reminder_accept_min", T_INT, worker_reminder_accept_min, 0, 10080, "30", true,
        "remind the department this many minutes before the sign-for deadline (0: never)"),
    OPT("worker", "reminder_reply_min", T_INT, worker_reminder_reply_min, 0, 43200, "240", true,
        "remind the department this many minutes before the reply deadline (0: never)"),
    OPT("worker", "escalate_after_h", T_INT, worker_escalate_after_h, 0, 720, "4", true,
        "escalate (督办) to the supervisors this many hours after a deadline passed"),
    OPT("worker", "callback_days", T_INT, worker_callback_days, 1, 60, "3", true,
        "working days after the callback is due until an unrated case closes as not rated"),
    OPT("worker", "hotspot_threshold", T_INT, worker_hotspot_threshold, 0, 100000, "5", true,
        "petitions of one category in one community within the window that raise an alert "
        "(0: no hotspot alerts)"),
    OPT("worker", "hotspot_window_min", T_INT, worker_hotspot_window_min, 1, 10080, "120", true,
        "the hotspot window, in minutes"),
    OPT("worker", "hotspot_every_s", T_INT, worker_hotspot_every_s, 1, 3600, "60", true,
        "how often a worker looks for new hotspots, in seconds; each look reads the window's "
        "petitions, so it costs more the busier the hotline"),
    OPT("worker", "retention_days", T_INT, worker_retention_days, 0, 36500, "365", true,
        "days after a case closed until its residents' names, phones and identifiers are "
        "anonymised (0: never)"),
    OPT("worker", "classify_retrain_every_h", T_INT, classify_retrain_every_h, 0, 8760, "24", true,
        "retrain the classifier this often, in hours, when operators added examples since the "
        "last model (0: never; `fenboctl classify train` on demand)"),
    OPT("grid", "verify_hours", T_INT, grid_verify_hours, 1, 720, "24", true,
        "working hours a grid worker has to verify a department's \"resolved\" on site (核查); "
        "overdue verifications escalate to the street office"),
};

static void set_str(char **dst, const char *v) {
    char *copy = strdup(v);
    if (!copy)
        return;
    free(*dst);
    *dst = copy;
}

void fb_config_defaults(fb_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < FB_ARRAY_LEN(s_options); i++) {
        const s_option_t *o = &s_options[i];
        char *p = (char *)cfg + o->offset;
        if (o->type == T_INT)
            *(int *)p = atoi(o->def);
        else if (o->type == T_DOUBLE)
            *(double *)p = strtod(o->def, NULL);
        else
            set_str((char **)p, o->def);
    }
}

typedef struct {
    fb_config_t *cfg;
    char *err;
    size_t errlen;
    bool failed;
} s_load_t;

static int on_value(void *ud, const char *section, const char *name, const char *value) {
    s_load_t *ld = ud;
    if (ld->failed)
        return 0; /* report the first mistake only */
    for (size_t i = 0; i < FB_ARRAY_LEN(s_options); i++) {
        const s_option_t *o = &s_options[i];
        if (strcmp(o->section, section) != 0 || strcmp(o->name, name) != 0)
            continue;
        char *p = (char *)ld->cfg + o->offset;
        if (o->type == T_STR) {
            set_str((char **)p, value);
            return 1;
        }
        char *end;
        errno = 0;
        if (o->type == T_DOUBLE) {
            double d = strtod(value, &end);
            if (errno || end == value || *end != '\0' || !(d >= (double)o->min) ||
                !(d <= (double)o->max)) {
                snprintf(ld->err, ld->errlen, "[%s] %s = '%s': expected a number in %ld..%ld",
                         section, name, value, o->min, o->max);
                ld->failed = true;
                return 0;
            }
            *(double *)p = d;
            return 1;
        }
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
            snprintf(ld->err, ld->errlen, "[%s] %s = '%s': expected a whole number in %ld..%ld",
                     section, name, value, o->min, o->max);
            ld->failed = true;
            return 0;
        }
        *(int *)p = (int)v;
        return 1;
    }
    snprintf(ld->err, ld->errlen, "[%s] %s: unknown setting", section, name);
    ld->failed = true;
    return 0;
}

int fb_config_load(fb_config_t *cfg, const char *path, char *err, size_t errlen) {
    s_load_t ld = {cfg, err, errlen, false};
    int rc = ini_parse(path, on_value, &ld);
    if (rc == -1) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return FB_EIO;
    }
    if (rc != 0) {
        if (!ld.failed)
            snprintf(err, errlen, "%s:%d: syntax error", path, rc);
        else {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s:%d: %s", path, rc, err);
            snprintf(err, errlen, "%s", tmp);
        }
        return FB_EINVAL;
    }
    return 0;
}

void fb_config_print(const fb_config_t *cfg, FILE *out) {
    const char *section = "";
    for (size_t i = 0; i < FB_ARRAY_LEN(s_options); i++) {
        const s_option_t *o = &s_options[i];
        if (strcmp(section, o->section) != 0) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", o->section);
            section = o->section;
        }
        const char *p = (const char *)cfg + o->offset;
        fprintf(out, "; %s%s\n", o->help, o->reloadable ? " (SIGHUP reloads)" : "");
        if (o->type == T_INT)
            fprintf(out, "%s = %d  ; %ld..%ld\n", o->name, *(const int *)p, o->min, o->max);
        else if (o->type == T_DOUBLE)
            fprintf(out, "%s = %g  ; %ld..%ld\n", o->name, *(const double *)p, o->min, o->max);
        else if (strstr(o->name, "secret") && **(char *const *)p)
            fprintf(out, "%s = (hidden)\n", o->name); /* keys stay off screens and logs */
        else
            fprintf(out, "%s = %s\n", o->name, *(char *const *)p);
    }
}

void fb_config_free(fb_config_t *cfg) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_options); i++) {
        if (s_options[i].type == T_STR) {
            char **p = (char **)((char *)cfg + s_options[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

void fb_config_path(const fb_config_t *cfg, const char *name, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%s", cfg->data_dir, name);
}
