/* test_deadlines.c — the pure parts of the worker's timers (Check suite):
 * the timer actions' names and offsets, the callback schedule on the
 * working-day calendar (across the 2026 Spring Festival and its make-up
 * working days), the callback kind per channel, the hotspot lookback, and a
 * loop with the sweep started and stopped that closes with no handle left.
 *
 * Dates are in Asia/Shanghai, set before anything reads the zone. */
#include "callback.h"
#include "deadlines.h"
#include "fb_calendar.h"
#include "fb_common.h"
#include "fb_time.h"
#include "hotspot.h"
#include "worker.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The Spring Festival of 2026 as calendar_days holds it (config/demo). */
static fb_calendar_t *spring_festival(void) {
    fb_calendar_t *cal = fb_calendar_new();
    ck_assert_ptr_nonnull(cal);
    ck_assert_int_eq(fb_calendar_set(cal, "2026-02-14", true), 0); /* Saturday, make-up */
    static const char *const holidays[] = {"2026-02-15", "2026-02-16", "2026-02-17",
                                           "2026-02-18", "2026-02-19", "2026-02-20",
                                           "2026-02-21", "2026-02-22", "2026-02-23"};
    for (size_t i = 0; i < FB_ARRAY_LEN(holidays); i++)
        ck_assert_int_eq(fb_calendar_set(cal, holidays[i], false), 0);
    ck_assert_int_eq(fb_calendar_set(cal, "2026-02-28", true), 0); /* Saturday, make-up */
    return cal;
}

static int64_t at(const char *rfc3339) {
    int64_t us;
    ck_assert_int_eq(fb_time_parse(rfc3339, &us), 0);
    return us;
}

static void ck_time(int64_t us, const char *want) {
    ck_assert_int_eq(us, at(want));
}

START_TEST(test_action_names) {
    static const char *const names[] = {"reminder_accept", "reminder_reply",   "overdue_accept",
                                        "overdue_reply",   "escalated_accept", "escalated_reply"};
    static const char *const events[] = {"reminder_accept", "reminder_reply", "overdue_accept",
                                         "overdue_reply",   "escalated",      "escalated"};
    ck_assert_int_eq(FB_TIMER_ACTION_COUNT, FB_ARRAY_LEN(names));
    for (int a = 0; a < FB_TIMER_ACTION_COUNT; a++) {
        ck_assert_str_eq(fb_timer_action_name((fb_timer_action_t)a), names[a]);
        ck_assert_str_eq(fb_timer_action_event((fb_timer_action_t)a), events[a]);
        ck_assert_str_eq(fb_timer_action_deadline((fb_timer_action_t)a),
                         a % 2 == 0 ? "accept" : "reply");
    }
    ck_assert_ptr_null(fb_timer_action_name(FB_TIMER_ACTION_COUNT));
    ck_assert_ptr_null(fb_timer_action_event((fb_timer_action_t)-1));
    ck_assert_ptr_null(fb_timer_action_deadline(FB_TIMER_ACTION_COUNT));
}
END_TEST

START_TEST(test_action_offsets) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    fb_deadline_opts_t o;
    fb_deadline_opts_from_config(&o, &cfg);
    ck_assert_int_eq(o.reminder_accept_min, 30);
    ck_assert_int_eq(o.reminder_reply_min, 240);
    ck_assert_int_eq(o.escalate_after_h, 4);
    ck_assert_int_gt(o.batch, 0);
    int64_t off = 1;
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_REMINDER_ACCEPT, &off));
    ck_assert_int_eq(off, -1800);
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_REMINDER_REPLY, &off));
    ck_assert_int_eq(off, -14400);
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_OVERDUE_ACCEPT, &off));
    ck_assert_int_eq(off, 0);
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_OVERDUE_REPLY, &off));
    ck_assert_int_eq(off, 0);
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_ESCALATED_ACCEPT, &off));
    ck_assert_int_eq(off, 14400);
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_ESCALATED_REPLY, &off));
    ck_assert_int_eq(off, 14400);
    /* A reminder of 0 minutes is no reminder; escalation at once is allowed. */
    o.reminder_accept_min = 0;
    o.escalate_after_h = 0;
    ck_assert(!fb_timer_action_offset(&o, FB_TIMER_REMINDER_ACCEPT, &off));
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_REMINDER_REPLY, &off));
    ck_assert(fb_timer_action_offset(&o, FB_TIMER_ESCALATED_ACCEPT, &off));
    ck_assert_int_eq(off, 0);
    ck_assert(!fb_timer_action_offset(&o, FB_TIMER_ACTION_COUNT, &off));
    fb_config_free(&cfg);
}
END_TEST

