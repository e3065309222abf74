/* dedup.c — the duplicate search, in PostGIS and pg_trgm.
 *
 * Candidates are open cases of the same category created within the window,
 * whose location lies within the radius, and one of whose petitions reads
 * alike (pg_trgm similarity). Petitions of the same batch are compared with
 * each other too, so five reports of one burst pipe arriving together make
 * one case, not five. */
#include "dedup.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A petition is compared with the nearest S_NEAREST_CASES open cases of its
 * category only, and with the first S_PETITIONS_PER_CASE petitions of each,
 * so that a place where hundreds of cases are open (a flood, a load test)
 * costs little more per petition than a quiet one:
 * - the nearest are found by the GiST index in the order of its own
 *   distance (<->, in degrees), so that only they are read and measured —
 *   ordering every open case in the box by its distance in metres cost
 *   2.4 ms a petition with 300 of them around (0.36 ms now). A degree of
 *   longitude is shorter than one of latitude (by 13 % at 30° N, 29 % at
 *   45° N), so where more than S_NEAREST_CASES lie in the box the set can
 *   differ at its edge from the nearest in metres; the case joined is the
 *   nearest in metres of those that read alike;
 * - the texts are compared nearest first, and the first that reads alike
 *   ends the search.
 * Distances are measured on the sphere (use_spheroid false): within 0.5 %
 * of the spheroid's at this scale (25 cm at 50 m), and cheaper.
 * Petitions of the batch are paired only within neighbouring cells of a
 * grid as wide as the search box (gx, gy): a hash join, where comparing
 * every pair made a batch of a thousand cost a third of a second. */
#define S_NEAREST_CASES      "32"
#define S_PETITIONS_PER_CASE "8"

static const char *const s_sql =
    "WITH g AS MATERIALIZED ("
    "  SELECT x.*, ST_SetSRID(ST_MakePoint(x.lng, x.lat), 4326) AS pt,"
    "    fenbo_dedup_text(x.content_norm) AS dedup_text,"
    "    floor(x.lng / ($3::float8 / 50000.0))::bigint AS gx,"
    "    floor(x.lat / ($3::float8 / 50000.0))::bigint AS gy"
    "  FROM json_to_recordset($1::json) AS x(i integer, lat float8, lng float8, category text,"
    "    content_norm text, received_at timestamptz)) "
    "SELECT 'case', g.i, m.id, m.department_code FROM g CROSS JOIN LATERAL ("
    "  SELECT n.id, n.department_code FROM ("
    "    SELECT k.* FROM ("
    "      SELECT c.id, c.department_code,"
    "        ST_Distance(c.location::geography, g.pt::geography, false) AS dist FROM cases c"
    "      WHERE c.category = g.category"
    "        AND c.status IN ('manual', 'dispatched', 'accepted', 'returned', 'reopened')"
    "        AND c.created_at >= g.received_at - make_interval(hours => $2::integer)"
    "        AND c.location && ST_Expand(g.pt, $3::float8 / 50000.0)"
    "      ORDER BY c.location <-> g.pt LIMIT " S_NEAREST_CASES ") k"
    "    WHERE k.dist <= $3::float8 ORDER BY k.dist, k.id) n"
    "  WHERE (SELECT max(similarity(fenbo_dedup_text(p.content_norm), g.dedup_text))"
    "         FROM (SELECT p.content_norm FROM petitions p WHERE p.case_id = n.id"
    "               ORDER BY p.id LIMIT " S_PETITIONS_PER_CASE ") p) >= $4::float4"
    "  ORDER BY n.dist, n.id LIMIT 1) m "
    "UNION ALL "
    "SELECT 'item', n.ai, n.bi, NULL FROM ("
    "  SELECT a.i AS ai, b.i AS bi, a.pt AS apt, b.pt AS bpt, a.dedup_text AS at,"
    "    b.dedup_text AS bt"
    "  FROM g a CROSS JOIN (VALUES (-1), (0), (1)) dx(d) CROSS JOIN (VALUES (-1), (0), (1)) dy(d)"
    "  JOIN g b ON b.category = a.category AND b.gx = a.gx + dx.d AND b.gy = a.gy + dy.d"
    "    AND b.i < a.i AND a.pt && ST_Expand(b.pt, $3::float8 / 50000.0)"
    "    AND abs(extract(epoch FROM a.received_at - b.received_at)) <= $2::integer * 3600"
    /* OFFSET 0 keeps the cheap box test ahead of the costly checks below. */
    "  OFFSET 0) n "
    "WHERE ST_DWithin(n.apt::geography, n.bpt::geography, $3::float8, false)"
    "  AND similarity(n.at, n.bt) >= $4::float4";

