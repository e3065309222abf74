/* test_feed.c — reading assignment events off the bus (Check suite).
 *
 * Every message of another shape or version must be refused with a reason,
 * never crash and never be misread; a well-formed one is read whole. */
#include "delivery.h"
#include "fb_common.h"
#include "feed.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char k_good[] =
    "{\"case_id\":42,\"tracking_no\":\"20261122-1-000123\",\"department\":\"chengguan\","
    "\"rule\":\"占道经营\",\"rule_id\":7,\"assists\":[\"zhujian\",\"shuiwu\"],"
    "\"accept_due\":\"2026-11-23T09:00:00+08:00\",\"reply_due\":null,"
    "\"status\":\"dispatched\",\"received_at\":\"2026-11-22T09:30:00.123+08:00\"}";

static const char k_manual[] =
    "{\"case_id\":43,\"tracking_no\":\"20261122-1-000124\",\"department\":null,"
    "\"rule\":null,\"rule_id\":null,\"assists\":[],\"accept_due\":null,\"reply_due\":null,"
    "\"status\":\"manual\",\"received_at\":\"2026-11-22T01:30:00Z\"}";

static fb_bus_msg_t *msg_new(int n, const char *const *frames) {
    fb_bus_msg_t *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(frames[i]);
        ck_assert_int_eq(zmq_msg_init_size(&m->frames[i], len), 0);
        memcpy(zmq_msg_data(&m->frames[i]), frames[i], len);
        m->n++;
    }
    return m;
}

static void msg_free(fb_bus_msg_t *m) {
    fb_bus_msg_close(m);
    free(m);
}

/* Parses the message of frames and returns the reason ("" when accepted). */
static const char *parse4(const char *topic, const char *version, const char *type,
                          const char *json, fb_feed_event_t *ev) {
    static char why[64];
    const char *frames[] = {topic, version, type, json};
    fb_bus_msg_t *m = msg_new(4, frames);
    why[0] = '\0';
    int rc = fb_feed_parse(m, ev, why, sizeof why);
    ck_assert(rc == 0 || rc == FB_EINVAL);
    ck_assert(rc != 0 || why[0] == '\0');
    ck_assert(rc == 0 || why[0] != '\0');
    msg_free(m);
    return why;
}

/* k_good with one "key":value replaced by "key":replacement. */
static char *good_with(const char *key, const char *replacement) {
    static char buf[1024];
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(k_good, pat);
    ck_assert_ptr_nonnull(at);
    const char *v = at + strlen(pat), *end = v;
    int depth = 0;
    bool in_str = false;
    for (; *end; end++) {
        if (in_str) {
            if (*end == '"')
                in_str = false;
            continue;
        }
        if (*end == '"')
            in_str = true;
        else if (*end == '[')
            depth++;
        else if (*end == ']')
            depth--;
        else if ((*end == ',' || *end == '}') && depth == 0)
            break;
    }
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(v - k_good), k_good, replacement, end);
    return buf;
}

START_TEST(test_good_dispatched) {
    fb_feed_event_t ev;
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", k_good, &ev), "");
    ck_assert_int_eq(ev.case_id, 42);
    ck_assert_str_eq(ev.tracking_no, "20261122-1-000123");
    ck_assert_str_eq(ev.department, "chengguan");
    ck_assert_str_eq(ev.status, "dispatched");
    ck_assert_uint_eq(ev.assists, 2);
    fb_feed_event_clear(&ev);
    ck_assert_ptr_null(ev.doc);
}
END_TEST

START_TEST(test_good_manual) {
    fb_feed_event_t ev;
    ck_assert_str_eq(parse4("@manual", "FB1", "ASG", k_manual, &ev), "");
    ck_assert_int_eq(ev.case_id, 43);
    ck_assert_ptr_null(ev.department);
    ck_assert_str_eq(ev.status, "manual");
    fb_feed_event_clear(&ev);
}
END_TEST

/* Fields a newer dispatcher may add are no reason to drop the event. */
START_TEST(test_extra_fields_accepted) {
    fb_feed_event_t ev;
    ck_assert_str_eq(
        parse4("chengguan", "FB1", "ASG", good_with("rule_id", "7,\"x\":{\"y\":1}"), &ev), "");
    fb_feed_event_clear(&ev);
}
END_TEST

START_TEST(test_frames) {
    char why[64];
    fb_feed_event_t ev;
    const char *frames[] = {"chengguan", "FB1", "ASG", k_good, "extra"};
    for (int n = 0; n <= 5; n++) {
        if (n == 4)
            continue;
        fb_bus_msg_t *m = msg_new(n, frames);
        ck_assert_int_eq(fb_feed_parse(m, &ev, why, sizeof why), FB_EINVAL);
        ck_assert_str_eq(why, "frame_count");
        ck_assert_ptr_null(ev.doc);
        msg_free(m);
    }
    fb_bus_msg_t *m = msg_new(4, frames);
    m->truncated = true;
    ck_assert_int_eq(fb_feed_parse(m, &ev, why, sizeof why), FB_EINVAL);
    msg_free(m);
}
END_TEST

