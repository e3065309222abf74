#!/usr/bin/env python3
"""test_grid — the grid's database contract (schema/0016_grid.sql) and its
tokens, on a real cluster migrated and loaded with the demo city:

- `fenboctl token create --role grid --region CODE` stores a grid worker's
  token bound to a grid; without --region, with a region that is no grid or
  community, or --region on another role, it is refused and stores nothing;
- as fenbo_app with a grid worker's context (fenbo.role 'grid', fenbo.region
  its grid) PostgreSQL shows only the verification tasks of its own grid, and
  the cases of those tasks; deciding another grid's task changes 0 rows; its
  own task is decided once, and not again; a community's worker sees its
  grids' tasks; the department of the case sees both;
- fenbo_stats_grid counts the cases found by the grid, those solved on site,
  the verifications on time and the rejections, per grid and per street,
  and GET /api/v1/stats?by=grid answers them through the real worker.

The whole path through the daemons is test_grid_flow's."""

import subprocess

from harness import Checks, Cluster, log, main

GRID_A = "339901001001001"
GRID_B = "339901001001002"
COMMUNITY = "339901001001"
STREET = "339901001"


def as_app(c, sql, role, region="", dept=""):
    argv = list(c.psql_base) + ["-d", "fenbo", "-A", "-t"]
    argv += ["-v", "r=%s" % role, "-v", "g=%s" % region, "-v", "d=%s" % dept]
    pre = ("SET ROLE fenbo_app;\n"
           "SELECT set_config('fenbo.role', :'r', false), set_config('fenbo.region', :'g', false),"
           " set_config('fenbo.department', :'d', false) \\g /dev/null\n")
    p = subprocess.run(argv, input=(pre + sql).encode(), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("as fenbo_app: %s: %s" % (sql, p.stderr.decode()))
    return p.stdout.decode().strip()


def run():
    with Cluster("grid") as c:
        ck = Checks()
        # ---- tokens --------------------------------------------------------
        tok = c.fenboctl("token", "create", "--role", "grid", "--region", GRID_A,
                         "--name", "worker-a").strip()
        ck.check(tok.startswith("fb_") and "\n" not in tok, "grid token printed: %r" % tok)
        for args in (["--role", "grid"], ["--role", "grid", "--region", STREET],
                     ["--role", "grid", "--region", "nowhere"],
                     ["--role", "operator", "--region", GRID_A]):
            p = c.fenboctl("token", "create", *args, check=False)
            ck.check(p.returncode != 0, "token create %s refused (rc %d)" % (args, p.returncode))
        rows = c.sql("SELECT role, region_code FROM api_tokens WHERE role = 'grid'")
        ck.check(rows == [{"role": "grid", "region_code": GRID_A}], "grid tokens: %r" % rows)

        # ---- two cases, one verification task in each grid -------------------
        dept = c.sql_value("SELECT code FROM departments WHERE kind = 'bureau' ORDER BY code LIMIT 1")
        c.psql("INSERT INTO cases (status, department_code, urgency, kind, found_by,"
               " grid_region_code, solved_on_site) VALUES"
               " ('replied', :'d', 'normal', 'report', 'grid', :'a', false),"
               " ('replied', :'d', 'normal', 'report', NULL, NULL, false),"
               " ('closed', NULL, 'normal', 'report', 'grid', :'a', true)",
               {"d": dept, "a": GRID_A})
        ids = [r["id"] for r in c.sql("SELECT id FROM cases ORDER BY id")]
        c.psql("INSERT INTO verification_tasks (case_id, department_code, region_code, due)"
               " VALUES (:'c1', :'d', :'a', now() + interval '1 day'),"
               " (:'c2', :'d', :'b', now() + interval '1 day')",
               {"c1": ids[0], "c2": ids[1], "d": dept, "a": GRID_A, "b": GRID_B})
        t_a, t_b = [r["id"] for r in c.sql("SELECT id FROM verification_tasks ORDER BY id")]

        # ---- what a grid worker sees and changes -----------------------------
        seen = as_app(c, "SELECT string_agg(id::text, ',') FROM verification_tasks", "grid", GRID_A)
        ck.check(seen == str(t_a), "worker of A sees only A's task: %r" % seen)
        cases = as_app(c, "SELECT string_agg(id::text, ',' ORDER BY id) FROM cases", "grid", GRID_A)
        ck.check(cases == str(ids[0]), "worker of A sees only the case it verifies: %r" % cases)
        n = as_app(c, "WITH u AS (UPDATE verification_tasks SET outcome = 'confirmed',"
                      " decided_at = now(), decided_by = 'a' WHERE id = %d RETURNING 1)"
                      " SELECT count(*) FROM u" % t_b, "grid", GRID_A)
        ck.check(n == "0", "worker of A cannot decide B's task: %r" % n)
        n = as_app(c, "WITH u AS (UPDATE verification_tasks SET outcome = 'rejected',"
                      " reason = '路面仍有垃圾', decided_at = now(), decided_by = 'a'"
                      " WHERE id = %d RETURNING 1) SELECT count(*) FROM u" % t_a, "grid", GRID_A)
        ck.check(n == "1", "worker of A decides its own task: %r" % n)
        n = as_app(c, "WITH u AS (UPDATE verification_tasks SET outcome = 'confirmed'"
                      " WHERE id = %d RETURNING 1) SELECT count(*) FROM u" % t_a, "grid", GRID_A)
        ck.check(n == "0", "a decided task is not decided again: %r" % n)
        outcome = c.sql_value("SELECT outcome FROM verification_tasks WHERE id = :'t'", t=t_b)
        ck.check(outcome is None, "B's task still open: %r" % outcome)
        seen = as_app(c, "SELECT count(*) FROM verification_tasks", "grid", COMMUNITY)
        ck.check(seen == "2", "the community's worker sees its grids' tasks: %r" % seen)
        seen = as_app(c, "SELECT count(*) FROM verification_tasks", "grid", "")
        ck.check(seen == "0", "a grid role without a region sees nothing: %r" % seen)
        seen = as_app(c, "SELECT count(*) FROM verification_tasks", "department", "", dept)
        ck.check(seen == "2", "the replying department sees its tasks: %r" % seen)

        # ---- rates -------------------------------------------------------------
        rows = c.sql("SELECT * FROM fenbo_stats_grid('grid', now() - interval '1 day',"
                     " now() + interval '1 day')")
        by = {r["key"]: r for r in rows}
        a = by.get(GRID_A, {})
        ck.check(a.get("found") == 2 and a.get("solved_on_site") == 1
                 and float(a.get("on_site_rate") or 0) == 0.5, "grid A found/on site: %r" % a)
        ck.check(a.get("verifications") == 1 and a.get("verified_on_time") == 1
                 and a.get("rejected") == 1, "grid A verifications: %r" % a)
        b = by.get(GRID_B, {})
        ck.check(b.get("found") == 0 and b.get("verifications") == 1
                 and b.get("verified_on_time") == 0 and b.get("rejected") == 0,
                 "grid B: %r" % b)
        rows = c.sql("SELECT * FROM fenbo_stats_grid('street', now() - interval '1 day',"
                     " now() + interval '1 day')")
        ck.check([(r["key"], r["found"], r["verifications"]) for r in rows] == [(STREET, 2, 2)],
                 "per street: %r" % rows)
        js = c.sql_value("SELECT fenbo_stats_json('grid', NULL, NULL, 'Asia/Shanghai')")
        rows = {r["key"]: r for r in js["rows"]}
        ck.check(js["by"] == "grid" and rows.get(GRID_A, {}).get("found") == 2
                 and rows.get(GRID_A, {}).get("rejected") == 1 and rows[GRID_A]["name"],
                 "stats json by=grid: %r" % js)
        js = c.sql_value("SELECT fenbo_stats_json('street', NULL, NULL, 'Asia/Shanghai')")
        ck.check(js["by"] == "street" and "rows" in js, "by=street unchanged: %r" % js)
        st, body = c.worker("GET", "/api/v1/stats?by=grid", c.tokens["supervisor"])
        rows = {r["key"]: r for r in (body or {}).get("rows", [])} if st == 200 else {}
        ck.check(st == 200 and rows.get(GRID_A, {}).get("solved_on_site") == 1,
                 "GET /api/v1/stats?by=grid: %s %r" % (st, body))
        log("grid checks done")
        ck.finish()


if __name__ == "__main__":
    main(run)
