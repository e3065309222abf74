/* test_calendar.c — the working-day calendar (holidays and 调休 make-up
 * days) and the deadlines a new case gets on it (fb_calendar.h). Dates are
 * those of 2026 in China: 春节 Feb 15–23 off with Sat Feb 14 and Sat Feb 28
 * worked; 国庆 Oct 1–7 off with Sun Sep 20 and Sat Oct 10 worked. */
#include "fb_calendar.h"
#include "fb_common.h"
#include "fb_time.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR INT64_C(3600000000)

static fb_calendar_t *s_cal;

static int64_t t(const char *s) {
    int64_t us;
    ck_assert_msg(fb_time_parse(s, &us) == 0, "bad time in test: %s", s);
    return us;
}

/* Asserts got == the time written in want, printing both on failure. */
static void expect_time(int64_t got, const char *want) {
    char buf[40];
    fb_time_format(got, buf, sizeof buf);
    ck_assert_msg(got == t(want), "got %s, want %s", buf, want);
}

static void cal_2026_setup(void) {
    s_cal = fb_calendar_new();
    ck_assert_ptr_nonnull(s_cal);
    for (int d = 15; d <= 23; d++) {
        char day[16];
        snprintf(day, sizeof day, "2026-02-%02d", d);
        ck_assert_int_eq(fb_calendar_set(s_cal, day, false), 0);
    }
    ck_assert_int_eq(fb_calendar_set(s_cal, "2026-02-14", true), 0);
    ck_assert_int_eq(fb_calendar_set(s_cal, "2026-02-28", true), 0);
    /* 国庆 through the JSON form that calendar_days rows take. */
    json_error_t jerr;
    json_t *days = json_loads("[{\"day\":\"2026-10-01\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-10-02\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-10-03\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-10-04\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-10-05\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-10-06\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-10-07\",\"kind\":\"holiday\"},"
                              " {\"day\":\"2026-09-20\",\"kind\":\"workday\"},"
                              " {\"day\":\"2026-10-10\",\"kind\":\"workday\"}]",
                              0, &jerr);
    ck_assert_ptr_nonnull(days);
    ck_assert_int_eq(fb_calendar_load_json(s_cal, days), 0);
    json_decref(days);
}

static void cal_teardown(void) {
    fb_calendar_destroy(&s_cal);
    ck_assert_ptr_null(s_cal);
}

static void plain_setup(void) {
    s_cal = fb_calendar_new();
    ck_assert_ptr_nonnull(s_cal);
}

/* ---- is_workday ---- */

START_TEST(test_plain_weekdays_and_weekends) {
    /* 2026-11-16 is a Monday. */
    for (int d = 16; d <= 20; d++)
        ck_assert_msg(fb_calendar_is_workday(s_cal, 2026, 11, d), "2026-11-%d not a workday", d);
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 11, 21));
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 11, 22));
    /* Across a month and a year boundary; 2024-02-29 was a Thursday. */
    ck_assert(fb_calendar_is_workday(s_cal, 2024, 2, 29));
    ck_assert(!fb_calendar_is_workday(s_cal, 2024, 3, 2));
    ck_assert(fb_calendar_is_workday(s_cal, 2025, 12, 31));
    ck_assert(!fb_calendar_is_workday(s_cal, 2027, 1, 3));
    /* Without any calendar object the rule is the same. */
    ck_assert(fb_calendar_is_workday(NULL, 2026, 11, 16));
    ck_assert(!fb_calendar_is_workday(NULL, 2026, 11, 22));
}
END_TEST

START_TEST(test_spring_festival_2026) {
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 2, 13)); /* Friday */
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 2, 14)); /* Saturday, make-up */
    for (int d = 15; d <= 23; d++)
        ck_assert_msg(!fb_calendar_is_workday(s_cal, 2026, 2, d), "2026-02-%d is a holiday", d);
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 2, 24)); /* Tuesday */
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 2, 28)); /* Saturday, make-up */
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 3, 1)); /* Sunday */
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 2, 7)); /* an ordinary Saturday */
}
END_TEST

START_TEST(test_national_day_2026) {
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 9, 20)); /* Sunday, make-up */
    for (int d = 1; d <= 7; d++)
        ck_assert_msg(!fb_calendar_is_workday(s_cal, 2026, 10, d), "2026-10-%d is a holiday", d);
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 10, 8));   /* Thursday */
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 10, 10));  /* Saturday, make-up */
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 10, 11)); /* Sunday */
}
END_TEST

