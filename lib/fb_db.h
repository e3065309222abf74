/* fb_db.h — the few libpq patterns every program repeats. SQL text is always
 * constant; values travel as parameters. */
#ifndef FB_DB_H
#define FB_DB_H

#include <jansson.h>
#include <libpq-fe.h>

/* The role every later connection of this process logs in as (a daemon's
 * own: [intake|dispatcher|worker] db_user), overriding conninfo's user; NULL
 * or "" keeps conninfo's. Call before connecting. Returns FB_EINVAL for a
 * name longer than 63 bytes. */
int fb_db_set_login(const char *user);
/* Connects; on failure logs the cause and returns FB_EDB. *out is the
 * caller's: PQfinish(). */
int fb_db_connect(const char *conninfo, PGconn **out);
/* fb_db_connect giving up after timeout_s seconds (libpq's connect_timeout),
 * for callers that must not hang while PostgreSQL is away. conninfo may be
 * key=value pairs or a URI. */
int fb_db_connect_timeout(const char *conninfo, int timeout_s, PGconn **out);
/* Runs a command expecting no rows; logs and returns FB_EDB on error. */
int fb_db_exec(PGconn *db, const char *sql, int nparams, const char *const *params);
/* Runs the statement prepared as `name` on this connection, preparing it
 * from sql first when the server does not know the name (the first call, or
 * a new connection): a statement run often is planned once per connection,
 * not on every call. Outside a transaction block only: inside one, the
 * failed first attempt would abort the transaction. The result is the
 * caller's (PQclear); NULL only when out of memory. */
PGresult *fb_db_exec_prepared(PGconn *db, const char *name, const char *sql, int nparams,
                              const char *const *params);
/* Runs a query whose single row and column is JSON text (e.g. json_agg(…))
 * and parses it; NULL becomes an empty array. *out is the caller's. */
int fb_db_query_json(PGconn *db, const char *sql, int nparams, const char *const *params,
                     json_t **out);
/* The message of the last error, one line. */
const char *fb_db_error(PGconn *db);

/* Loads rules, jurisdictions and calendar_days as the matcher wants them. */
int fb_db_load_routing(PGconn *db, json_t **rules, json_t **jurisdictions, json_t **calendar);

#endif
