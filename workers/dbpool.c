/* dbpool.c — the worker's pool of read connections (dbpool.h).
 *
 * A query is a uv_work_t: the work callback takes a free connection (or
 * opens one, up to the pool's size; waits on a condition variable while all
 * are taken), sets the caller's row-level-security context, runs the query
 * in a read-only transaction and gives the connection back; the after-work
 * callback hands the result to the caller on the loop thread. A connection
 * whose query failed for want of the server is dropped, and the next query
 * opens a new one. */
#include "dbpool.h"
#include "fb_common.h"
#include "dblink.h"
#include "fb_db.h"
#include "fb_log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 8

struct fb_dbpool {
    uv_loop_t *loop;
    char *conninfo, *role;
    int size;
    PGconn **conns; /* size slots: NULL, or a connection */
    bool *busy;
    pthread_mutex_t lock;
    pthread_cond_t freed;
};

typedef struct {
    uv_work_t work;
    fb_dbpool_t *pool;
    char *sql_owner; /* NULL: sql is a constant */
    const char *sql;
    char *params[MAX_PARAMS];
    int nparams;
    char role[32], department[80];
    int timeout_ms;
    PGresult *res;
    fb_dbpool_cb cb;
    void *ud;
} s_query_t;

int fb_dbpool_new(uv_loop_t *loop, const char *conninfo, const char *role, int size,
                  fb_dbpool_t **out) {
    fb_dbpool_t *p = calloc(1, sizeof *p);
    if (!p)
        return FB_ENOMEM;
    p->loop = loop;
    p->size = size > 0 ? size : 1;
    p->conninfo = strdup(conninfo ? conninfo : "");
    p->role = role && *role ? strdup(role) : NULL;
    p->conns = calloc((size_t)p->size, sizeof *p->conns);
    p->busy = calloc((size_t)p->size, sizeof *p->busy);
    if (!p->conninfo || !p->conns || !p->busy) {
        free(p->conninfo);
        free(p->role);
        free(p->conns);
        free(p->busy);
        free(p);
        return FB_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    *out = p;
    return 0;
}

/* Opens a connection, in the role's session; NULL when it cannot. */
static PGconn *open_conn(fb_dbpool_t *p) {
    PGconn *c;
    if (fb_db_connect_timeout(p->conninfo, 5, &c) != 0)
        return NULL;
    if (p->role) {
        const char *params[] = {p->role};
        PGresult *r =
            PQexecParams(c, "SELECT set_config('role', $1, false)", 1, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (!ok) {
            fb_log(FB_LOG_ERROR, "event=db_role_failed pool=stats error=\"%s\"", fb_db_error(c));
            PQfinish(c);
            return NULL;
        }
    }
    return c;
}

/* A slot of the pool, its connection open; -1 when none can be opened. */
static int take(fb_dbpool_t *p) {
    pthread_mutex_lock(&p->lock);
    int slot = -1;
    for (;;) {
        for (int i = 0; i < p->size && slot < 0; i++)
            if (!p->busy[i])
                slot = i;
        if (slot >= 0)
            break;
        pthread_cond_wait(&p->freed, &p->lock);
    }
    p->busy[slot] = true;
    pthread_mutex_unlock(&p->lock);
    if (!p->conns[slot] || PQstatus(p->conns[slot]) != CONNECTION_OK) {
        if (p->conns[slot])
            PQfinish(p->conns[slot]);
        p->conns[slot] = open_conn(p);
    }
    if (!p->conns[slot]) {
        pthread_mutex_lock(&p->lock);
        p->busy[slot] = false;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    return slot;
}

static void give_back(fb_dbpool_t *p, int slot) {
    pthread_mutex_lock(&p->lock);
    p->busy[slot] = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

static void work_cb(uv_work_t *w) {
    s_query_t *q = w->data;
    fb_dbpool_t *p = q->pool;
    int slot = take(p);
    if (slot < 0)
        return;
    PGconn *c = p->conns[slot];
    const char *ctx[] = {q->role, q->department};
    PGresult *r = PQexecParams(c, FB_DBLINK_CONTEXT_SQL, 2, NULL, ctx, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    char begin[96];
    snprintf(begin, sizeof begin, "BEGIN READ ONLY; SET LOCAL statement_timeout = %d",
             q->timeout_ms);
    if (ok) {
        r = PQexec(c, begin);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (ok) {
        q->res = PQexecParams(c, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL,
                              NULL, 0);
        PQclear(PQexec(c, PQresultStatus(q->res) == PGRES_TUPLES_OK ? "COMMIT" : "ROLLBACK"));
    }
    if (!ok || PQstatus(c) != CONNECTION_OK) {
        /* The session may be broken or still hold someone's context. */
        PQfinish(c);
        p->conns[slot] = NULL;
    }
    give_back(p, slot);
}

static void after_cb(uv_work_t *w, int status) {
    s_query_t *q = w->data;
    q->cb(q->ud, status == 0 ? q->res : NULL);
    PQclear(q->res);
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q);
}

int fb_dbpool_read(fb_dbpool_t *p, const char *ctx_role, const char *ctx_department, int timeout_ms,
                   const char *sql, int nparams, const char *const *params, fb_dbpool_cb cb,
                   void *ud) {
    if (nparams > MAX_PARAMS)
        return FB_EINVAL;
    s_query_t *q = calloc(1, sizeof *q);
    if (!q)
        return FB_ENOMEM;
    q->pool = p;
    q->sql = sql;
    q->nparams = nparams;
    q->timeout_ms = timeout_ms;
    q->cb = cb;
    q->ud = ud;
    snprintf(q->role, sizeof q->role, "%s", ctx_role ? ctx_role : "");
    snprintf(q->department, sizeof q->department, "%s", ctx_department ? ctx_department : "");
    for (int i = 0; i < nparams; i++) {
        if (params[i] && !(q->params[i] = strdup(params[i]))) {
            for (int k = 0; k < i; k++)
                free(q->params[k]);
            free(q);
            return FB_ENOMEM;
        }
    }
    q->work.data = q;
    if (uv_queue_work(p->loop, &q->work, work_cb, after_cb) != 0) {
        for (int i = 0; i < nparams; i++)
            free(q->params[i]);
        free(q);
        return FB_ENOMEM;
    }
    return 0;
}

void fb_dbpool_destroy(fb_dbpool_t **pp) {
    fb_dbpool_t *p = pp ? *pp : NULL;
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i])
            PQfinish(p->conns[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->conns);
    free(p->busy);
    free(p->conninfo);
    free(p->role);
    free(p);
    *pp = NULL;
}