START_TEST(test_version_and_type) {
    fb_feed_event_t ev;
    ck_assert_str_eq(parse4("chengguan", "FB2", "ASG", k_good, &ev), "unknown_version");
    ck_assert_str_eq(parse4("chengguan", "FB", "ASG", k_good, &ev), "unknown_version");
    ck_assert_str_eq(parse4("chengguan", "FB1", "PET", k_good, &ev), "unknown_type");
}
END_TEST

START_TEST(test_bad_json) {
    fb_feed_event_t ev;
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", "{", &ev), "bad_json");
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", "", &ev), "bad_json");
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", "\xff\xfe", &ev), "bad_json");
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", "{\"case_id\":1,\"case_id\":2}", &ev),
                     "bad_json");
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", "[1,2]", &ev), "not_an_object");
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", "\"x\"", &ev), "bad_json");
}
END_TEST

START_TEST(test_bad_fields) {
    static const struct {
        const char *key, *value, *reason;
    } cases[] = {
        {"case_id", "\"42\"", "bad_case_id"},
        {"case_id", "0", "bad_case_id"},
        {"case_id", "-3", "bad_case_id"},
        {"case_id", "4.2", "bad_case_id"},
        {"tracking_no", "\"\"", "bad_tracking_no"},
        {"tracking_no", "null", "bad_tracking_no"},
        {"department", "7", "bad_department"},
        {"rule", "[]", "bad_rule"},
        {"rule_id", "\"7\"", "bad_rule_id"},
        {"assists", "null", "bad_assists"},
        {"assists", "[\"a\",1]", "bad_assists"},
        {"accept_due", "\"tomorrow\"", "bad_accept_due"},
        {"reply_due", "123", "bad_reply_due"},
        {"received_at", "null", "bad_received_at"},
        {"received_at", "\"2026-13-40T99:00:00Z\"", "bad_received_at"},
        {"status", "\"weird\"", "bad_status"},
        {"status", "\"manual\"", "bad_status"}, /* manual with a department */
        {"department", "null", "bad_status"},   /* dispatched to nobody */
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(cases); i++) {
        fb_feed_event_t ev;
        const char *why =
            parse4("chengguan", "FB1", "ASG", good_with(cases[i].key, cases[i].value), &ev);
        ck_assert_msg(strcmp(why, cases[i].reason) == 0, "%s=%s: got '%s', want '%s'", cases[i].key,
                      cases[i].value, why, cases[i].reason);
        ck_assert_ptr_null(ev.doc);
    }
}
END_TEST

START_TEST(test_missing_fields) {
    static const char *const keys[] = {"case_id", "tracking_no", "department", "rule",
                                       "rule_id", "assists",     "accept_due", "reply_due",
                                       "status",  "received_at"};
    for (size_t i = 0; i < FB_ARRAY_LEN(keys); i++) {
        char doc[1024];
        /* Rename the key: the field is then missing. */
        snprintf(doc, sizeof doc, "%s", k_good);
        char pat[64];
        snprintf(pat, sizeof pat, "\"%s\":", keys[i]);
        char *at = strstr(doc, pat);
        ck_assert_ptr_nonnull(at);
        at[1] = 'X';
        fb_feed_event_t ev;
        const char *why = parse4("chengguan", "FB1", "ASG", doc, &ev);
        ck_assert_msg(why[0] != '\0', "missing %s accepted", keys[i]);
    }
}
END_TEST

/* The topic is what subscribers filter on: it must name the same department. */
START_TEST(test_topic_mismatch) {
    fb_feed_event_t ev;
    ck_assert_str_eq(parse4("zhujian", "FB1", "ASG", k_good, &ev), "topic_mismatch");
    ck_assert_str_eq(parse4("chengguanx", "FB1", "ASG", k_good, &ev), "topic_mismatch");
    ck_assert_str_eq(parse4("", "FB1", "ASG", k_good, &ev), "topic_mismatch");
    ck_assert_str_eq(parse4("chengguan", "FB1", "ASG", k_manual, &ev), "topic_mismatch");
}
END_TEST

/* A batch of events delivers nothing it cannot: an empty one needs no
 * database, and a failed statement reports no assignment delivered, so that
 * every message of the batch is logged deferred and none counted. */
START_TEST(test_deliver_batch_without_db) {
    const int64_t ids[] = {7, 3, 7};
    int delivered[] = {-1, 5, 9};
    ck_assert_int_eq(fb_delivery_mark_cases(NULL, ids, 0, delivered), 0);
    ck_assert_int_eq(delivered[0], -1); /* n = 0: nothing written */
    ck_assert_int_eq(fb_delivery_mark_cases(NULL, ids, 3, delivered), FB_EDB);
    for (size_t i = 0; i < FB_ARRAY_LEN(delivered); i++)
        ck_assert_int_eq(delivered[i], 0);
}
END_TEST

static Suite *feed_suite(void) {
    Suite *s = suite_create("feed");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_good_dispatched);
    tcase_add_test(tc, test_good_manual);
    tcase_add_test(tc, test_extra_fields_accepted);
    tcase_add_test(tc, test_frames);
    tcase_add_test(tc, test_version_and_type);
    tcase_add_test(tc, test_bad_json);
    tcase_add_test(tc, test_bad_fields);
    tcase_add_test(tc, test_missing_fields);
    tcase_add_test(tc, test_topic_mismatch);
    suite_add_tcase(s, tc);
    tc = tcase_create("deliver");
    tcase_add_test(tc, test_deliver_batch_without_db);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(feed_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
