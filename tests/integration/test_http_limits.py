#!/usr/bin/env python3
"""test_http_limits — intake's HTTP limits hold against abuse, and a normal
client keeps getting answers meanwhile.

  headers     a 100 KB header, a 100 KB URL and a thousand small headers are
              refused (431/414/400, or the connection closed) — the request
              memory of a connection is bounded — and intake stays up;
  body        a body announced larger than max_body gets 413 before it is
              sent; one larger than announced is refused too;
  timeout     a connection that sends nothing is closed after
              connection_timeout;
  slow-loris  2,000 connections from 127.0.0.2 each dribble a request line
              byte by byte, for 12 s, while a normal client on 127.0.0.1
              posts hotline orders over fresh connections: per_ip_connections
              (500 here) keeps the attacker to 500 open connections, and every
              order gets its 202 with p99 under a second. Then the same with
              the defaults (no per-address limit, max_connections 4096): the
              attacker holds all 2,000, and the normal client still gets in.

(The attacker's address is another loopback address: on Linux the whole of
127.0.0.0/8 is the loopback interface, so binding the client sockets to
127.0.0.2 gives the attack an address of its own on this machine.)"""
# ctest: exclusive

import errno
import os
import resource
import socket
import threading
import time

from harness import Checks, Cluster, HarnessError, log, main, order

