/* test_lifecycle.c — the case lifecycle's transition table (Check suite).
 *
 * The expected moves are written out here independently of lifecycle.c, and
 * every (status, action, target) triple is checked against them, so a row
 * added to or lost from the table shows up as a failure. */
#include "actions.h"
#include "fb_common.h"
#include "lifecycle.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The statuses exactly as schema/0001_core.sql's CHECK on cases.status. */
static const char *const k_schema_statuses[] = {
    "manual", "dispatched", "accepted", "replied", "rated", "closed", "returned", "reopened",
};

static const char *const k_action_names[] = {
    "accept",           "return", "approve_return", "reject_return",
    "assign",           "assist", "extend",         "approve_extension",
    "reject_extension", "reply",  "rate",           "callback",
    "reopen",           "close",
};

/* The lifecycle, as README.md tells it. */
static const struct {
    fb_case_status_t from;
    fb_case_action_t action;
    fb_case_status_t to;
    const char *event;
} k_legal[] = {
    {FB_CASE_DISPATCHED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED, "accepted"},
    {FB_CASE_REOPENED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED, "accepted"},
    {FB_CASE_DISPATCHED, FB_CASE_RETURN, FB_CASE_RETURNED, "returned"},
    {FB_CASE_RETURNED, FB_CASE_APPROVE_RETURN, FB_CASE_DISPATCHED, "redispatched"},
    {FB_CASE_RETURNED, FB_CASE_APPROVE_RETURN, FB_CASE_MANUAL, "manual"},
    {FB_CASE_RETURNED, FB_CASE_REJECT_RETURN, FB_CASE_DISPATCHED, "return_rejected"},
    {FB_CASE_MANUAL, FB_CASE_ASSIGN, FB_CASE_DISPATCHED, "assigned"},
    {FB_CASE_RETURNED, FB_CASE_ASSIGN, FB_CASE_DISPATCHED, "assigned"},
    {FB_CASE_ACCEPTED, FB_CASE_ASSIST, FB_CASE_ACCEPTED, "assist_requested"},
    {FB_CASE_ACCEPTED, FB_CASE_EXTEND, FB_CASE_ACCEPTED, "extension_requested"},
    {FB_CASE_ACCEPTED, FB_CASE_APPROVE_EXTENSION, FB_CASE_ACCEPTED, "extension_approved"},
    {FB_CASE_ACCEPTED, FB_CASE_REJECT_EXTENSION, FB_CASE_ACCEPTED, "extension_rejected"},
    {FB_CASE_ACCEPTED, FB_CASE_REPLY, FB_CASE_REPLIED, "replied"},
    {FB_CASE_REPLIED, FB_CASE_RATE, FB_CASE_RATED, "rated"},
    {FB_CASE_RATED, FB_CASE_RATE, FB_CASE_RATED, "rated"},
    {FB_CASE_REPLIED, FB_CASE_CALLBACK, FB_CASE_RATED, "callback_recorded"},
    {FB_CASE_RATED, FB_CASE_CALLBACK, FB_CASE_RATED, "callback_recorded"},
    {FB_CASE_RATED, FB_CASE_REOPEN, FB_CASE_REOPENED, "reopened"},
    {FB_CASE_REPLIED, FB_CASE_REOPEN, FB_CASE_REOPENED, "reopened"}, /* 核查 rejected */
    {FB_CASE_RATED, FB_CASE_CLOSE, FB_CASE_CLOSED, "closed"},
    {FB_CASE_REPLIED, FB_CASE_CLOSE, FB_CASE_CLOSED, "closed"},
    {FB_CASE_MANUAL, FB_CASE_CLOSE, FB_CASE_CLOSED, "closed"},
};

/* The first listed target of (s, a), or -1. */
static int expected_next(int s, int a) {
    for (size_t i = 0; i < FB_ARRAY_LEN(k_legal); i++)
        if ((int)k_legal[i].from == s && (int)k_legal[i].action == a)
            return (int)k_legal[i].to;
    return -1;
}

static const char *expected_event(int s, int a, int to) {
    for (size_t i = 0; i < FB_ARRAY_LEN(k_legal); i++)
        if ((int)k_legal[i].from == s && (int)k_legal[i].action == a && (int)k_legal[i].to == to)
            return k_legal[i].event;
    return NULL;
}

