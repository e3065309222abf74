/* hotspot.c — hotspot alerts (未诉先办): the sweep that raises and grows them
 * and the list that shows them. */
#include "hotspot.h"
#include "api_util.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKBACK_MIN_MIN (24 * 60)

/* Serialises the hotspot sweeps of all workers (pg_try_advisory_xact_lock):
 * a worker that finds it taken leaves this sweep to the other one. The
 * number is arbitrary but fixed. */
#define HOTSPOT_LOCK "7310582604447719201"

int fb_hotspot_lookback_min(int window_min) {
    return window_min > LOOKBACK_MIN_MIN ? window_min : LOOKBACK_MIN_MIN;
}

/* One statement does it all, so that growing and raising agree.
 *
 * p: the petitions of the lookback with the area they count towards (a
 * grid: its community) and their alert, if any; k: the categories and areas
 * that have petitions not in an alert and could alert or grow at all; s: the
 * petitions of k cut into bursts (seg) wherever two come more than a window
 * apart. A burst that holds an alert's petitions grows that alert by its
 * other petitions (grow); in a burst without one, the first petition at
 * which `threshold` petitions fall within a window triggers (trig), and the
 * new alert takes that window's petitions and all later ones of the burst
 * (newp). The street office: the street_office department whose
 * jurisdiction is the longest prefix of the area's code. The cases involved
 * get their 'hotspot' events afterwards (s_note_sql): writing them here held
 * every case of a flood locked for as long as this statement ran.
 *   $1 window (minutes)   $2 threshold   $3 lookback (minutes) */
static const char s_sweep_sql[] =
    "WITH p AS (SELECT p.id, p.case_id, p.category, p.received_at,"
    "  CASE WHEN r.level = 5 AND r.parent_code IS NOT NULL THEN r.parent_code ELSE r.code END"
    "   AS area, h.alert_id"
    " FROM petitions p JOIN regions r ON r.code = p.region_code"
    " LEFT JOIN hotspot_petitions h ON h.petition_id = p.id"
    " WHERE p.received_at > now() - make_interval(mins => $3::int)"
    " AND p.received_at <= now() AND p.category IS NOT NULL),"
    " k AS (SELECT category, area FROM p GROUP BY category, area"
    "  HAVING count(*) FILTER (WHERE alert_id IS NULL) > 0"
    "  AND (count(*) >= $2::int OR count(alert_id) > 0)),"
    " g AS (SELECT p.*, p.received_at - lag(p.received_at) OVER (PARTITION BY p.category, p.area"
    "   ORDER BY p.received_at, p.id) > make_interval(mins => $1::int) AS gap"
    "  FROM p JOIN k USING (category, area)),"
    " s AS MATERIALIZED (SELECT g.*, count(*) FILTER (WHERE gap) OVER (PARTITION BY category,"
    "  area ORDER BY received_at, id) AS seg FROM g),"
    " sa AS (SELECT category, area, seg, max(alert_id) AS alert_id FROM s"
    "  WHERE alert_id IS NOT NULL GROUP BY category, area, seg),"
    " grow AS MATERIALIZED (SELECT s.id, s.case_id, s.received_at, sa.alert_id AS target"
    "  FROM s JOIN sa USING (category, area, seg) WHERE s.alert_id IS NULL),"
    " w AS (SELECT s.*, count(*) OVER (PARTITION BY s.category, s.area, s.seg"
    "   ORDER BY s.received_at RANGE BETWEEN make_interval(mins => $1::int) PRECEDING"
    "   AND CURRENT ROW) AS n"
    "  FROM s WHERE NOT EXISTS (SELECT 1 FROM sa WHERE sa.category = s.category"
    "   AND sa.area = s.area AND sa.seg = s.seg)),"
    " trig AS (SELECT DISTINCT ON (category, area, seg) category, area, seg, received_at AS at"
    "  FROM w WHERE n >= $2::int ORDER BY category, area, seg, received_at),"
    " newp AS MATERIALIZED (SELECT w.id, w.case_id, w.category, w.area, w.received_at,"
    "  first_value(w.id) OVER (PARTITION BY w.category, w.area, w.seg"
    "   ORDER BY w.received_at, w.id) AS first_id"
    "  FROM w JOIN trig USING (category, area, seg)"
    "  WHERE w.received_at >= trig.at - make_interval(mins => $1::int)),"
    " na AS (INSERT INTO hotspot_alerts (category, region_code, department_code,"
    "  first_petition_id, petitions, threshold, window_min, first_at, last_at)"
    " SELECT n.category, n.area,"
    "  (SELECT j.department_code FROM jurisdictions j"
    "   JOIN departments d ON d.code = j.department_code"
    "   WHERE d.kind = 'street_office' AND d.active AND starts_with(n.area, j.region_code)"
    "   ORDER BY length(j.region_code) DESC, j.department_code LIMIT 1),"
    "  n.first_id, count(*), $2::int, $1::int, min(n.received_at), max(n.received_at)"
    " FROM newp n GROUP BY n.category, n.area, n.first_id ORDER BY min(n.received_at)"
    " ON CONFLICT DO NOTHING RETURNING *),"
    " x AS (SELECT n.id, n.case_id, na.id AS alert_id FROM newp n JOIN na"
    "  ON na.first_petition_id = n.first_id AND na.category = n.category"
    "  AND na.region_code = n.area"
    "  UNION ALL SELECT id, case_id, target FROM grow),"
    " hp AS (INSERT INTO hotspot_petitions (petition_id, alert_id)"
    "  SELECT id, alert_id FROM x RETURNING petition_id),"
    " gg AS (SELECT target, count(*) AS n, min(received_at) AS lo, max(received_at) AS hi"
    "  FROM grow GROUP BY target),"
    " up AS (UPDATE hotspot_alerts a SET petitions = a.petitions + gg.n,"
    "  first_at = least(a.first_at, gg.lo), last_at = greatest(a.last_at, gg.hi),"
    "  updated_at = now() FROM gg WHERE a.id = gg.target RETURNING a.*),"
    " touched AS (SELECT 'raised' AS what, na.* FROM na UNION ALL SELECT 'grew', up.* FROM up)"
    " SELECT what, id, category, region_code, coalesce(department_code, '-'), petitions,"
    "  first_at, last_at FROM touched ORDER BY id";

