#!/usr/bin/env python3
"""test_rls — row-level security (schema/0007_rls.sql): a department reads
and changes only its own cases, whatever the worker's C does.

In SQL, as fenbo_app (the worker's role) with the context the worker sets:
- department A reads none of B's cases, petitions, events, assignments or
  ratings, nor B's numbers in the statistics; it updates none of them (0
  rows), appends no event to them (refused by the policy, the same way as
  for a case that does not exist), deletes and truncates nothing, and
  learns nothing from a unique key or a foreign key: a rating of B's rated
  petition, a request naming B's assignment, a row with B's id are refused
  exactly as they are for ids nobody has;
- an assignment withdrawn keeps the case readable, and no longer writable;
- no context, or a channel's role: nothing at all; the operator: everything;
  a supervisor: everything, and changes nothing.
Through the worker's API, with department tokens: A's list never holds B's
cases, B's case and every action on it answer 404 exactly as a case that
does not exist; the operator lists all; A's statistics are A's row only.
A worker whose db_role cannot be taken serves no case (503), rather than
running as the tables' owner.
Finally, a database migrated by an owner that is no superuser (row security
forced on it too): the owner still writes and reads every row, as the
dispatcher and intake do, and fenbo_app is confined there as well."""

import json
import os
import re
import subprocess
from collections import Counter

from harness import Checks, Cluster, load_json, log, main

NOBODY_ID = 999999999  # an id no row has


class App:
    """psql as fenbo_app, with the context the worker sets for a request."""

    def __init__(self, cluster, db="fenbo", user="postgres"):
        self.c = cluster
        self.argv = [a for a in cluster.psql_base]
        self.argv[self.argv.index("-U") + 1] = user
        self.argv += ["-d", db, "-A", "-t"]

    def run(self, sql, role=None, dept=None, **variables):
        """(ok, stdout, stderr) of sql run after SET ROLE fenbo_app and the
        context (role None: none set at all)."""
        pre = "SET ROLE fenbo_app;\n"
        if role is not None:
            pre += ("SELECT set_config('fenbo.role', :'ctx_role', false),"
                    " set_config('fenbo.department', :'ctx_dept', false) \\g /dev/null\n")
        argv = list(self.argv)
        for k, v in dict(variables, ctx_role=role or "", ctx_dept=dept or "").items():
            argv += ["-v", "%s=%s" % (k, v)]
        p = subprocess.run(argv, input=(pre + sql).encode(), capture_output=True, timeout=60)
        return (p.returncode == 0, p.stdout.decode().strip(),
                p.stderr.decode(errors="replace").strip())

    def value(self, sql, role=None, dept=None, **variables):
        ok, out, err = self.run(sql, role, dept, **variables)
        if not ok:
            raise AssertionError("as fenbo_app (%s %s): %s failed: %s" % (role, dept, sql, err))
        return out

    def error(self, sql, role=None, dept=None, **variables):
        """The error sql fails with, ids and numbers blanked; None when it
        succeeded."""
        ok, out, err = self.run(sql, role, dept, **variables)
        if ok:
            return None
        return re.sub(r"\d+", "N", err.replace("psql:<stdin>:", ""))


def ids_sql(ids):
    return "{%s}" % ",".join(str(i) for i in ids)


