#!/usr/bin/env python3
"""test_audit — case events are an append-only, hash-chained history:
UPDATE, DELETE and TRUNCATE are refused; an edit made by a superuser who
bypasses the triggers is found by `fenboctl audit verify`, which names the
case and the event; an intact history verifies clean."""

import subprocess

from harness import Checks, Cluster, main, order


def psql_raw(c, sql):
    """psql's exit status and output, failures included."""
    return subprocess.run(c.psql_base + ["-d", "fenbo", "-At", "-v", "ON_ERROR_STOP=1"],
                          input=sql.encode(), capture_output=True, timeout=60)


def run():
    with Cluster("audit") as c:
        ck = Checks()
        for i in range(3):
            st, _ = c.post_order(order("AUDIT-%d" % i, "小区门口占道经营，摆摊影响通行 %d" % i))
            ck.check(st == 202, "order %d: expected 202, got %s" % (i, st))
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM cases") == 3, 30, "3 cases")
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM case_events WHERE hash IS NULL") == 0, 5, "hashes")

        ok = c.fenboctl("audit", "verify", check=False)
        ck.check(ok.returncode == 0 and b"every chain holds" in ok.stdout,
                 "intact history: expected exit 0 and 'every chain holds', got %d %r"
                 % (ok.returncode, ok.stdout))

        for stmt in ("UPDATE case_events SET actor = 'mallory'",
                     "DELETE FROM case_events",
                     "TRUNCATE case_events CASCADE"):
            r = psql_raw(c, stmt)
            ck.check(r.returncode != 0 and b"append-only" in r.stderr,
                     "%s: expected refusal as append-only, got %d %r"
                     % (stmt, r.returncode, r.stderr[-200:]))
        ck.check(c.sql_value("SELECT count(*) FROM case_events WHERE actor = 'mallory'") == 0,
                 "a refused UPDATE changed a row")

        # A superuser who turns the triggers off and rewrites history.
        victim = c.sql_value("SELECT min(id) FROM case_events")
        victim_case = c.sql_value("SELECT case_id FROM case_events WHERE id = %d" % victim)
        r = psql_raw(c, "SET session_replication_role = replica; "
                   "UPDATE case_events SET actor = 'mallory' WHERE id = %d" % victim)
        ck.check(r.returncode == 0, "superuser edit failed: %r" % r.stderr)
        bad = c.fenboctl("audit", "verify", check=False)
        out = bad.stdout.decode()
        ck.check(bad.returncode == 1, "after the edit: expected exit 1, got %d" % bad.returncode)
        ck.check("case %s, event %s" % (victim_case, victim) in out,
                 "verify did not name case %s event %s: %r" % (victim_case, victim, out))
        ck.check("the history was changed" in out, "verify output: %r" % out)
        ck.finish()


if __name__ == "__main__":
    main(run)
