/* test_time.c — RFC 3339 timestamps as petitions carry them (fb_time.h). */
#include "fb_common.h"
#include "fb_time.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2026-11-22T01:30:00Z, worked out independently of the code under test. */
#define T_20261122_0130Z INT64_C(1795311000000000)

static int64_t parse_ok(const char *s) {
    int64_t us = -42;
    ck_assert_msg(fb_time_parse(s, &us) == 0, "refused: %s", s);
    return us;
}

static void expect_refused(const char *s) {
    int64_t us = 12345;
    ck_assert_msg(fb_time_parse(s, &us) == FB_EINVAL, "accepted: %s", s);
}

START_TEST(test_parse_zulu) {
    ck_assert_int_eq(parse_ok("2026-11-22T01:30:00Z"), T_20261122_0130Z);
    ck_assert_int_eq(parse_ok("2026-11-22t01:30:00z"), T_20261122_0130Z);
    ck_assert_int_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
}
END_TEST

START_TEST(test_parse_offset) {
    /* The same instant, written in Beijing time and in other zones. */
    ck_assert_int_eq(parse_ok("2026-11-22T09:30:00+08:00"), T_20261122_0130Z);
    ck_assert_int_eq(parse_ok("2026-11-21T20:30:00-05:00"), T_20261122_0130Z);
    ck_assert_int_eq(parse_ok("2026-11-22T07:15:00+05:45"), T_20261122_0130Z);
    ck_assert_int_eq(parse_ok("2026-11-22T01:30:00+00:00"), T_20261122_0130Z);
    /* RFC 3339 allows a space instead of T. */
    ck_assert_int_eq(parse_ok("2026-11-22 09:30:00+08:00"), T_20261122_0130Z);
}
END_TEST

START_TEST(test_parse_fraction) {
    ck_assert_int_eq(parse_ok("2026-11-22T09:30:00.123456+08:00"), T_20261122_0130Z + 123456);
    ck_assert_int_eq(parse_ok("2026-11-22T09:30:00.5+08:00"), T_20261122_0130Z + 500000);
    ck_assert_int_eq(parse_ok("2026-11-22T01:30:00.000001Z"), T_20261122_0130Z + 1);
    /* Digits past the microsecond are dropped, not rounded into garbage. */
    ck_assert_int_eq(parse_ok("2026-11-22T09:30:00.1234569+08:00"), T_20261122_0130Z + 123456);
}
END_TEST

START_TEST(test_parse_leap_day) {
    ck_assert_int_eq(parse_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800000000));
    expect_refused("2026-02-29T00:00:00Z"); /* 2026 is not a leap year */
}
END_TEST

START_TEST(test_parse_invalid_dates_refused) {
    expect_refused("2026-02-30T10:00:00+08:00");
    expect_refused("2026-04-31T10:00:00+08:00");
    expect_refused("2026-13-01T10:00:00+08:00");
    expect_refused("2026-00-10T10:00:00+08:00");
    expect_refused("2026-01-00T10:00:00+08:00");
    expect_refused("2026-01-32T10:00:00+08:00");
    expect_refused("2026-01-10T24:00:00+08:00");
    expect_refused("2026-01-10T10:60:00+08:00");
    expect_refused("2026-01-10T10:00:00+24:00");
}
END_TEST

START_TEST(test_parse_garbage_refused) {
    expect_refused("");
    expect_refused("garbage");
    expect_refused("2026-11-22");                 /* no time */
    expect_refused("2026-11-22T09:30:00");        /* no offset */
    expect_refused("2026-11-22T09:30:00+0800");   /* offset without colon */
    expect_refused("2026-11-22T09:30:00+08");     /* offset without minutes */
    expect_refused("2026-11-22T09:30:00.+08:00"); /* fraction without digits */
    expect_refused("2026-11-22T09:30:00Zjunk");
    expect_refused("2026-11-22T09:30+08:00"); /* no seconds */
    expect_refused("26-11-22T09:30:00+08:00");
    expect_refused("2026/11/22T09:30:00+08:00");
    expect_refused("2026-1a-22T09:30:00+08:00");
    expect_refused(" 2026-11-22T09:30:00+08:00");
}
END_TEST

START_TEST(test_format_local_zone) {
    char buf[40];
    ck_assert_str_eq(fb_time_format(T_20261122_0130Z + 123456, buf, sizeof buf),
                     "2026-11-22T09:30:00.123456+08:00");
    ck_assert_str_eq(fb_time_format(0, buf, sizeof buf), "1970-01-01T08:00:00.000000+08:00");
}
END_TEST

START_TEST(test_format_parse_round_trip) {
    const int64_t samples[] = {
        0,
        1,
        T_20261122_0130Z,
        T_20261122_0130Z + 999999,
        INT64_C(1770948000000000) + 7, /* 2026-02-13T10:00:00.000007+08:00 */
        INT64_C(4102444799999999),     /* 2099-12-31T23:59:59.999999Z */
        -INT64_C(500000),              /* half a second before the epoch */
        -INT64_C(86400000000) * 365,
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(samples); i++) {
        char buf[40];
        fb_time_format(samples[i], buf, sizeof buf);
        int64_t back = 0;
        ck_assert_msg(fb_time_parse(buf, &back) == 0, "cannot parse own output %s", buf);
        ck_assert_msg(back == samples[i], "%s came back as %lld, not %lld", buf, (long long)back,
                      (long long)samples[i]);
    }
}
END_TEST

START_TEST(test_format_other_zone) {
    /* The zone is the process's: UTC prints +00:00 and still round-trips. */
    setenv("TZ", "UTC", 1);
    tzset();
    char buf[40];
    ck_assert_str_eq(fb_time_format(T_20261122_0130Z, buf, sizeof buf),
                     "2026-11-22T01:30:00.000000+00:00");
    int64_t back;
    ck_assert_int_eq(fb_time_parse(buf, &back), 0);
    ck_assert_int_eq(back, T_20261122_0130Z);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
}
END_TEST

START_TEST(test_local_minutes) {
    ck_assert_int_eq(fb_time_local_minutes(parse_ok("2026-11-22T23:30:00+08:00")), 23 * 60 + 30);
    ck_assert_int_eq(fb_time_local_minutes(parse_ok("2026-11-22T15:30:00Z")), 23 * 60 + 30);
    ck_assert_int_eq(fb_time_local_minutes(parse_ok("2026-11-22T16:00:00Z")), 0);
    ck_assert_int_eq(fb_time_local_minutes(parse_ok("2026-11-23T05:59:59.999+08:00")), 359);
}
END_TEST

static Suite *time_suite(void) {
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_zulu);
    tcase_add_test(tc, test_parse_offset);
    tcase_add_test(tc, test_parse_fraction);
    tcase_add_test(tc, test_parse_leap_day);
    tcase_add_test(tc, test_parse_invalid_dates_refused);
    tcase_add_test(tc, test_parse_garbage_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, test_format_local_zone);
    tcase_add_test(tc, test_format_parse_round_trip);
    tcase_add_test(tc, test_format_other_zone);
    tcase_add_test(tc, test_local_minutes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    SRunner *sr = srunner_create(time_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
