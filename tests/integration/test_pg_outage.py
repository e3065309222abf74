#!/usr/bin/env python3
# ctest: exclusive
"""test_pg_outage — intake keeps taking orders while PostgreSQL is down.

Orders arrive at 50 per second for 20 s; 5 s in, PostgreSQL is stopped
(pg_ctl stop -m fast) for 10 s, then started again. Every order must be
answered 202 throughout (intake checks tokens from its cached copy and spools
to disk), and within 60 s of PostgreSQL's return every acknowledged order is
in petitions exactly once."""

import http.client
import queue
import threading
import time

from harness import Checks, Cluster, log, main, order

RATE = 50        # orders per second
DURATION = 20    # seconds of traffic
OUTAGE_AT = 5    # seconds into the traffic
OUTAGE_FOR = 10  # seconds
CLIENTS = 4


def run():
    with Cluster("pg_outage") as c:
        ck = Checks()
        work = queue.Queue()
        answers = {}  # order_no -> (status, tracking_no/body, latency, t_sent)
        lock = threading.Lock()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", c.intake_port, timeout=30)
            while True:
                item = work.get()
                if item is None:
                    break
                order_no, t_sched = item
                o = order(order_no, "夜间施工噪音扰民，影响休息（%s）" % order_no)
                t1 = time.monotonic()
                try:
                    st, body = c.post_order(o, conn=conn)
                    tn = body.get("tracking_no") if isinstance(body, dict) else body
                except (OSError, http.client.HTTPException) as e:
                    st, tn = None, "%s: %s" % (type(e).__name__, e)
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", c.intake_port, timeout=30)
                with lock:
                    answers[order_no] = (st, tn, time.monotonic() - t1, t_sched)
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()

        outage = {}

        def pg_outage():
            time.sleep(OUTAGE_AT)
            log("stopping PostgreSQL")
            outage["stop"] = time.monotonic() - t0
            c.stop_pg()
            outage["down"] = time.monotonic() - t0
            time.sleep(OUTAGE_FOR)
            log("starting PostgreSQL")
            c.start_pg()
            outage["up"] = time.monotonic() - t0

        t0 = time.monotonic()
        pg_thread = threading.Thread(target=pg_outage)
        pg_thread.start()
        total = RATE * DURATION
        for i in range(total):
            t_sched = i / RATE
            delay = t0 + t_sched - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            work.put(("IT-PGOUT-%05d" % i, t_sched))
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
        pg_thread.join()
        log("posted %d orders in %.1fs; PostgreSQL stopped at %.1fs (down at %.1fs), back at %.1fs"
            % (total, time.monotonic() - t0, outage.get("stop", -1), outage.get("down", -1),
               outage.get("up", -1)))

        bad = {k: v for k, v in answers.items() if v[0] != 202}
        ck.check(len(answers) == total, "%d of %d orders answered" % (len(answers), total))
        ck.check(not bad, "%d orders not answered 202, e.g. %s"
                 % (len(bad), sorted(bad.items(), key=lambda kv: kv[1][3])[:8]))
        slow = sorted(v[2] for v in answers.values())
        if slow:
            log("answer latency: median %.1f ms, 99%% %.1f ms, max %.1f ms"
                % (slow[len(slow) // 2] * 1000, slow[int(len(slow) * 0.99)] * 1000,
                   slow[-1] * 1000))
        during = [v for v in answers.values()
                  if outage.get("down", 1e9) <= v[3] <= outage.get("up", -1)]
        log("%d orders were posted while PostgreSQL was down" % len(during))
        ck.check(len(during) >= RATE * (OUTAGE_FOR - 2),
                 "only %d orders fell into the outage; the test did not test much" % len(during))

        acked = {k: v[1] for k, v in answers.items() if v[0] in (200, 202)}
        # 60 s counted from PostgreSQL's return, not from the end of the traffic.
        left = max(1.0, 60 - (time.monotonic() - (t0 + outage.get("up", 0))))
        try:
            c.wait_until(lambda: c.sql_value(
                "SELECT count(*) FROM petitions WHERE case_id IS NOT NULL") >= len(acked),
                left, "acknowledged orders in petitions within 60 s of PostgreSQL's return")
            log("all landed %.1fs after PostgreSQL was back"
                % (time.monotonic() - (t0 + outage.get("up", 0))))
        except Exception as e:
            ck.check(False, str(e))
        time.sleep(2)

        rows = c.sql("SELECT idem_key, count(*) AS n, min(tracking_no) AS tn "
                     "FROM petitions GROUP BY idem_key")
        stored = {r["idem_key"]: r for r in rows}
        missing = sorted(set(acked) - set(stored))
        extra = sorted(set(stored) - set(acked))
        twice = sorted(k for k, r in stored.items() if r["n"] != 1)
        wrong = sorted(k for k, r in stored.items() if k in acked and r["tn"] != acked[k])
        ck.check(not missing, "%d acknowledged orders missing: %s" % (len(missing), missing[:10]))
        ck.check(not extra, "%d petitions never acknowledged: %s" % (len(extra), extra[:10]))
        ck.check(not twice, "%d stored more than once: %s" % (len(twice), twice[:10]))
        ck.check(not wrong, "%d with another tracking_no than answered: %s" % (len(wrong), wrong[:10]))

        # The worker and the dispatcher must still be alive (they reconnect, not die).
        for name in ("dispatcher", "worker", "intake"):
            d = c.daemons[name]
            ck.check(d.running(), "%s died during the outage (exit %s)"
                     % (d.name, d.proc.returncode if d.proc else d.exits))
        ck.finish()


if __name__ == "__main__":
    main(run)
