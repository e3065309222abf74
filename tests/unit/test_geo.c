/* test_geo.c — coordinate validity and the GCJ-02 ↔ WGS-84 conversion that
 * mini-program locations go through (fb_geo.h). */
#include "fb_common.h"
#include "fb_geo.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

/* West Lake, Hangzhou (WGS-84), and a few other places in eastern China. */
static const double s_china[][2] = {
    {30.2590, 120.1480}, /* Hangzhou, West Lake */
    {31.2304, 121.4737}, /* Shanghai */
    {39.9042, 116.4074}, /* Beijing */
    {32.0603, 118.7969}, /* Nanjing */
};

START_TEST(test_distance_known_values) {
    /* One degree of latitude on a sphere of radius 6371.0088 km. */
    double d = fb_geo_distance_m(0, 0, 1, 0);
    ck_assert_double_eq_tol(d, 111194.93, 1.0);
    ck_assert_double_eq_tol(fb_geo_distance_m(30.259, 120.148, 30.259, 120.148), 0.0, 1e-9);
    /* Symmetric. */
    ck_assert_double_eq_tol(fb_geo_distance_m(30.259, 120.148, 31.2304, 121.4737),
                            fb_geo_distance_m(31.2304, 121.4737, 30.259, 120.148), 1e-6);
    /* Hangzhou to Shanghai is about 140 km. */
    d = fb_geo_distance_m(30.259, 120.148, 31.2304, 121.4737);
    ck_assert(d > 130000 && d < 175000);
}
END_TEST

START_TEST(test_gcj_offset_magnitude) {
    /* GCJ-02 shifts points in eastern China by a few hundred metres. */
    for (size_t i = 0; i < FB_ARRAY_LEN(s_china); i++) {
        double glat, glng;
        fb_geo_wgs84_to_gcj02(s_china[i][0], s_china[i][1], &glat, &glng);
        double off = fb_geo_distance_m(s_china[i][0], s_china[i][1], glat, glng);
        ck_assert_msg(off > 100 && off < 800, "offset at %f,%f is %f m", s_china[i][0],
                      s_china[i][1], off);
    }
}
END_TEST

START_TEST(test_gcj_to_wgs_round_trip) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_china); i++) {
        double wlat = s_china[i][0], wlng = s_china[i][1];
        /* WGS-84 → GCJ-02 → WGS-84 comes back within half a metre. */
        double glat, glng, blat, blng;
        fb_geo_wgs84_to_gcj02(wlat, wlng, &glat, &glng);
        fb_geo_gcj02_to_wgs84(glat, glng, &blat, &blng);
        double err = fb_geo_distance_m(wlat, wlng, blat, blng);
        ck_assert_msg(err < 0.5, "round trip error %f m at %f,%f", err, wlat, wlng);

        /* And starting from a GCJ-02 point (what the mini-program sends). */
        double w2lat, w2lng, g2lat, g2lng;
        fb_geo_gcj02_to_wgs84(wlat, wlng, &w2lat, &w2lng);
        ck_assert(fb_geo_distance_m(wlat, wlng, w2lat, w2lng) > 100);
        fb_geo_wgs84_to_gcj02(w2lat, w2lng, &g2lat, &g2lng);
        err = fb_geo_distance_m(wlat, wlng, g2lat, g2lng);
        ck_assert_msg(err < 0.5, "inverse error %f m at %f,%f", err, wlat, wlng);
    }
}
END_TEST