/* A reply on an ordinary Tuesday: due Wednesday 00:00, three working days
 * to rate (Wed, Thu, Fri), expiring Monday 00:00. */
START_TEST(test_callback_ordinary_week) {
    fb_calendar_t *cal = spring_festival();
    int64_t due, exp;
    fb_callback_schedule(cal, at("2026-11-24T15:20:00+08:00"), 3, &due, &exp);
    ck_time(due, "2026-11-25T00:00:00+08:00");
    ck_time(exp, "2026-11-30T00:00:00+08:00");
    /* Friday evening: Monday. */
    fb_callback_schedule(cal, at("2026-11-27T18:00:00+08:00"), 1, &due, &exp);
    ck_time(due, "2026-11-30T00:00:00+08:00");
    ck_time(exp, "2026-12-01T00:00:00+08:00");
    /* A reply a minute before midnight still counts for its day; one in
     * the first minute of Saturday (Shanghai time, not UTC) is a weekend
     * reply and is called back on Monday too. */
    fb_callback_schedule(cal, at("2026-11-27T15:59:00Z"), 1, &due, &exp);
    ck_time(due, "2026-11-30T00:00:00+08:00");
    fb_callback_schedule(cal, at("2026-11-27T16:01:00Z"), 1, &due, &exp);
    ck_time(due, "2026-11-30T00:00:00+08:00");
    fb_calendar_destroy(&cal);
}
END_TEST

START_TEST(test_callback_spring_festival) {
    fb_calendar_t *cal = spring_festival();
    int64_t due, exp;
    /* Friday 13 February: the next working day is the make-up Saturday;
     * then the holiday (15–23) is skipped: 24, 25, 26. */
    fb_callback_schedule(cal, at("2026-02-13T16:00:00+08:00"), 3, &due, &exp);
    ck_time(due, "2026-02-14T00:00:00+08:00");
    ck_time(exp, "2026-02-26T00:00:00+08:00");
    /* On the make-up Saturday: Tuesday 24 after the holiday; 25, 26, 27. */
    fb_callback_schedule(cal, at("2026-02-14T10:00:00+08:00"), 3, &due, &exp);
    ck_time(due, "2026-02-24T00:00:00+08:00");
    ck_time(exp, "2026-02-27T00:00:00+08:00");
    /* In the middle of the holiday: the first day after it. */
    fb_callback_schedule(cal, at("2026-02-18T09:00:00+08:00"), 2, &due, &exp);
    ck_time(due, "2026-02-24T00:00:00+08:00");
    ck_time(exp, "2026-02-26T00:00:00+08:00");
    /* Friday 27: the make-up Saturday 28 is a working day; then Mon 2 March. */
    fb_callback_schedule(cal, at("2026-02-27T11:00:00+08:00"), 1, &due, &exp);
    ck_time(due, "2026-02-28T00:00:00+08:00");
    ck_time(exp, "2026-03-02T00:00:00+08:00");
    fb_calendar_destroy(&cal);
}
END_TEST

/* Without the exceptions, the same dates fall on an ordinary week: the
 * calendar is what moved them. */
START_TEST(test_callback_without_calendar) {
    fb_calendar_t *cal = fb_calendar_new();
    int64_t due, exp;
    fb_callback_schedule(cal, at("2026-02-13T16:00:00+08:00"), 3, &due, &exp);
    ck_time(due, "2026-02-16T00:00:00+08:00");
    ck_time(exp, "2026-02-19T00:00:00+08:00");
    fb_calendar_destroy(&cal);
}
END_TEST

