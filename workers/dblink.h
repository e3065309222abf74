/* dblink.h — the worker's one PostgreSQL connection, kept up from the loop.
 *
 * Queries are blocking libpq calls (good enough for this first version: each
 * is short). When PostgreSQL is away the connection is dropped and retried
 * from a uv_timer with exponential backoff, and the worker keeps serving
 * what needs no database (/healthz, /metrics, and 503 for the rest). */
#ifndef FB_DBLINK_H
#define FB_DBLINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct fb_dblink fb_dblink_t;

/* Called on the loop each time a connection has just been (re)established. */
typedef void (*fb_dblink_up_cb)(void *ud);

/* Creates the link and schedules the first connection attempt on the loop.
 * conninfo and timezone are copied; the session's TimeZone is set to timezone
 * so that times come back in the city's zone. *out is the caller's:
 * fb_dblink_destroy(). */
int fb_dblink_new(uv_loop_t *loop, const char *conninfo, const char *timezone, fb_dblink_up_cb cb,
                  void *ud, fb_dblink_t **out);
/* Closes the connection and the timer; the memory is freed once the timer
 * has closed. Sets *l to NULL. */
void fb_dblink_destroy(fb_dblink_t **l);

/* The connection, or NULL while the database is away. Borrowed. */
PGconn *fb_dblink_conn(fb_dblink_t *l);
bool fb_dblink_up(const fb_dblink_t *l);
/* To be called after a failed query: when the connection itself is broken,
 * drops it and schedules a reconnect. Returns true when it was broken. */
bool fb_dblink_check(fb_dblink_t *l);
/* Successful connections after the first one. */
uint64_t fb_dblink_reconnects(const fb_dblink_t *l);

#endif