def sql_checks(c, ck, app, a, b, a_visible, b_only, all_ids, b_led_visible, w_case):
    bids = ids_sql(b_only)
    # ---- reading -----------------------------------------------------------
    for table, col in (("cases", "id"), ("petitions", "case_id"), ("case_events", "case_id"),
                       ("assignments", "case_id"), ("ratings", "case_id"),
                       ("timer_actions", "case_id"), ("callback_tasks", "case_id")):
        n = app.value("SELECT count(*) FROM %s WHERE %s = ANY(:'ids'::bigint[])" % (table, col),
                      "department", a, ids=bids)
        ck.check(n == "0", "A reads %s of B's cases in %s" % (n, table))
    n = app.value("SELECT count(*) FROM cases", "department", a)
    ck.check(int(n) == len(a_visible), "A reads %s cases, has %d" % (n, len(a_visible)))
    n = app.value("SELECT count(*) FROM petitions WHERE case_id = ANY(:'ids'::bigint[])",
                  "department", a, ids=ids_sql(a_visible))
    ck.check(int(n) >= len(a_visible), "A reads only %s petitions of its own cases" % n)
    # The statistics' view reads as the caller.
    n = app.value("SELECT count(*) FROM fenbo_stats_cases", "department", a)
    ck.check(int(n) == len(a_visible), "A's fenbo_stats_cases has %s rows" % n)
    err = app.error("SELECT count(*) FROM fenbo_audit_breaks", "department", a)
    ck.check(err and "permission denied" in err, "fenbo_audit_breaks as fenbo_app: %s" % err)

    # ---- the statistics ---------------------------------------------------
    doc = json.loads(app.value(
        "SELECT fenbo_stats_json('department', NULL, NULL, 'Asia/Shanghai', NULL)",
        "department", a))
    total = (doc.get("total") or {}).get("dispatched")
    ck.check(total == len(a_visible),
             "A's statistics count %s cases, A has %d" % (total, len(a_visible)))
    # B's row, when there is one, counts only the cases of B's that A works on.
    brow = [r for r in doc["rows"] if r["key"] == b]
    ck.check(brow and brow[0]["dispatched"] == len(b_led_visible),
             "A's statistics show B's row %r; A works on %d of B's cases"
             % (brow, len(b_led_visible)))
    doc = json.loads(app.value(
        "SELECT fenbo_stats_json('department', NULL, NULL, 'Asia/Shanghai', NULL)",
        "operator"))
    ck.check((doc.get("total") or {}).get("dispatched") == len(all_ids),
             "the operator's statistics: %r" % doc.get("total"))

    # ---- changing ------------------------------------------------------------
    for sql in ("WITH u AS (UPDATE cases SET updated_at = now() WHERE id = ANY(:'ids'::bigint[])"
                " RETURNING 1) SELECT count(*) FROM u",
                "WITH u AS (UPDATE assignments SET accepted_at = now()"
                " WHERE case_id = ANY(:'ids'::bigint[]) RETURNING 1) SELECT count(*) FROM u",
                "WITH u AS (UPDATE cases SET status = 'closed' WHERE id <> :'w' RETURNING id)"
                " SELECT count(*) FROM u WHERE id = ANY(:'ids'::bigint[])"):
        ok, out, err = app.run("BEGIN;\n" + sql + ";\nROLLBACK;", "department", a, ids=bids,
                               w=w_case)
        ck.check(ok and out == "0", "A changing B's rows: %s %r %s" % (ok, out, err))
    before = c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'id'", id=b_only[0])
    ev = ("INSERT INTO case_events (case_id, actor, type) VALUES (:'id', 'dept:%s', 'note')" % a)
    err_b = app.error(ev, "department", a, id=b_only[0])
    err_none = app.error(ev, "department", a, id=NOBODY_ID)
    ck.check(err_b and "row-level security" in err_b, "A's event on B's case: %s" % err_b)
    ck.check(err_b == err_none, "an event on B's case fails as %r, on no case as %r"
             % (err_b, err_none))
    ck.check(c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'id'", id=b_only[0])
             == before, "B's history changed")
    for sql in ("DELETE FROM case_events WHERE case_id = %d" % b_only[0],
                "DELETE FROM cases WHERE id = %d" % b_only[0],
                "DELETE FROM assignments", "DELETE FROM petitions", "DELETE FROM api_tokens",
                "TRUNCATE cases CASCADE", "TRUNCATE case_events", "TRUNCATE ratings",
                "UPDATE api_tokens SET revoked_at = now()",
                "INSERT INTO cases (status, urgency, kind) VALUES ('manual', 'normal', 'help')",
                "INSERT INTO departments (code, name, kind) VALUES ('x', 'x', 'other')",
                "UPDATE route_rules SET enabled = false"):
        for role, dept in (("department", a), ("operator", None), ("system", None)):
            err = app.error(sql, role, dept)
            ck.check(err and "permission denied" in err, "%s as %s: %s" % (sql, role, err))

    # ---- keys: nothing to learn from a unique or foreign key ---------------------
    rated = c.sql_value("SELECT min(p.id) FROM petitions p JOIN ratings r ON r.petition_id = p.id"
                        " WHERE p.case_id = ANY(:'ids'::bigint[])", ids=bids)
    ck.check(rated, "B has a rated petition for the test")
    own = a_visible[0]
    rating = ("INSERT INTO ratings (case_id, petition_id, resolved, satisfaction, source)"
              " VALUES (:'own', :'pid', true, 'satisfied', 'dept')")
    err_b = app.error(rating, "department", a, own=own, pid=rated)
    err_none = app.error(rating, "department", a, own=own, pid=NOBODY_ID)
    ck.check(err_b and "row-level security" in err_b and "duplicate" not in err_b,
             "A rating B's rated petition: %s" % err_b)
    ck.check(err_b == err_none, "a rating of B's petition fails as %r, of none as %r"
             % (err_b, err_none))
    b_assignment = c.sql_value("SELECT min(id) FROM assignments WHERE case_id = :'id'",
                               id=b_only[0])
    own_lead = c.sql_value("SELECT min(case_id) FROM assignments WHERE department_code = :'d'"
                           " AND role = 'lead' AND withdrawn_at IS NULL", d=a)
    for table, sql in (
            ("case_returns", "INSERT INTO case_returns (case_id, assignment_id, department_code,"
             " reason, requested_by) VALUES (:'own', :'aid', :'d', 'x', 'dept:x')"),
            ("extensions", "INSERT INTO extensions (case_id, assignment_id, department_code,"
             " reason, previous_due, until, requested_by) VALUES (:'own', :'aid', :'d', 'x',"
             " now(), now() + interval '1 day', 'dept:x')")):
        err_b = app.error(sql, "department", a, own=own_lead, aid=b_assignment, d=a)
        err_none = app.error(sql, "department", a, own=own_lead, aid=NOBODY_ID, d=a)
        ck.check(err_b and "row-level security" in err_b and "foreign key" not in err_b,
                 "A's %s naming B's assignment: %s" % (table, err_b))
        ck.check(err_b == err_none, "%s naming B's assignment fails as %r, naming none as %r"
                 % (table, err_b, err_none))
    b_event = c.sql_value("SELECT min(id) FROM case_events WHERE case_id = :'id'", id=b_only[0])
    for what, sql, kw in (
            ("an event with B's id", "INSERT INTO case_events (id, case_id, actor, type)"
             " VALUES (:'x', :'own', 'x', 'note')", {"own": own_lead}),
            ("an assignment with B's id", "UPDATE assignments SET id = :'x'"
             " WHERE case_id = :'own'", {"own": own_lead}),
            ("a case with B's id", "UPDATE cases SET id = :'x' WHERE id = :'own'",
             {"own": own_lead})):
        x = b_event if "event" in what else b_assignment if "assignment" in what else b_only[0]
        err_b = app.error(sql, "department", a, x=x, **kw)
        err_none = app.error(sql, "department", a, x=NOBODY_ID, **kw)
        ck.check(err_b and "permission denied" in err_b, "%s: %s" % (what, err_b))
        ck.check(err_b == err_none, "%s fails as %r, with no one's id as %r"
                 % (what, err_b, err_none))
    for table, sql in (
            ("callback_tasks", "INSERT INTO callback_tasks (case_id, petition_id, replied_event_id,"
             " channel, kind, due_at, expires_at) SELECT :'own', p.id, e.id, 'hotline', 'phone',"
             " now(), now() FROM petitions p, case_events e WHERE p.case_id = :'own'"
             " AND e.case_id = :'own' LIMIT 1"),
            ("timer_actions", "INSERT INTO timer_actions (case_id, action, due)"
             " VALUES (:'own', 'overdue_reply', now())")):
        err = app.error(sql, "department", a, own=own_lead)
        ck.check(err and "row-level security" in err, "A writes %s: %s" % (table, err))

    # ---- a withdrawn assignment: read, not write ------------------------------------
    n = app.value("SELECT count(*) FROM cases WHERE id = :'id'", "department", a, id=w_case)
    ck.check(n == "1", "A reads the case it was withdrawn from: %s" % n)
    err = app.error("UPDATE cases SET updated_at = now() WHERE id = :'id'", "department", a,
                    id=w_case)
    ck.check(err and "row-level security" in err, "A changes a case it was withdrawn from: %s"
             % err)
    err = app.error(ev, "department", a, id=w_case)
    ck.check(err and "row-level security" in err, "A's event on a withdrawn case: %s" % err)

    # ---- nobody, channels, supervisors, operators ----------------------------------
    for role, dept in ((None, None), ("", ""), ("hotline", None), ("department", ""),
                       ("", a), ("Department", a), ("nosuch", a)):
        n = app.value("SELECT (SELECT count(*) FROM cases) + (SELECT count(*) FROM petitions)"
                      " + (SELECT count(*) FROM case_events) + (SELECT count(*) FROM assignments)"
                      " + (SELECT count(*) FROM ratings) + (SELECT count(*) FROM hotspot_alerts)",
                      role, dept)
        ck.check(n == "0", "context %r/%r reads %s rows" % (role, dept, n))
    for role in ("operator", "supervisor", "admin", "system"):
        n = app.value("SELECT count(*) FROM cases", role)
        ck.check(int(n) == len(all_ids), "%s reads %s of %d cases" % (role, n, len(all_ids)))
    ok, out, err = app.run("BEGIN; WITH u AS (UPDATE cases SET updated_at = now() RETURNING 1)"
                           " SELECT count(*) FROM u; ROLLBACK;", "supervisor")
    ck.check(ok and out == "0", "a supervisor changes cases: %s %r %s" % (ok, out, err))
    err = app.error(rating, "supervisor", None, own=own, pid=NOBODY_ID)
    ck.check(err and "row-level security" in err, "a supervisor's rating: %s" % err)