START_TEST(test_status_names_match_schema) {
    ck_assert_int_eq(FB_CASE_STATUS_COUNT, FB_ARRAY_LEN(k_schema_statuses));
    for (size_t i = 0; i < FB_ARRAY_LEN(k_schema_statuses); i++) {
        fb_case_status_t s;
        ck_assert_int_eq(fb_case_status_parse(k_schema_statuses[i], &s), 0);
        ck_assert_str_eq(fb_case_status_name(s), k_schema_statuses[i]);
    }
}
END_TEST

START_TEST(test_action_names_round_trip) {
    ck_assert_int_eq(FB_CASE_ACTION_COUNT, FB_ARRAY_LEN(k_action_names));
    for (size_t i = 0; i < FB_ARRAY_LEN(k_action_names); i++) {
        fb_case_action_t a;
        ck_assert_int_eq(fb_case_action_parse(k_action_names[i], &a), 0);
        ck_assert_int_eq(a, (int)i);
        ck_assert_str_eq(fb_case_action_name(a), k_action_names[i]);
        ck_assert_ptr_nonnull(fb_case_action_event(a));
        ck_assert_uint_ne(fb_case_action_by(a), 0);
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
    ck_assert_int_eq(fb_case_action_parse("approve", &a), FB_EINVAL);
    ck_assert_int_eq(fb_case_action_parse(NULL, &a), FB_EINVAL);
    ck_assert_ptr_null(fb_case_status_name(FB_CASE_STATUS_COUNT));
    ck_assert_ptr_null(fb_case_status_name((fb_case_status_t)-1));
    ck_assert_ptr_null(fb_case_action_name(FB_CASE_ACTION_COUNT));
    ck_assert_ptr_null(fb_case_action_event(FB_CASE_ACTION_COUNT));
    ck_assert_uint_eq(fb_case_action_by(FB_CASE_ACTION_COUNT), 0);
}
END_TEST

START_TEST(test_who_takes_what) {
    unsigned dept[] = {FB_CASE_ACCEPT, FB_CASE_RETURN, FB_CASE_ASSIST, FB_CASE_EXTEND,
                       FB_CASE_REPLY};
    unsigned desk[] = {FB_CASE_APPROVE_RETURN,    FB_CASE_REJECT_RETURN,    FB_CASE_ASSIGN,
                       FB_CASE_APPROVE_EXTENSION, FB_CASE_REJECT_EXTENSION, FB_CASE_CALLBACK};
    for (size_t i = 0; i < FB_ARRAY_LEN(dept); i++)
        ck_assert_uint_eq(fb_case_action_by((fb_case_action_t)dept[i]), FB_BY_DEPARTMENT);
    for (size_t i = 0; i < FB_ARRAY_LEN(desk); i++)
        ck_assert_uint_eq(fb_case_action_by((fb_case_action_t)desk[i]), FB_BY_OPERATOR);
    ck_assert_uint_eq(fb_case_action_by(FB_CASE_RATE), FB_BY_RESIDENT);
    ck_assert_uint_eq(fb_case_action_by(FB_CASE_REOPEN), FB_BY_FENBO);
    ck_assert_uint_eq(fb_case_action_by(FB_CASE_CLOSE), FB_BY_OPERATOR | FB_BY_FENBO);
}
END_TEST

/* Every status against every action: legal exactly when listed above, with
 * the first listed target. */
START_TEST(test_every_pair) {
    for (int s = 0; s < FB_CASE_STATUS_COUNT; s++) {
        for (int a = 0; a < FB_CASE_ACTION_COUNT; a++) {
            int expect = expected_next(s, a);
            fb_case_status_t to = FB_CASE_STATUS_COUNT;
            int rc = fb_lifecycle_next((fb_case_status_t)s, (fb_case_action_t)a, &to);
            if (expect < 0) {
                ck_assert_msg(rc == FB_EINVAL, "%s a %s case must be refused",
                              fb_case_action_name((fb_case_action_t)a),
                              fb_case_status_name((fb_case_status_t)s));
                ck_assert_int_eq(to, FB_CASE_STATUS_COUNT); /* untouched */
                ck_assert(!fb_lifecycle_allowed((fb_case_status_t)s, (fb_case_action_t)a));
            } else {
                ck_assert_msg(rc == 0, "%s a %s case must be allowed",
                              fb_case_action_name((fb_case_action_t)a),
                              fb_case_status_name((fb_case_status_t)s));
                ck_assert_int_eq(to, expect);
                ck_assert(fb_lifecycle_allowed((fb_case_status_t)s, (fb_case_action_t)a));
            }
        }
    }
}
END_TEST

/* Every (status, action, target) triple: a move exactly when listed, with
 * its event. */
START_TEST(test_every_move_and_event) {
    size_t legal = 0;
    for (int s = 0; s < FB_CASE_STATUS_COUNT; s++) {
        for (int a = 0; a < FB_CASE_ACTION_COUNT; a++) {
            for (int t = 0; t < FB_CASE_STATUS_COUNT; t++) {
                const char *want = expected_event(s, a, t);
                const char *event = "untouched";
                int rc = fb_lifecycle_move((fb_case_status_t)s, (fb_case_action_t)a,
                                           (fb_case_status_t)t, &event);
                if (!want) {
                    ck_assert_int_eq(rc, FB_EINVAL);
                    ck_assert_str_eq(event, "untouched");
                    continue;
                }
                legal++;
                ck_assert_msg(rc == 0, "%s: %s → %s must be a move",
                              fb_case_action_name((fb_case_action_t)a),
                              fb_case_status_name((fb_case_status_t)s),
                              fb_case_status_name((fb_case_status_t)t));
                ck_assert_str_eq(event, want);
                /* The event may be left out. */
                ck_assert_int_eq(fb_lifecycle_move((fb_case_status_t)s, (fb_case_action_t)a,
                                                   (fb_case_status_t)t, NULL),
                                 0);
            }
        }
    }
    ck_assert_uint_eq(legal, FB_ARRAY_LEN(k_legal));
}
END_TEST

/* The walks a case takes: the plain one, a return approved twice (to the
 * manual queue), a reopened round, a rejected return. */
START_TEST(test_walks) {
    fb_case_status_t s = FB_CASE_DISPATCHED;
    static const fb_case_action_t plain[] = {
        FB_CASE_ACCEPT, FB_CASE_ASSIST, FB_CASE_EXTEND, FB_CASE_APPROVE_EXTENSION,
        FB_CASE_REPLY,  FB_CASE_RATE,   FB_CASE_CLOSE};
    for (size_t i = 0; i < FB_ARRAY_LEN(plain); i++)
        ck_assert_int_eq(fb_lifecycle_next(s, plain[i], &s), 0);
    ck_assert_int_eq(s, FB_CASE_CLOSED);
    fb_case_action_t none[1];
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_CLOSED, ~0u, none, 1), 0);

    s = FB_CASE_DISPATCHED;
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_RETURN, &s), 0);
    ck_assert_int_eq(s, FB_CASE_RETURNED);
    ck_assert_int_eq(fb_lifecycle_move(s, FB_CASE_APPROVE_RETURN, FB_CASE_MANUAL, NULL), 0);
    s = FB_CASE_MANUAL;
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_ASSIGN, &s), 0);
    ck_assert_int_eq(s, FB_CASE_DISPATCHED);

    s = FB_CASE_REPLIED;
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_CALLBACK, &s), 0);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_REOPEN, &s), 0);
    ck_assert_int_eq(s, FB_CASE_REOPENED);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_REPLY, &s), FB_EINVAL); /* sign first */
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_ACCEPT, &s), 0);
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_REPLY, &s), 0);
    ck_assert_int_eq(s, FB_CASE_REPLIED);

    s = FB_CASE_RETURNED;
    ck_assert_int_eq(fb_lifecycle_next(s, FB_CASE_REJECT_RETURN, &s), 0);
    ck_assert_int_eq(s, FB_CASE_DISPATCHED);
}
END_TEST

