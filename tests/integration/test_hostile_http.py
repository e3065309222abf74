#!/usr/bin/env python3
"""test_hostile_http — the request head is judged before the body, in both
HTTP daemons (lib/fb_http.c), row by row of the hostile probe:

  upload      a 40 MB mini-program upload without a token, announced with
              Expect: 100-continue: 401 at once, no "100 Continue", and the
              body is never read (intake's RSS stays put); the worker's
              verification upload likewise (401 without a token, 403 with
              one that may not verify, 413 past 8 MiB);
  smuggling   Content-Length with Transfer-Encoding, two Content-Lengths, a
              bare CR in a header, HTTP/1.1 without Host: 400 (a NUL in a
              header: libmicrohttpd 0.9.75 ends the value there before fenbo
              sees it, README "Security");
  UTF-8       ?department=%ff at the worker, ?proof=%ff at intake: 400
              naming the argument, not 500 or 503;
  slow        1,050 connections from 127.0.0.2 held open at the worker:
              per_ip_connections keeps them to 64, and /healthz from
              127.0.0.1 answers promptly;
  rate        a worker with rate_per_s 5: a burst past it is 429 with
              Retry-After."""
# ctest: exclusive

import resource
import socket
import time

from harness import Checks, Cluster, log, main

ATTACK_ADDR = "127.0.0.2"


def status_of(port, data, timeout=10, src=None):
    """Sends data on a fresh connection; the status code of the first answer
    (100 included), or None when the server closed without one."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src, 0) if src else None)
    try:
        s.sendall(data)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        line = got.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else None
    finally:
        s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    with Cluster("hostile_http", settings={"worker": {"rate_per_s": "0"}}) as c:
        ck = Checks()
        ip, wp = c.intake_port, c.worker_port

        # An unauthenticated 40 MB upload: refused on its head.
        before = rss_kb(c.daemons["intake"].proc.pid)
        head = ("POST /api/v1/miniapp/reports HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n"
                "Expect: 100-continue\r\n\r\n" % (40 << 20)).encode()
        st = status_of(ip, head)
        ck.check(st == 401, "a 40 MB upload without a token: 401 before the body, got %r" % st)
        s = socket.create_connection(("127.0.0.1", ip), timeout=10)
        s.sendall(head.replace(b"Expect: 100-continue\r\n", b""))
        sent, chunk = 0, b"x" * 65536
        try:
            while sent < (8 << 20):
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        s.close()
        grown = rss_kb(c.daemons["intake"].proc.pid) - before
        ck.check(grown < 4096, "intake did not buffer the refused body: RSS grew %d kB" % grown)

        # The worker's one upload (a verification's photos, up to 8 MiB):
        # refused on its head without a token, or with one that may not
        # verify; beyond 8 MiB 413 whoever asks.
        vhead = ("POST /api/v1/cases/1/verify HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n"
                 "%sExpect: 100-continue\r\n\r\n")
        st = status_of(wp, (vhead % (6 << 20, "")).encode())
        ck.check(st == 401, "a 6 MB verification without a token: 401 first, got %r" % st)
        auth = "Authorization: Bearer %s\r\n" % c.tokens["operator"]
        st = status_of(wp, (vhead % (6 << 20, auth)).encode())
        ck.check(st == 403, "… with an operator's token: 403 first, got %r" % st)
        st = status_of(wp, (vhead % (9 << 20, auth)).encode())
        ck.check(st == 413, "a 9 MB verification: 413, got %r" % st)

        # Request smuggling material and broken heads, at both daemons.
        bad = {
            "Content-Length with Transfer-Encoding":
                b"POST /api/v1/hotline/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "two Content-Lengths":
                b"POST /api/v1/hotline/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                b"Content-Length: 4\r\n\r\n{}",
            "CR in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            "HTTP/1.1 without Host": b"GET /healthz HTTP/1.1\r\n\r\n",
        }
        for name, data in bad.items():
            for port, who in ((ip, "intake"), (wp, "worker")):
                st = status_of(port, data)
                ck.check(st == 400,
                         "%s at %s: 400, got %r" % (name, who, st))
        ck.check(status_of(wp, b"GET /healthz HTTP/1.0\r\n\r\n") == 200,
                 "HTTP/1.0 needs no Host")

        # Invalid UTF-8 in a query argument.
        st, body = c.worker("GET", "/api/v1/cases?department=%ff", c.tokens["operator"])
        err = body.get("error", {}) if isinstance(body, dict) else {}
        ck.check(st == 400 and err.get("code") == "invalid_utf8" and err.get("field") == "department",
                 "worker ?department=%%ff: %s %r" % (st, body))
        st, body = c.http("GET", "/api/v1/petitions/20261122-1-000001?proof=%ff",
                          token=c.tokens["hotline"])
        err = body.get("error", {}) if isinstance(body, dict) else {}
        ck.check(st == 400 and err.get("field") == "proof", "intake ?proof=%%ff: %s %r" % (st, body))

        # 1,050 slow connections from one address, and a normal /healthz.
        held, refused = [], 0
        for _ in range(1050):
            try:
                s = socket.create_connection(("127.0.0.1", wp), timeout=5,
                                             source_address=(ATTACK_ADDR, 0))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
                held.append(s)
            except OSError:
                refused += 1
        time.sleep(0.5)
        open_now = 0
        for s in held:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    continue  # closed by the worker
            except BlockingIOError:
                pass
            except OSError:
                continue
            open_now += 1
        log("slow connections: %d sent, %d still open" % (len(held), open_now))
        ck.check(open_now <= 64, "per_ip_connections keeps one address to 64: %d open" % open_now)
        t0 = time.monotonic()
        st = status_of(wp, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        took = time.monotonic() - t0
        ck.check(st == 200 and took < 1.0, "/healthz meanwhile: %r in %.2f s" % (st, took))
        for s in held:
            s.close()

        # A per-address rate limit.
        c.write_ini(extra={"worker": {"rate_per_s": "5", "rate_burst": "5"}})
        c.daemons["worker"].restart()
        c.wait_until(lambda: c.healthz(wp), 30, "the worker back")
        time.sleep(1.5)  # the healthz polls above spent tokens
        codes = [status_of(wp, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(8)]
        ck.check(codes[:5] == [200] * 5 and 429 in codes[5:],
                 "rate_per_s 5, burst 5: %r" % codes)
        ck.finish()


if __name__ == "__main__":
    main(run)
