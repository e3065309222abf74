/* fb_geo.h — coordinates: validity, and GCJ-02 (the offset datum Chinese
 * maps and WeChat use) to WGS-84 (what PostGIS polygons are in). */
#ifndef FB_GEO_H
#define FB_GEO_H

#include <jansson.h>
#include <stdbool.h>

bool fb_geo_valid(double lat, double lng);
/* True when the point lies in the rectangle around China that the published
 * GCJ-02 transform uses (it also covers some neighbouring countries). */
bool fb_geo_in_china(double lat, double lng);
/* Converts a GCJ-02 point to WGS-84 (iterative inverse, error < 0.5 m). */
void fb_geo_gcj02_to_wgs84(double lat, double lng, double *wlat, double *wlng);
void fb_geo_wgs84_to_gcj02(double lat, double lng, double *glat, double *glng);
/* Distance in metres on a sphere. */
double fb_geo_distance_m(double lat1, double lng1, double lat2, double lng2);

/* True when (lat, lng) lies inside a GeoJSON Polygon or MultiPolygon
 * ([lng, lat] positions, as PostGIS's ST_AsGeoJSON writes them; holes
 * excluded by the even-odd rule). A point on an edge may go either way.
 * Anything else: false. */
bool fb_geo_in_geojson(const json_t *geometry, double lat, double lng);

#endif
