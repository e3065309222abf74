#!/usr/bin/env python3
"""test_db_access — nobody gets into the private cluster without a password,
and every connection says which program it is.

  - pg_hba.conf holds no `trust` line; psql without the passfile is refused
    on the socket and on 127.0.0.1 ("no password supplied");
  - the socket directory is not world-writable and the socket is not open to
    every local user (mode 0770, owned by postgres);
  - pg_stat_activity shows application_name fenbo-intake, fenbo-dispatcher
    and fenbo-worker for the daemons' connections."""

import os
import stat
import subprocess

from harness import PGBIN, Checks, Cluster, main


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
        ck.finish()


if __name__ == "__main__":
    main(run)
