#!/usr/bin/env python3
"""test_poison — a petition that PostgreSQL refuses does not hold back the
petitions it was batched with.

A well-formed grid report naming a grid that does not exist (as when a grid
is removed while an intake still holds its worker's token) reaches the
dispatcher's bus together with three ordinary hotline orders, in one batch
(batch_wait_ms holds the batch open): its case cannot refer to the grid.
The batch fails; the dispatcher then stores each petition alone: the three
orders get their cases at once — intake's resend is set to a minute, so they
could not have come through a resend — and the refused one is named in the
log, stored nowhere and not acknowledged. The orders come as free text and
the model classifies them: stored on the second try, their cases still say
the model chose the category (not the resident); under ASan, what the failed
try had read back (regions) must not leak."""

import time

import zmq

from harness import Checks, Cluster, bus_petition, log, main, order

POISON = "20260101-9-000077"


def send_poison(endpoint):
    """Sends one petition message as an intake would, and returns the socket
    (kept open: an acknowledgement would arrive on it)."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 5000)
    s.connect(endpoint)
    s.send_multipart(bus_petition(
        77, POISON, "POISON-1", channel="grid", content="路灯不亮", content_norm="路灯不亮",
        kind="report",
        grid={"region": "999999999999", "worker": "nobody", "resolved_on_site": False}))
    return s


def run():
    settings = {"dispatcher": {"batch_wait_ms": 1500}, "intake": {"resend_ms": 60000}}
    with Cluster("poison", settings=settings) as c:
        ck = Checks()
        c.fenboctl("classify", "train", timeout=300)
        c.wait_until(lambda: "event=model_loaded version=1" in c.daemons["dispatcher"].log_text(),
                     30, "the dispatcher to load the model")
        endpoint = "tcp://127.0.0.1:%d" % c.bus_petitions_port
        sock = send_poison(endpoint)
        started = time.monotonic()
        for i in range(3):
            st, body = c.post_order(order(
                "POISON-GOOD-%d" % i, "小区门口路灯不亮，晚上很黑",
                location={"lat": 30.2741 + i * 0.01, "lng": 120.1551, "crs": "wgs84"}))
            ck.check(st == 202, "order %d: expected 202, got %s %r" % (i, st, body))
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions p JOIN cases c ON c.id = p.case_id"
            " WHERE p.idem_key LIKE 'POISON-GOOD-%'") == 3, 20,
            "the three orders batched with the refused petition stored with their cases"
            " (sooner than intake's resend, a minute)")
        log("stored after %.1f s" % (time.monotonic() - started))

        sources = c.sql_value(
            "SELECT string_agg(DISTINCT coalesce(c.category_source, '-') || '/'"
            " || coalesce(c.model_version::text, '-'), ',') FROM petitions p"
            " JOIN cases c ON c.id = p.case_id WHERE p.idem_key LIKE 'POISON-GOOD-%'")
        ck.check(sources == "model/1",
                 "the orders' categories should say model/1 (source/version), got %r" % sources)

        text = c.daemons["dispatcher"].log_text()
        ck.check("event=batch_failed petitions=4" in text,
                 "the dispatcher did not log the failed batch of four")
        ck.check("event=petition_not_stored tracking_no=%s" % POISON in text,
                 "the dispatcher did not name the refused petition")
        ck.check(text.count("event=petition_not_stored") == 1,
                 "more than the refused petition was reported not stored")
        ck.check(c.sql_value("SELECT count(*) FROM petitions WHERE tracking_no = '%s'"
                             % POISON) == 0, "the refused petition was stored")
        ck.check(not sock.poll(500), "the refused petition was acknowledged")
        sock.close()
        ck.finish()


if __name__ == "__main__":
    main(run)