int dedup_prepare(PGconn *db) {
    PGresult *r = PQprepare(db, "dedup_find", s_sql, 4, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : FB_EDB;
    if (rc)
        fb_log(FB_LOG_ERROR, "event=prepare_failed statement=dedup_find error=\"%s\"",
               fb_db_error(db));
    PQclear(r);
    return rc;
}

int dedup_find(PGconn *db, const dedup_opts_t *dd, batch_item_t *items, size_t n) {
    if (dd->radius_m <= 0)
        return 0;
    json_t *arr = json_array();
    char t[40];
    for (size_t i = 0; i < n; i++) {
        const fb_petition_t *p = items[i].p;
        /* A fix on the spot is its own closed case: it joins nothing, and
         * nothing joins it (only open cases are searched). */
        if (!items[i].is_new || !p->has_location || !p->category || p->resolved_on_site)
            continue;
        json_array_append_new(arr, json_pack("{s:I,s:f,s:f,s:s,s:s,s:s}", "i", (json_int_t)i, "lat",
                                             p->lat, "lng", p->lng, "category", p->category,
                                             "content_norm", p->content_norm, "received_at",
                                             fb_time_format(p->received_at_us, t, sizeof t)));
    }
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return 0;
    }
    char *param = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char hours[16], radius[16], sim[16];
    snprintf(hours, sizeof hours, "%d", dd->window_h);
    snprintf(radius, sizeof radius, "%d", dd->radius_m);
    snprintf(sim, sizeof sim, "%.3f", dd->similarity);
    const char *params[4] = {param, hours, radius, sim};
    PGresult *r = param ? PQexecPrepared(db, "dedup_find", 4, params, NULL, NULL, 0) : NULL;
    free(param);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=dedup_failed error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    /* Rows for stored cases first; then, in batch order, the earliest
     * petition of this batch that a petition resembles. */
    for (int k = 0; k < PQntuples(r); k++) {
        size_t i = (size_t)strtoul(PQgetvalue(r, k, 1), NULL, 10);
        if (i >= n || strcmp(PQgetvalue(r, k, 0), "case") != 0)
            continue;
        items[i].join_case = strtoll(PQgetvalue(r, k, 2), NULL, 10);
        items[i].join_department = PQgetisnull(r, k, 3) ? NULL : strdup(PQgetvalue(r, k, 3));
    }
    for (size_t i = 0; i < n; i++) {
        if (!items[i].is_new || items[i].join_case)
            continue;
        int best = -1;
        for (int k = 0; k < PQntuples(r); k++) {
            if (strcmp(PQgetvalue(r, k, 0), "item") != 0 ||
                (size_t)strtoul(PQgetvalue(r, k, 1), NULL, 10) != i)
                continue;
            int b = atoi(PQgetvalue(r, k, 2));
            if (best < 0 || b < best)
                best = b;
        }
        if (best < 0)
            continue;
        /* Follow the earlier petition to the case it opens or joins. */
        batch_item_t *lead = &items[best];
        if (lead->join_case) {
            items[i].join_case = lead->join_case;
            items[i].join_department = fb_strdup0(lead->join_department);
        } else {
            items[i].join_item = lead->join_item >= 0 ? lead->join_item : best;
        }
    }
    PQclear(r);
    return 0;
}
