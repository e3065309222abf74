#!/usr/bin/env python3
"""test_worker_api — the case API of fenbo-worker, as two departments and an
operator see it.

A few hotline orders are dispatched; then department A's token lists only
cases A takes part in, gets 404 for B's case, is refused (409) a reply
before it signed for its case, signs for it (accept, 200), replies (200);
the case's history holds dispatched, delivered, accepted, replied in that
order; the operator sees every case; an unknown token gets 401.

Then, in a cluster of its own with catch-up out of the way, deliveries from
the bus in bursts (the worker delivers the events it reads in one loop turn
together, in one transaction):
- 400 orders (200, and each again under another order_no) dispatched while
  the worker is stopped (SIGSTOP) reach it at once when it continues: every
  case gets exactly one 'delivered' event (via the bus, naming its
  departments in assignment order), every assignment a delivered_at, in
  fewer transactions than cases, and the log and metrics count as before;
- crafted events on a stand-in publisher — each case twice in a row, cases
  already delivered, bad messages — while an action holds one of the cases
  (its row locked, then an assignment stamped): each reset case is delivered
  once more (one event, not two), the events of one transaction are appended
  in case order, neither the batch nor the action fails (no deadlock), and
  one line is logged per message as before (delivered=N at a case's first
  message, 0 at the repeat);
- events while PostgreSQL is away are each logged deferred, and catch-up
  delivers them once it is back."""

import json
import re
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import zmq

from harness import Checks, Cluster, load_json, log, main, order


def case_ids(body):
    cases = body.get("cases") if isinstance(body, dict) else body
    return [c["id"] for c in (cases or [])]


def list_all(c, token):
    """Every case the token may see, following next_after_id."""
    ids, after = [], 0
    for _ in range(100):
        st, body = c.worker("GET", "/api/v1/cases?limit=500&after_id=%d" % after, token)
        if st != 200:
            return st, body
        ids += case_ids(body)
        nxt = body.get("next_after_id") if isinstance(body, dict) else None
        if not nxt:
            break
        after = nxt
    return 200, ids