/* A selection of moves that must never happen. */
START_TEST(test_illegal_selection) {
    static const struct {
        fb_case_status_t from;
        fb_case_action_t action;
    } k[] = {
        {FB_CASE_DISPATCHED, FB_CASE_REPLY},          /* reply before accept */
        {FB_CASE_ACCEPTED, FB_CASE_ACCEPT},           /* twice */
        {FB_CASE_ACCEPTED, FB_CASE_RETURN},           /* signed for: its own now */
        {FB_CASE_REOPENED, FB_CASE_RETURN},           /* same department, again */
        {FB_CASE_REPLIED, FB_CASE_REPLY},             /* twice */
        {FB_CASE_CLOSED, FB_CASE_RATE},               /* too late to rate */
        {FB_CASE_CLOSED, FB_CASE_REOPEN},             /* closed is final */
        {FB_CASE_CLOSED, FB_CASE_CLOSE},              /* twice */
        {FB_CASE_DISPATCHED, FB_CASE_ASSIGN},         /* it has a department */
        {FB_CASE_DISPATCHED, FB_CASE_EXTEND},         /* sign for it first */
        {FB_CASE_DISPATCHED, FB_CASE_ASSIST},         /* sign for it first */
        {FB_CASE_DISPATCHED, FB_CASE_CLOSE},          /* nobody has answered */
        {FB_CASE_ACCEPTED, FB_CASE_CLOSE},            /* nobody has answered */
        {FB_CASE_REPLIED, FB_CASE_EXTEND},            /* nothing left to extend */
        {FB_CASE_MANUAL, FB_CASE_ACCEPT},             /* nobody to sign */
        {FB_CASE_MANUAL, FB_CASE_APPROVE_RETURN},     /* no return */
        {FB_CASE_DISPATCHED, FB_CASE_APPROVE_RETURN}, /* no return */
        {FB_CASE_RETURNED, FB_CASE_ACCEPT},           /* waits for the desk */
        {FB_CASE_RETURNED, FB_CASE_RETURN},           /* twice */
        {FB_CASE_DISPATCHED, FB_CASE_CALLBACK},       /* no reply to ask about */
        {FB_CASE_CLOSED, FB_CASE_CALLBACK},
        {FB_CASE_MANUAL, FB_CASE_APPROVE_EXTENSION},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(k); i++)
        ck_assert_msg(!fb_lifecycle_allowed(k[i].from, k[i].action), "%s a %s case",
                      fb_case_action_name(k[i].action), fb_case_status_name(k[i].from));
    /* approve_return has two outcomes, nothing else. */
    for (int t = 0; t < FB_CASE_STATUS_COUNT; t++) {
        int rc =
            fb_lifecycle_move(FB_CASE_RETURNED, FB_CASE_APPROVE_RETURN, (fb_case_status_t)t, NULL);
        ck_assert_int_eq(rc == 0, t == FB_CASE_DISPATCHED || t == FB_CASE_MANUAL);
    }
}
END_TEST

