#!/usr/bin/env python3
"""test_stats — the rates of GET /api/v1/stats and `fenboctl stats` on a known
set of cases equal the values computed by hand.

Fourteen cases of three departments are written straight into the database
(cases, assignments, events with chosen times, ratings, a few petitions),
covering every rule of the definitions (README, schema/0005_stats.sql): the
period's edges, the first dispatch only, a manual case assigned later, a
case returned and re-dispatched to another department, deadlines met to
the second and missed by one, no deadline at all, the latest of two
ratings, a 'not rated' closure with a stray rating, a reopened case,
overdue cases outside the period, a returned case (waiting for an operator:
not overdue), a case without a region. The API's rows
(by department, street and district), its city total, `fenboctl stats
--json` and the plain table are compared with literals worked out by hand;
the comments show the arithmetic. Also checked: the daily counts for the
chart, defaults, bad parameters (400 naming the field), and who may read
what (a department its own row only)."""

import json
import os
import subprocess

from harness import Checks, Cluster, log, main

FROM, TO = "2026-03-02", "2026-03-07"  # a Monday to the next Saturday, to exclusive

# The cases, by id. Times are in the city's zone (+08). A/B/C are the
# departments chengguan, zhujian, jd_jiangcheng. Deadlines are 24 h to sign
# for and a fixed day to reply unless said otherwise.
DATA_SQL = r"""
INSERT INTO cases (id, status, department_code, category, region_code, urgency, kind,
                   accept_due, reply_due, created_at) VALUES
 -- A1 江城: accepted and replied in time; rated satisfied + resolved.
 (1001, 'rated',      'chengguan',     '0301', '339901001001', 'normal', 'complaint',
  '2026-03-04 10:00+08', '2026-03-20 18:00+08', '2026-03-03 10:00+08'),
 -- A2 江城: accepted late, replied late; unsatisfied, reopened, then
 -- basically satisfied + resolved (the latest rating counts).
 (1002, 'closed',     'chengguan',     '0301', '339901001002', 'normal', 'complaint',
  '2026-03-04 11:00+08', '2026-03-20 18:00+08', '2026-03-03 11:00+08'),
 -- A3 凤山: dispatched to zhujian, returned, re-dispatched to chengguan
 -- (its lead now); in time after that; rated unsatisfied, not resolved.
 (1003, 'rated',      'chengguan',     '0301', '339901002001', 'normal', 'complaint',
  '2026-03-05 14:00+08', '2026-03-20 18:00+08', '2026-03-04 09:00+08'),
 -- A4 长河: in time; closed as not rated, and a stray rating after that:
 -- counted as not_rated, not as rated.
 (1004, 'closed',     'chengguan',     '0301', '339902001001', 'normal', 'complaint',
  '2026-03-06 10:00+08', '2026-03-20 18:00+08', '2026-03-05 10:00+08'),
 -- A5 江城: never signed for: overdue now.
 (1005, 'dispatched', 'chengguan',     '0301', '339901001001', 'normal', 'complaint',
  '2026-03-09 10:00+08', '2026-03-25 18:00+08', '2026-03-06 10:00+08'),
 -- A6 长河: first dispatched before the period (re-dispatched inside it):
 -- not in the population; accepted, reply_due passed: overdue now.
 (1006, 'accepted',   'chengguan',     '0301', '339902001002', 'normal', 'complaint',
  '2026-03-04 10:00+08', '2026-03-20 18:00+08', '2026-03-01 10:00+08'),
 -- A7 江城: dispatched exactly at `to`: outside; accepted, reply due in 2099.
 (1007, 'accepted',   'chengguan',     '0301', '339901001001', 'normal', 'complaint',
  '2026-03-08 00:00+08', '2099-01-01 00:00+08', '2026-03-07 00:00+08'),
 -- B1 凤山: dispatched exactly at `from`; no deadlines at all (cannot be
 -- late); rated satisfied + resolved.
 (1011, 'rated',      'zhujian',       '0302', '339901002002', 'normal', 'complaint',
  NULL, NULL, '2026-03-02 00:00+08'),
 -- B2 长河: accepted exactly at accept_due (in time), replied one second
 -- after reply_due (late); closed for another reason (not 'not rated').
 (1012, 'closed',     'zhujian',       '0302', '339902001002', 'normal', 'complaint',
  '2026-03-04 09:00+08', '2026-03-05 18:00+08', '2026-03-03 09:00+08'),
 -- B3 no region: returned, waiting for an operator; accept_due passed,
 -- but a case no department holds is not overdue.
 (1013, 'returned',   'zhujian',       '0302', NULL,           'normal', 'complaint',
  '2026-03-06 10:00+08', '2026-03-20 18:00+08', '2026-03-05 10:00+08'),
 -- B4 no region: dispatched before the period, reopened and not signed for
 -- again; accept_due passed: overdue now.
 (1014, 'reopened',   'zhujian',       '0302', NULL,           'normal', 'complaint',
  '2026-03-01 10:00+08', '2026-03-20 18:00+08', '2026-02-20 10:00+08'),
 -- C1 江城: manual first, assigned by an operator; in time; two ratings of
 -- its two petitions, the later one (by rated_at, not by id) satisfied.
 (1021, 'rated',      'jd_jiangcheng', '0303', '339901001003', 'normal', 'complaint',
  '2026-03-04 08:00+08', '2026-03-10 18:00+08', '2026-03-02 08:00+08'),
 -- C2 江城: still in the manual queue: never dispatched.
 (1022, 'manual',     NULL,            '0303', '339901001004', 'normal', 'complaint',
  NULL, NULL, '2026-03-04 08:00+08'),
 -- C3 江城: dispatched to jd_jiangcheng, returned to the manual queue (no
 -- department, no deadlines now): its lead assignment names its row.
 (1023, 'manual',     NULL,            '0303', '339901001004', 'normal', 'complaint',
  NULL, NULL, '2026-03-04 10:00+08');
SELECT setval('cases_id_seq', (SELECT max(id) FROM cases));

INSERT INTO assignments (case_id, department_code, role, assigned_at, accept_due, reply_due,
                         delivered_at) VALUES
 (1001, 'chengguan', 'lead', '2026-03-03 10:00+08', NULL, NULL, '2026-03-03 10:00+08'),
 (1002, 'chengguan', 'lead', '2026-03-03 11:00+08', NULL, NULL, '2026-03-03 11:00+08'),
 (1003, 'zhujian',   'lead', '2026-03-04 09:00+08', NULL, NULL, '2026-03-04 09:00+08'),
 (1003, 'chengguan', 'lead', '2026-03-04 14:00+08', NULL, NULL, '2026-03-04 14:00+08'),
 (1004, 'chengguan', 'lead', '2026-03-05 10:00+08', NULL, NULL, '2026-03-05 10:00+08'),
 (1005, 'chengguan', 'lead', '2026-03-06 10:00+08', NULL, NULL, '2026-03-06 10:00+08'),
 (1006, 'chengguan', 'lead', '2026-03-01 10:00+08', NULL, NULL, '2026-03-01 10:00+08'),
 (1007, 'chengguan', 'lead', '2026-03-07 00:00+08', NULL, NULL, '2026-03-07 00:00+08'),
 (1011, 'zhujian',   'lead', '2026-03-02 00:00+08', NULL, NULL, '2026-03-02 00:00+08'),
 (1012, 'zhujian',   'lead', '2026-03-03 09:00+08', NULL, NULL, '2026-03-03 09:00+08'),
 (1013, 'zhujian',   'lead', '2026-03-05 10:00+08', NULL, NULL, '2026-03-05 10:00+08'),
 (1014, 'zhujian',   'lead', '2026-02-20 10:00+08', NULL, NULL, '2026-02-20 10:00+08'),
 (1021, 'jd_jiangcheng', 'lead', '2026-03-03 08:00+08', NULL, NULL, '2026-03-03 08:00+08'),
 (1023, 'jd_jiangcheng', 'lead', '2026-03-04 10:00+08', NULL, NULL, '2026-03-04 10:00+08');

INSERT INTO case_events (case_id, at, actor, type, data) VALUES
 (1001, '2026-03-03 10:00+08', 'dispatcher', 'dispatched', '{}'),
 (1001, '2026-03-03 15:00+08', 'dept:chengguan', 'accepted', '{}'),
 (1001, '2026-03-10 10:00+08', 'dept:chengguan', 'replied', '{}'),
 (1001, '2026-03-11 10:00+08', 'operator:1', 'rated', '{}'),

 (1002, '2026-03-03 11:00+08', 'dispatcher', 'dispatched', '{}'),
 (1002, '2026-03-05 09:00+08', 'dept:chengguan', 'accepted', '{}'),
 (1002, '2026-03-25 10:00+08', 'dept:chengguan', 'replied', '{}'),
 (1002, '2026-03-26 10:00+08', 'resident:hotline', 'rated', '{}'),
 (1002, '2026-03-26 11:00+08', 'operator:1', 'reopened', '{}'),
 (1002, '2026-03-26 12:00+08', 'dept:chengguan', 'accepted', '{}'),
 (1002, '2026-03-27 10:00+08', 'dept:chengguan', 'replied', '{}'),
 (1002, '2026-03-28 10:00+08', 'operator:1', 'rated', '{}'),
 (1002, '2026-03-29 10:00+08', 'timers', 'closed', '{"reason": "rated"}'),

 (1003, '2026-03-04 09:00+08', 'dispatcher', 'dispatched', '{}'),
 (1003, '2026-03-04 12:00+08', 'dept:zhujian', 'returned', '{"reason": "不属于本单位"}'),
 (1003, '2026-03-04 14:00+08', 'operator:1', 'redispatched', '{}'),
 (1003, '2026-03-05 10:00+08', 'dept:chengguan', 'accepted', '{}'),
 (1003, '2026-03-06 10:00+08', 'dept:chengguan', 'replied', '{}'),
 (1003, '2026-03-07 10:00+08', 'resident:miniapp', 'rated', '{}'),

 (1004, '2026-03-05 10:00+08', 'dispatcher', 'dispatched', '{}'),
 (1004, '2026-03-05 16:00+08', 'dept:chengguan', 'accepted', '{}'),
 (1004, '2026-03-09 10:00+08', 'dept:chengguan', 'replied', '{}'),
 (1004, '2026-03-20 10:00+08', 'timers', 'closed', '{"reason": "not_rated"}'),

 (1005, '2026-03-06 10:00+08', 'dispatcher', 'dispatched', '{}'),

 (1006, '2026-03-01 10:00+08', 'dispatcher', 'dispatched', '{}'),
 (1006, '2026-03-03 10:00+08', 'operator:1', 'redispatched', '{}'),
 (1006, '2026-03-03 12:00+08', 'dept:chengguan', 'accepted', '{}'),

 (1007, '2026-03-07 00:00+08', 'dispatcher', 'dispatched', '{}'),
 (1007, '2026-03-07 10:00+08', 'dept:chengguan', 'accepted', '{}'),

 (1011, '2026-03-02 00:00+08', 'dispatcher', 'dispatched', '{}'),
 (1011, '2026-03-10 10:00+08', 'dept:zhujian', 'accepted', '{}'),
 (1011, '2026-03-12 10:00+08', 'dept:zhujian', 'replied', '{}'),
 (1011, '2026-03-13 10:00+08', 'resident:hotline', 'rated', '{}'),

 (1012, '2026-03-03 09:00+08', 'dispatcher', 'dispatched', '{}'),
 (1012, '2026-03-04 09:00+08', 'dept:zhujian', 'accepted', '{}'),
 (1012, '2026-03-05 18:00:01+08', 'dept:zhujian', 'replied', '{}'),
 (1012, '2026-03-20 10:00+08', 'operator:1', 'closed', '{"reason": "withdrawn"}'),

 (1013, '2026-03-05 10:00+08', 'dispatcher', 'dispatched', '{}'),
 (1013, '2026-03-05 11:00+08', 'dept:zhujian', 'returned', '{"reason": "不属于本单位"}'),

 (1014, '2026-02-20 10:00+08', 'dispatcher', 'dispatched', '{}'),
 (1014, '2026-02-28 10:00+08', 'fenbo-worker', 'reopened', '{}'),

 (1021, '2026-03-02 08:00+08', 'dispatcher', 'manual', '{}'),
 (1021, '2026-03-03 08:00+08', 'operator:1', 'assigned', '{}'),
 (1021, '2026-03-03 09:00+08', 'dept:jd_jiangcheng', 'accepted', '{}'),
 (1021, '2026-03-04 10:00+08', 'dept:jd_jiangcheng', 'replied', '{}'),
 (1021, '2026-03-05 10:00+08', 'dept:jd_jiangcheng', 'replied', '{"note": "a second reply"}'),
 (1021, '2026-03-05 11:00+08', 'resident:hotline', 'rated', '{}'),

 (1022, '2026-03-04 08:00+08', 'dispatcher', 'manual', '{}'),

 (1023, '2026-03-04 10:00+08', 'dispatcher', 'dispatched', '{}'),
 (1023, '2026-03-04 12:00+08', 'dept:jd_jiangcheng', 'returned', '{"reason": "不属于本单位"}');

-- processed_at: the worker's ratings job has nothing left to do with them
-- (it would otherwise close or reopen these cases while the test runs).
INSERT INTO ratings (case_id, resolved, satisfaction, source, rated_at) VALUES
 (1001, true,  'satisfied',           'callback', '2026-03-11 10:00+08'),
 (1002, false, 'unsatisfied',         'hotline',  '2026-03-26 10:00+08'),
 (1002, true,  'basically_satisfied', 'callback', '2026-03-28 10:00+08'),
 (1003, false, 'unsatisfied',         'miniapp',  '2026-03-07 10:00+08'),
 (1004, false, 'unsatisfied',         'miniapp',  '2026-03-21 10:00+08'),
 (1011, true,  'satisfied',           'hotline',  '2026-03-13 10:00+08'),
 -- C1: the satisfied rating is inserted first (lower id) but given later.
 (1021, true,  'satisfied',           'hotline',  '2026-03-05 11:00+08'),
 (1021, false, 'unsatisfied',         'callback', '2026-03-05 09:00+08');
UPDATE ratings SET processed_at = rated_at;

-- Petitions for the daily chart (not attached to cases): by the day they
-- arrived in the city's zone.
INSERT INTO petitions (tracking_no, channel, idem_key, received_at, spooled_at, content,
                       content_norm, urgency, kind, raw) VALUES
 ('T-1', 'hotline', 'k1', '2026-03-02 23:30+08', now(), 'x', 'x', 'normal', 'consult', '{}'),
 ('T-2', 'hotline', 'k2', '2026-03-02 17:00+00', now(), 'x', 'x', 'normal', 'consult', '{}'),
 ('T-3', 'hotline', 'k3', '2026-03-03 09:55+08', now(), 'x', 'x', 'normal', 'consult', '{}'),
 ('T-4', 'hotline', 'k4', '2026-03-01 23:59:59+08', now(), 'x', 'x', 'normal', 'consult', '{}'),
 ('T-5', 'hotline', 'k5', '2026-03-06 16:00+00', now(), 'x', 'x', 'normal', 'consult', '{}');
"""