START_TEST(test_outside_china_unchanged) {
    const double places[][2] = {
        {48.8566, 2.3522},    /* Paris */
        {40.7128, -74.0060},  /* New York */
        {-33.8688, 151.2093}, /* Sydney */
        {51.5074, -0.1278},   /* London */
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(places); i++) {
        double lat = places[i][0], lng = places[i][1], a, b;
        ck_assert(!fb_geo_in_china(lat, lng));
        fb_geo_gcj02_to_wgs84(lat, lng, &a, &b);
        ck_assert_double_eq(a, lat);
        ck_assert_double_eq(b, lng);
        fb_geo_wgs84_to_gcj02(lat, lng, &a, &b);
        ck_assert_double_eq(a, lat);
        ck_assert_double_eq(b, lng);
    }
    for (size_t i = 0; i < FB_ARRAY_LEN(s_china); i++)
        ck_assert(fb_geo_in_china(s_china[i][0], s_china[i][1]));
}
END_TEST

START_TEST(test_valid_bounds) {
    ck_assert(fb_geo_valid(30.259, 120.148));
    ck_assert(fb_geo_valid(0, 0));
    ck_assert(fb_geo_valid(90, 180));
    ck_assert(fb_geo_valid(-90, -180));
    ck_assert(!fb_geo_valid(999, 120.148));
    ck_assert(!fb_geo_valid(90.0001, 0));
    ck_assert(!fb_geo_valid(-90.0001, 0));
    ck_assert(!fb_geo_valid(0, 180.0001));
    ck_assert(!fb_geo_valid(0, -180.0001));
    ck_assert(!fb_geo_valid(NAN, 120));
    ck_assert(!fb_geo_valid(30, NAN));
    ck_assert(!fb_geo_valid(INFINITY, 120));
    ck_assert(!fb_geo_valid(30, -INFINITY));
}
END_TEST

/* A square with a square hole, and a MultiPolygon of it and a far square,
 * as ST_AsGeoJSON writes them ([lng, lat]). */
START_TEST(test_point_in_geojson) {
    json_t *poly =
        json_loads("{\"type\":\"Polygon\",\"coordinates\":["
                   "[[120,30],[121,30],[121,31],[120,31],[120,30]],"
                   "[[120.4,30.4],[120.6,30.4],[120.6,30.6],[120.4,30.6],[120.4,30.4]]]}",
                   0, NULL);
    ck_assert_ptr_nonnull(poly);
    ck_assert(fb_geo_in_geojson(poly, 30.2, 120.2));
    ck_assert(!fb_geo_in_geojson(poly, 30.5, 120.5)); /* in the hole */
    ck_assert(!fb_geo_in_geojson(poly, 31.2, 120.2));
    ck_assert(!fb_geo_in_geojson(poly, 30.2, 119.9));
    json_t *tri = json_loads("[[[130,40],[131,40],[131,41],[130,40]]]", 0, NULL);
    json_t *multi = json_pack("{s:s,s:[O,o]}", "type", "MultiPolygon", "coordinates",
                              json_object_get(poly, "coordinates"), tri);
    ck_assert_ptr_nonnull(multi);
    ck_assert(fb_geo_in_geojson(multi, 30.2, 120.2));
    ck_assert(fb_geo_in_geojson(multi, 40.2, 130.5));
    ck_assert(!fb_geo_in_geojson(multi, 40.9, 130.1)); /* outside the triangle */
    json_t *point = json_loads("{\"type\":\"Point\",\"coordinates\":[120.2,30.2]}", 0, NULL);
    ck_assert(!fb_geo_in_geojson(point, 30.2, 120.2));
    ck_assert(!fb_geo_in_geojson(NULL, 30.2, 120.2));
    json_decref(poly);
    json_decref(multi);
    json_decref(point);
}
END_TEST

static Suite *geo_suite(void) {
    Suite *s = suite_create("geo");
    TCase *tc = tcase_create("geo");
    tcase_add_test(tc, test_distance_known_values);
    tcase_add_test(tc, test_gcj_offset_magnitude);
    tcase_add_test(tc, test_gcj_to_wgs_round_trip);
    tcase_add_test(tc, test_outside_china_unchanged);
    tcase_add_test(tc, test_valid_bounds);
    tcase_add_test(tc, test_point_in_geojson);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(geo_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