START_TEST(test_callback_kind) {
    ck_assert_str_eq(fb_callback_kind("hotline"), "phone");
    ck_assert_str_eq(fb_callback_kind("miniapp"), "rating_request");
    ck_assert_str_eq(fb_callback_kind("open311"), "rating_request");
    ck_assert_str_eq(fb_callback_kind("mailbox"), "rating_request");
    ck_assert_str_eq(fb_callback_kind(NULL), "rating_request");
}
END_TEST

START_TEST(test_names_and_cursors) {
    static const char *const steps[] = {"rated", "superseded", "schedule", "request", "close"};
    ck_assert_int_eq(FB_CALLBACK_STEP_COUNT, FB_ARRAY_LEN(steps));
    for (int i = 0; i < FB_CALLBACK_STEP_COUNT; i++)
        ck_assert_str_eq(fb_callback_step_name((fb_callback_step_t)i), steps[i]);
    ck_assert_ptr_null(fb_callback_step_name(FB_CALLBACK_STEP_COUNT));
    fb_timer_cursor_t cur = {"2026-02-14 10:00:00+08", 42};
    fb_timer_cursor_reset(&cur);
    ck_assert_str_eq(cur.due, "-infinity");
    ck_assert_int_eq(cur.id, 0);
}
END_TEST

START_TEST(test_hotspot_lookback) {
    ck_assert_int_eq(fb_hotspot_lookback_min(120), 1440);
    ck_assert_int_eq(fb_hotspot_lookback_min(1440), 1440);
    ck_assert_int_eq(fb_hotspot_lookback_min(4320), 4320);
}
END_TEST

static void on_walk(uv_handle_t *h, void *arg) {
    (void)h;
    (*(int *)arg)++;
}

/* Without a database the sweep does nothing, and stopping it leaves the
 * loop with nothing open. */
START_TEST(test_timers_loop_closes) {
    fb_worker_t w;
    memset(&w, 0, sizeof w);
    fb_config_defaults(&w.cfg);
    w.cfg.worker_timers_s = 1;
    ck_assert_int_eq(uv_loop_init(&w.loop), 0);
    ck_assert_int_eq(fb_dblink_new(&w.loop, "host=/nonexistent-fenbo-test port=1", "Asia/Shanghai",
                                   NULL, NULL, &w.db),
                     0);
    fb_timers_t *t = NULL;
    ck_assert_int_eq(fb_timers_start(&w, &t), 0);
    ck_assert_ptr_nonnull(t);
    fb_timers_kick(t);
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    cfg.worker_timers_s = 2;
    fb_timers_reload(t, &cfg);
    ck_assert_int_eq(w.cfg.worker_timers_s, 2);
    fb_config_free(&cfg);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    char buf[4096];
    int n = fb_timers_metrics(t, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(
        strstr(buf, "fenbo_worker_timer_actions_total{action=\"escalated_reply\"}"));
    ck_assert_int_eq(fb_timers_metrics(t, buf, 64), -1);
    fb_timers_stop(&t);
    ck_assert_ptr_null(t);
    fb_timers_stop(&t); /* twice is harmless */
    fb_dblink_destroy(&w.db);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    int open = 0;
    uv_walk(&w.loop, on_walk, &open);
    ck_assert_int_eq(open, 0);
    ck_assert_int_eq(uv_loop_close(&w.loop), 0);
    fb_config_free(&w.cfg);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("deadlines");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_action_names);
    tcase_add_test(tc, test_action_offsets);
    tcase_add_test(tc, test_callback_ordinary_week);
    tcase_add_test(tc, test_callback_spring_festival);
    tcase_add_test(tc, test_callback_without_calendar);
    tcase_add_test(tc, test_callback_kind);
    tcase_add_test(tc, test_names_and_cursors);
    tcase_add_test(tc, test_hotspot_lookback);
    suite_add_tcase(s, tc);
    TCase *loop = tcase_create("loop");
    tcase_add_test(loop, test_timers_loop_closes);
    suite_add_tcase(s, loop);
    return s;
}

int main(void) {
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
