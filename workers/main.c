/* main.c — fenbo-worker: owns every case after dispatch.
 *
 * One libuv loop carries the case API (fb_http), the assignment events of
 * the dispatchers (feed.c, a ZeroMQ SUB socket), a catch-up timer that
 * delivers from PostgreSQL whatever the bus did not bring, the database link
 * with its reconnect timer, and the signals: SIGTERM/SIGINT stop cleanly
 * (every handle closed, the loop closed), SIGHUP reloads the reloadable
 * settings (log level, catch-up interval).
 *
 *   fenbo-worker --config FILE [--check-config] */
#include "api.h"
#include "dblink.h"
#include "deadlines.h"
#include "delivery.h"
#include "fb_common.h"
#include "fb_config.h"
#include "fb_log.h"
#include "feed.h"
#include "ratings.h"
#include "retention.h"
#include "worker.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Assignments per catch-up statement, and statements per timer tick: a long
 * backlog is worked off over several loop turns, so HTTP stays responsive. */
#define CATCHUP_BATCH            500
#define CATCHUP_BATCHES_PER_TICK 20

#define HTTP_MAX_BODY        ((size_t)256 * 1024)
#define HTTP_MAX_CONNECTIONS 1024
#define HTTP_TIMEOUT_S       30

static void usage(FILE *out) {
    fprintf(out, "usage: fenbo-worker --config FILE [--check-config]\n"
                 "  --config FILE    the fenbo INI file\n"
                 "  --check-config   print the settings as read, check them, and exit\n");
}

/* glibc silently falls back to UTC for a zone it does not know, which would
 * shift every deadline by hours: refuse such a setting instead. */
static bool timezone_known(const char *tz) {
    if (!tz || !*tz)
        return false;
    if (tz[0] == ':')
        tz++;
    char path[PATH_MAX];
    if (tz[0] == '/') {
        snprintf(path, sizeof path, "%s", tz);
    } else {
        const char *dir = getenv("TZDIR");
        if (strstr(tz, ".."))
            return false;
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    }
    if (access(path, R_OK) == 0)
        return true;
    /* A POSIX rule such as "CST-8" names its offset itself. */
    return tz[0] != '/' && strpbrk(tz, "0123456789") != NULL;
}

/* Defaults, then the file, then the checks the table cannot express.
 * Returns 0, or FB_EINVAL/FB_EIO with the reason in err. */
static int config_read(const char *path, fb_config_t *cfg, char *err, size_t errlen) {
    fb_config_defaults(cfg);
    int rc = fb_config_load(cfg, path, err, errlen);
    if (rc != 0)
        return rc;
    if (fb_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "%s: [general] log_level = '%s': expected debug|info|warn|error",
                 path, cfg->log_level);
        return FB_EINVAL;
    }
    if (!timezone_known(cfg->timezone)) {
        snprintf(err, errlen, "%s: [general] timezone = '%s': unknown time zone", path,
                 cfg->timezone);
        return FB_EINVAL;
    }
    return 0;
}

static void on_catchup(uv_timer_t *t);

void fb_worker_catchup(fb_worker_t *w) {
    PGconn *db = fb_dblink_conn(w->db);
    if (!db || w->stopping || fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0)
        return;
    int total = 0, n = 0;
    bool more = false;
    for (int i = 0; i < CATCHUP_BATCHES_PER_TICK; i++) {
        if (fb_delivery_catchup_batch(db, CATCHUP_BATCH, &n) != 0) {
            fb_dblink_check(w->db);
            return;
        }
        total += n;
        more = n == CATCHUP_BATCH;
        if (!more)
            break;
    }
    w->metrics.catchup_runs++;
    w->metrics.delivered_catchup += (uint64_t)total;
    if (total > 0)
        fb_log(FB_LOG_INFO, "event=catchup delivered=%d more=%s", total, more ? "yes" : "no");
    else
        fb_log(FB_LOG_DEBUG, "event=catchup delivered=0");
    /* A backlog remains: come back soon, not in catchup_s. Not after 0 ms:
     * libuv runs a timer restarted at 0 from its own callback again before
     * polling for I/O, which would starve the HTTP API. */
    if (more)
        uv_timer_start(&w->catchup, on_catchup, 1, (uint64_t)w->cfg.worker_catchup_s * 1000);
}

