/* test_petition.c — the canonical petition and the JSON codec that carries it
 * through the spool and over the bus (fb_petition.h). A field the codec drops
 * is a field the dispatcher never sees, so every field is checked. */
#include "fb_common.h"
#include "fb_petition.h"
#include "fb_time.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t t(const char *s) {
    int64_t us;
    ck_assert_int_eq(fb_time_parse(s, &us), 0);
    return us;
}

/* A petition with every field set, Chinese text included. */
static fb_petition_t *full_petition(void) {
    fb_petition_t *p = fb_petition_new();
    ck_assert_ptr_nonnull(p);
    p->tracking_no = strdup("20261122-1-000123");
    p->channel = strdup("hotline");
    p->idem_key = strdup("HL-2026-000987");
    p->received_at_us = t("2026-11-22T09:30:00.123456+08:00");
    p->spooled_at_us = t("2026-11-22T09:30:00.654321+08:00");
    p->caller_name = strdup("张三");
    p->caller_phone = strdup("13812345678");
    p->content = strdup("馬路上有個坑　請儘快處理！\n\"引号\" \\ 反斜杠");
    p->content_norm = strdup("马路上有个坑 请尽快处理! \"引号\" \\ 反斜杠");
    p->category = strdup("030101");
    p->address = strdup("望江区江城路1号");
    p->has_location = true;
    p->lat = 30.274085123456789;
    p->lng = 120.15507012345678;
    p->urgency = strdup("urgent");
    p->kind = strdup("complaint");
    p->callback = true;
    p->raw = json_pack("{s:s,s:{s:[i,i,s]},s:b,s:n}", "order_no", "HL-2026-000987", "nested", "a",
                       1, 2, "三", "flag", 1, "nothing");
    ck_assert_ptr_nonnull(p->raw);
    return p;
}

static void assert_str_eq0(const char *a, const char *b, const char *field) {
    if (!a || !b)
        ck_assert_msg(a == b, "%s: %s vs %s", field, a ? a : "NULL", b ? b : "NULL");
    else
        ck_assert_msg(strcmp(a, b) == 0, "%s: \"%s\" vs \"%s\"", field, a, b);
}

static void assert_same(const fb_petition_t *a, const fb_petition_t *b) {
    assert_str_eq0(a->tracking_no, b->tracking_no, "tracking_no");
    assert_str_eq0(a->channel, b->channel, "channel");
    assert_str_eq0(a->idem_key, b->idem_key, "idem_key");
    ck_assert_int_eq(a->received_at_us, b->received_at_us);
    ck_assert_int_eq(a->spooled_at_us, b->spooled_at_us);
    assert_str_eq0(a->caller_name, b->caller_name, "caller_name");
    assert_str_eq0(a->caller_phone, b->caller_phone, "caller_phone");
    assert_str_eq0(a->content, b->content, "content");
    assert_str_eq0(a->content_norm, b->content_norm, "content_norm");
    assert_str_eq0(a->category, b->category, "category");
    assert_str_eq0(a->address, b->address, "address");
    ck_assert_int_eq(a->has_location, b->has_location);
    if (a->has_location) {
        ck_assert_double_eq(a->lat, b->lat);
        ck_assert_double_eq(a->lng, b->lng);
    }
    assert_str_eq0(a->urgency, b->urgency, "urgency");
    assert_str_eq0(a->kind, b->kind, "kind");
    ck_assert_int_eq(a->callback, b->callback);
    assert_str_eq0(a->grid_region, b->grid_region, "grid_region");
    assert_str_eq0(a->grid_worker, b->grid_worker, "grid_worker");
    ck_assert_int_eq(a->resolved_on_site, b->resolved_on_site);
    if (a->raw && !json_is_null(a->raw))
        ck_assert_msg(json_equal(a->raw, b->raw), "raw differs");
    else
        ck_assert(b->raw == NULL || json_is_null(b->raw));
}

static fb_petition_t *round_trip_json(const fb_petition_t *p) {
    json_t *j = fb_petition_to_json(p);
    ck_assert_ptr_nonnull(j);
    fb_petition_t *q = NULL;
    ck_assert_int_eq(fb_petition_from_json(j, &q), 0);
    ck_assert_ptr_nonnull(q);
    json_decref(j);
    return q;
}

