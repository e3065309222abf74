/* fb_region.h — resolving locations to the deepest region containing them
 * (PostGIS), a whole batch in one round trip. The dispatcher and
 * `fenboctl rules explain` both use it. */
#ifndef FB_REGION_H
#define FB_REGION_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* SQL expression for the deepest region code containing the geometry
 * expression `point` (EPSG:4326); NULL outside every region. */
#define FB_REGION_LOOKUP_SQL(point)                                                                \
    "(SELECT r.code FROM regions r WHERE ST_Covers(r.geom, " point ")"                             \
    " ORDER BY r.level DESC, r.code LIMIT 1)"

typedef struct fb_point {
    bool valid; /* false: no location, the code stays NULL */
    double lat, lng;
} fb_point_t;

/* codes[i] receives the deepest region code containing points[i] (WGS-84),
 * or NULL; each code is the caller's (free()). */
int fb_region_resolve(PGconn *db, const fb_point_t *points, size_t n, char **codes);

#endif
