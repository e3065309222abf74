#!/usr/bin/env python3
"""test_deadlines — fenbo-worker's SLA timers and callbacks (回访), as the
case history, the supervisors' overdue list and the operators' callback list
show them.

1. Deadlines on the working-day calendar: hotline orders received around
   the 2026 Spring Festival (holiday 15–23 February, make-up working days on
   Saturday 14 and Saturday 28) get the sign-for and reply deadlines the
   calendar gives, per urgency and kind; as those lie in the past, each case
   gets exactly one overdue event and one escalation (督办) per deadline, and
   no reminder.
2. Live cases: a case signed for before its deadline gets no accept-overdue
   (but a reply-overdue when its reply deadline passes); a replied case gets
   neither; a case whose deadlines come close gets one reminder for each, and
   a moved reply deadline (an extension) gets a reminder of its own.
3. GET /api/v1/overdue for supervisors and departments.
4. A worker killed with SIGKILL, down while deadlines pass, and killed again
   and again while it catches up: every case still escalated exactly once.
5. Two workers at once: every timer action exactly once.
6. Callbacks: a replied hotline case gets a phone task due the next working
   day, listed for operators (phones in clear) and supervisors (masked); a
   mini-program case replied the day before the Spring Festival is due the
   make-up Saturday and closes as not rated once its callback days are over;
   a rating request that fell due is issued once and a rating finishes it.

Timers run every second here ([worker] timers_s = 1) with escalation one
hour after a deadline ([worker] escalate_after_h = 1). The test moves
deadlines by updating cases.accept_due/reply_due (as an extension does) and
callback tasks' times, instead of waiting for them; like the case API, it
sets cases.updated_at when it moves a deadline (a recent sweep looks at the
cases changed since the previous one)."""

import datetime
import os
import random
import signal
import time

from harness import Checks, Cluster, Daemon, free_ports, log, main, order

TZ = datetime.timezone(datetime.timedelta(hours=8))
TIMER_EVENTS = ("reminder_accept", "reminder_reply", "overdue_accept", "overdue_reply", "escalated")

ROAD = "030101"  # 道路破损 → jiaotong, no deadline override in the demo rules
DEPT = "jiaotong"


def ts(s):
    """Epoch seconds of an RFC 3339 time."""
    return datetime.datetime.fromisoformat(s).timestamp()


class SecondWorker(Daemon):
    """Another fenbo-worker on the same database, with an INI of its own (its
    own HTTP port)."""

    def __init__(self, cluster, ini):
        super().__init__(cluster, "fenbo-worker-2", cluster.worker_bin)
        self.ini = ini

    def start(self):
        saved = self.cluster.ini
        self.cluster.ini = self.ini
        try:
            super().start()
        finally:
            self.cluster.ini = saved


def second_worker(c):
    (port,) = free_ports(1)
    text = open(c.ini).read().replace("port = %d" % c.worker_port, "port = %d" % port)
    ini = os.path.join(c.tmp, "fenbo-worker-2.ini")
    with open(ini, "w") as f:
        f.write(text)
    d = SecondWorker(c, ini)
    c.daemons["worker2"] = d
    d.start()
    c.wait_until(lambda: c.healthz(port), 30, "the second worker's /healthz")
    return d, port


def post_orders(c, ck, orders):
    for o in orders:
        st, body = c.post_order(o)
        ck.check(st == 202, "order %s: %s %r" % (o["order_no"], st, body))
    nos = [o["order_no"] for o in orders]
    c.wait_until(lambda: c.sql_value(
        "SELECT count(*) FROM petitions WHERE idem_key = ANY(string_to_array(:'nos', ','))"
        " AND case_id IS NOT NULL", nos=",".join(nos)) == len(nos),
        60, "%d orders dispatched" % len(nos))
    rows = c.sql("SELECT idem_key, case_id FROM petitions"
                 " WHERE idem_key = ANY(string_to_array(:'nos', ','))", nos=",".join(nos))
    return {r["idem_key"]: r["case_id"] for r in rows}


