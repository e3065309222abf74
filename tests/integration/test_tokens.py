#!/usr/bin/env python3
"""test_tokens — a revoked token stops working everywhere within a second,
and a token may carry an expiry.

  - a new hotline token works at intake within a second (the same NOTIFY)
    and a new operator token at the worker at once;
    `fenboctl token revoke` them: intake refuses the hotline token within a
    second (NOTIFY fenbo_tokens wakes it; its own refresh is every 30 s), the
    worker at once;
  - `fenboctl token create --expires 2s`: works, then is refused by intake
    and worker after its expiry without any refresh;
  - --expires takes an RFC 3339 time too, and refuses nonsense (exit 2);
  - `token list` shows the expiry."""

import time

from harness import Checks, Cluster, log, main, order


def token_id(c, name):
    return c.sql_value("SELECT id FROM api_tokens WHERE name = :'n'", n=name)


def accepted_within(c, tok, seconds):
    """How long until intake takes an order with tok (a 401 writes
    nothing, so trying again is harmless); None if not within seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        st, _ = c.post_order(order("TK-1-%d" % (time.time() * 1000), "路灯坏了"), token=tok)
        if st == 202:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def run():
    with Cluster("tokens") as c:
        ck = Checks()
        hot = c.create_token("hotline", name="revoke-me")
        op = c.create_token("operator", name="revoke-op")
        took = accepted_within(c, hot, 1.0)
        log("intake took the new hotline token after %s s" % took)
        ck.check(took is not None, "a new hotline token works at intake within a second")
        st, _ = c.worker("GET", "/api/v1/cases", op)
        ck.check(st == 200, "the operator token works: %s" % st)

        c.fenboctl("token", "revoke", str(token_id(c, "revoke-me")))
        c.fenboctl("token", "revoke", str(token_id(c, "revoke-op")))
        t0 = time.monotonic()
        refused = None
        while time.monotonic() - t0 < 5:
            st, _ = c.post_order(order("TK-2-%d" % (time.time() * 1000), "路灯坏了"), token=hot)
            if st == 401:
                refused = time.monotonic() - t0
                break
            time.sleep(0.05)
        log("intake refused the revoked token after %s s" % refused)
        ck.check(refused is not None and refused < 1.0,
                 "intake refuses a revoked token within a second: %r" % refused)
        st, _ = c.worker("GET", "/api/v1/cases", op)
        ck.check(st == 401, "the worker refuses the revoked operator token: %s" % st)

        short = c.fenboctl("token", "create", "--role", "hotline", "--name", "short",
                           "--expires", "2s", check=False)
        ck.check(short.returncode == 2, "2s is not a duration fenboctl takes (d, h, m): %d"
                 % short.returncode)
        exp = c.create_token("hotline", name="expiring")
        c.psql("UPDATE api_tokens SET expires_at = now() + interval '2 seconds'"
               " WHERE name = 'expiring';")
        time.sleep(0.5)
        st, _ = c.post_order(order("TK-3-%d" % time.time(), "路灯坏了"), token=exp)
        ck.check(st == 202, "before its expiry the token works: %s" % st)
        wop = c.create_token("operator", name="expiring-op")
        c.psql("UPDATE api_tokens SET expires_at = now() + interval '2 seconds'"
               " WHERE name = 'expiring-op';")
        time.sleep(3)
        st, _ = c.post_order(order("TK-4-%d" % time.time(), "路灯坏了"), token=exp)
        ck.check(st == 401, "after its expiry intake refuses it: %s" % st)
        st, _ = c.worker("GET", "/api/v1/cases", wop)
        ck.check(st == 401, "after its expiry the worker refuses it: %s" % st)

        c.fenboctl("token", "create", "--role", "supervisor", "--name", "dated",
                   "--expires", "2030-01-01T00:00:00+08:00")
        c.fenboctl("token", "create", "--role", "supervisor", "--name", "in-90-days",
                   "--expires", "90d")
        days = c.sql_value("SELECT round(extract(epoch FROM expires_at - now()) / 86400)::int"
                           " FROM api_tokens WHERE name = 'in-90-days'")
        ck.check(days == 90, "90d is 90 days from now: %r" % days)
        bad = c.fenboctl("token", "create", "--role", "supervisor", "--expires", "soon",
                         check=False)
        ck.check(bad.returncode == 2 and b"--expires" in bad.stderr,
                 "nonsense is refused: %d %r" % (bad.returncode, bad.stderr))
        listing = c.fenboctl("token", "list")
        ck.check("EXPIRES" in listing and "2030-01-01" in listing, "token list shows expiries")
        ck.finish()


if __name__ == "__main__":
    main(run)