def api_checks(c, ck, a, b, a_visible, b_only, all_ids, w_case):
    tok_a = c.dept_tokens[a]
    op = c.tokens["operator"]

    def list_all(token):
        ids, after = [], 0
        for _ in range(100):
            st, body = c.worker("GET", "/api/v1/cases?limit=500&after_id=%d" % after, token)
            if st != 200:
                return st, body
            ids += [x["id"] for x in body["cases"]]
            if not body.get("next_after_id"):
                return 200, ids
            after = body["next_after_id"]
        return 200, ids

    # Interleaved, so that each request follows one of another caller.
    for _ in range(2):
        st, ids = list_all(op)
        ck.check(st == 200 and set(ids) == set(all_ids),
                 "operator's list: %s %s" % (st, len(ids) if st == 200 else ids))
        st, ids = list_all(tok_a)
        ck.check(st == 200 and set(ids) == set(a_visible),
                 "A's list: %s %s, want %s" % (st, ids, sorted(a_visible)))
        st, body = c.worker("GET", "/api/v1/cases?department=%s&status=dispatched" % b, tok_a)
        ck.check(st == 200 and not set(x["id"] for x in body["cases"]) - set(a_visible),
                 "A asking for B's cases: %s %r" % (st, body))

    def blank(body):
        return re.sub(r"\d+", "N", repr(body))

    b_case = b_only[0]
    for method, path, body in (("GET", "", None), ("POST", "/accept", {}),
                               ("POST", "/reply", {"result": "x", "resolved": True}),
                               ("POST", "/return", {"reason": "x"}),
                               ("POST", "/extend", {"until": "2099-01-01T00:00:00+08:00",
                                                    "reason": "x"}),
                               ("POST", "/assist", {"departments": [a]})):
        st, got = c.worker(method, "/api/v1/cases/%d%s" % (b_case, path), tok_a, body=body)
        st0, got0 = c.worker(method, "/api/v1/cases/%d%s" % (NOBODY_ID, path), tok_a, body=body)
        ck.check(st == 404 and st0 == 404 and blank(got) == blank(got0),
                 "A: %s B's case%s → %s %r; no case → %s %r"
                 % (method, path, st, got, st0, got0))
    st, got = c.worker("GET", "/api/v1/cases/%d" % b_case, c.dept_tokens[b])
    ck.check(st == 200, "B reads its case: %s %r" % (st, got))
    st, got = c.worker("GET", "/api/v1/cases/%d" % b_case, op)
    ck.check(st == 200, "the operator reads B's case: %s" % st)

    # The case A was withdrawn from: readable, not actionable.
    st, got = c.worker("GET", "/api/v1/cases/%d" % w_case, tok_a)
    ck.check(st == 200, "A reads the case it was withdrawn from: %s %r" % (st, got))
    st, got = c.worker("POST", "/api/v1/cases/%d/accept" % w_case, tok_a, body={})
    ck.check(st == 403, "A acts on the case it was withdrawn from: %s %r" % (st, got))

    st, doc = c.worker("GET", "/api/v1/stats", tok_a)
    ck.check(st == 200 and [r["key"] for r in doc["rows"]] == [a] and doc["total"] is None,
             "A's statistics: %s %r" % (st, doc))
    st, doc = c.worker("GET", "/api/v1/stats", op)
    keys = [r["key"] for r in doc["rows"]] if st == 200 else []
    ck.check(st == 200 and a in keys and b in keys
             and doc["total"]["dispatched"] == len(all_ids),
             "the operator's statistics: %s %r" % (st, doc))
    st, doc = c.worker("GET", "/api/v1/overdue", tok_a)
    seen = {x["case_id"] for x in doc["overdue"]} if st == 200 else set()
    ck.check(st == 200 and not seen & set(b_only), "A's overdue list: %s %r" % (st, doc))
    st, doc = c.worker("GET", "/api/v1/hotspots", tok_a)
    seen = {i for h in doc["hotspots"] for i in h["case_ids"]} if st == 200 else set()
    ck.check(st == 200 and not seen & set(b_only), "A's hotspots: %s %r" % (st, doc))