# The population ([2026-03-02, 2026-03-07) by first dispatch): A1 A2 A3 A4 A5,
# B1 B2 B3, C1 C3 — 10 cases. Not in it: A6 (first dispatched 03-01), A7
# (at `to`), B4 (02-20), C2 (never dispatched).
#
# Per case: on-time accept / on-time reply / returned / reopened / not rated /
# rated (latest rating: resolved, satisfied) / overdue now
#   A1  y y - - - rated  res sat
#   A2  - - - y - rated  res sat (basically satisfied, the later rating)
#   A3  y y y - - rated  -   -
#   A4  y y - - y (its rating does not count)
#   A5  - - - - - -                                 overdue (not signed for)
#   B1  y y - - - rated  res sat (no deadlines: cannot be late)
#   B2  y - - - - -      (accepted at the due second; replied 1 s late)
#   B3  - - y - - -      (returned, waiting for an operator: not overdue)
#   C1  y y - - - rated  res sat (the satisfied rating is the later one)
#   C3  - - y - - -      (manual again, no deadlines: not overdue)
#   A6  outside the period                          overdue (accepted, reply_due passed)
#   B4  outside the period                          overdue (reopened, accept_due passed)

EXPECT_DEPARTMENT = {
    "chengguan": dict(
        name="滨江市城市管理局",
        dispatched=5,                       # A1 A2 A3 A4 A5
        accepted_on_time=3,                 # A1 A3 A4
        response_rate=0.6,                  # 3 / 5
        rated=3,                            # A1 A2 A3 (A4 is a not-rated closure)
        resolved=2,                         # A1 A2
        resolution_rate=0.6667,             # 2 / 3
        satisfied=2,                        # A1 (satisfied) A2 (basically satisfied)
        satisfaction_rate=0.6667,           # 2 / 3
        replied_on_time=3,                  # A1 A3 A4
        on_time_closure_rate=0.6,           # 3 / 5
        returned=1,                         # A3
        return_rate=0.2,                    # 1 / 5
        reopened=1,                         # A2
        reopen_rate=0.3333,                 # 1 / 3
        not_rated=1,                        # A4
        overdue_now=2,                      # A5, A6 (A6 is outside the period)
    ),
    "zhujian": dict(
        name="滨江市住房和城乡建设局",
        dispatched=3,                       # B1 B2 B3
        accepted_on_time=2,                 # B1 (no deadline) B2 (at the due second)
        response_rate=0.6667,               # 2 / 3
        rated=1, resolved=1, resolution_rate=1.0,      # B1: 1 / 1
        satisfied=1, satisfaction_rate=1.0,            # 1 / 1
        replied_on_time=1,                  # B1 (B2 is a second late)
        on_time_closure_rate=0.3333,        # 1 / 3
        returned=1, return_rate=0.3333,     # B3: 1 / 3
        reopened=0, reopen_rate=0.0,        # 0 / 1
        not_rated=0,
        overdue_now=1,                      # B4 (outside the period; B3 waits for an operator)
    ),
    "jd_jiangcheng": dict(
        name="望江区江城街道办事处",
        dispatched=2,                       # C1 C3 (C3 by its lead assignment)
        accepted_on_time=1, response_rate=0.5,         # C1: 1 / 2
        rated=1, resolved=1, resolution_rate=1.0,      # C1: 1 / 1
        satisfied=1, satisfaction_rate=1.0,
        replied_on_time=1, on_time_closure_rate=0.5,   # C1: 1 / 2
        returned=1, return_rate=0.5,        # C3: 1 / 2
        reopened=0, reopen_rate=0.0,
        not_rated=0, overdue_now=0,
    ),
}

