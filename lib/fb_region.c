/* fb_region.c — batch point-in-polygon lookup in PostGIS. */
#include "fb_region.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_sql =
    "SELECT " FB_REGION_LOOKUP_SQL("ST_SetSRID(ST_MakePoint((e.v->>'lng')::float8, "
                                   "(e.v->>'lat')::float8), 4326)") " "
                                                                    "FROM "
                                                                    "json_array_elements($1::json) "
                                                                    "WITH ORDINALITY AS e(v, i) "
                                                                    "ORDER BY e.i";

int fb_region_resolve(PGconn *db, const fb_point_t *points, size_t n, char **codes) {
    for (size_t i = 0; i < n; i++)
        codes[i] = NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, points[i].valid ? json_pack("{s:f,s:f}", "lat", points[i].lat,
                                                               "lng", points[i].lng)
                                                   : json_null());
    char *param = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!param)
        return FB_ENOMEM;
    const char *params[1] = {param};
    PGresult *r = PQexecParams(db, s_sql, 1, NULL, params, NULL, NULL, 0);
    free(param);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != n) {
        fb_log(FB_LOG_WARN, "event=region_lookup_failed error=\"%s\"", fb_db_error(db));
        rc = FB_EDB;
    } else {
        for (size_t i = 0; i < n; i++)
            if (!PQgetisnull(r, (int)i, 0))
                codes[i] = strdup(PQgetvalue(r, (int)i, 0));
    }
    PQclear(r);
    return rc;
}