static fb_petition_t *round_trip_text(const fb_petition_t *p) {
    char *s = fb_petition_dumps(p);
    ck_assert_ptr_nonnull(s);
    fb_petition_t *q = NULL;
    ck_assert_int_eq(fb_petition_loads(s, strlen(s), &q), 0);
    ck_assert_ptr_nonnull(q);
    free(s);
    return q;
}

START_TEST(test_round_trip_every_field) {
    fb_petition_t *p = full_petition();
    fb_petition_t *q = round_trip_json(p);
    assert_same(p, q);
    fb_petition_destroy(&q);
    ck_assert_ptr_null(q);
    fb_petition_destroy(&p);
}
END_TEST

/* A grid worker's report keeps who reported it from where, and whether it
 * was fixed on the spot; other channels carry no grid object at all. */
START_TEST(test_round_trip_grid_report) {
    fb_petition_t *p = full_petition();
    free(p->channel);
    p->channel = strdup("grid");
    p->grid_region = strdup("330102001001001");
    p->grid_worker = strdup("网格员 李四");
    p->resolved_on_site = true;
    fb_petition_t *q = round_trip_text(p);
    assert_same(p, q);
    ck_assert(q->resolved_on_site);
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
    p = full_petition();
    json_t *j = fb_petition_to_json(p);
    ck_assert_ptr_null(json_object_get(j, "grid"));
    json_decref(j);
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_round_trip_through_text) {
    /* What the spool stores and the bus carries is the dumped text. */
    fb_petition_t *p = full_petition();
    fb_petition_t *q = round_trip_text(p);
    assert_same(p, q);
    /* And a second trip changes nothing either. */
    fb_petition_t *r = round_trip_text(q);
    assert_same(p, r);
    fb_petition_destroy(&r);
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_round_trip_times_in_other_zone) {
    /* The receiving process may run in another zone: the instant survives. */
    fb_petition_t *p = full_petition();
    char *s = fb_petition_dumps(p);
    setenv("TZ", "America/New_York", 1);
    tzset();
    fb_petition_t *q = NULL;
    ck_assert_int_eq(fb_petition_loads(s, strlen(s), &q), 0);
    ck_assert_int_eq(q->received_at_us, p->received_at_us);
    ck_assert_int_eq(q->spooled_at_us, p->spooled_at_us);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    free(s);
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_round_trip_optional_fields_absent) {
    fb_petition_t *p = full_petition();
    free(p->caller_name);
    free(p->caller_phone);
    free(p->category);
    free(p->address);
    p->caller_name = p->caller_phone = p->category = p->address = NULL;
    p->has_location = false;
    p->callback = false;
    json_decref(p->raw);
    p->raw = NULL;
    fb_petition_t *q = round_trip_text(p);
    assert_same(p, q);
    ck_assert_ptr_null(q->caller_name);
    ck_assert_ptr_null(q->caller_phone);
    ck_assert_ptr_null(q->category);
    ck_assert_ptr_null(q->address);
    ck_assert(!q->has_location);
    ck_assert(!q->callback);
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_round_trip_caller_phone_only) {
    fb_petition_t *p = full_petition();
    free(p->caller_name);
    p->caller_name = NULL;
    fb_petition_t *q = round_trip_text(p);
    ck_assert_ptr_null(q->caller_name);
    ck_assert_str_eq(q->caller_phone, "13812345678");
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_round_trip_location_edges) {
    /* Zero coordinates are a location too, not "no location". */
    fb_petition_t *p = full_petition();
    p->lat = 0.0;
    p->lng = 0.0;
    fb_petition_t *q = round_trip_text(p);
    ck_assert(q->has_location);
    ck_assert_double_eq(q->lat, 0.0);
    ck_assert_double_eq(q->lng, 0.0);
    fb_petition_destroy(&q);
    p->lat = -33.868819999999999;
    p->lng = -151.20929999999998;
    q = round_trip_text(p);
    ck_assert_double_eq(q->lat, p->lat);
    ck_assert_double_eq(q->lng, p->lng);
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
}
END_TEST

static const char *const s_required[] = {"tracking_no",  "channel",    "idem_key",
                                         "received_at",  "spooled_at", "content",
                                         "content_norm", "urgency",    "kind"};