def timer_counts(c, ids):
    """{(case_id, type, deadline): count} of the timer events of the cases."""
    rows = c.sql("SELECT case_id, type, data->>'deadline' AS deadline, count(*) AS n"
                 " FROM case_events WHERE case_id = ANY(string_to_array(:'ids', ',')::bigint[])"
                 " AND type IN ('reminder_accept', 'reminder_reply', 'overdue_accept',"
                 "  'overdue_reply', 'escalated') GROUP BY 1, 2, 3",
                 ids=",".join(str(i) for i in ids))
    return {(r["case_id"], r["type"], r["deadline"]): r["n"] for r in rows}


def want_overdue_and_escalated(ids):
    return {(i, t, d): 1 for i in ids
            for t, d in (("overdue_accept", "accept"), ("overdue_reply", "reply"),
                         ("escalated", "accept"), ("escalated", "reply"))}


def events(c, case_id, types=None):
    rows = c.sql("SELECT id, type, actor, data, extract(epoch FROM at)::float8 AS at"
                 " FROM case_events WHERE case_id = :'id' ORDER BY id", id=case_id)
    return [r for r in rows if types is None or r["type"] in types]


# ---- the working-day calendar, independently of fb_calendar.c -------------

def load_calendar(c):
    return {r["day"]: r["kind"] == "workday"
            for r in c.sql("SELECT day::text AS day, kind FROM calendar_days")}


def is_workday(cal, d):
    s = d.isoformat()
    if s in cal:
        return cal[s]
    return d.weekday() < 5


def next_workday_start(cal, t):
    """00:00 of the first working day after t's day (the callback's due)."""
    d = t.astimezone(TZ).date() + datetime.timedelta(days=1)
    while not is_workday(cal, d):
        d += datetime.timedelta(days=1)
    return datetime.datetime(d.year, d.month, d.day, tzinfo=TZ)


def add_workdays_from_midnight(cal, start, n):
    d = start.date()
    for _ in range(n):
        d += datetime.timedelta(days=1)
        while not is_workday(cal, d):
            d += datetime.timedelta(days=1)
    return datetime.datetime(d.year, d.month, d.day, tzinfo=TZ)


# ---- the parts of the test ----------------------------------------------------