START_TEST(test_set_overrides_earlier_setting) {
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 10, 3));
    ck_assert_int_eq(fb_calendar_set(s_cal, "2026-10-03", true), 0);
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 10, 3));
    ck_assert_int_eq(fb_calendar_set(s_cal, "2026-10-03", false), 0);
    ck_assert(!fb_calendar_is_workday(s_cal, 2026, 10, 3));
}
END_TEST

START_TEST(test_set_refuses_malformed_days) {
    const char *bad[] = {"",           "2026-02",    "2026/02/14",  "2026-13-01", "2026-00-10",
                         "2026-02-00", "2026-02-32", "2026-02-14x", "tomorrow"};
    for (size_t i = 0; i < FB_ARRAY_LEN(bad); i++)
        ck_assert_msg(fb_calendar_set(s_cal, bad[i], false) == FB_EINVAL, "accepted \"%s\"",
                      bad[i]);
    /* None of them changed an ordinary Monday. */
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 3, 2));
}
END_TEST

START_TEST(test_set_refuses_impossible_date) {
    /* 2026-02-30 does not exist; taking it as a holiday must not silently
     * turn Monday 2026-03-02 into one. */
    int rc = fb_calendar_set(s_cal, "2026-02-30", false);
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 3, 2));
    ck_assert_int_eq(rc, FB_EINVAL);
}
END_TEST

START_TEST(test_load_json_refuses_bad_rows) {
    const char *bad[] = {
        "[{\"day\":\"2026-05-04\",\"kind\":\"vacation\"}]",
        "[{\"day\":\"2026-05-04\"}]",
        "[{\"kind\":\"holiday\"}]",
        "[{\"day\":20260504,\"kind\":\"holiday\"}]",
        "{\"day\":\"2026-05-04\",\"kind\":\"holiday\"}",
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(bad); i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_msg(fb_calendar_load_json(s_cal, j) == FB_EINVAL, "accepted %s", bad[i]);
        json_decref(j);
    }
    ck_assert(fb_calendar_is_workday(s_cal, 2026, 5, 4)); /* a Monday, untouched */
}
END_TEST

START_TEST(test_demo_calendar_agrees) {
    /* config/demo/calendar-2026.json holds the same 春节 and 国庆 days. */
    json_error_t jerr;
    json_t *days = json_load_file(FENBO_SOURCE_DIR "/config/demo/calendar-2026.json", 0, &jerr);
    ck_assert_msg(days != NULL, "demo calendar: %s", jerr.text);
    fb_calendar_t *demo = fb_calendar_new();
    ck_assert_int_eq(fb_calendar_load_json(demo, days), 0);
    json_decref(days);
    const int months[] = {2, 9, 10};
    for (size_t m = 0; m < FB_ARRAY_LEN(months); m++)
        for (int d = 1; d <= 28; d++) {
            if (months[m] == 9 && d >= 25) /* 中秋 is only in the demo calendar */
                continue;
            ck_assert_msg(fb_calendar_is_workday(demo, 2026, months[m], d) ==
                              fb_calendar_is_workday(s_cal, 2026, months[m], d),
                          "demo calendar differs on 2026-%02d-%02d", months[m], d);
        }
    fb_calendar_destroy(&demo);
}
END_TEST

/* ---- add_workdays ---- */