static void on_catchup(uv_timer_t *t) {
    fb_worker_catchup(t->data);
}

/* The database is (back) up: whatever was published meanwhile is only in
 * PostgreSQL now, so catch up at once. */
static void on_db_up(void *ud) {
    fb_worker_t *w = ud;
    if (!w->stopping)
        uv_timer_start(&w->catchup, on_catchup, 0, (uint64_t)w->cfg.worker_catchup_s * 1000);
    if (!w->stopping)
        fb_timers_kick(w->timers);
    if (!w->stopping)
        fb_retention_kick(w->retention);
}

static void stop(fb_worker_t *w, const char *why) {
    if (w->stopping)
        return;
    w->stopping = true;
    fb_log(FB_LOG_INFO, "event=stopping reason=%s", why);
    fb_http_stop(&w->http);
    fb_feed_stop(&w->feed);
    fb_timers_stop(&w->timers);
    fb_ratings_stop(&w->ratings);
    fb_retention_stop(&w->retention);
    fb_dblink_destroy(&w->db);
    uv_timer_stop(&w->catchup);
    uv_close((uv_handle_t *)&w->catchup, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    uv_close((uv_handle_t *)&w->sighup, NULL);
}

/* SIGHUP: the reloadable settings take effect; the others need a restart,
 * which is said in the log rather than silently ignored. */
static void reload(fb_worker_t *w) {
    fb_config_t cfg;
    char err[512];
    if (config_read(w->config_path, &cfg, err, sizeof err) != 0) {
        fb_log(FB_LOG_WARN, "event=config_reload_failed error=\"%s\"", err);
        fb_config_free(&cfg);
        return;
    }
    fb_log_set_level((fb_log_level_t)fb_log_level_parse(cfg.log_level));
    if (cfg.worker_catchup_s != w->cfg.worker_catchup_s) {
        w->cfg.worker_catchup_s = cfg.worker_catchup_s;
        uv_timer_set_repeat(&w->catchup, (uint64_t)cfg.worker_catchup_s * 1000);
        uv_timer_again(&w->catchup);
    }
    fb_timers_reload(w->timers, &cfg);
    fb_retention_reload(w->retention, &cfg);
    char *tmp = w->cfg.log_level;
    w->cfg.log_level = cfg.log_level;
    cfg.log_level = tmp;
    const struct {
        const char *key;
        const char *was, *now;
    } fixed[] = {
        {"db.conninfo", w->cfg.db_conninfo, cfg.db_conninfo},
        {"bus.assignments", w->cfg.bus_assignments, cfg.bus_assignments},
        {"worker.address", w->cfg.worker_address, cfg.worker_address},
        {"general.timezone", w->cfg.timezone, cfg.timezone},
        {"worker.db_role", w->cfg.worker_db_role, cfg.worker_db_role},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(fixed); i++)
        if (strcmp(fixed[i].was, fixed[i].now) != 0)
            fb_log(FB_LOG_WARN, "event=config_needs_restart key=%s", fixed[i].key);
    if (cfg.worker_port != w->cfg.worker_port)
        fb_log(FB_LOG_WARN, "event=config_needs_restart key=worker.port");
    fb_log(FB_LOG_INFO, "event=config_reloaded log_level=%s catchup_s=%d", w->cfg.log_level,
           w->cfg.worker_catchup_s);
    fb_config_free(&cfg);
}

static void on_signal(uv_signal_t *s, int signum) {
    fb_worker_t *w = s->data;
    if (signum == SIGHUP)
        reload(w);
    else
        stop(w, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_leaked(uv_handle_t *h, void *arg) {
    (void)arg;
    fb_log(FB_LOG_ERROR, "event=handle_leaked type=%s closing=%d",
           uv_handle_type_name(uv_handle_get_type(h)), uv_is_closing(h));
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        usage(stderr);
        return 2;
    }

    fb_worker_t *w = calloc(1, sizeof *w);
    void *zctx = NULL;
    int status = 1;
    bool loop_ready = false;
    char err[512];
    if (!w) {
        fprintf(stderr, "fenbo-worker: out of memory\n");
        return 1;
    }
    w->config_path = config_path;
    if (config_read(config_path, &w->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fenbo-worker: invalid configuration: %s\n", err);
        goto fail;
    }
    if (check_only) {
        fb_config_print(&w->cfg, stdout);
        fprintf(stderr, "fenbo-worker: configuration %s is valid\n", config_path);
        status = 0;
        goto fail;
    }

    /* Deadlines, the calendar and log times are all in the city's zone. */
    if (setenv("TZ", w->cfg.timezone, 1) != 0) {
        fprintf(stderr, "fenbo-worker: cannot set TZ\n");
        goto fail;
    }
    tzset();
    fb_log_init("fenbo-worker", (fb_log_level_t)fb_log_level_parse(w->cfg.log_level));
    signal(SIGPIPE, SIG_IGN);

    if (uv_loop_init(&w->loop) != 0)
        goto fail;
    loop_ready = true;
    zctx = zmq_ctx_new();
    if (!zctx) {
        fb_log(FB_LOG_ERROR, "event=zmq_init_failed");
        goto fail;
    }
    if (fb_dblink_new(&w->loop, w->cfg.db_conninfo, w->cfg.timezone, on_db_up, w, &w->db) != 0 ||
        fb_dblink_set_role(w->db, w->cfg.worker_db_role) != 0)
        goto fail;
    uv_timer_init(&w->loop, &w->catchup);
    w->catchup.data = w;
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_init(&w->loop, &w->sigint);
    uv_signal_init(&w->loop, &w->sighup);
    w->sigterm.data = w->sigint.data = w->sighup.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_signal_start(&w->sighup, on_signal, SIGHUP);

    fb_http_opts_t http = {
        .address = w->cfg.worker_address,
        .port = w->cfg.worker_port,
        .max_body = HTTP_MAX_BODY,
        .max_connections = HTTP_MAX_CONNECTIONS,
        .timeout_s = HTTP_TIMEOUT_S,
    };
    if (fb_http_start(&w->loop, &http, fb_api_handle, w, &w->http) != 0 ||
        fb_feed_start(w, zctx, &w->feed) != 0 || fb_timers_start(w, &w->timers) != 0 ||
        fb_ratings_start(w, &w->ratings) != 0 || fb_retention_start(w, &w->retention) != 0) {
        stop(w, "startup_failed");
        uv_run(&w->loop, UV_RUN_DEFAULT);
        goto fail;
    }
    /* The first catch-up runs when the database link connects (on_db_up). */
    uv_timer_start(&w->catchup, on_catchup, (uint64_t)w->cfg.worker_catchup_s * 1000,
                   (uint64_t)w->cfg.worker_catchup_s * 1000);
    fb_log(FB_LOG_INFO, "event=started pid=%ld address=%s port=%d bus=%s catchup_s=%d timezone=%s",
           (long)getpid(), w->cfg.worker_address, fb_http_port(w->http), w->cfg.bus_assignments,
           w->cfg.worker_catchup_s, w->cfg.timezone);

    uv_run(&w->loop, UV_RUN_DEFAULT);
    status = 0;

fail:
    if (zctx)
        zmq_ctx_term(zctx);
    if (loop_ready) {
        int rc = uv_loop_close(&w->loop);
        if (rc != 0) {
            uv_walk(&w->loop, on_leaked, NULL);
            fb_log(FB_LOG_ERROR, "event=loop_close_failed error=\"%s\"", uv_strerror(rc));
            status = 1;
        }
    }
    if (status == 0 && !check_only)
        fb_log(FB_LOG_INFO, "event=stopped");
    fb_config_free(&w->cfg);
    free(w);
    return status;
}
