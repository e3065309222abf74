#!/usr/bin/env python3
"""test_db_access — nobody gets into the private cluster without a password,
and every connection says which program it is.

  - pg_hba.conf holds no `trust` line; psql without the passfile is refused
    on the socket and on 127.0.0.1 ("no password supplied");
  - the socket directory is not world-writable and the socket is not open to
    every local user (mode 0770, owned by postgres);
  - pg_stat_activity shows application_name fenbo-intake, fenbo-dispatcher
    and fenbo-worker for the daemons' connections, each logged in as its own
    role (fenbo_intake, fenbo_dispatcher, fenbo_worker), none a superuser,
    none bypassing row-level security, none owning a table;
  - each role can do only what its daemon does: intake cannot change a case's
    department or read training data, the dispatcher cannot rate or touch the
    tokens, the worker's login sees no case before it says whom it acts for
    (row-level security from its first statement) and cannot delete events."""

import os
import stat
import subprocess

from harness import PGBIN, Checks, Cluster, main, order


def run():
    with Cluster("db_access") as c:
        ck = Checks()
        hba = open(os.path.join(c.pg_dir, "data", "pg_hba.conf")).read()
        lines = [l.split() for l in hba.splitlines() if l.strip() and not l.startswith("#")]
        ck.check(lines and all(l[-1] == "scram-sha-256" for l in lines),
                 "pg_hba: scram-sha-256 only, no trust: %r" % lines)
        env = dict(os.environ, PGPASSFILE="/nonexistent")
        for host in (os.path.join(c.pg_dir, "run"), "127.0.0.1"):
            p = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-w", "-h", host, "-p",
                                str(c.pg_port), "-U", "postgres", "-d", "fenbo", "-c", "SELECT 1"],
                               capture_output=True, env=env, timeout=30)
            ck.check(p.returncode != 0 and b"no password supplied" in p.stderr,
                     "no password, no entry (%s): %d %r" % (host, p.returncode, p.stderr))
        run_dir = os.path.join(c.pg_dir, "run")
        mode = os.stat(run_dir).st_mode
        ck.check(not mode & stat.S_IWOTH, "the socket directory is not world-writable: %o" % mode)
        socks = [n for n in os.listdir(run_dir) if n.startswith(".s.PGSQL.") and "lock" not in n]
        smode = os.stat(os.path.join(run_dir, socks[0])).st_mode if socks else 0o777
        ck.check(not smode & 0o007, "the socket is closed to other users: %o" % smode)
        names = set(c.wait_until(lambda: (lambda s: s if {"fenbo-intake", "fenbo-dispatcher",
                                                           "fenbo-worker"} <= s else None)(
            set(r["application_name"] for r in c.sql(
                "SELECT application_name FROM pg_stat_activity WHERE datname = 'fenbo'"))),
            30, "the daemons' connections named"))
        ck.check({"fenbo-intake", "fenbo-dispatcher", "fenbo-worker"} <= names,
                 "application names: %r" % names)
        logins = {r["application_name"]: r["usename"] for r in c.sql(
            "SELECT DISTINCT application_name, usename FROM pg_stat_activity"
            " WHERE datname = 'fenbo' AND application_name LIKE 'fenbo-%'")}
        ck.check(logins.get("fenbo-intake") == "fenbo_intake"
                 and logins.get("fenbo-dispatcher") == "fenbo_dispatcher"
                 and logins.get("fenbo-worker") == "fenbo_worker",
                 "each daemon logs in as its own role: %r" % logins)
        roles = c.sql("SELECT rolname, rolsuper, rolbypassrls,"
                      " (SELECT count(*) FROM pg_class WHERE relowner = r.oid) AS owns"
                      " FROM pg_roles r WHERE rolname IN"
                      " ('fenbo_intake', 'fenbo_dispatcher', 'fenbo_worker')")
        ck.check(len(roles) == 3 and not any(r["rolsuper"] or r["rolbypassrls"] or r["owns"]
                                             for r in roles),
                 "no superuser, no BYPASSRLS, no ownership: %r" % roles)

        # Each role as its daemon would log in (the cluster's passfile).
        st, body = c.post_order(order("DBA-1", "门口的路灯坏了，晚上一片漆黑"))
        ck.check(st == 202, "a petition taken: %s %r" % (st, body))
        def as_role(role, sql):
            p = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-w", "-q", "-A", "-t",
                                "-v", "ON_ERROR_STOP=1", "-h", os.path.join(c.pg_dir, "run"),
                                "-p", str(c.pg_port), "-U", role, "-d", "fenbo", "-c", sql],
                               capture_output=True, text=True, timeout=30)
            return p.returncode, (p.stdout + p.stderr).strip()
        c.wait_until(lambda: c.sql("SELECT 1 FROM cases LIMIT 1"), 30, "a case stored")
        for role, sql in (
                ("fenbo_intake", "UPDATE cases SET department_code = NULL"),
                ("fenbo_intake", "SELECT count(*) FROM training_examples"),
                ("fenbo_intake", "DELETE FROM petitions"),
                ("fenbo_dispatcher", "INSERT INTO ratings (case_id, petition_id, resolved,"
                 " satisfaction, source) SELECT case_id, id, true, 'satisfied', 'x'"
                 " FROM petitions LIMIT 1"),
                ("fenbo_dispatcher", "UPDATE api_tokens SET revoked_at = now()"),
                ("fenbo_worker", "DELETE FROM case_events"),
                ("fenbo_worker", "UPDATE api_tokens SET role = 'admin'")):
            rc, out = as_role(role, sql)
            ck.check(rc != 0 and "permission denied" in out,
                     "%s may not: %s -> %d %r" % (role, sql, rc, out))
        rc, out = as_role("fenbo_worker", "SELECT count(*) FROM cases")
        ck.check(rc == 0 and out == "0",
                 "fenbo_worker sees no case without a context: %d %r" % (rc, out))
        rc, out = as_role("fenbo_intake", "SELECT count(*) > 0 FROM cases")
        ck.check(rc == 0 and out == "t", "fenbo_intake reads the progress: %d %r" % (rc, out))
        ck.finish()


if __name__ == "__main__":
    main(run)