def spring_festival(c, ck):
    log("1. deadlines across the Spring Festival, and their timers")
    cases = [
        # order, received, urgency, kind, accept_due, reply_due
        ("SF-A", "2026-02-13T10:00:00+08:00", "normal", "help",
         "2026-02-14T10:00:00+08:00", "2026-02-25T10:00:00+08:00"),
        ("SF-B", "2026-02-14T09:00:00+08:00", "normal", "complaint",
         "2026-02-24T09:00:00+08:00", "2026-03-11T09:00:00+08:00"),
        ("SF-C", "2026-02-20T10:00:00+08:00", "urgent", "help",
         "2026-02-20T12:00:00+08:00", "2026-02-27T00:00:00+08:00"),
        ("SF-D", "2026-02-27T15:00:00+08:00", "normal", "consult",
         "2026-02-28T15:00:00+08:00", "2026-03-03T15:00:00+08:00"),
    ]
    orders = [order(no, "春节期间市民反映%s路段路面坑洼破损，第%d处，请尽快修复。" % (no, i),
                    received_at=rcv, urgency=urg, kind=kind, category=ROAD)
              for i, (no, rcv, urg, kind, _, _) in enumerate(cases)]
    ids = post_orders(c, ck, orders)
    for no, rcv, urg, kind, acc, rep in cases:
        row = c.sql("SELECT department_code, extract(epoch FROM accept_due)::float8 AS a,"
                    " extract(epoch FROM reply_due)::float8 AS r FROM cases WHERE id = :'id'",
                    id=ids[no])[0]
        ck.check(row["department_code"] == DEPT, "%s went to %s" % (no, row["department_code"]))
        ck.check(row["a"] == ts(acc), "%s (%s %s %s): accept_due %s, want %s"
                 % (no, rcv, urg, kind, datetime.datetime.fromtimestamp(row["a"], TZ), acc))
        ck.check(row["r"] == ts(rep), "%s (%s %s %s): reply_due %s, want %s"
                 % (no, rcv, urg, kind, datetime.datetime.fromtimestamp(row["r"], TZ), rep))
    want = want_overdue_and_escalated(ids.values())
    c.wait_until(lambda: timer_counts(c, ids.values()) == want, 30,
                 "overdue and escalation of the Spring Festival cases")
    time.sleep(3)  # more sweeps change nothing
    got = timer_counts(c, ids.values())
    ck.check(got == want, "timer events after more sweeps: %r" % got)
    for no, _, _, _, acc, rep in cases:
        evs = events(c, ids[no], TIMER_EVENTS)
        types = [(e["type"], e["data"]["deadline"]) for e in evs]
        ck.check(types.index(("overdue_accept", "accept")) < types.index(("escalated", "accept")),
                 "%s: escalation before the overdue event: %r" % (no, types))
        for e in evs:
            due = acc if e["data"]["deadline"] == "accept" else rep
            ck.check(ts(e["data"]["due"]) == ts(due),
                     "%s: %s event for due %s, want %s" % (no, e["type"], e["data"]["due"], due))
            ck.check(e["actor"] == "fenbo-worker", "%s: actor %r" % (no, e["actor"]))
            ck.check(e["data"].get("department") == DEPT, "%s: data %r" % (no, e["data"]))
            if e["type"] == "escalated":
                ck.check(e["data"]["offset_s"] == 3600, "%s: escalated %r" % (no, e["data"]))
                ck.check(e["at"] >= ts(due) + 3600, "%s: escalated too early" % no)
    return ids


def live_cases(c, ck):
    log("2. signed for in time, replied, reminded")
    orders = [order("LV-%s" % k, "市民反映%s街口人行道地砖松动破损，行人容易绊倒。" % k,
                    category=ROAD, kind="help") for k in ("E", "F", "G")]
    ids = post_orders(c, ck, orders)
    e, f, g = ids["LV-E"], ids["LV-F"], ids["LV-G"]
    tok = c.dept_tokens[DEPT]
    for cid in (e, f):
        st, body = c.worker("POST", "/api/v1/cases/%d/accept" % cid, tok, body={})
        ck.check(st == 200, "accept %d: %s %r" % (cid, st, body))
    st, body = c.worker("POST", "/api/v1/cases/%d/reply" % f, tok,
                        body={"result": "已修复松动地砖。", "resolved": True})
    ck.check(st == 200, "reply %d: %s %r" % (f, st, body))
    replied_at = time.time()
    # Time passes: both deadlines of E and F are two hours behind us.
    c.psql("UPDATE cases SET updated_at = now(), accept_due = now() - interval '2 hours',"
           " reply_due = now() - interval '2 hours'"
           " WHERE id IN (%d, %d)" % (e, f))
    # G's deadlines come close: within both reminder windows (30 min, 4 h).
    c.psql("UPDATE cases SET updated_at = now(), accept_due = now() + interval '10 minutes',"
           " reply_due = now() + interval '60 minutes' WHERE id = %d" % g)
    want_e = {(e, "overdue_reply", "reply"): 1, (e, "escalated", "reply"): 1}
    want_g = {(g, "reminder_accept", "accept"): 1, (g, "reminder_reply", "reply"): 1}
    c.wait_until(lambda: timer_counts(c, [e, f, g]) == {**want_e, **want_g}, 20,
                 "reply-overdue of E, reminders of G")
    # An extension moves G's reply deadline: a reminder for the new one.
    c.psql("UPDATE cases SET updated_at = now(), reply_due = now() + interval '90 minutes'"
           " WHERE id = %d" % g)
    want_g[(g, "reminder_reply", "reply")] = 2
    c.wait_until(lambda: timer_counts(c, [g]) == want_g, 20, "a reminder for the moved deadline")
    # Far away again: nothing more.
    c.psql("UPDATE cases SET updated_at = now(), reply_due = now() + interval '10 days'"
           " WHERE id = %d" % g)
    time.sleep(3)
    got = timer_counts(c, [e, f, g])
    ck.check(got == {**want_e, **want_g}, "timer events of E, F, G: %r" % got)
    dues = {ev["data"]["due"] for ev in events(c, g, ("reminder_reply",))}
    ck.check(len(dues) == 2, "G's two reply reminders are for two deadlines: %r" % dues)
    return ids, replied_at


