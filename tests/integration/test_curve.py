#!/usr/bin/env python3
"""test_curve — the bus with CURVE: a dispatcher whose ZAP handler admits
only the configured keys. An unknown CURVE key, a NULL-mechanism client and
raw garbage on the bus port are all refused (nothing they send is stored or
acknowledged), while the legitimate intake and worker keep working."""

import socket
import subprocess
import time

import zmq

from harness import Checks, Cluster, binary, bus_petition, log, main, order


def keypair():
    out = subprocess.run([binary("FENBOCTL_BIN", "fenboctl"), "keygen"], check=True,
                         capture_output=True, text=True).stdout
    keys = dict(line.split(" = ", 1) for line in out.strip().splitlines())
    return keys["public_key"], keys["secret_key"]


def stranger_sends(endpoint, server_public, mechanism):
    """Connects as a stranger and sends a well-formed petition message; True
    when anything came back (an acknowledgement would mean it was admitted)."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    # A refused handshake leaves the DEALER without a peer, and a send with
    # no peer would wait for one forever: give up after two seconds.
    s.setsockopt(zmq.SNDTIMEO, 2000)
    if mechanism == "curve":
        pub, sec = zmq.curve_keypair()
        s.curve_serverkey = server_public.encode()
        s.curve_publickey = pub
        s.curve_secretkey = sec
    s.connect(endpoint)
    try:
        s.send_multipart(bus_petition(1, "20260101-9-000001", "STRANGER-" + mechanism))
        answered = bool(s.poll(2000))
    except zmq.Again:
        answered = False  # no peer would take it: refused before it was sent
    s.close()
    ctx.term()
    return answered


def run():
    server_pub, server_sec = keypair()
    client_pub, client_sec = keypair()
    settings = {"bus": {
        "curve": 1,
        "server_public_key": server_pub,
        "server_secret_key": server_sec,
        "client_public_key": client_pub,
        "client_secret_key": client_sec,
        "allowed_clients": client_pub,
    }}
    with Cluster("curve", settings=settings) as c:
        ck = Checks()
        endpoint = "tcp://127.0.0.1:%d" % c.bus_petitions_port

        st, body = c.post_order(order("CURVE-0001", "路灯不亮，晚上很黑"))
        ck.check(st == 202, "legitimate intake: expected 202, got %s %r" % (st, body))
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM cases") == 1, 30,
                     "the first petition dispatched over the CURVE bus")

        ck.check(not stranger_sends(endpoint, server_pub, "curve"),
                 "a client with an unknown CURVE key got an answer")
        ck.check(not stranger_sends(endpoint, server_pub, "null"),
                 "a NULL-mechanism client got an answer")
        # Raw garbage straight onto the bus port.
        with socket.create_connection(("127.0.0.1", c.bus_petitions_port), timeout=5) as raw:
            try:
                raw.sendall(b"\xff\x00\x00\x00\x00\x00\x00\x00\x7f GARBAGE " * 200)
                time.sleep(0.5)
            except OSError:
                pass  # refused mid-way is fine too

        ck.check("bus_peer_refused" in c.daemons["dispatcher"].log_text(),
                 "the dispatcher did not log the refused CURVE peer")
        ck.check(c.daemons["dispatcher"].running(), "the dispatcher died")

        st, body = c.post_order(order("CURVE-0002", "井盖缺失，很危险"))
        ck.check(st == 202, "after the strangers: expected 202, got %s %r" % (st, body))
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM cases") == 2, 30,
                     "the second petition dispatched")
        strangers = c.sql_value("SELECT count(*) FROM petitions WHERE idem_key LIKE 'STRANGER-%'")
        ck.check(strangers == 0, "a stranger's petition was stored (%s)" % strangers)
        # The worker, a CURVE client too, gets the second assignment over PUB.
        # The first may have been published before the worker's own CURVE
        # handshake was done (PUB drops what no subscriber has asked for yet);
        # then the worker's catch-up from PostgreSQL delivers it instead.
        c.wait_until(lambda: "event=assignment case_id=2 " in c.daemons["worker"].log_text(), 30,
                     "the second assignment received by the worker over the bus")
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM assignments WHERE case_id = 1"
                                         " AND delivered_at IS NOT NULL") == 1, 30,
                     "the first assignment delivered (over the bus or caught up)")
        ck.finish()


if __name__ == "__main__":
    main(run)