START_TEST(test_add_plain_week) {
    /* Friday → Monday, same clock time, fraction kept. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-11-20T10:00:00.250000+08:00"), 1),
                "2026-11-23T10:00:00.250000+08:00");
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-11-16T09:15:00+08:00"), 5),
                "2026-11-23T09:15:00+08:00");
    /* Saturday afternoon: counting starts Monday 00:00. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-11-21T15:00:00+08:00"), 1),
                "2026-11-24T00:00:00+08:00");
    /* Late on a Friday evening is still Friday. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-11-20T23:59:00+08:00"), 1),
                "2026-11-23T23:59:00+08:00");
    /* Zero days from a working day is the start itself. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-11-18T11:00:00+08:00"), 0),
                "2026-11-18T11:00:00+08:00");
}
END_TEST

START_TEST(test_add_across_spring_festival) {
    /* Friday → the make-up Saturday. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-13T10:00:00+08:00"), 1),
                "2026-02-14T10:00:00+08:00");
    /* The make-up Saturday → the first day back, Tuesday Feb 24. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-14T10:00:00+08:00"), 1),
                "2026-02-24T10:00:00+08:00");
    /* From inside the holiday: counting starts at Feb 24 00:00. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-16T15:00:00+08:00"), 1),
                "2026-02-25T00:00:00+08:00");
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-16T15:00:00+08:00"), 0),
                "2026-02-24T00:00:00+08:00");
    /* Midnight means midnight: a fraction of the start is not carried over. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-16T15:00:00.500000+08:00"), 1),
                "2026-02-25T00:00:00+08:00");
    /* Friday Feb 27 + 1 → make-up Saturday Feb 28; + 2 → Monday Mar 2. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-27T16:30:00+08:00"), 1),
                "2026-02-28T16:30:00+08:00");
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-27T16:30:00+08:00"), 2),
                "2026-03-02T16:30:00+08:00");
    /* The same instant written in UTC gives the same answer. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-02-13T02:00:00Z"), 1),
                "2026-02-14T10:00:00+08:00");
}
END_TEST

START_TEST(test_add_across_national_day) {
    /* Friday Sep 18 → make-up Sunday Sep 20. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-09-18T09:00:00+08:00"), 1),
                "2026-09-20T09:00:00+08:00");
    /* Wednesday Sep 30 → Thursday Oct 8. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-09-30T16:00:00+08:00"), 1),
                "2026-10-08T16:00:00+08:00");
    /* Friday Oct 9 → make-up Saturday Oct 10 → Monday Oct 12. */
    expect_time(fb_calendar_add_workdays(s_cal, t("2026-10-09T16:00:00+08:00"), 2),
                "2026-10-12T16:00:00+08:00");
}
END_TEST

/* ---- deadlines ---- */

START_TEST(test_deadlines_normal_complaint) {
    int64_t accept, reply;
    /* Monday 2026-11-23 10:00: sign for by Tuesday; reply 13 working days on,
     * Thursday Dec 10. */
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "normal", "complaint", 0, 0, &accept,
                 &reply);
    expect_time(accept, "2026-11-24T10:00:00+08:00");
    expect_time(reply, "2026-12-10T10:00:00+08:00");
    /* Report and suggestion take as long as a complaint. */
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "normal", "report", 0, 0, &accept, &reply);
    expect_time(reply, "2026-12-10T10:00:00+08:00");
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "normal", "suggestion", 0, 0, &accept,
                 &reply);
    expect_time(reply, "2026-12-10T10:00:00+08:00");
}
END_TEST

START_TEST(test_deadlines_complaint_over_spring_festival) {
    int64_t accept, reply;
    /* Friday Feb 13: working days after it are Feb 14, 24, 25, 26, 27, 28,
     * Mar 2, 3, 4, 5, 6, 9, 10 — the 13th is Tuesday Mar 10. */
    fb_deadlines(s_cal, t("2026-02-13T10:00:00+08:00"), "normal", "complaint", 0, 0, &accept,
                 &reply);
    expect_time(accept, "2026-02-14T10:00:00+08:00");
    expect_time(reply, "2026-03-10T10:00:00+08:00");
}
END_TEST

START_TEST(test_deadlines_short_kinds) {
    int64_t accept, reply;
    const char *kinds[] = {"consult", "help", "praise"};
    for (size_t i = 0; i < FB_ARRAY_LEN(kinds); i++) {
        fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "normal", kinds[i], 0, 0, &accept,
                     &reply);
        expect_time(accept, "2026-11-24T10:00:00+08:00");
        expect_time(reply, "2026-11-26T10:00:00+08:00");
    }
}
END_TEST

START_TEST(test_deadlines_urgent) {
    int64_t accept, reply;
    /* Sign for within 2 hours, whatever the calendar says; reply by kind. */
    fb_deadlines(s_cal, t("2026-02-16T23:00:00+08:00"), "urgent", "consult", 0, 0, &accept, &reply);
    expect_time(accept, "2026-02-17T01:00:00+08:00");
    expect_time(reply, "2026-02-27T00:00:00+08:00");
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "urgent", "complaint", 0, 0, &accept,
                 &reply);
    expect_time(accept, "2026-11-23T12:00:00+08:00");
    expect_time(reply, "2026-12-10T10:00:00+08:00");
}
END_TEST

START_TEST(test_deadlines_emergency) {
    int64_t accept, reply;
    /* 24 hours, holidays or not. */
    fb_deadlines(s_cal, t("2026-10-03T14:00:00+08:00"), "emergency", "help", 0, 0, &accept, &reply);
    expect_time(accept, "2026-10-03T16:00:00+08:00");
    expect_time(reply, "2026-10-04T14:00:00+08:00");
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "emergency", "complaint", 0, 0, &accept,
                 &reply);
    expect_time(reply, "2026-11-24T10:00:00+08:00");
}
END_TEST

