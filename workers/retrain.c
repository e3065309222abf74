/* retrain.c — the classifier's retraining schedule (see retrain.h). */
#include "retrain.h"
#include "dblink.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "worker.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define RETRAIN_LOOK_MS (10 * 60 * 1000)

struct fb_retrain {
    fb_worker_t *w;
    uv_timer_t timer;
    uv_process_t proc;
    bool running; /* proc is open */
    int open_handles;
    int every_h;
};

static const char s_due_sql[] =
    "WITH m AS (SELECT max(created_at) AS at FROM classifier_models)"
    " SELECT EXISTS (SELECT 1 FROM training_examples t, m"
    "  WHERE m.at IS NULL OR t.created_at > m.at)"
    " AND (SELECT m.at IS NULL OR m.at <= now() - make_interval(hours => $1::int) FROM m)";

int fb_retrain_due(PGconn *db, int every_h, bool *due) {
    char h[16];
    snprintf(h, sizeof h, "%d", every_h);
    const char *params[] = {h};
    *due = false;
    PGresult *r = PQexecParams(db, s_due_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fb_log(FB_LOG_WARN, "event=db_error op=retrain_due error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    *due = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return 0;
}

/* fenboctl next to this worker (installed side by side; in a build tree it
 * is ../tools/fenboctl), else the one on PATH. */
static void fenboctl_path(char *out, size_t outlen) {
    char exe[PATH_MAX];
    size_t len = sizeof exe;
    if (uv_exepath(exe, &len) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            const char *const tries[] = {"/fenboctl", "/../tools/fenboctl"};
            for (size_t i = 0; i < FB_ARRAY_LEN(tries); i++) {
                snprintf(out, outlen, "%s%s", exe, tries[i]);
                if (access(out, X_OK) == 0)
                    return;
            }
        }
    }
    snprintf(out, outlen, "fenboctl");
}

static void on_closed(uv_handle_t *h) {
    fb_retrain_t *r = h->data;
    if (--r->open_handles == 0)
        free(r);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signal) {
    fb_retrain_t *r = p->data;
    if (status == 0)
        fb_log(FB_LOG_INFO, "event=retrain_done pid=%d", p->pid);
    else
        fb_log(FB_LOG_WARN, "event=retrain_failed pid=%d exit=%lld signal=%d", p->pid,
               (long long)status, signal);
    r->running = false;
    uv_close((uv_handle_t *)p, on_closed);
}

static void on_timer(uv_timer_t *h) {
    fb_retrain_t *r = h->data;
    fb_worker_t *w = r->w;
    PGconn *db = fb_dblink_conn(w->db);
    bool due = false;
    if (r->running || r->every_h <= 0 || w->stopping || !db ||
        fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0)
        return;
    int rc = fb_retrain_due(db, r->every_h, &due);
    fb_dblink_context_clear(w->db);
    if (rc) {
        fb_dblink_check(w->db);
        return;
    }
    if (!due) {
        fb_log(FB_LOG_DEBUG, "event=retrain_skipped reason=no_new_examples_or_not_due");
        return;
    }
    char exe[PATH_MAX + 32];
    fenboctl_path(exe, sizeof exe);
    char *args[6];
    int n = 0;
    args[n++] = exe;
    if (w->config_path) {
        args[n++] = "--config";
        args[n++] = (char *)w->config_path;
    }
    args[n++] = "classify";
    args[n++] = "train";
    args[n] = NULL;
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t opts = {
        .exit_cb = on_exit_cb, .file = exe, .args = args, .stdio_count = 3, .stdio = stdio};
    r->proc.data = r;
    rc = uv_spawn(&w->loop, &r->proc, &opts);
    if (rc != 0) {
        fb_log(FB_LOG_WARN, "event=retrain_spawn_failed path=%s error=\"%s\"", exe,
               uv_strerror(rc));
        /* libuv wants even a failed spawn's handle closed. */
        r->open_handles++;
        uv_close((uv_handle_t *)&r->proc, on_closed);
        return;
    }
    r->running = true;
    r->open_handles++;
    fb_log(FB_LOG_INFO, "event=retrain_started pid=%d every_h=%d", r->proc.pid, r->every_h);
}

int fb_retrain_start(fb_worker_t *w, fb_retrain_t **out) {
    fb_retrain_t *r = calloc(1, sizeof *r);
    if (!r)
        return FB_ENOMEM;
    r->w = w;
    r->every_h = w->cfg.classify_retrain_every_h;
    uv_timer_init(&w->loop, &r->timer);
    r->timer.data = r;
    r->open_handles = 1;
    uv_timer_start(&r->timer, on_timer, RETRAIN_LOOK_MS, RETRAIN_LOOK_MS);
    fb_log(FB_LOG_INFO, "event=retrain_schedule every_h=%d", r->every_h);
    *out = r;
    return 0;
}

void fb_retrain_stop(fb_retrain_t **r) {
    if (!*r)
        return;
    uv_timer_stop(&(*r)->timer);
    uv_close((uv_handle_t *)&(*r)->timer, on_closed);
    /* A training still running would hold the worker's exit up for minutes:
     * it is stopped (nothing is stored half) and the next round retrains.
     * Its handle closes in on_exit_cb. */
    if ((*r)->running)
        uv_process_kill(&(*r)->proc, SIGTERM);
    *r = NULL;
}

void fb_retrain_reload(fb_retrain_t *r, const fb_config_t *cfg) {
    if (!r)
        return;
    if (cfg->classify_retrain_every_h != r->every_h)
        fb_log(FB_LOG_INFO, "event=retrain_reloaded every_h=%d was=%d",
               cfg->classify_retrain_every_h, r->every_h);
    r->every_h = cfg->classify_retrain_every_h;
    r->w->cfg.classify_retrain_every_h = r->every_h;
}
