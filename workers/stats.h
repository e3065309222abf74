/* stats.h — the rates supervisors watch, over HTTP: GET /api/v1/stats and
 * GET /api/v1/stats/daily.
 *
 * The numbers come from the SQL functions of schema/0005_stats.sql
 * (fenbo_stats_json, fenbo_stats_daily_json), the one definition of every
 * rate that `fenboctl stats` calls too; this file passes the query's
 * parameters through and turns the functions' errors into HTTP answers (a bad
 * parameter: 400 naming it). The README gives the definitions. */
#ifndef FB_STATS_H
#define FB_STATS_H

#include "fb_http.h"
#include "worker.h"

/* GET /api/v1/stats?by=department|district|street&from=YYYY-MM-DD&to=YYYY-MM-DD
 * → {"by", "from", "to", "timezone", "rows": [{"key", "name", "dispatched",
 * "accepted_on_time", "response_rate", …}], "total": {…}}. from and to are
 * days in the city's zone, to exclusive; the default is the last 30 days
 * including today. department: a department token's own department, which
 * sees only its own row (no city total) and is refused (403) by=district and
 * by=street, whose rows mix other departments' cases; NULL for the roles that
 * see everything. role: the caller's, for the query's row-level-security
 * context. Answers req from the cache at once, or later: the query runs on
 * the worker's statistics pool (dbpool.h), off the loop. */
void fb_stats_rates(fb_worker_t *w, fb_http_req_t *req, const char *role, const char *department);

/* GET /api/v1/stats/daily?from=&to= → {"from", "to", "timezone", "days":
 * [{"day", "petitions", "dispatched", "closures"}]}, at most 366 days (the
 * dashboard's chart). Answered as fb_stats_rates. */
void fb_stats_daily(fb_worker_t *w, fb_http_req_t *req, const char *role);

#endif