START_TEST(test_deadlines_rule_overrides) {
    int64_t accept, reply;
    /* A rule's own deadlines: sign for in 1 hour, reply in 5 working days. */
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "normal", "complaint", 1, 5, &accept,
                 &reply);
    expect_time(accept, "2026-11-23T11:00:00+08:00");
    expect_time(reply, "2026-11-30T10:00:00+08:00");
    /* The override beats urgency's 2 hours too. */
    fb_deadlines(s_cal, t("2026-11-23T10:00:00+08:00"), "urgent", "consult", 4, 0, &accept, &reply);
    expect_time(accept, "2026-11-23T14:00:00+08:00");
    expect_time(reply, "2026-11-26T10:00:00+08:00");
    /* reply_workdays alone; on the calendar (over the Spring Festival). */
    fb_deadlines(s_cal, t("2026-02-13T10:00:00+08:00"), "normal", "consult", 0, 2, &accept, &reply);
    expect_time(accept, "2026-02-14T10:00:00+08:00");
    expect_time(reply, "2026-02-24T10:00:00+08:00");
}
END_TEST

/* Working hours: only hours that begin on a working day count. */
START_TEST(test_add_work_hours) {
    /* Within a working day, then over a weekend (Fri 2026-12-04 16:00 + 24 h:
     * 8 h on Friday, none on the weekend, 16 h on Monday). */
    expect_time(fb_calendar_add_work_hours(s_cal, t("2026-12-02T09:00:00+08:00"), 5),
                "2026-12-02T14:00:00+08:00");
    expect_time(fb_calendar_add_work_hours(s_cal, t("2026-12-04T16:00:00+08:00"), 24),
                "2026-12-07T16:00:00+08:00");
    /* Started on a Saturday: counting begins on Monday at 00:00. */
    expect_time(fb_calendar_add_work_hours(s_cal, t("2026-12-05T10:30:00+08:00"), 2),
                "2026-12-07T02:30:00+08:00");
    expect_time(fb_calendar_add_work_hours(s_cal, t("2026-12-02T09:00:00+08:00"), 0),
                "2026-12-02T09:00:00+08:00");
}
END_TEST

/* Over the National Day holidays (10-01..07 off, 10-10 a make-up workday). */
START_TEST(test_add_work_hours_holidays) {
    expect_time(fb_calendar_add_work_hours(s_cal, t("2026-09-30T12:00:00+08:00"), 24),
                "2026-10-08T12:00:00+08:00");
}
END_TEST

static Suite *calendar_suite(void) {
    Suite *s = suite_create("calendar");
    TCase *tc = tcase_create("plain");
    tcase_add_checked_fixture(tc, plain_setup, cal_teardown);
    tcase_add_test(tc, test_plain_weekdays_and_weekends);
    tcase_add_test(tc, test_add_plain_week);
    tcase_add_test(tc, test_set_refuses_malformed_days);
    tcase_add_test(tc, test_set_refuses_impossible_date);
    tcase_add_test(tc, test_load_json_refuses_bad_rows);
    tcase_add_test(tc, test_add_work_hours);
    suite_add_tcase(s, tc);

    tc = tcase_create("2026");
    tcase_add_checked_fixture(tc, cal_2026_setup, cal_teardown);
    tcase_add_test(tc, test_plain_weekdays_and_weekends);
    tcase_add_test(tc, test_spring_festival_2026);
    tcase_add_test(tc, test_national_day_2026);
    tcase_add_test(tc, test_set_overrides_earlier_setting);
    tcase_add_test(tc, test_demo_calendar_agrees);
    tcase_add_test(tc, test_add_plain_week);
    tcase_add_test(tc, test_add_across_spring_festival);
    tcase_add_test(tc, test_add_across_national_day);
    tcase_add_test(tc, test_add_work_hours_holidays);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_add_checked_fixture(tc, cal_2026_setup, cal_teardown);
    tcase_add_test(tc, test_deadlines_normal_complaint);
    tcase_add_test(tc, test_deadlines_complaint_over_spring_festival);
    tcase_add_test(tc, test_deadlines_short_kinds);
    tcase_add_test(tc, test_deadlines_urgent);
    tcase_add_test(tc, test_deadlines_emergency);
    tcase_add_test(tc, test_deadlines_rule_overrides);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    /* Days are the city's days. */
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    SRunner *sr = srunner_create(calendar_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