EXPECT_TOTAL = dict(
    key="all",
    dispatched=10,
    accepted_on_time=6, response_rate=0.6,            # 3 + 2 + 1 = 6;  6 / 10
    rated=5,                                          # 3 + 1 + 1
    resolved=4, resolution_rate=0.8,                  # 2 + 1 + 1 = 4;  4 / 5
    satisfied=4, satisfaction_rate=0.8,               # 4 / 5
    replied_on_time=5, on_time_closure_rate=0.5,      # 3 + 1 + 1 = 5;  5 / 10
    returned=3, return_rate=0.3,                      # A3 B3 C3;       3 / 10
    reopened=1, reopen_rate=0.2,                      # A2;             1 / 5
    not_rated=1,
    overdue_now=3,                                    # A5 A6 B4
)

# Streets (region_code's first 9 characters).
EXPECT_STREET = {
    # 江城街道: A1 A2 A5 C1 C3
    "339901001": dict(
        name="江城街道", dispatched=5,
        accepted_on_time=2, response_rate=0.4,        # A1 C1: 2 / 5
        rated=3, resolved=3, resolution_rate=1.0,     # A1 A2 C1: 3 / 3
        satisfied=3, satisfaction_rate=1.0,
        replied_on_time=2, on_time_closure_rate=0.4,  # A1 C1: 2 / 5
        returned=1, return_rate=0.2,                  # C3: 1 / 5
        reopened=1, reopen_rate=0.3333,               # A2: 1 / 3
        not_rated=0, overdue_now=1,                   # A5 (A7 is not overdue)
    ),
    # 凤山街道: A3 B1
    "339901002": dict(
        name="凤山街道", dispatched=2,
        accepted_on_time=2, response_rate=1.0,        # 2 / 2
        rated=2, resolved=1, resolution_rate=0.5,     # B1: 1 / 2
        satisfied=1, satisfaction_rate=0.5,
        replied_on_time=2, on_time_closure_rate=1.0,
        returned=1, return_rate=0.5,                  # A3: 1 / 2
        reopened=0, reopen_rate=0.0,
        not_rated=0, overdue_now=0,
    ),
    # 长河街道: A4 B2; A6 overdue from outside the period
    "339902001": dict(
        name="长河街道", dispatched=2,
        accepted_on_time=2, response_rate=1.0,        # A4 B2: 2 / 2
        rated=0, resolved=0, resolution_rate=None,    # nothing rated: NULL, not 0
        satisfied=0, satisfaction_rate=None,
        replied_on_time=1, on_time_closure_rate=0.5,  # A4: 1 / 2
        returned=0, return_rate=0.0,
        reopened=0, reopen_rate=None,
        not_rated=1, overdue_now=1,                   # A4; A6
    ),
    # No region: B3; B4 overdue from outside the period
    None: dict(
        name=None, dispatched=1,
        accepted_on_time=0, response_rate=0.0,
        rated=0, resolution_rate=None, satisfaction_rate=None,
        replied_on_time=0, on_time_closure_rate=0.0,
        returned=1, return_rate=1.0,
        reopen_rate=None, not_rated=0, overdue_now=1,
    ),
}