def bad_role_checks(c, ck):
    """A worker that cannot take its role serves no case."""
    d, port = c.add_worker("fenbo-worker-norole", {"worker": {"db_role": "fenbo_nosuch"}})
    st, body = c.http("GET", "/api/v1/cases", token=c.tokens["operator"], port=port)
    ck.check(st == 503, "a worker without its role: %s %r" % (st, body))
    st, body = c.http("GET", "/healthz", port=port)
    ck.check(st == 200 and body.get("db") is False, "its /healthz: %s %r" % (st, body))
    c.wait_until(lambda: "event=db_role_failed" in d.log_text(), 10, "db_role_failed logged")
    ck.check(d.stop() == 0, "the worker without its role did not stop cleanly")


def owner_checks(c, ck):
    """Migrated by an owner that is no superuser: FORCEd row security lets
    the owner do everything through its own policy; fenbo_app is confined."""
    # No login without a password (scripts/pg's pg_hba): the owner gets one,
    # in the cluster's passfile beside the superuser's.
    c.psql("CREATE ROLE fenbo_owner LOGIN PASSWORD 'owner-pw'; GRANT fenbo_app TO fenbo_owner;"
           " CREATE DATABASE fenbo_owned OWNER fenbo_owner;", db="postgres")
    with open(os.path.join(c.pg_dir, "pgpass"), "a") as f:
        f.write("*:*:*:fenbo_owner:owner-pw\n")
    # Extensions need a superuser; a DBA creates them beforehand.
    c.psql("CREATE EXTENSION postgis; CREATE EXTENSION pg_trgm;", db="fenbo_owned")
    env = dict(os.environ, FENBO_PG=c.conninfo.replace("user=postgres", "user=fenbo_owner")
               .replace("dbname=fenbo", "dbname=fenbo_owned"))
    p = subprocess.run([c.fenboctl_bin, "db", "migrate"], capture_output=True, env=env, timeout=120)
    ck.check(p.returncode == 0, "migrate as fenbo_owner: %s" % p.stderr.decode(errors="replace"))
    if p.returncode != 0:
        return
    owner = App(c, db="fenbo_owned", user="fenbo_owner")
    # As the dispatcher does: departments, a case, its assignment, petition, event.
    setup = ("RESET ROLE;"
             " INSERT INTO departments (code, name, kind) VALUES ('da', 'A', 'bureau'),"
             " ('db', 'B', 'bureau');"
             " WITH c AS (INSERT INTO cases (status, department_code, urgency, kind)"
             "  SELECT 'dispatched', d, 'normal', 'help' FROM unnest('{da,db}'::text[]) d"
             "  RETURNING id, department_code),"
             " a AS (INSERT INTO assignments (case_id, department_code, role)"
             "  SELECT id, department_code, 'lead' FROM c),"
             " p AS (INSERT INTO petitions (tracking_no, channel, idem_key, received_at,"
             "  spooled_at, content, content_norm, urgency, kind, case_id, raw)"
             "  SELECT 'T' || id, 'hotline', 'K' || id, now(), now(), 'x', 'x', 'normal', 'help',"
             "  id, '{}' FROM c)"
             " INSERT INTO case_events (case_id, actor, type) SELECT id, 'x', 'dispatched' FROM c;"
             " SELECT (SELECT count(*) FROM cases) || ' ' || (SELECT count(*) FROM case_events)"
             " || ' ' || (SELECT count(*) FROM petitions);")
    ok, out, err = owner.run(setup)
    ck.check(ok and out == "2 2 2", "the owner writes and reads every row: %s %r %s"
             % (ok, out, err))
    n = owner.value("SELECT count(*) FROM cases", "department", "da")
    ck.check(n == "1", "fenbo_app as da in the owner's database reads %s cases" % n)
    n = owner.value("SELECT count(*) FROM cases")
    ck.check(n == "0", "fenbo_app without a context reads %s cases" % n)
    n = owner.value("SELECT count(*) FROM case_events WHERE case_id ="
                    " (SELECT id FROM cases WHERE department_code = 'db')", "operator")
    ck.check(n == "1", "the operator reads %s events of db's case" % n)
    ok, out, err = owner.run("RESET ROLE; SELECT relforcerowsecurity FROM pg_class"
                             " WHERE relname = 'cases'")
    ck.check(ok and out == "t", "row security forced on cases: %r %s" % (out, err))


