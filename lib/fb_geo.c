/* fb_geo.c — the published GCJ-02 transform (Krasovsky ellipsoid) and its
 * inverse by fixed-point iteration. */
#include "fb_geo.h"

#include <math.h>

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