START_TEST(test_allowed_actions) {
    fb_case_action_t out[FB_CASE_ACTION_COUNT];
    const unsigned api = FB_BY_DEPARTMENT | FB_BY_OPERATOR;
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_DISPATCHED, api, out, FB_CASE_ACTION_COUNT), 2);
    ck_assert_int_eq(out[0], FB_CASE_ACCEPT);
    ck_assert_int_eq(out[1], FB_CASE_RETURN);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_ACCEPTED, FB_BY_DEPARTMENT, out, 8), 3);
    ck_assert_int_eq(out[0], FB_CASE_ASSIST);
    ck_assert_int_eq(out[1], FB_CASE_EXTEND);
    ck_assert_int_eq(out[2], FB_CASE_REPLY);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_ACCEPTED, FB_BY_OPERATOR, out, 8), 2);
    ck_assert_int_eq(out[0], FB_CASE_APPROVE_EXTENSION);
    ck_assert_int_eq(out[1], FB_CASE_REJECT_EXTENSION);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_RATED, FB_BY_FENBO, out, 8), 2);
    ck_assert_int_eq(out[0], FB_CASE_REOPEN);
    ck_assert_int_eq(out[1], FB_CASE_CLOSE);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_CLOSED, ~0u, out, 8), 0);
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_DISPATCHED, 0, out, 8), 0);
    /* The count is right even when out is too small to hold them. */
    ck_assert_uint_eq(fb_lifecycle_actions(FB_CASE_RETURNED, api, NULL, 0), 3);
}
END_TEST