EXPECT_DISTRICT = {
    # 望江区: A1 A2 A3 A5 B1 C1 C3
    "339901": dict(
        name="望江区", dispatched=7,
        accepted_on_time=4, response_rate=0.5714,     # A1 A3 B1 C1: 4 / 7
        rated=5, resolved=4, resolution_rate=0.8,     # A1 A2 A3 B1 C1; A1 A2 B1 C1: 4 / 5
        satisfied=4, satisfaction_rate=0.8,
        replied_on_time=4, on_time_closure_rate=0.5714,
        returned=2, return_rate=0.2857,               # A3 C3: 2 / 7
        reopened=1, reopen_rate=0.2,                  # A2: 1 / 5
        overdue_now=1,                                # A5
    ),
    # 东湖区: the same as 长河街道
    "339902": dict(name="东湖区", dispatched=2, response_rate=1.0, rated=0,
                   satisfaction_rate=None, on_time_closure_rate=0.5, not_rated=1,
                   overdue_now=1),
    None: dict(dispatched=1, overdue_now=1),
}

# Petitions per day by received_at in +08: T-1 03-02; T-2 (17:00 UTC = 03-03
# 01:00 +08) and T-3 03-03; T-4 and T-5 fall just outside. Dispatched: the
# first dispatch per case (A3's re-dispatch and A6's do not count again).
# Closures: first 'replied' per case (C1's second reply does not count).
EXPECT_DAILY = [
    # day,         petitions, dispatched,                closures
    ("2026-03-02", 1, 1, 0),  # B1
    ("2026-03-03", 2, 4, 0),  # A1 A2 B2 C1(assigned)
    ("2026-03-04", 0, 2, 1),  # A3 C3;            C1 replied
    ("2026-03-05", 0, 2, 1),  # A4 B3;            B2 replied
    ("2026-03-06", 0, 1, 1),  # A5;               A3 replied
]