def overdue_api(c, ck, sf, live):
    log("3. GET /api/v1/overdue")
    sup = c.tokens["supervisor"]
    st, body = c.worker("GET", "/api/v1/overdue?limit=1000", sup)
    ck.check(st == 200, "overdue list: %s %r" % (st, body))
    if st != 200:
        return
    got = {(o["case_id"], o["deadline"]) for o in body["overdue"]}
    for cid in sf.values():
        for d in ("accept", "reply"):
            ck.check((cid, d) in got, "case %d (%s) not in the overdue list" % (cid, d))
    e, f, g = live["LV-E"], live["LV-F"], live["LV-G"]
    ck.check((e, "reply") in got and (e, "accept") not in got, "E in the overdue list: %r"
             % sorted(x for x in got if x[0] == e))
    ck.check(not any(x[0] in (f, g) for x in got), "F or G in the overdue list")
    first = [o for o in body["overdue"] if o["case_id"] == sf["SF-A"]]
    ck.check(first and all(o["escalated"] and o["escalated_at"] and o["overdue_s"] > 0
                           for o in first), "SF-A's entries: %r" % first)
    ck.check(body["total"] >= len(body["overdue"]), "total %r" % body.get("total"))
    dues = [ts(o["due"]) for o in body["overdue"]]
    ck.check(dues == sorted(dues), "the list is not longest overdue first")
    st, body = c.worker("GET", "/api/v1/overdue?deadline=accept&escalated=true", sup)
    ck.check(st == 200 and all(o["deadline"] == "accept" and o["escalated"]
                               for o in body["overdue"]), "filtered list: %s %r" % (st, body))
    st, body = c.worker("GET", "/api/v1/overdue", c.dept_tokens[DEPT])
    ck.check(st == 200 and body["overdue"] and all(o["department"] == DEPT
                                                   for o in body["overdue"]),
             "the department's own list: %s %r" % (st, body))
    st, body = c.worker("GET", "/api/v1/overdue", c.dept_tokens["shichang"])
    ck.check(st == 200 and not any(o["case_id"] in sf.values() for o in body["overdue"]),
             "another department sees these cases: %s %r" % (st, body))
    st, body = c.worker("GET", "/api/v1/overdue?deadline=soon", sup)
    ck.check(st == 400, "bad deadline filter: %s %r" % (st, body))
    st, body = c.worker("GET", "/api/v1/overdue?limit=0", sup)
    ck.check(st == 400, "limit=0: %s %r" % (st, body))
    st, body = c.worker("GET", "/api/v1/overdue", c.tokens["hotline"])
    ck.check(st == 403, "a channel token: %s %r" % (st, body))