START_TEST(test_refusal_messages) {
    char buf[256];
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_DISPATCHED, FB_CASE_REPLY, buf, sizeof buf),
                     "cannot reply a dispatched case; allowed: accept, return");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_ACCEPTED, FB_CASE_ACCEPT, buf, sizeof buf),
                     "cannot accept an accepted case; allowed: assist, extend, "
                     "approve_extension, reject_extension, reply");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_MANUAL, FB_CASE_ACCEPT, buf, sizeof buf),
                     "cannot accept a manual case; allowed: assign, close");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_RETURNED, FB_CASE_ACCEPT, buf, sizeof buf),
                     "cannot accept a returned case; allowed: approve_return, reject_return, "
                     "assign");
    /* Automatic moves (reopen) and the resident's rating are not offered. */
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_RATED, FB_CASE_REPLY, buf, sizeof buf),
                     "cannot reply a rated case; allowed: callback, close");
    ck_assert_str_eq(fb_lifecycle_refusal(FB_CASE_CLOSED, FB_CASE_CLOSE, buf, sizeof buf),
                     "cannot close a closed case; allowed: none");
    ck_assert_str_eq(
        fb_lifecycle_refusal(FB_CASE_STATUS_COUNT, FB_CASE_ACTION_COUNT, buf, sizeof buf),
        "cannot unknown an unknown case; allowed: none");
}
END_TEST

/* A buffer too small cuts the message but never overruns it. */
START_TEST(test_refusal_small_buffer) {
    char buf[16 + 8];
    memset(buf, 'x', sizeof buf);
    fb_lifecycle_refusal(FB_CASE_DISPATCHED, FB_CASE_REPLY, buf, 16);
    ck_assert_uint_eq(strlen(buf), 15);
    ck_assert_int_eq(buf[16], 'x');
    for (size_t n = 1; n < 128; n++) {
        char b[128 + 1];
        b[n] = '#';
        fb_lifecycle_refusal(FB_CASE_ACCEPTED, FB_CASE_ACCEPT, b, n);
        ck_assert_uint_lt(strlen(b), n);
        ck_assert_int_eq(b[n], '#');
        b[n] = '#';
        fb_lifecycle_part_refusal(FB_CASE_ACCEPTED, FB_PART_ASSIGNED, FB_CASE_REPLY, b, n);
        ck_assert_uint_lt(strlen(b), n);
        ck_assert_int_eq(b[n], '#');
    }
    fb_lifecycle_refusal(FB_CASE_ACCEPTED, FB_CASE_ACCEPT, buf, 0); /* nothing written */
}
END_TEST

/* Assisting departments' parts. */
START_TEST(test_parts) {
    fb_part_status_t p = fb_part_status_of(false, false), to;
    const char *event;
    ck_assert_int_eq(p, FB_PART_ASSIGNED);
    ck_assert_int_eq(fb_part_status_of(true, false), FB_PART_ACCEPTED);
    ck_assert_int_eq(fb_part_status_of(true, true), FB_PART_REPLIED);
    ck_assert_int_eq(fb_lifecycle_part_next(p, FB_CASE_REPLY, &to, &event), FB_EINVAL);
    ck_assert_int_eq(fb_lifecycle_part_next(p, FB_CASE_ACCEPT, &to, &event), 0);
    ck_assert_int_eq(to, FB_PART_ACCEPTED);
    ck_assert_str_eq(event, "assist_accepted");
    ck_assert_int_eq(fb_lifecycle_part_next(to, FB_CASE_ACCEPT, &to, &event), FB_EINVAL);
    ck_assert_int_eq(fb_lifecycle_part_next(FB_PART_ACCEPTED, FB_CASE_REPLY, &to, &event), 0);
    ck_assert_int_eq(to, FB_PART_REPLIED);
    ck_assert_str_eq(event, "assist_replied");
    for (int a = 0; a < FB_CASE_ACTION_COUNT; a++)
        ck_assert_int_eq(fb_lifecycle_part_next(FB_PART_REPLIED, (fb_case_action_t)a, &to, NULL),
                         FB_EINVAL);
    for (int s = 0; s < FB_CASE_STATUS_COUNT; s++)
        ck_assert_int_eq(fb_lifecycle_parts_open((fb_case_status_t)s),
                         s == FB_CASE_DISPATCHED || s == FB_CASE_ACCEPTED || s == FB_CASE_REOPENED);
    char buf[160];
    ck_assert_str_eq(
        fb_lifecycle_part_refusal(FB_CASE_ACCEPTED, FB_PART_ASSIGNED, FB_CASE_REPLY, buf, 160),
        "cannot reply an assigned assist part; allowed: accept");
    ck_assert_str_eq(
        fb_lifecycle_part_refusal(FB_CASE_ACCEPTED, FB_PART_REPLIED, FB_CASE_REPLY, buf, 160),
        "cannot reply a replied assist part; allowed: none");
    ck_assert_str_eq(
        fb_lifecycle_part_refusal(FB_CASE_CLOSED, FB_PART_ASSIGNED, FB_CASE_ACCEPT, buf, 160),
        "cannot accept an assist part of a closed case");
    ck_assert_ptr_null(fb_part_status_name(FB_PART_STATUS_COUNT));
}
END_TEST

