#!/usr/bin/env python3
"""test_worker_api — the case API of fenbo-worker, as two departments and an
operator see it.

A few hotline orders are dispatched; then department A's token lists only
cases A takes part in, gets 404 for B's case, is refused (409) a reply
before it signed for its case, signs for it (accept, 200), replies (200);
the case's history holds dispatched, delivered, accepted, replied in that
order; the operator sees every case; an unknown token gets 401."""

from collections import Counter

from harness import Checks, Cluster, load_json, log, main


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
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE case_id IS NOT NULL") == len(wanted),
            60, "%d petitions dispatched" % len(wanted))

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


if __name__ == "__main__":
    main(run)