ATTACKERS = 2000
PER_IP = 500
TIMEOUT_S = 4
ATTACK_S = 12
ATTACK_ADDR = "127.0.0.2"


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def raw_exchange(port, data, timeout=10):
    """Sends data on a fresh connection; returns (status or None, closed) —
    the status line's code if one came back, and whether the server closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                return _status(got), False
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got and b"Content-Length: 0" in got:
                break
    finally:
        s.close()
    return _status(got), True


def _status(got):
    if not got.startswith(b"HTTP/1."):
        return None
    try:
        return int(got.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


class SlowLoris:
    """ATTACKERS non-blocking sockets from ATTACK_ADDR, each sending one byte
    of an endless request line per round."""

    LINE = b"GET /api/v1/petitions/" + b"9" * 4000

    def __init__(self, port):
        self.port = port
        self.socks = []
        self.sent = {}
        self.closed_by_server = 0
        self.connect_failed = 0

    def open(self):
        for _ in range(ATTACKERS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((ATTACK_ADDR, 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
            if rc not in (0, errno.EINPROGRESS):
                self.connect_failed += 1
                s.close()
                continue
            self.socks.append(s)
            self.sent[s] = 0

    def round(self):
        """One byte on each open socket; drops the ones the server closed."""
        alive = []
        for s in self.socks:
            try:
                if s.recv(1) == b"":  # FIN: the server closed it
                    raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                self.closed_by_server += 1
                s.close()
                continue
            try:
                i = self.sent[s]
                s.send(self.LINE[i:i + 1])
                self.sent[s] = i + 1
            except BlockingIOError:
                pass
            except OSError:
                self.closed_by_server += 1
                s.close()
                continue
            alive.append(s)
        self.socks = alive
        return len(alive)

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def run():
    if raise_nofile(ATTACKERS + 500) < ATTACKERS + 500:
        raise HarnessError("RLIMIT_NOFILE's hard limit (%d) is too low for %d connections"
                           % (resource.getrlimit(resource.RLIMIT_NOFILE)[1], ATTACKERS))
    settings = {"intake": {"per_ip_connections": PER_IP, "connection_timeout": TIMEOUT_S,
                           "max_body": 65536}}
    with Cluster("http_limits", settings=settings, timeout=300) as c:
        ck = Checks()
        port = c.intake_port
        seq = [0]

        def post(conn=None, timeout=5):
            seq[0] += 1
            o = order("HL-LIM-%d-%d" % (os.getpid(), seq[0]), "路灯不亮，晚上很黑，请尽快维修。")
            return c.post_order(o, conn=conn, timeout=timeout)

        def healthy():
            return c.healthz(port)

        # ---- oversized request heads -----------------------------------------
        for what, data in (
                ("a 100 KB header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                 + b"a" * 100000 + b"\r\n\r\n"),
                ("a 100 KB URL", b"GET /healthz?" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
                ("a thousand headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                 + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(1000)) + b"\r\n")):
            st, closed = raw_exchange(port, data)
            log("%s: %s%s" % (what, st, " (closed)" if closed else ""))
            ck.check(st in (400, 413, 414, 431) or (st is None and closed),
                     "%s: expected 431/414/400 or a closed connection, got %s (closed %s)"
                     % (what, st, closed))
            ck.check(healthy(), "intake answers after %s" % what)

        # ---- bodies -----------------------------------------------------------
        st, closed = raw_exchange(port, b"POST /api/v1/hotline/orders HTTP/1.1\r\nHost: x\r\n"
                                  b"Authorization: Bearer " + c.tokens["hotline"].encode()
                                  + b"\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 10000000\r\n\r\n{")
        ck.check(st == 413, "an announced 10 MB body: expected 413, got %s" % st)
        big = b'{"content": "' + b"x" * 100000 + b'"}'
        st, body = c.http("POST", "/api/v1/hotline/orders", body=big,
                          token=c.tokens["hotline"], headers={"Content-Type": "application/json"})
        ck.check(st == 413, "a 100 KB body over max_body 64 KB: expected 413, got %s" % st)
        st, body = post()
        ck.check(st == 202, "an order after the refusals: %s %r" % (st, body))

        # ---- idle connections time out ------------------------------------------
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S * 4)
        t0 = time.monotonic()
        try:
            closed = s.recv(1) == b""
        except (socket.timeout, ConnectionResetError) as e:
            closed = isinstance(e, ConnectionResetError)
        waited = time.monotonic() - t0
        s.close()
        log("an idle connection: %s after %.1fs" % ("closed" if closed else "open", waited))
        ck.check(closed and waited < TIMEOUT_S * 3,
                 "an idle connection closed after %.1fs (connection_timeout %ds)"
                 % (waited, TIMEOUT_S))

        # ---- slow-loris -----------------------------------------------------------
        def attack(phase, limit):
            """ATTACKERS slow connections for ATTACK_S seconds while the normal
            client posts orders; limit: the connections the attacker may hold."""
            loris = SlowLoris(port)
            loris.open()
            log("%s: %d connections opened from %s (%d failed)"
                % (phase, len(loris.socks), ATTACK_ADDR, loris.connect_failed))
            latencies, failures = [], []
            stop = threading.Event()

            def client():
                while not stop.is_set():
                    t = time.monotonic()
                    try:
                        st, body = post(timeout=5)
                        if st != 202:
                            failures.append("%s %r" % (st, body))
                    except OSError as e:
                        failures.append(repr(e))
                    latencies.append(time.monotonic() - t)
                    stop.wait(0.05)

            held = []
            th = threading.Thread(target=client, daemon=True)
            # Let the accepts settle, then measure with the attack in full swing.
            for _ in range(3):
                held.append(loris.round())
                time.sleep(0.3)
            th.start()
            t_end = time.monotonic() + ATTACK_S
            while time.monotonic() < t_end:
                t = time.monotonic()
                held.append(loris.round())
                time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
            stop.set()
            th.join(30)
            log("%s: held %s…%s connections, %d closed by intake, %d bytes dribbled"
                % (phase, held[:4], held[-3:], loris.closed_by_server, sum(loris.sent.values())))
            ck.check(max(held[3:]) <= limit + 5,
                     "%s: the attacker's address holds at most %d connections: %s"
                     % (phase, limit, held))
            ck.check(min(held[3:]) >= limit * 0.8,
                     "%s: the attack really held its connections: %s" % (phase, held))
            ck.check(healthy(), "%s: intake answers /healthz under the attack" % phase)
            lat = sorted(latencies)
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
            if lat:
                log("%s: normal client %d orders, p50 %.3fs, p99 %.3fs, max %.3fs, %d failed"
                    % (phase, len(lat), lat[len(lat) // 2], p99, lat[-1], len(failures)))
            ck.check(len(lat) >= ATTACK_S * 5,
                     "%s: the normal client got through: %d orders" % (phase, len(lat)))
            ck.check(not failures, "%s: orders failed under the attack: %s"
                     % (phase, failures[:5]))
            ck.check(p99 is not None and p99 < 1.0,
                     "%s: p99 of the normal client's orders: %s s" % (phase, p99))
            loris.close()

        attack("per_ip_connections %d" % PER_IP, PER_IP)

        # The defaults (no per-address limit, 4096 connections): the same
        # crowd is held in full, and still leaves room for everyone else.
        c.daemons["intake"].stop()
        c.write_ini(extra={"intake": {"per_ip_connections": 0, "connection_timeout": 30}})
        c.daemons["intake"].start()
        c.wait_healthy()
        attack("defaults", ATTACKERS)

        ck.check(c.daemons["intake"].running(), "intake is still running")
        st, body = post()
        ck.check(st == 202, "an order after the attack: %s %r" % (st, body))
        ck.finish()


if __name__ == "__main__":
    main(run)