def close(a, b):
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) < 1e-9


def compare_rows(ck, what, rows, expect):
    """rows: the API's rows; expect: {key: {field: value}} for every row."""
    by_key = {r.get("key"): r for r in rows}
    ck.check(set(by_key) == set(expect),
             "%s: keys %s, expected %s" % (what, sorted(by_key, key=str),
                                           sorted(expect, key=str)))
    for key, fields in expect.items():
        row = by_key.get(key)
        if row is None:
            continue
        for f, v in fields.items():
            got = row.get(f)
            ok = got == v if isinstance(v, str) or f == "name" else close(got, v)
            ck.check(ok, "%s %s.%s = %r, expected %r" % (what, key, f, got, v))


def run():
    with Cluster("stats") as c:
        ck = Checks()
        c.psql(DATA_SQL)
        sup = c.tokens["supervisor"]
        q = "from=%s&to=%s" % (FROM, TO)

        # ---- the API ------------------------------------------------------
        st, body = c.worker("GET", "/api/v1/stats?by=department&" + q, sup)
        ck.check(st == 200, "stats by department: %s %r" % (st, body))
        if st == 200:
            ck.check(body.get("by") == "department" and body.get("from") == FROM
                     and body.get("to") == TO, "period echoed: %r" % {
                         k: body.get(k) for k in ("by", "from", "to")})
            compare_rows(ck, "department", body["rows"], EXPECT_DEPARTMENT)
            compare_rows(ck, "total", [body.get("total") or {}], {"all": EXPECT_TOTAL})
            log("by department: %s" % json.dumps(body["rows"], ensure_ascii=False)[:600])

        st, body = c.worker("GET", "/api/v1/stats?by=street&" + q, sup)
        ck.check(st == 200, "stats by street: %s %r" % (st, body))
        if st == 200:
            compare_rows(ck, "street", body["rows"], EXPECT_STREET)

        st, body = c.worker("GET", "/api/v1/stats?by=district&" + q, c.tokens["operator"])
        ck.check(st == 200, "stats by district (operator): %s %r" % (st, body))
        if st == 200:
            compare_rows(ck, "district", body["rows"], EXPECT_DISTRICT)

        # A period around nothing: no rows but the overdue ones, rates NULL.
        st, body = c.worker("GET", "/api/v1/stats?by=department&from=2025-01-01&to=2025-01-02",
                            c.tokens["admin"])
        ck.check(st == 200, "empty period: %s %r" % (st, body))
        if st == 200:
            compare_rows(ck, "empty period", body["rows"], {
                "chengguan": dict(dispatched=0, response_rate=None, overdue_now=2),
                "zhujian": dict(dispatched=0, satisfaction_rate=None, overdue_now=1)})

        # Defaults: the last 30 days, to exclusive; by=department.
        st, body = c.worker("GET", "/api/v1/stats", sup)
        ck.check(st == 200 and body.get("by") == "department", "defaults: %s %r" % (st, body))
        if st == 200:
            import datetime
            d0 = datetime.date.fromisoformat(body["from"])
            d1 = datetime.date.fromisoformat(body["to"])
            ck.check((d1 - d0).days == 30, "default period %s..%s is not 30 days" % (d0, d1))

        # The daily counts behind the chart.
        st, body = c.worker("GET", "/api/v1/stats/daily?" + q, sup)
        ck.check(st == 200, "daily: %s %r" % (st, body))
        if st == 200:
            got = [(d["day"], d["petitions"], d["dispatched"], d["closures"])
                   for d in body.get("days", [])]
            ck.check(got == EXPECT_DAILY, "daily %s, expected %s" % (got, EXPECT_DAILY))

        # ---- bad parameters: 400 naming the field -------------------------
        for path, field in [
            ("/api/v1/stats?by=city", "by"),
            ("/api/v1/stats?by=department&from=2026-02-30", "from"),
            ("/api/v1/stats?by=department&from=yesterday", "from"),
            ("/api/v1/stats?by=department&to=2026-3-1", "to"),
            ("/api/v1/stats?by=department&from=2026-03-07&to=2026-03-02", "to"),
            ("/api/v1/stats?by=department&from=2026-03-02&to=2026-03-02", "to"),
            ("/api/v1/stats?by=%E6%B1%9F", "by"),
            ("/api/v1/stats/daily?from=2024-01-01&to=2026-01-01", "from"),
            ("/api/v1/stats/daily?to=2026-13-01", "to"),
        ]:
            st, body = c.worker("GET", path, sup)
            err = body.get("error", {}) if isinstance(body, dict) else {}
            ck.check(st == 400 and err.get("field") == field,
                     "%s: expected 400 naming %s, got %s %r" % (path, field, st, body))

        # ---- who may read what --------------------------------------------
        dept = c.dept_tokens["chengguan"]
        st, body = c.worker("GET", "/api/v1/stats?by=department&" + q, dept)
        ck.check(st == 200, "department token by=department: %s %r" % (st, body))
        if st == 200:
            ck.check([r.get("key") for r in body["rows"]] == ["chengguan"],
                     "a department sees only its row: %r" % body["rows"])
            ck.check(body.get("total") is None, "a department gets no city total")
            compare_rows(ck, "own row", body["rows"],
                         {"chengguan": EXPECT_DEPARTMENT["chengguan"]})
        for by in ("street", "district"):
            st, body = c.worker("GET", "/api/v1/stats?by=%s&%s" % (by, q), dept)
            ck.check(st == 403, "department token by=%s: expected 403, got %s" % (by, st))
        st, body = c.worker("GET", "/api/v1/stats/daily", dept)
        ck.check(st == 403, "department token on daily: expected 403, got %s" % st)
        st, body = c.worker("GET", "/api/v1/stats", c.tokens["hotline"])
        ck.check(st == 403, "hotline token: expected 403, got %s" % st)
        st, body = c.http("GET", "/api/v1/stats", port=c.worker_port)
        ck.check(st == 401, "no token: expected 401, got %s" % st)

        # ---- fenboctl stats: the same numbers -----------------------------
        out = c.fenboctl("stats", "--by", "department", "--from", FROM, "--to", TO, "--json")
        doc = json.loads(out)
        compare_rows(ck, "fenboctl department", doc["rows"], EXPECT_DEPARTMENT)
        compare_rows(ck, "fenboctl total", [doc["total"]], {"all": EXPECT_TOTAL})
        out = c.fenboctl("stats", "--by=street", "--from=" + FROM, "--to=" + TO, "--json")
        compare_rows(ck, "fenboctl street", json.loads(out)["rows"], EXPECT_STREET)

        table = c.fenboctl("stats", "--by", "department", "--from", FROM, "--to", TO)
        log("fenboctl stats:\n" + table)
        lines = {ln.split()[0]: ln.split() for ln in table.splitlines() if ln.strip()}
        # KEY NAME DISPATCHED RESPONSE RESOLUTION SATISFACTION ON-TIME RETURN REOPEN RATED
        # NOT-RATED OVERDUE
        want = {
            "chengguan": ["5", "60.0%", "66.7%", "66.7%", "60.0%", "20.0%", "33.3%", "3", "1", "2"],
            "zhujian": ["3", "66.7%", "100.0%", "100.0%", "33.3%", "33.3%", "0.0%", "1", "0", "1"],
            "jd_jiangcheng": ["2", "50.0%", "100.0%", "100.0%", "50.0%", "50.0%", "0.0%", "1",
                              "0", "0"],
            "all": ["10", "60.0%", "80.0%", "80.0%", "50.0%", "30.0%", "20.0%", "5", "1", "3"],
        }
        for key, cells in want.items():
            got = lines.get(key, [])[2:]
            ck.check(got == cells, "fenboctl table row %s: %s, expected %s" % (key, got, cells))

        p = c.fenboctl("stats", "--by", "town", check=False)
        err = p.stderr.decode()
        ck.check(p.returncode == 2 and "--by" in err,
                 "fenboctl stats --by town: exit %s, %r" % (p.returncode, err))
        p = c.fenboctl("stats", "--from", "2026-02-30", check=False)
        ck.check(p.returncode == 2 and "--from" in p.stderr.decode(),
                 "fenboctl stats --from 2026-02-30: exit %s, %r" % (p.returncode, p.stderr))
        ck.finish()


if __name__ == "__main__":
    main(run)