/* The 'hotspot' events of up to $1 linked petitions not yet noted: one per
 * case and alert, unless the case has it already (a second petition of the
 * case, noted in an earlier batch), appended in case order like every writer
 * of several cases' events. The petitions are marked noted in the same
 * statement, so an event is written once whatever fails. */
static const char s_note_sql[] =
    "WITH t AS MATERIALIZED (SELECT h.petition_id, h.alert_id, p.case_id"
    "  FROM hotspot_petitions h JOIN petitions p ON p.id = h.petition_id"
    "  WHERE h.noted_at IS NULL ORDER BY h.petition_id LIMIT $1::int),"
    " m AS (UPDATE hotspot_petitions h SET noted_at = now() FROM t"
    "  WHERE h.petition_id = t.petition_id RETURNING h.petition_id),"
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"
    " SELECT c.case_id, 'fenbo-worker', 'hotspot', jsonb_build_object('alert_id', a.id,"
    "  'category', a.category, 'region_code', a.region_code, 'department', a.department_code,"
    "  'petitions', a.petitions, 'window_min', a.window_min)"
    " FROM (SELECT DISTINCT alert_id, case_id FROM t WHERE case_id IS NOT NULL) c"
    " JOIN hotspot_alerts a ON a.id = c.alert_id"
    " WHERE NOT EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.case_id"
    "  AND e.type = 'hotspot' AND e.data->>'alert_id' = a.id::text)"
    " ORDER BY c.case_id, a.id)"
    " SELECT count(*) FROM m";

static int exec_simple(PGconn *db, const char *sql) {
    PGresult *r = PQexec(db, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : FB_EDB;
    if (rc)
        fb_log(FB_LOG_WARN, "event=db_error op=hotspot error=\"%s\"", fb_db_error(db));
    PQclear(r);
    return rc;
}

static void log_alerts(PGresult *r, int window_min) {
    for (int i = 0; i < PQntuples(r); i++)
        fb_log(FB_LOG_INFO,
               "event=%s alert_id=%s category=%s region=%s department=%s petitions=%s"
               " window_min=%d first_at=\"%s\" last_at=\"%s\"",
               strcmp(PQgetvalue(r, i, 0), "raised") == 0 ? "hotspot_alert" : "hotspot_grew",
               PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
               PQgetvalue(r, i, 5), window_min, PQgetvalue(r, i, 6), PQgetvalue(r, i, 7));
}

/* BEGIN, then the sweeps' advisory lock if free. *locked: it was; when it
 * was not, the transaction is over (another worker is at it). */
static int begin_locked(PGconn *db, bool *locked) {
    *locked = false;
    if (exec_simple(db, "BEGIN") != 0)
        return FB_EDB;
    PGresult *r = PQexec(db, "SELECT pg_try_advisory_xact_lock(" HOTSPOT_LOCK ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=db_error op=hotspot_lock error=\"%s\"", fb_db_error(db));
        PQclear(r);
        PQclear(PQexec(db, "ROLLBACK"));
        return FB_EDB;
    }
    *locked = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return *locked ? 0 : exec_simple(db, "COMMIT");
}