def sigkill(c, ck):
    log("4. SIGKILL and restarts around the deadlines")
    n = 60
    orders = [order("KILL-%03d" % i, "市民反映第%d号桥面伸缩缝破损，车辆经过噪声很大。" % i,
                    category=ROAD, kind="help") for i in range(n)]
    ids = list(post_orders(c, ck, orders).values())
    worker = c.daemons["worker"]
    worker.kill9()
    # While the worker is down, both deadlines pass, and an hour later the
    # escalation falls due — for half of the cases a few seconds from now.
    idlist = ",".join(str(i) for i in ids)
    c.psql("UPDATE cases SET updated_at = now(),"
           " accept_due = now() - interval '1 hour' + (id %% 2) * interval '4 s',"
           " reply_due = now() - interval '1 hour' + (id %% 2) * interval '6 s'"
           " WHERE id IN (%s)" % idlist)
    time.sleep(2)
    worker.start()
    c.wait_until(lambda: c.healthz(c.worker_port), 30, "the worker back")
    # Killed again and again while it catches up and while the rest falls due.
    end = time.monotonic() + 12
    kills = 0
    while time.monotonic() < end:
        time.sleep(random.uniform(0.2, 1.5))
        worker.kill9()
        kills += 1
        worker.start()
    c.wait_until(lambda: c.healthz(c.worker_port), 30, "the worker back")
    log("killed the worker %d times" % kills)
    want = want_overdue_and_escalated(ids)
    c.wait_until(lambda: timer_counts(c, ids) == want, 40,
                 "every case overdue and escalated once after %d kills" % kills)
    time.sleep(2)
    got = timer_counts(c, ids)
    ck.check(got == want, "after %d SIGKILLs: %d events, %d differing"
             % (kills, sum(got.values()), sum(1 for k in want if got.get(k) != 1)))
    actions = c.sql_value("SELECT count(*) FROM timer_actions"
                          " WHERE case_id IN (%s)" % idlist)
    ck.check(actions == 4 * n, "timer_actions rows: %s, want %d" % (actions, 4 * n))


def two_workers(c, ck):
    log("5. two workers at once")
    w2, port2 = second_worker(c)
    n = 150
    orders = [order("TWO-%03d" % i, "市民反映第%d号公交站台前路面塌陷，积水严重。" % i,
                    category=ROAD, kind="help") for i in range(n)]
    ids = list(post_orders(c, ck, orders).values())
    idlist = ",".join(str(i) for i in ids)
    # Due over the next six seconds, so that both workers' sweeps find work:
    # the first ones at once, the rest while both sweep every second.
    c.psql("UPDATE cases SET updated_at = now(), accept_due = now() - interval '1 hour 1 second'"
           "  + (id %% 12) * interval '0.5 s',"
           " reply_due = now() - interval '1 hour 1 second' + (id %% 7) * interval '0.8 s'"
           " WHERE id IN (%s)" % idlist)
    want = want_overdue_and_escalated(ids)
    c.wait_until(lambda: timer_counts(c, ids) == want, 30, "every case escalated once")
    time.sleep(3)
    got = timer_counts(c, ids)
    ck.check(got == want, "two workers: %d events, %d differing"
             % (sum(got.values()), sum(1 for k in want if got.get(k) != 1)))
    m1, m2 = c.metrics(c.worker_port) or {}, c.metrics(port2) or {}
    key = 'fenbo_worker_timer_actions_total{action="escalated_accept"}'
    log("escalations by worker 1: %s, by worker 2: %s" % (m1.get(key), m2.get(key)))
    ck.check(key in m1 and key in m2, "timer metrics missing from /metrics")
    w2.stop()


def insert_replied_case(c, channel, tracking_no, replied_at, openid=None):
    """A replied case made directly in SQL (its reply lies in the past)."""
    raw = '{"openid": "%s"}' % openid if openid else "{}"
    # Not through c.sql(): a data-modifying WITH must be the top level.
    out = c.psql(
        "WITH cs AS (INSERT INTO cases (status, department_code, category, urgency, kind)"
        "  VALUES ('replied', :'dept', :'cat', 'normal', 'help') RETURNING id),"
        " p AS (INSERT INTO petitions (tracking_no, channel, idem_key, received_at, spooled_at,"
        "  caller_phone, content, content_norm, category, urgency, kind, case_id, raw)"
        "  SELECT :'no', :'channel', :'no', :'at'::timestamptz - interval '2 days',"
        "  :'at'::timestamptz - interval '2 days', '13900004321', '路面破损', '路面破损', :'cat',"
        "  'normal', 'help', id, :'raw'::jsonb FROM cs RETURNING id),"
        " e AS (INSERT INTO case_events (case_id, at, actor, type, data)"
        "  SELECT id, :'at'::timestamptz, 'dept:' || :'dept', 'replied',"
        "  '{\"result\": \"已修复\", \"resolved\": true}' FROM cs)"
        " SELECT id FROM cs;",
        dict(dept=DEPT, cat=ROAD, no=tracking_no, channel=channel, at=replied_at, raw=raw))
    return int(out.strip())


