/* test_lifecycle.c — the case lifecycle's transition table (Check suite).
 *
 * The expected moves are written out here independently of lifecycle.c, and
 * every (status, action) pair is checked against them, so a row added to or
 * lost from the table shows up as a failure. */
#include "fb_common.h"
#include "lifecycle.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The statuses exactly as schema/0001_core.sql's CHECK on cases.status. */
static const char *const k_schema_statuses[] = {
    "manual", "dispatched", "accepted", "replied", "rated", "closed", "returned", "reopened",
};

static const struct {
    fb_case_status_t from;
    fb_case_action_t action;
    fb_case_status_t to;
} k_legal[] = {
    {FB_CASE_DISPATCHED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED},
    {FB_CASE_REOPENED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED},
    {FB_CASE_ACCEPTED, FB_CASE_REPLY, FB_CASE_REPLIED},
};

START_TEST(test_status_names_match_schema) {
    ck_assert_int_eq(FB_CASE_STATUS_COUNT, FB_ARRAY_LEN(k_schema_statuses));
    for (size_t i = 0; i < FB_ARRAY_LEN(k_schema_statuses); i++) {
        fb_case_status_t s;
        ck_assert_int_eq(fb_case_status_parse(k_schema_statuses[i], &s), 0);
        ck_assert_str_eq(fb_case_status_name(s), k_schema_statuses[i]);
    }
}
END_TEST

START_TEST(test_names_refuse_unknown) {
    fb_case_status_t s = FB_CASE_MANUAL;
    fb_case_action_t a = FB_CASE_ACCEPT;
    ck_assert_int_eq(fb_case_status_parse("received", &s), FB_EINVAL);
    ck_assert_int_eq(fb_case_status_parse("Dispatched", &s), FB_EINVAL);
    ck_assert_int_eq(fb_case_status_parse("", &s), FB_EINVAL);
    ck_assert_int_eq(fb_case_status_parse(NULL, &s), FB_EINVAL);
    ck_assert_int_eq(fb_case_action_parse("close", &a), FB_EINVAL);
    ck_assert_ptr_null(fb_case_status_name(FB_CASE_STATUS_COUNT));
    ck_assert_ptr_null(fb_case_status_name((fb_case_status_t)-1));
    ck_assert_ptr_null(fb_case_action_name(FB_CASE_ACTION_COUNT));
    ck_assert_ptr_null(fb_case_action_event(FB_CASE_ACTION_COUNT));
}
END_TEST

START_TEST(test_action_names_and_events) {
    fb_case_action_t a;
    ck_assert_int_eq(fb_case_action_parse("accept", &a), 0);
    ck_assert_int_eq(a, FB_CASE_ACCEPT);
    ck_assert_int_eq(fb_case_action_parse("reply", &a), 0);
    ck_assert_int_eq(a, FB_CASE_REPLY);
    ck_assert_str_eq(fb_case_action_event(FB_CASE_ACCEPT), "accepted");
    ck_assert_str_eq(fb_case_action_event(FB_CASE_REPLY), "replied");
}
END_TEST

/* Every status against every action: legal exactly when listed above. */
START_TEST(test_every_pair) {
    for (int s = 0; s < FB_CASE_STATUS_COUNT; s++) {
        for (int a = 0; a < FB_CASE_ACTION_COUNT; a++) {
            int expect = -1;
            for (size_t i = 0; i < FB_ARRAY_LEN(k_legal); i++)
                if ((int)k_legal[i].from == s && (int)k_legal[i].action == a)
                    expect = (int)k_legal[i].to;
            fb_case_status_t to = FB_CASE_STATUS_COUNT;
            int rc = fb_lifecycle_next((fb_case_status_t)s, (fb_case_action_t)a, &to);
            if (expect < 0) {
                ck_assert_msg(rc == FB_EINVAL, "%s a %s case must be refused",
                              fb_case_action_name((fb_case_action_t)a),
                              fb_case_status_name((fb_case_status_t)s));
                ck_assert_int_eq(to, FB_CASE_STATUS_COUNT); /* untouched */
                ck_assert(!fb_lifecycle_allowed((fb_case_status_t)s, (fb_case_action_t)a));
            } else {
                ck_assert_int_eq(rc, 0);
                ck_assert_int_eq(to, expect);
                ck_assert(fb_lifecycle_allowed((fb_case_status_t)s, (fb_case_action_t)a));
            }
        }
    }
}
END_TEST

/* The walk a case takes through this first version, and no step twice. */
START_TEST(test_happy_path_and_no_repeat) {
    fb_case_status_t s = FB_CASE_DISPATCHED;
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_ACCEPT, &s), 0);
    ck_assert_int_eq(s, FB_CASE_ACCEPTED);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_ACCEPT, &s), FB_EINVAL);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_REPLY, &s), 0);
    ck_assert_int_eq(s, FB_CASE_REPLIED);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_REPLY, &s), FB_EINVAL);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_ACCEPT, &s), FB_EINVAL);
    ck_assert_int_eq(s, FB_CASE_REPLIED);
}
END_TEST

START_TEST(test_allowed_actions) {
    fb_case_action_t out[FB_CASE_ACTION_COUNT];
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_DISPATCHED, out, FB_CASE_ACTION_COUNT), 1);
    ck_assert_int_eq(out[0], FB_CASE_ACCEPT);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_ACCEPTED, out, FB_CASE_ACTION_COUNT), 1);
    ck_assert_int_eq(out[0], FB_CASE_REPLY);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_MANUAL, out, FB_CASE_ACTION_COUNT), 0);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_CLOSED, out, FB_CASE_ACTION_COUNT), 0);
    /* The count is right even when out is too small to hold them. */
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_REOPENED, NULL, 0), 1);
}
END_TEST

START_TEST(test_refusal_messages) {
    char buf[128];
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_DISPATCHED, FB_CASE_REPLY, buf, sizeof buf),
                     "cannot reply a dispatched case; allowed: accept");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_ACCEPTED, FB_CASE_ACCEPT, buf, sizeof buf),
                     "cannot accept an accepted case; allowed: reply");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_MANUAL, FB_CASE_ACCEPT, buf, sizeof buf),
                     "cannot accept a manual case; allowed: none");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_REPLIED, FB_CASE_REPLY, buf, sizeof buf),
                     "cannot reply a replied case; allowed: none");
}
END_TEST

/* A buffer too small cuts the message but never overruns it. */
START_TEST(test_refusal_small_buffer) {
    char buf[16 + 8];
    memset(buf, 'x', sizeof buf);
    fb_lifecycle_refusal(FB_CASE_DISPATCHED, FB_CASE_REPLY, buf, 16);
    ck_assert_uint_eq(strlen(buf), 15);
    ck_assert_int_eq(buf[16], 'x');
    for (size_t n = 1; n < 64; n++) {
        char b[64 + 1];
        b[n] = '#';
        fb_lifecycle_refusal(FB_CASE_REOPENED, FB_CASE_REPLY, b, n);
        ck_assert_uint_lt(strlen(b), n);
        ck_assert_int_eq(b[n], '#');
    }
}
END_TEST

static Suite *lifecycle_suite(void) {
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_status_names_match_schema);
    tcase_add_test(tc, test_names_refuse_unknown);
    tcase_add_test(tc, test_action_names_and_events);
    tcase_add_test(tc, test_every_pair);
    tcase_add_test(tc, test_happy_path_and_no_repeat);
    tcase_add_test(tc, test_allowed_actions);
    tcase_add_test(tc, test_refusal_messages);
    tcase_add_test(tc, test_refusal_small_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(lifecycle_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