int fb_hotspot_sweep(PGconn *db, int threshold, int window_min, int lookback_min, int *raised,
                     int *grown) {
    *raised = *grown = 0;
    if (threshold <= 0)
        return 0;
    char win[16], thr[16], back[16];
    snprintf(win, sizeof win, "%d", window_min);
    snprintf(thr, sizeof thr, "%d", threshold);
    snprintf(back, sizeof back, "%d", lookback_min);
    const char *params[] = {win, thr, back};
    bool locked;
    int rc = begin_locked(db, &locked);
    if (rc || !locked)
        return rc;
    PGresult *r = PQexecParams(db, s_sweep_sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=db_error op=hotspot error=\"%s\"", fb_db_error(db));
        goto fail;
    }
    if (exec_simple(db, "COMMIT") != 0)
        goto fail;
    /* Told only once committed: an alert rolled back was never raised. */
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, 0), "raised") == 0)
            (*raised)++;
        else
            (*grown)++;
    }
    log_alerts(r, window_min);
    PQclear(r);
    return 0;
fail:
    PQclear(r);
    if (PQstatus(db) == CONNECTION_OK)
        PQclear(PQexec(db, "ROLLBACK"));
    return FB_EDB;
}

int fb_hotspot_note(PGconn *db, int batch, int *noted) {
    *noted = 0;
    char n[16];
    snprintf(n, sizeof n, "%d", batch);
    const char *params[] = {n};
    bool locked;
    /* Under the sweeps' lock: two workers noting the same case at once
     * would each find it without its event. */
    int rc = begin_locked(db, &locked);
    if (rc || !locked)
        return rc;
    PGresult *r = PQexecParams(db, s_note_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || exec_simple(db, "COMMIT") != 0) {
        fb_log(FB_LOG_WARN, "event=db_error op=hotspot_note error=\"%s\"", fb_db_error(db));
        PQclear(r);
        if (PQstatus(db) == CONNECTION_OK)
            PQclear(PQexec(db, "ROLLBACK"));
        return FB_EDB;
    }
    *noted = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* ---- GET /api/v1/hotspots ------------------------------------------------ */

/* The newest 500 alerts at most: more than that in a day is no longer a
 * list anyone reads.
 *   $1 hours   $2 the caller's department (a street office), or NULL */
static const char s_list_sql[] =
    "SELECT json_build_object('now', now(), 'hotspots', coalesce(json_agg(json_build_object("
    " 'id', a.id, 'category', a.category, 'category_name', cat.name,"
    " 'region_code', a.region_code, 'region_name', reg.name,"
    " 'department', a.department_code, 'department_name', d.name,"
    " 'petitions', a.petitions, 'threshold', a.threshold, 'window_min', a.window_min,"
    " 'first_at', a.first_at, 'last_at', a.last_at, 'alerted_at', a.alerted_at,"
    " 'updated_at', a.updated_at,"
    " 'tracking_nos', (SELECT coalesce(json_agg(p.tracking_no ORDER BY p.received_at, p.id),"
    "   '[]'::json) FROM hotspot_petitions h JOIN petitions p ON p.id = h.petition_id"
    "   WHERE h.alert_id = a.id),"
    " 'case_ids', (SELECT coalesce(json_agg(DISTINCT p.case_id), '[]'::json)"
    "   FROM hotspot_petitions h JOIN petitions p ON p.id = h.petition_id"
    "   WHERE h.alert_id = a.id AND p.case_id IS NOT NULL))"
    " ORDER BY a.updated_at DESC, a.id DESC), '[]'::json))"
    " FROM (SELECT * FROM hotspot_alerts a"
    "  WHERE a.updated_at > now() - make_interval(hours => $1::int)"
    "  AND ($2::text IS NULL OR a.department_code = $2::text)"
    "  ORDER BY a.updated_at DESC, a.id DESC LIMIT 500) a"
    " LEFT JOIN categories cat ON cat.code = a.category"
    " LEFT JOIN regions reg ON reg.code = a.region_code"
    " LEFT JOIN departments d ON d.code = a.department_code";

void fb_hotspot_api_list(fb_worker_t *w, fb_http_req_t *req, const char *role,
                         const char *department) {
    (void)role;
    long long hours;
    if (!fb_api_query_int(req, "hours", 1, 720, 24, &hours))
        return;
    char h[24];
    snprintf(h, sizeof h, "%lld", hours);
    const char *params[] = {h, department};
    json_t *out;
    if (fb_api_query_json(w, req, s_list_sql, 2, params, &out) != 0)
        return;
    fb_http_respond_json(req, 200, out);
}
