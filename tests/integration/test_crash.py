#!/usr/bin/env python3
# ctest: exclusive
"""test_crash — nothing acknowledged is lost, nothing is stored twice, while
the dispatcher is killed with SIGKILL twice, and intake once, in the middle
of a stream of 1,000 orders posted by several clients over keep-alive
connections. A client whose connection intake's death broke sends the same
order again until it is answered; the retry must get the first answer when
the first attempt had been spooled.

Every answer is recorded. At the end every order that got 202/200 is in
petitions exactly once, with the tracking number it was given, and no other
petition exists."""

import http.client
from collections import Counter
import threading
import time

from harness import Checks, Cluster, log, main, order

TOTAL = 1000
CLIENTS = 8
RATE = 150  # orders per second: the stream lasts ~7 s, long enough to crash into
TEXTS = [
    "小区门口占道经营，早上摆摊影响通行",
    "楼下饭店油烟扰民，晚上味道很大",
    "路灯不亮，晚上很黑，请尽快维修",
    "人行道上井盖缺失，存在安全隐患",
    "工地夜间施工噪音扰民",
    "垃圾清运不及时，气味难闻",
    "公交站牌信息错误，需要更新",
    "咨询社保卡补办需要什么材料",
]


def run():
    with Cluster("crash") as c:
        ck = Checks()
        answers = {}  # order_no -> (status, tracking_no or error)
        lock = threading.Lock()
        next_i = [0]
        posted = [0]
        retried = [0]

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", c.intake_port, timeout=60)
            while True:
                with lock:
                    i = next_i[0]
                    if i >= TOTAL:
                        break
                    next_i[0] += 1
                delay = t0 + i / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                order_no = "IT-CRASH-%05d" % i
                o = order(order_no, "%s（编号%d）" % (TEXTS[i % len(TEXTS)], i))
                # A connection broken by intake's death is retried with the
                # same order_no until intake answers again: the retry must get
                # the first answer if the first attempt was spooled.
                deadline = time.monotonic() + 60
                while True:
                    try:
                        st, body = c.post_order(o, conn=conn)
                        tn = body.get("tracking_no") if isinstance(body, dict) else None
                        res = (st, tn if tn else body)
                        break
                    except (OSError, http.client.HTTPException) as e:
                        res = (None, "%s: %s" % (type(e).__name__, e))
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", c.intake_port, timeout=60)
                        with lock:
                            retried[0] += 1
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
                with lock:
                    answers[order_no] = res
                    posted[0] += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()

        dispatcher = c.daemons["dispatcher"]
        intake = c.daemons["intake"]

        def wait_posted(n):
            while posted[0] < n and any(t.is_alive() for t in threads):
                time.sleep(0.002)

        for when in (TOTAL // 4, TOTAL // 2):
            wait_posted(when)
            log("kill -9 dispatcher (pid %s) after %d answers" % (dispatcher.pid(), posted[0]))
            dispatcher.kill9()
            time.sleep(0.5)
            dispatcher.start()
        # And intake itself, in the middle of the stream: what it answered is
        # in its spool; what it did not answer the clients send again.
        wait_posted(TOTAL * 3 // 4)
        log("kill -9 intake (pid %s) after %d answers" % (intake.pid(), posted[0]))
        intake.kill9()
        intake.start()
        for t in threads:
            t.join()
        log("%d orders answered in %.1fs (%d attempts retried after a broken connection)"
            % (len(answers), time.monotonic() - t0, retried[0]))

        log("answers by status: %s" % dict(Counter(v[0] for v in answers.values())))
        acked = {k: v[1] for k, v in answers.items() if v[0] in (200, 202)}
        others = {k: v for k, v in answers.items() if v[0] not in (200, 202)}
        ck.check(len(answers) == TOTAL, "only %d of %d orders were answered" % (len(answers), TOTAL))
        # Every order was sent until intake answered it.
        ck.check(not others, "%d orders not acknowledged, e.g. %s"
                 % (len(others), list(others.items())[:5]))
        ck.check(len(set(acked.values())) == len(acked),
                 "tracking numbers are not unique among %d answers" % len(acked))

        def landed():
            return c.sql_value("SELECT count(*) FROM petitions WHERE case_id IS NOT NULL") >= len(acked)

        try:
            c.wait_until(landed, 120, "all acknowledged orders in petitions")
        except Exception as e:
            ck.check(False, str(e))
        time.sleep(2)  # let any resend that would make a duplicate arrive

        rows = c.sql("SELECT idem_key, count(*) AS n, min(tracking_no) AS tn, "
                     "bool_and(case_id IS NOT NULL) AS has_case "
                     "FROM petitions GROUP BY idem_key")
        stored = {r["idem_key"]: r for r in rows}
        missing = sorted(set(acked) - set(stored))
        extra = sorted(set(stored) - set(acked))
        twice = sorted(k for k, r in stored.items() if r["n"] != 1)
        wrong_tn = sorted(k for k, r in stored.items() if k in acked and r["tn"] != acked[k])
        no_case = sorted(k for k, r in stored.items() if not r["has_case"])
        ck.check(not missing, "%d acknowledged orders lost: %s" % (len(missing), missing[:10]))
        ck.check(not extra, "%d petitions never acknowledged: %s" % (len(extra), extra[:10]))
        ck.check(not twice, "%d orders stored more than once: %s" % (len(twice), twice[:10]))
        ck.check(not wrong_tn, "%d petitions carry another tracking_no than answered: %s"
                 % (len(wrong_tn), wrong_tn[:10]))
        ck.check(not no_case, "%d petitions without a case: %s" % (len(no_case), no_case[:10]))
        n_cases = c.sql_value("SELECT count(*) FROM cases")
        log("%d petitions, %d cases, dispatcher exits: %s, intake exits: %s"
            % (len(stored), n_cases, dispatcher.exits, intake.exits))
        ck.finish()


if __name__ == "__main__":
    main(run)