/* The API's side: every action path maps to its action, nothing else does;
 * the case detail's "actions" follow the caller's role. */
START_TEST(test_action_paths) {
    static const struct {
        const char *path;
        int action; /* -1: none */
    } k[] = {
        {"/api/v1/cases/1/accept", FB_CASE_ACCEPT},
        {"/api/v1/cases/12/return", FB_CASE_RETURN},
        {"/api/v1/cases/12/return/approve", FB_CASE_APPROVE_RETURN},
        {"/api/v1/cases/12/return/reject", FB_CASE_REJECT_RETURN},
        {"/api/v1/cases/3/assign", FB_CASE_ASSIGN},
        {"/api/v1/cases/3/assist", FB_CASE_ASSIST},
        {"/api/v1/cases/3/extend", FB_CASE_EXTEND},
        {"/api/v1/cases/3/extend/approve", FB_CASE_APPROVE_EXTENSION},
        {"/api/v1/cases/3/extend/reject", FB_CASE_REJECT_EXTENSION},
        {"/api/v1/cases/3/reply", FB_CASE_REPLY},
        {"/api/v1/cases/3/callback", FB_CASE_CALLBACK},
        {"/api/v1/cases/3/close", FB_CASE_CLOSE},
        {"/api/v1/cases/3/rate", -1},
        {"/api/v1/cases/3/reopen", -1},
        {"/api/v1/cases/3/accept/", -1},
        {"/api/v1/cases//accept", -1},
        {"/api/v1/cases/x/accept", -1},
        {"/api/v1/cases/3", -1},
        {"/api/v1/cases/3/return/", -1},
        {"/api/v2/cases/3/accept", -1},
        {NULL, -1},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(k); i++) {
        fb_case_action_t a = FB_CASE_ACTION_COUNT;
        int rc = fb_actions_from_path(k[i].path, &a);
        if (k[i].action < 0) {
            ck_assert_msg(rc == FB_EINVAL, "%s", k[i].path ? k[i].path : "NULL");
        } else {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(a, k[i].action);
        }
    }
    json_t *j = fb_actions_allowed_json(FB_CASE_DISPATCHED, "department");
    ck_assert_uint_eq(json_array_size(j), 2);
    ck_assert_str_eq(json_string_value(json_array_get(j, 1)), "return");
    json_decref(j);
    j = fb_actions_allowed_json(FB_CASE_RETURNED, "operator");
    ck_assert_uint_eq(json_array_size(j), 3);
    json_decref(j);
    j = fb_actions_allowed_json(FB_CASE_ACCEPTED, "admin");
    ck_assert_uint_eq(json_array_size(j), 5);
    json_decref(j);
    j = fb_actions_allowed_json(FB_CASE_DISPATCHED, "supervisor");
    ck_assert_uint_eq(json_array_size(j), 0);
    json_decref(j);
}
END_TEST

static Suite *lifecycle_suite(void) {
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_status_names_match_schema);
    tcase_add_test(tc, test_action_names_round_trip);
    tcase_add_test(tc, test_names_refuse_unknown);
    tcase_add_test(tc, test_who_takes_what);
    tcase_add_test(tc, test_every_pair);
    tcase_add_test(tc, test_every_move_and_event);
    tcase_add_test(tc, test_walks);
    tcase_add_test(tc, test_illegal_selection);
    tcase_add_test(tc, test_allowed_actions);
    tcase_add_test(tc, test_refusal_messages);
    tcase_add_test(tc, test_refusal_small_buffer);
    tcase_add_test(tc, test_parts);
    tcase_add_test(tc, test_action_paths);
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