START_TEST(test_missing_required_refused) {
    fb_petition_t *p = full_petition();
    for (size_t i = 0; i < FB_ARRAY_LEN(s_required); i++) {
        json_t *j = fb_petition_to_json(p);
        ck_assert_int_eq(json_object_del(j, s_required[i]), 0);
        fb_petition_t *q = (fb_petition_t *)0x1;
        ck_assert_msg(fb_petition_from_json(j, &q) == FB_EINVAL, "accepted without %s",
                      s_required[i]);
        ck_assert_ptr_null(q);
        /* null is as missing as absent. */
        json_object_set_new(j, s_required[i], json_null());
        q = (fb_petition_t *)0x1;
        ck_assert_msg(fb_petition_from_json(j, &q) == FB_EINVAL, "accepted %s: null",
                      s_required[i]);
        ck_assert_ptr_null(q);
        json_decref(j);
    }
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_wrong_shapes_refused) {
    fb_petition_t *p = full_petition();
    struct {
        const char *key;
        json_t *value;
    } bad[] = {
        {"channel", json_integer(5)},
        {"content", json_pack("[s]", "text")},
        {"received_at", json_string("yesterday")},
        {"spooled_at", json_string("2026-02-30T10:00:00+08:00")},
        {"received_at", json_integer(1795311000)},
        {"location", json_pack("{s:s,s:f}", "lat", "30.27", "lng", 120.15)},
        {"location", json_pack("{s:f}", "lat", 30.27)},
        {"category", json_true()},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(bad); i++) {
        json_t *j = fb_petition_to_json(p);
        json_object_set_new(j, bad[i].key, bad[i].value);
        fb_petition_t *q = (fb_petition_t *)0x1;
        ck_assert_msg(fb_petition_from_json(j, &q) == FB_EINVAL, "accepted bad %s (case %zu)",
                      bad[i].key, i);
        ck_assert_ptr_null(q);
        json_decref(j);
    }
    fb_petition_t *q = (fb_petition_t *)0x1;
    json_t *arr = json_array();
    ck_assert_int_eq(fb_petition_from_json(arr, &q), FB_EINVAL);
    ck_assert_ptr_null(q);
    json_decref(arr);
    q = (fb_petition_t *)0x1;
    ck_assert_int_eq(fb_petition_loads("{\"tracking_no\":", 15, &q), FB_EINVAL);
    ck_assert_ptr_null(q);
    fb_petition_destroy(&p);
}
END_TEST

START_TEST(test_urgency_valid) {
    ck_assert(fb_urgency_valid("normal"));
    ck_assert(fb_urgency_valid("urgent"));
    ck_assert(fb_urgency_valid("emergency"));
    ck_assert(!fb_urgency_valid("Normal"));
    ck_assert(!fb_urgency_valid("critical"));
    ck_assert(!fb_urgency_valid("urgent "));
    ck_assert(!fb_urgency_valid(""));
    ck_assert(!fb_urgency_valid(NULL));
}
END_TEST

START_TEST(test_kind_valid) {
    const char *kinds[] = {"consult", "help", "complaint", "report", "suggestion", "praise"};
    for (size_t i = 0; i < FB_ARRAY_LEN(kinds); i++)
        ck_assert_msg(fb_kind_valid(kinds[i]), "%s refused", kinds[i]);
    ck_assert(!fb_kind_valid("complain"));
    ck_assert(!fb_kind_valid("投诉"));
    ck_assert(!fb_kind_valid("normal"));
    ck_assert(!fb_kind_valid(""));
    ck_assert(!fb_kind_valid(NULL));
}
END_TEST

static Suite *petition_suite(void) {
    Suite *s = suite_create("petition");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_round_trip_every_field);
    tcase_add_test(tc, test_round_trip_grid_report);
    tcase_add_test(tc, test_round_trip_through_text);
    tcase_add_test(tc, test_round_trip_times_in_other_zone);
    tcase_add_test(tc, test_round_trip_optional_fields_absent);
    tcase_add_test(tc, test_round_trip_caller_phone_only);
    tcase_add_test(tc, test_round_trip_location_edges);
    tcase_add_test(tc, test_missing_required_refused);
    tcase_add_test(tc, test_wrong_shapes_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("enums");
    tcase_add_test(tc, test_urgency_valid);
    tcase_add_test(tc, test_kind_valid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    SRunner *sr = srunner_create(petition_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