def run():
    fixtures = load_json("tests/fixtures/hotline_orders.json")
    wanted = [f for f in fixtures if f["expect"].get("department")][:30]
    with Cluster("rls") as c:
        ck = Checks()
        for f in wanted:
            st, body = c.post_order(f["order"])
            ck.check(st == 202, "order %s: %s %r" % (f["order"]["order_no"], st, body))
        c.wait_dispatched(len(wanted), 60)
        # The worker's jobs run under row security too: every assignment delivered.
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM assignments WHERE delivered_at IS NULL") == 0,
            30, "the worker's catch-up delivering every assignment")

        def cases():
            return c.sql("SELECT c.id, c.department_code,"
                         " array(SELECT DISTINCT department_code FROM assignments a"
                         "       WHERE a.case_id = c.id) AS depts FROM cases c ORDER BY c.id")
        by_dept = Counter(r["department_code"] for r in cases() if r["department_code"])
        assert len(by_dept) >= 2, "need cases of two departments, got %s" % by_dept
        a, b = [d for d, _ in by_dept.most_common(2)]
        b_only = [r["id"] for r in cases() if r["department_code"] == b and a not in r["depts"]]
        assert len(b_only) >= 2, "need two cases of %s without %s: %s" % (b, a, b_only)
        # One of them A was withdrawn from (an assist whose part ended):
        # A keeps reading it, and changes it no more.
        w_case = b_only.pop()
        c.psql("INSERT INTO assignments (case_id, department_code, role, delivered_at,"
               " withdrawn_at) VALUES (:'id', :'d', 'assist', now(), now())",
               {"id": w_case, "d": a})
        rows = cases()
        a_visible = [r["id"] for r in rows if a in r["depts"]]
        b_led_visible = [r["id"] for r in rows if r["department_code"] == b and a in r["depts"]]
        all_ids = [r["id"] for r in rows]
        log("department A=%s (%d cases), B=%s (%d of its own, %d with A)"
            % (a, len(a_visible), b, len(b_only), len(b_led_visible)))
        # A rating on B's case, for the unique key on ratings.petition_id.
        c.psql("INSERT INTO ratings (case_id, petition_id, resolved, satisfaction, source,"
               " processed_at) SELECT case_id, id, true, 'satisfied', 'hotline', now()"
               " FROM petitions WHERE case_id = :'id'", {"id": b_only[0]})

        app = App(c)
        sql_checks(c, ck, app, a, b, a_visible, b_only, all_ids, b_led_visible, w_case)
        api_checks(c, ck, a, b, a_visible, b_only, all_ids, w_case)
        bad_role_checks(c, ck)
        owner_checks(c, ck)
        ck.finish()


if __name__ == "__main__":
    main(run)