def run():
    fixtures = load_json("tests/fixtures/hotline_orders.json")
    # Enough orders to give at least two departments a case each.
    wanted = [f for f in fixtures if f["expect"].get("department")][:30]
    with Cluster("worker_api") as c:
        ck = Checks()
        for f in wanted:
            st, body = c.post_order(f["order"])
            ck.check(st == 202, "order %s: %s %r" % (f["order"]["order_no"], st, body))
        c.wait_dispatched(len(wanted), 60)

        cases = c.sql("SELECT c.id, c.department_code, c.status,"
                      " array(SELECT DISTINCT department_code FROM assignments a"
                      "       WHERE a.case_id = c.id) AS depts"
                      " FROM cases c WHERE c.status = 'dispatched' ORDER BY c.id")
        by_dept = Counter(r["department_code"] for r in cases)
        assert len(by_dept) >= 2, "need cases of two departments, got %s" % by_dept
        dept_a, dept_b = [d for d, _ in by_dept.most_common(2)]
        a_cases = [r for r in cases if r["department_code"] == dept_a]
        a_visible = {r["id"] for r in cases if dept_a in r["depts"]}
        b_only = [r for r in cases if r["department_code"] == dept_b and dept_a not in r["depts"]]
        assert b_only, "no case of %s without an assignment for %s" % (dept_b, dept_a)
        tok_a, tok_b = c.dept_tokens[dept_a], c.dept_tokens[dept_b]
        op = c.tokens["operator"]
        log("department A=%s (%d cases), B=%s (%d cases)"
            % (dept_a, len(a_cases), dept_b, by_dept[dept_b]))

        # Listing: A sees its own cases and nothing else.
        st, ids = list_all(c, tok_a)
        ck.check(st == 200, "A's list: %s %r" % (st, ids))
        if st == 200:
            ck.check(set(ids) == a_visible,
                     "A's list %s differs from A's cases %s" % (sorted(ids), sorted(a_visible)))
        # Asking for B's cases by filter changes nothing: the scope is the token's.
        st, body = c.worker("GET", "/api/v1/cases?department=%s" % dept_b, tok_a)
        ck.check(st in (200, 403) and not (set(case_ids(body) if st == 200 else []) - a_visible),
                 "A asking for B's cases: %s %r" % (st, body))

        # The operator sees all.
        st, ids = list_all(c, op)
        all_ids = {r["id"] for r in c.sql("SELECT id FROM cases")}
        ck.check(st == 200 and set(ids) == all_ids,
                 "operator's list: %s, %d of %d cases" % (st, len(ids) if st == 200 else -1,
                                                         len(all_ids)))

        # B's case is invisible to A: 404, not 403, so that its existence is not told.
        b_case = b_only[0]["id"]
        st, body = c.worker("GET", "/api/v1/cases/%d" % b_case, tok_a)
        ck.check(st == 404, "A reading B's case %d: expected 404, got %s %r" % (b_case, st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/accept" % b_case, tok_a, body={})
        ck.check(st == 404, "A accepting B's case %d: expected 404, got %s %r" % (b_case, st, body))
        st, body = c.worker("GET", "/api/v1/cases/%d" % b_case, tok_b)
        ck.check(st == 200, "B reading its case %d: expected 200, got %s %r" % (b_case, st, body))

        a_case = a_cases[0]["id"]
        # Wait until the worker delivered it, so that the history is complete.
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM case_events WHERE case_id = :'id' AND type = 'delivered'",
            id=a_case) >= 1, 30, "the delivered event of case %d" % a_case)

        reply = {"result": "已派执法队员到场处理，占道摊贩已劝离。", "resolved": True}
        st, body = c.worker("POST", "/api/v1/cases/%d/reply" % a_case, tok_a, body=reply)
        ck.check(st == 409, "reply before accept: expected 409, got %s %r" % (st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/accept" % a_case, tok_a, body={})
        ck.check(st == 200, "accept: expected 200, got %s %r" % (st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/accept" % a_case, tok_a, body={})
        ck.check(st == 409, "accept twice: expected 409, got %s %r" % (st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/reply" % a_case, tok_a, body=reply)
        ck.check(st == 200, "reply: expected 200, got %s %r" % (st, body))

        st, body = c.worker("GET", "/api/v1/cases/%d" % a_case, tok_a)
        ck.check(st == 200 and isinstance(body, dict), "A reading its case: %s %r" % (st, body))
        if st == 200 and isinstance(body, dict):
            ck.check(body.get("status") == "replied",
                     "case status after reply: %r" % body.get("status"))
            types = [e.get("type") for e in body.get("events", [])]
            want = ["dispatched", "delivered", "accepted", "replied"]
            it = iter(types)
            ck.check(all(w in it for w in want),
                     "events %s do not contain %s in that order" % (types, want))
            ck.check(len(body.get("petitions", [])) >= 1, "case detail has no petitions")
            ck.check(len(body.get("assignments", [])) >= 1, "case detail has no assignments")
            # A department does not need the caller's phone: it is masked.
            for p in body.get("petitions", []):
                phone = (p.get("caller") or {}).get("phone") or ""
                ck.check("*" in phone or not phone,
                         "caller phone %r shown unmasked to a department" % phone)

        # Unknown and missing tokens.
        st, body = c.worker("GET", "/api/v1/cases", "fb_" + "f" * 40)
        ck.check(st == 401, "unknown token: expected 401, got %s %r" % (st, body))
        st, body = c.http("GET", "/api/v1/cases", port=c.worker_port)
        ck.check(st == 401, "no token: expected 401, got %s %r" % (st, body))
        # A channel token has no business in the case API.
        st, body = c.worker("GET", "/api/v1/cases", c.tokens["hotline"])
        ck.check(st == 403, "hotline token on the case API: expected 403, got %s %r" % (st, body))
        ck.finish()


def delivered_events(c, case_ids):
    """The 'delivered' events of case_ids: id, case_id, via, departments and
    the transaction (xmin) that appended them."""
    return c.sql("SELECT id, case_id, data->>'via' AS via, data->'departments' AS departments,"
                 " xmin::text AS tx FROM case_events"
                 " WHERE type = 'delivered' AND case_id = ANY (:'ids'::bigint[]) ORDER BY id",
                 ids="{%s}" % ",".join(str(i) for i in case_ids))


def departments_of(c, case_ids):
    """{case_id: [{department, role}, …] in assignment id order}."""
    rows = c.sql("SELECT case_id, json_agg(json_build_object('department', department_code,"
                 " 'role', role) ORDER BY id) AS d FROM assignments"
                 " WHERE case_id = ANY (:'ids'::bigint[]) GROUP BY case_id",
                 ids="{%s}" % ",".join(str(i) for i in case_ids))
    return {r["case_id"]: r["d"] for r in rows}


def assignment_lines(text):
    """(case_id, delivered) of every event=assignment line of a worker log."""
    return [(int(m.group(1)), m.group(2)) for m in
            re.finditer(r"event=assignment case_id=(\d+) .*?delivered=(\S+)", text)]


def burst_delivery():
    # catch-up every hour: whatever is delivered here, the bus delivered.
    with Cluster("worker_burst", settings={"worker": {"catchup_s": 3600}}) as c:
        ck = Checks()
        worker = c.daemons["worker"]
        # Every fixture twice (the repeat under another order_no, most of
        # them merged into the first one's case): more events than the
        # worker reads in one turn, and cases that come twice.
        fixtures = [f["order"] for f in load_json("tests/fixtures/hotline_orders.json")]
        orders = fixtures + [dict(o, order_no=o["order_no"] + "-R") for o in fixtures]

        # The bus is live (the worker's subscription reached the dispatcher)
        # once the worker has logged an order's event; only then is it stopped.
        st, body = c.post_order(order("BURST-WARMUP", "路灯不亮，晚上很黑，请尽快维修"))
        ck.check(st == 202, "warm-up order: %s %r" % (st, body))
        c.wait_until(lambda: assignment_lines(worker.log_text()), 60,
                     "the worker's first assignment event")
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM assignments WHERE delivered_at IS NULL") == 0,
            60, "the warm-up order delivered")
        log_before = len(worker.log_text())
        event_before = c.sql_value("SELECT coalesce(max(id), 0) FROM case_events")
        asg_before = c.sql_value("SELECT count(*) FROM assignments")
        m0 = c.metrics(port=c.worker_port) or {}
        key = 'fenbo_worker_delivered_total{via="bus"}'

        # ---- 400 orders reach a stopped worker, all delivered at once ----
        worker.proc.send_signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(c.post_order, orders))
            ck.check(all(st == 202 for st, _ in answers),
                     "burst orders: %s" % Counter(st for st, _ in answers))
            c.wait_dispatched(len(orders) + 1, 120)
        finally:
            worker.proc.send_signal(signal.SIGCONT)
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM assignments WHERE delivered_at IS NULL") == 0,
            60, "every assignment delivered after the burst")
        case_ids = [r["id"] for r in c.sql("SELECT id FROM cases ORDER BY id")]
        depts = departments_of(c, case_ids)
        events = delivered_events(c, case_ids)
        # Every assignment is delivered once, each case's all at once: one
        # event per case that has assignments, whoever delivered it.
        per_case = Counter(e["case_id"] for e in events)
        for cid in case_ids:
            want = 1 if depts.get(cid) else 0
            ck.check(per_case[cid] == want, "case %d: %d 'delivered' events, expected %d"
                     % (cid, per_case[cid], want))
        for e in events:
            ck.check(e["departments"] == depts.get(e["case_id"]),
                     "case %d: event names %r, assignments are %r"
                     % (e["case_id"], e["departments"], depts.get(e["case_id"])))
        burst = [e for e in events if e["id"] > event_before]
        for e in burst:
            ck.check(e["via"] == "bus", "case %d delivered via %r" % (e["case_id"], e["via"]))
        txs = Counter(e["tx"] for e in burst)
        total = c.sql_value("SELECT count(*) FROM assignments") - asg_before
        log("burst: %d petitions, %d cases, %d assignments, %d 'delivered' events in %d"
            " transactions (largest %d)"
            % (len(orders), len(case_ids), total, len(burst), len(txs),
               max(txs.values()) if txs else 0))
        ck.check(len(txs) < len(burst), "%d 'delivered' events in %d transactions: the burst"
                 " was not delivered in batches" % (len(burst), len(txs)))
        lines = assignment_lines(worker.log_text()[log_before:])
        ck.check(len(lines) == len(orders), "%d event=assignment lines for %d petitions"
                 % (len(lines), len(orders)))
        logged = sum(int(n) for _, n in lines if n.isdigit())
        ck.check(logged == total, "the log's delivered= add up to %d, not %d assignments"
                 % (logged, total))
        m = c.metrics(port=c.worker_port) or {}
        ck.check(m.get(key, 0) - m0.get(key, 0) == total, "delivered via bus: %r more,"
                 " expected %d" % (m.get(key, 0) - m0.get(key, 0), total))

        # ---- a crafted burst: repeats, delivered cases, bad messages ----
        rows = c.sql("SELECT c.id, c.status, c.department_code AS dept,"
                     " (SELECT min(tracking_no) FROM petitions p WHERE p.case_id = c.id) AS tn"
                     " FROM cases c WHERE c.status = 'dispatched' AND EXISTS"
                     " (SELECT 1 FROM assignments a WHERE a.case_id = c.id) ORDER BY c.id")
        reset, kept = rows[:40], rows[40:50]
        reset_ids = [r["id"] for r in reset]
        c.daemons["dispatcher"].stop()
        ctx = zmq.Context()
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        try:
            pub.bind("tcp://127.0.0.1:%d" % c.bus_assignments_port)

            def send(row):
                body = {"case_id": row["id"], "tracking_no": row["tn"],
                        "department": row["dept"], "rule": None, "rule_id": None,
                        "assists": [], "accept_due": None, "reply_due": None,
                        "status": "dispatched", "received_at": "2026-01-05T10:00:00+08:00"}
                pub.send_multipart([row["dept"].encode(), b"FB1", b"ASG",
                                    json.dumps(body).encode()])

            def bad(topic):
                pub.send_multipart([topic.encode(), b"FB1", b"XXX", b"{}"])

            # The worker's SUB reconnects to the stand-in: probe until it hears.
            def heard():
                bad("probe")
                time.sleep(0.1)
                return 'topic="probe"' in worker.log_text()
            c.wait_until(heard, 30, "the worker subscribed to the stand-in publisher")
            log_before = len(worker.log_text())
            m0 = c.metrics(port=c.worker_port) or {}

            c.psql("UPDATE assignments SET delivered_at = NULL"
                   " WHERE case_id = ANY (:'ids'::bigint[])",
                   {"ids": "{%s}" % ",".join(str(i) for i in reset_ids)})
            # An action on one of the cases meanwhile: it holds the case's
            # row (FOR UPDATE), then stamps an assignment of the case. The
            # batch must wait for it without holding that assignment, or
            # each would wait for the other (a deadlock, one of them undone).
            held = reset[len(reset) // 2]["id"]
            action = subprocess.Popen(c.psql_base + ["-d", "fenbo", "-A", "-t"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
            try:
                action.stdin.write("BEGIN;\nSELECT id FROM cases WHERE id = %d FOR UPDATE;\n"
                                   % held)
                action.stdin.flush()
                ck.check(action.stdout.readline().strip() == str(held),
                         "the action did not lock case %d" % held)
                worker.proc.send_signal(signal.SIGSTOP)
                try:
                    # Descending, so that the statement has to put them in order.
                    for i, row in enumerate(reversed(reset + kept)):
                        send(row)
                        send(row)
                        if i % 10 == 0:
                            bad("burst-bad")
                    time.sleep(0.5)  # on the wire, in the worker's socket buffer
                finally:
                    worker.proc.send_signal(signal.SIGCONT)
                time.sleep(1)  # the batch reaches the held case and waits
                action.stdin.write("UPDATE assignments SET reply_due = reply_due"
                                   " WHERE case_id = %d;\nCOMMIT;\n" % held)
                action.stdin.close()
                out = action.stdout.read()
                ck.check(action.wait(30) == 0, "the action on case %d failed: %s" % (held, out))
            finally:
                if action.poll() is None:
                    action.kill()
                    action.wait()
            ck.check("event=db_error" not in worker.log_text()[log_before:],
                     "the batch failed: %s" % re.findall(r".*event=db_error.*",
                                                         worker.log_text()[log_before:]))
            c.wait_until(lambda: c.sql_value(
                "SELECT count(*) FROM assignments WHERE delivered_at IS NULL") == 0,
                30, "the reset assignments delivered again")
            c.wait_until(lambda: len(assignment_lines(worker.log_text()[log_before:]))
                         == 2 * len(reset + kept), 30, "a log line per crafted event")

            depts = departments_of(c, reset_ids)
            events = [e for e in delivered_events(c, [r["id"] for r in reset + kept])]
            per_case = Counter(e["case_id"] for e in events)
            for r in reset:
                ck.check(per_case[r["id"]] == 2, "reset case %d: %d 'delivered' events, expected 2"
                         % (r["id"], per_case[r["id"]]))
            for r in kept:
                ck.check(per_case[r["id"]] == 1, "delivered case %d: %d 'delivered' events,"
                         " expected still 1" % (r["id"], per_case[r["id"]]))
            new = [e for e in events if e["case_id"] in depts and e["id"] == max(
                x["id"] for x in events if x["case_id"] == e["case_id"])]
            for e in new:
                ck.check(e["via"] == "bus" and e["departments"] == depts[e["case_id"]],
                         "case %d redelivered via %r naming %r, assignments %r"
                         % (e["case_id"], e["via"], e["departments"], depts[e["case_id"]]))
            by_tx = {}
            for e in new:
                by_tx.setdefault(e["tx"], []).append(e)
            for tx, evs in by_tx.items():
                ck.check([e["case_id"] for e in evs] == sorted(e["case_id"] for e in evs),
                         "transaction %s appended cases %s out of case order"
                         % (tx, [e["case_id"] for e in evs]))
            log("crafted burst: %d cases redelivered in %d transactions"
                % (len(new), len(by_tx)))
            ck.check(len(by_tx) < len(new), "the crafted burst was not delivered in batches")

            lines = assignment_lines(worker.log_text()[log_before:])
            counts = {}
            for cid, n in lines:
                counts.setdefault(cid, []).append(n)
            for r in reset:
                want = [str(len(depts[r["id"]])), "0"]
                ck.check(counts.get(r["id"]) == want, "case %d logged delivered=%s, expected %s"
                         % (r["id"], counts.get(r["id"]), want))
            for r in kept:
                ck.check(counts.get(r["id"]) == ["0", "0"], "delivered case %d logged delivered=%s"
                         % (r["id"], counts.get(r["id"])))
            m1 = c.metrics(port=c.worker_port) or {}
            key = 'fenbo_worker_delivered_total{via="bus"}'
            want = sum(len(d) for d in depts.values())
            ck.check(m1.get(key, 0) - m0.get(key, 0) == want, "delivered via bus grew by %r,"
                     " expected %d" % (m1.get(key, 0) - m0.get(key, 0), want))
            key = "fenbo_worker_assignment_events_total"
            ck.check(m1.get(key, 0) - m0.get(key, 0) == 2 * len(reset + kept),
                     "assignment events grew by %r, expected %d"
                     % (m1.get(key, 0) - m0.get(key, 0), 2 * len(reset + kept)))
            ck.check(worker.log_text()[log_before:].count('topic="burst-bad"')
                     == (len(reset + kept) + 9) // 10,
                     "the bad messages of the burst not all logged")

            # ---- the database away: every event of the batch deferred ----
            # Catch-up delivers them when it returns (on reconnecting).
            later = rows[50:55]
            c.psql("UPDATE assignments SET delivered_at = NULL"
                   " WHERE case_id = ANY (:'ids'::bigint[])",
                   {"ids": "{%s}" % ",".join(str(r["id"]) for r in later)})
            log_before = len(worker.log_text())
            m0 = c.metrics(port=c.worker_port) or {}
            c.stop_pg()
            try:
                for row in later:
                    send(row)
                c.wait_until(lambda: len(assignment_lines(worker.log_text()[log_before:]))
                             == len(later), 30, "a log line per event while PostgreSQL is away")
            finally:
                c.start_pg()
            c.wait_until(lambda: c.sql_value(
                "SELECT count(*) FROM assignments WHERE delivered_at IS NULL") == 0,
                60, "catch-up delivering what the bus could not")
            text = worker.log_text()[log_before:]
            deferred = re.findall(r"event=assignment case_id=(\d+) .*delivered=deferred"
                                  r" reason=(db_down|db_error)", text)
            log("database away: %d events deferred (%s)"
                % (len(deferred), dict(Counter(why for _, why in deferred))))
            ck.check(sorted(int(cid) for cid, _ in deferred) == sorted(r["id"] for r in later),
                     "deferred lines %r for cases %r" % (deferred, [r["id"] for r in later]))
            m1 = c.metrics(port=c.worker_port) or {}
            key = 'fenbo_worker_delivered_total{via="bus"}'
            ck.check(m1.get(key, 0) == m0.get(key, 0), "delivered via bus grew by %r while"
                     " PostgreSQL was away" % (m1.get(key, 0) - m0.get(key, 0)))
            events = delivered_events(c, [r["id"] for r in later])
            vias = Counter(e["case_id"] for e in events if e["via"] == "catchup")
            ck.check(all(vias[r["id"]] == 1 for r in later),
                     "catch-up events after the outage: %r" % dict(vias))
        finally:
            pub.close()
            ctx.term()
        ck.finish()


if __name__ == "__main__":
    main(lambda: (run(), burst_delivery()))
