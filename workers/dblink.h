/* dblink.h — the worker's one PostgreSQL connection, kept up from the loop.
 *
 * Queries are blocking libpq calls (good enough for this first version: each
 * is short). When PostgreSQL is away the connection is dropped and retried
 * from a uv_timer with exponential backoff, and the worker keeps serving
 * what needs no database (/healthz, /metrics, and 503 for the rest).
 *
 * Row-level security (schema/0007_rls.sql): after connecting, the session
 * takes the worker's own role ([worker] db_role, SET ROLE), which owns
 * nothing and sees a case table's rows only for whom the session runs —
 * its context, fenbo.role and fenbo.department. Each API request sets the
 * caller's context before its first query about cases, and clears it after;
 * each background job sets FB_DBLINK_SYSTEM before its first query. Whatever
 * is left set when a loop iteration ends is cleared then, so that no context
 * outlives the callback that set it by more than the iteration. */
#ifndef FB_DBLINK_H
#define FB_DBLINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct fb_dblink fb_dblink_t;

/* The context of the worker's own jobs (catch-up, timers, ratings,
 * retention): every row. */
#define FB_DBLINK_SYSTEM "system"

/* The session settings of a context ($1 role, $2 department — for role
 * grid, the grid worker's region): fenbo.role, fenbo.department and
 * fenbo.region (schema/0016_grid.sql), all at once, so that no query ever
 * sees one without the others. */
#define FB_DBLINK_CONTEXT_SQL                                                                      \
    "SELECT set_config('fenbo.role', $1, false), set_config('fenbo.department', $2, false),"       \
    " set_config('fenbo.region', CASE WHEN $1 = 'grid' THEN coalesce($2, '') ELSE '' END, false)"

/* Called on the loop each time a connection has just been (re)established. */
typedef void (*fb_dblink_up_cb)(void *ud);

/* Creates the link and schedules the first connection attempt on the loop.
 * conninfo and timezone are copied; the session's TimeZone is set to timezone
 * so that times come back in the city's zone. *out is the caller's:
 * fb_dblink_destroy(). */
int fb_dblink_new(uv_loop_t *loop, const char *conninfo, const char *timezone, fb_dblink_up_cb cb,
                  void *ud, fb_dblink_t **out);
/* The role every connection takes (SET ROLE) before it is used; NULL or ""
 * keeps the login role. Copied. Applies from the next connection: call it
 * right after fb_dblink_new, before the loop runs. A connection that cannot
 * take the role is dropped and retried, never used as the login role.
 * Returns 0 or FB_ENOMEM. */
int fb_dblink_set_role(fb_dblink_t *l, const char *role);
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

/* Sets whom the session's next queries run for: role (a token's role, or
 * FB_DBLINK_SYSTEM) and department (a department token's, else NULL); NULL
 * or "" for nobody, who sees no case. Set on the session outside any
 * transaction (a transaction left open is rolled back first: a ROLLBACK
 * must not take the context back with it). Returns 0, or FB_EDB when the
 * database is away or the setting failed — the connection is then dropped,
 * since whom it runs for is no longer known, and the caller must run none of
 * its queries (a PGconn it holds is gone). */
int fb_dblink_context_set(fb_dblink_t *l, const char *role, const char *department);
/* Back to nobody (a no-op when nothing is set). */
void fb_dblink_context_clear(fb_dblink_t *l);

#endif
