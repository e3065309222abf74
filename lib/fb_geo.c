/* fb_geo.c — the published GCJ-02 transform (Krasovsky ellipsoid) and its
 * inverse by fixed-point iteration. */
#include "fb_geo.h"

#include <math.h>
#include <string.h>

static const double A = 6378245.0;               /* Krasovsky 1940 semi-major axis */
static const double EE = 0.00669342162296594323; /* its eccentricity squared */

bool fb_geo_valid(double lat, double lng) {
    return isfinite(lat) && isfinite(lng) && lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180;
}

bool fb_geo_in_china(double lat, double lng) {
    return lng >= 72.004 && lng <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
}

static double tlat(double x, double y) {
    double r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(fabs(x));
    r += (20.0 * sin(6.0 * x * M_PI) + 20.0 * sin(2.0 * x * M_PI)) * 2.0 / 3.0;
    r += (20.0 * sin(y * M_PI) + 40.0 * sin(y / 3.0 * M_PI)) * 2.0 / 3.0;
    r += (160.0 * sin(y / 12.0 * M_PI) + 320 * sin(y * M_PI / 30.0)) * 2.0 / 3.0;
    return r;
}

static double tlng(double x, double y) {
    double r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(fabs(x));
    r += (20.0 * sin(6.0 * x * M_PI) + 20.0 * sin(2.0 * x * M_PI)) * 2.0 / 3.0;
    r += (20.0 * sin(x * M_PI) + 40.0 * sin(x / 3.0 * M_PI)) * 2.0 / 3.0;
    r += (150.0 * sin(x / 12.0 * M_PI) + 300.0 * sin(x / 30.0 * M_PI)) * 2.0 / 3.0;
    return r;
}

void fb_geo_wgs84_to_gcj02(double lat, double lng, double *glat, double *glng) {
    if (!fb_geo_in_china(lat, lng)) {
        *glat = lat;
        *glng = lng;
        return;
    }
    double dlat = tlat(lng - 105.0, lat - 35.0);
    double dlng = tlng(lng - 105.0, lat - 35.0);
    double rad = lat / 180.0 * M_PI;
    double magic = sin(rad);
    magic = 1 - EE * magic * magic;
    double sq = sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sq) * M_PI);
    dlng = (dlng * 180.0) / (A / sq * cos(rad) * M_PI);
    *glat = lat + dlat;
    *glng = lng + dlng;
}

void fb_geo_gcj02_to_wgs84(double lat, double lng, double *wlat, double *wlng) {
    double wl = lat, wg = lng;
    for (int i = 0; i < 8; i++) {
        double gl, gg;
        fb_geo_wgs84_to_gcj02(wl, wg, &gl, &gg);
        wl -= gl - lat;
        wg -= gg - lng;
    }
    *wlat = wl;
    *wlng = wg;
}

double fb_geo_distance_m(double lat1, double lng1, double lat2, double lng2) {
    const double r = 6371008.8;
    double p1 = lat1 * M_PI / 180, p2 = lat2 * M_PI / 180;
    double dp = p2 - p1, dl = (lng2 - lng1) * M_PI / 180;
    double h = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    return 2 * r * asin(sqrt(h));
}

/* Even-odd crossings of a ray going east from (lat, lng) over one ring. */
static bool ring_flips(const json_t *ring, double lat, double lng) {
    bool inside = false;
    size_t n = json_array_size(ring);
    for (size_t i = 0, j = n ? n - 1 : 0; i < n; j = i++) {
        const json_t *a = json_array_get(ring, i), *b = json_array_get(ring, j);
        double ax = json_number_value(json_array_get(a, 0)),
               ay = json_number_value(json_array_get(a, 1));
        double bx = json_number_value(json_array_get(b, 0)),
               by = json_number_value(json_array_get(b, 1));
        if ((ay > lat) != (by > lat) && lng < (bx - ax) * (lat - ay) / (by - ay) + ax)
            inside = !inside;
    }
    return inside;
}

static bool polygon_has(const json_t *rings, double lat, double lng) {
    bool inside = false;
    size_t i;
    const json_t *ring;
    json_array_foreach(rings, i, ring) {
        if (ring_flips(ring, lat, lng))
            inside = !inside;
    }
    return inside;
}

bool fb_geo_in_geojson(const json_t *geometry, double lat, double lng) {
    const char *type = json_string_value(json_object_get(geometry, "type"));
    const json_t *coords = json_object_get(geometry, "coordinates");
    if (!type || !json_is_array(coords))
        return false;
    if (strcmp(type, "Polygon") == 0)
        return polygon_has(coords, lat, lng);
    if (strcmp(type, "MultiPolygon") != 0)
        return false;
    size_t i;
    const json_t *poly;
    json_array_foreach(coords, i, poly) {
        if (polygon_has(poly, lat, lng))
            return true;
    }
    return false;
}
