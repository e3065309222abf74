#!/usr/bin/env python3
"""test_routing — the 200 hotline orders of tests/fixtures/hotline_orders.json
go through intake and the dispatcher, and each ends up with the department
and rule its "expect" names (department null = the manual queue), and its
stored petition holds what the order said (caller, callback, text, place).

A mismatch prints the order, what was expected and what happened, and
`fenboctl rules explain` for it, so that the rule or the fixture can be fixed."""

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from harness import Checks, Cluster, load_json, log, main


def explain(c, o):
    """`fenboctl rules explain` for the order o, as the dispatcher saw it."""
    args = ["rules", "explain", "--text", o.get("content", ""), "--channel", "hotline",
            "--json"]
    if o.get("category"):
        args += ["--category", o["category"]]
    loc = o.get("location")
    if isinstance(loc, dict) and "lat" in loc and "lng" in loc:
        args += ["--lat", repr(loc["lat"]), "--lng", repr(loc["lng"]),
                 "--crs", loc.get("crs", "wgs84")]
    for key in ("urgency", "kind"):
        if o.get(key):
            args += ["--" + key, o[key]]
    if o.get("received_at"):
        args += ["--at", o["received_at"]]
    p = c.fenboctl(*args, check=False)
    out = p.stdout.decode("utf-8", "replace").strip()
    err = p.stderr.decode("utf-8", "replace").strip()
    if p.returncode != 0:
        return "(fenboctl %s: exit %d) %s %s" % (" ".join(args), p.returncode, out, err)
    return out


def run():
    fixtures = load_json("tests/fixtures/hotline_orders.json")
    assert len(fixtures) == 200, "expected 200 fixture orders, found %d" % len(fixtures)
    order_nos = [f["order"]["order_no"] for f in fixtures]
    assert len(set(order_nos)) == len(order_nos), "fixture order_no values are not unique"

    with Cluster("routing") as c:
        ck = Checks()
        answers = {}

        def post(f):
            return f["order"]["order_no"], c.post_order(f["order"])

        with ThreadPoolExecutor(4) as pool:
            for order_no, (st, body) in pool.map(post, fixtures):
                answers[order_no] = (st, body)
        for order_no, (st, body) in answers.items():
            ck.check(st == 202 and isinstance(body, dict) and body.get("tracking_no"),
                     "order %s: expected 202 with tracking_no, got %s %r" % (order_no, st, body))
        ck.finish()
        log("200 orders accepted; waiting for dispatch")

        c.wait_until(
            lambda: c.sql_value(
                "SELECT count(*) FROM petitions WHERE channel = 'hotline' AND case_id IS NOT NULL"
            ) == 200,
            60, "all 200 petitions stored with a case")

        rows = c.sql("""
            SELECT p.idem_key, p.tracking_no, c.status, c.department_code, r.name AS rule
              FROM petitions p
              JOIN cases c ON c.id = p.case_id
              LEFT JOIN route_rules r ON r.id = c.rule_id
             WHERE p.channel = 'hotline'""")
        got = {r["idem_key"]: r for r in rows}
        ck.check(len(got) == 200, "expected 200 petitions, found %d" % len(got))

        mismatches = 0
        for f in fixtures:
            o, exp = f["order"], f["expect"]
            r = got.get(o["order_no"])
            if r is None:
                ck.check(False, "order %s is not in petitions" % o["order_no"])
                continue
            ck.check(r["tracking_no"] == answers[o["order_no"]][1]["tracking_no"],
                     "order %s: petitions.tracking_no %s differs from the answer %s"
                     % (o["order_no"], r["tracking_no"], answers[o["order_no"]][1]))
            if exp.get("department") is None:
                ck.check(r["status"] == "manual",
                         "order %s: expected the manual queue, case status is %s"
                         % (o["order_no"], r["status"]))
            if r["department_code"] == exp.get("department") and r["rule"] == exp.get("rule"):
                ck.passed += 1
                continue
            mismatches += 1
            ck.failures.append("order %s routed to %s/%s, expected %s/%s"
                               % (o["order_no"], r["department_code"], r["rule"],
                                  exp.get("department"), exp.get("rule")))
            print("---- MISMATCH order_no=%s tracking_no=%s" % (o["order_no"], r["tracking_no"]))
            print("  content : %s" % o.get("content"))
            print("  order   : %s" % json.dumps(o, ensure_ascii=False))
            print("  expected: department=%s rule=%s" % (exp.get("department"), exp.get("rule")))
            print("  actual  : department=%s rule=%s status=%s"
                  % (r["department_code"], r["rule"], r["status"]))
            print("  explain : %s" % explain(c, o))
            sys.stdout.flush()
        log("%d of 200 routed as expected" % (200 - mismatches))

        # What was stored is what the order said, field by field.
        stored = {r["idem_key"]: r for r in c.sql("""
            SELECT idem_key, caller_name, caller_phone, callback, content, address,
                   ST_Y(location) AS lat, ST_X(location) AS lng
              FROM petitions WHERE channel = 'hotline'""")}
        for f in fixtures:
            o, r = f["order"], stored.get(f["order"]["order_no"])
            if r is None:
                continue
            loc = o.get("location")
            want = {"caller_name": o["caller"]["name"], "caller_phone": o["caller"]["phone"],
                    "callback": o["callback"], "content": o["content"],
                    "address": o.get("address"),
                    "lat": loc["lat"] if loc else None, "lng": loc["lng"] if loc else None}
            got_fields = {k: r[k] for k in want}
            for k in ("lat", "lng"):
                if got_fields[k] is not None:
                    got_fields[k] = float(got_fields[k])
            ck.check(got_fields == want, "order %s stored as %r, sent %r"
                     % (o["order_no"], got_fields, want))
        ck.finish()


if __name__ == "__main__":
    main(run)