def full_sweep(c):
    c.daemons["worker"].proc.send_signal(signal.SIGHUP)


def task_of(c, case_id):
    rows = c.sql("SELECT id, kind, channel, extract(epoch FROM due_at)::float8 AS due,"
                 " extract(epoch FROM expires_at)::float8 AS expires, sent_at, done_at, outcome"
                 " FROM callback_tasks WHERE case_id = :'id' ORDER BY id", id=case_id)
    return rows


def closed_not_rated(c, case_id):
    return c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'id'"
                       " AND type = 'closed' AND data->>'reason' = 'not_rated'", id=case_id)


def callbacks(c, ck, live, replied_at):
    log("6. callbacks (回访)")
    cal = load_calendar(c)
    f = live["LV-F"]
    c.wait_until(lambda: task_of(c, f), 20, "the callback task of the replied hotline case")
    t = task_of(c, f)
    ck.check(len(t) == 1 and t[0]["kind"] == "phone" and t[0]["channel"] == "hotline",
             "F's tasks: %r" % t)
    due = next_workday_start(cal, datetime.datetime.fromtimestamp(replied_at, TZ))
    ck.check(t[0]["due"] == due.timestamp(), "F's callback due %s, want %s"
             % (datetime.datetime.fromtimestamp(t[0]["due"], TZ), due))
    ck.check(t[0]["expires"] == add_workdays_from_midnight(cal, due, 3).timestamp(),
             "F's callback expires %s" % datetime.datetime.fromtimestamp(t[0]["expires"], TZ))
    ck.check([e["type"] for e in events(c, f, ("callback_scheduled",))] == ["callback_scheduled"],
             "F's callback_scheduled event")
    st, body = c.worker("GET", "/api/v1/callbacks?all=true", c.tokens["operator"])
    mine = [x for x in body.get("callbacks", [])] if st == 200 else []
    mine = [x for x in mine if x["case_id"] == f]
    ck.check(st == 200 and len(mine) == 1 and mine[0]["caller"]["phone"] == "13800001234"
             and mine[0]["reply"]["result"] == "已修复松动地砖。",
             "operator's callback list: %s %r" % (st, mine or body))
    st, body = c.worker("GET", "/api/v1/callbacks?all=true", c.tokens["supervisor"])
    mine = [x for x in body.get("callbacks", []) if x["case_id"] == f] if st == 200 else []
    ck.check(st == 200 and len(mine) == 1 and "*" in mine[0]["caller"]["phone"],
             "supervisor's callback list (masked): %s %r" % (st, mine or body))
    st, body = c.worker("GET", "/api/v1/callbacks", c.dept_tokens[DEPT])
    ck.check(st == 403, "a department on the callback list: %s %r" % (st, body))
    # Nobody answers within the callback days: closed as not rated.
    c.psql("UPDATE callback_tasks SET due_at = now() - interval '5 days',"
           " expires_at = now() - interval '1 minute' WHERE case_id = %d" % f)
    c.wait_until(lambda: closed_not_rated(c, f) == 1, 20, "F closed as not rated")
    ck.check(c.sql_value("SELECT status FROM cases WHERE id = :'id'", id=f) == "closed",
             "F's status")
    ck.check([x["outcome"] for x in task_of(c, f)] == ["not_rated"], "F's task outcome")

    # Replied the day before the Spring Festival: due on the make-up
    # Saturday, three working days after the holiday to rate.
    sf_m = insert_replied_case(c, "miniapp", "20260213-9-000001", "2026-02-13T16:00:00+08:00",
                               "o-cb-1")
    sf_h = insert_replied_case(c, "hotline", "20260214-9-000002", "2026-02-14T10:00:00+08:00")
    # A reply dated in the past is not among the recent ones: the full sweep
    # (every minute, or at once after SIGHUP) finds it.
    full_sweep(c)
    c.wait_until(lambda: closed_not_rated(c, sf_m) == 1 and closed_not_rated(c, sf_h) == 1, 20,
                 "the Spring Festival callbacks closed as not rated")
    tm, th = task_of(c, sf_m), task_of(c, sf_h)
    ck.check(len(tm) == 1 and tm[0]["kind"] == "rating_request"
             and tm[0]["due"] == ts("2026-02-14T00:00:00+08:00")
             and tm[0]["expires"] == ts("2026-02-26T00:00:00+08:00")
             and tm[0]["outcome"] == "not_rated", "mini-program task: %r" % tm)
    ck.check(len(th) == 1 and th[0]["kind"] == "phone"
             and th[0]["due"] == ts("2026-02-24T00:00:00+08:00")
             and th[0]["expires"] == ts("2026-02-27T00:00:00+08:00"), "hotline task: %r" % th)
    ck.check(not events(c, sf_m, ("rating_requested",)),
             "a rating request issued for a callback that had expired")
    ev = events(c, sf_m, ("closed",))
    ck.check(len(ev) == 1 and ev[0]["data"]["reason"] == "not_rated"
             and ev[0]["actor"] == "fenbo-worker", "closed event: %r" % ev)

    # A reply a few days ago: the rating request is due and not expired.
    now = datetime.datetime.now(TZ)
    for k in range(1, 15):
        r = (now - datetime.timedelta(days=k)).replace(hour=10, minute=0, second=0, microsecond=0)
        d = next_workday_start(cal, r)
        if d < now - datetime.timedelta(minutes=1) and \
                add_workdays_from_midnight(cal, d, 3) > now + datetime.timedelta(hours=1):
            break
    live_m = insert_replied_case(c, "miniapp", "20261101-9-000003", r.isoformat(), "o-cb-2")
    full_sweep(c)
    c.wait_until(lambda: events(c, live_m, ("rating_requested",)), 20, "the rating request")
    time.sleep(2)
    req = events(c, live_m, ("rating_requested",))
    ck.check(len(req) == 1 and req[0]["data"]["tracking_no"] == "20261101-9-000003",
             "rating_requested events: %r" % req)
    st, body = c.http("POST", "/api/v1/petitions/20261101-9-000003/rating",
                      body={"proof": c.follow_up_code("20261101-9-000003"), "resolved": True, "satisfaction": "satisfied"},
                      token=c.tokens["miniapp"])
    ck.check(st == 200, "rating: %s %r" % (st, body))
    c.wait_until(lambda: (task_of(c, live_m) or [{}])[0].get("outcome") == "rated", 20,
                 "the task finished by the rating")
    ck.check(closed_not_rated(c, live_m) == 0, "a rated case closed as not rated")
    st, body = c.worker("GET", "/api/v1/callbacks?kind=rating_request&all=true",
                        c.tokens["operator"])
    ck.check(st == 200 and not any(x["case_id"] == live_m for x in body["callbacks"]),
             "a finished task still listed: %s %r" % (st, body))


def run():
    settings = {"worker": {"timers_s": 1, "reminder_accept_min": 30, "reminder_reply_min": 240,
                           "escalate_after_h": 1, "callback_days": 3}}
    with Cluster("deadlines", settings=settings) as c:
        ck = Checks()
        sf = spring_festival(c, ck)
        live, replied_at = live_cases(c, ck)
        overdue_api(c, ck, sf, live)
        sigkill(c, ck)
        two_workers(c, ck)
        callbacks(c, ck, live, replied_at)
        for d in c.daemons.values():
            if d.name.startswith("fenbo-worker"):
                errors = [l for l in d.log_text().splitlines() if "event=db_error" in l]
                ck.check(not errors, "%s logged database errors: %s" % (d.name, errors[:3]))
        ck.finish()


if __name__ == "__main__":
    main(run)
