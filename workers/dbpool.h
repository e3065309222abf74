/* dbpool.h — a few PostgreSQL connections of the worker's own, used from
 * libuv's thread pool, so that a slow read (a statistics query over a long
 * period) never holds the loop's one connection, nor the loop. */
#ifndef WORKERS_DBPOOL_H
#define WORKERS_DBPOOL_H

#include <libpq-fe.h>
#include <uv.h>

typedef struct fb_dbpool fb_dbpool_t;

/* Called on the loop thread with the query's result (borrowed: cleared
 * after the call), or NULL when no connection could be had. */
typedef void (*fb_dbpool_cb)(void *ud, PGresult *res);

/* A pool of at most size connections to conninfo, each SET ROLE role (NULL:
 * the login role) and named application_name fenbo-worker. Connections open
 * when first needed. *out is the caller's (fb_dbpool_destroy). */
int fb_dbpool_new(uv_loop_t *loop, const char *conninfo, const char *role, int size,
                  fb_dbpool_t **out);

/* Runs sql (a constant; params copied) on a pooled connection, inside a
 * read-only transaction with statement_timeout timeout_ms, for a session
 * whose fenbo.role and fenbo.department are ctx_role and ctx_department (as
 * the loop's connection has them for the request), then calls cb. A query
 * waits for a free connection while all are busy. Returns FB_ENOMEM. */
int fb_dbpool_read(fb_dbpool_t *p, const char *ctx_role, const char *ctx_department, int timeout_ms,
                   const char *sql, int nparams, const char *const *params, fb_dbpool_cb cb,
                   void *ud);

/* Closes the connections; queries still running finish first (the loop
 * must run until then: uv_run drains the work queue). */
void fb_dbpool_destroy(fb_dbpool_t **p);

#endif
