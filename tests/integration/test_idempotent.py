#!/usr/bin/env python3
"""test_idempotent — an order_no is the idempotency key of a hotline order:
the first POST answers 202, every retry (sequential or concurrent) 200 with
the same tracking number, and only one petition is stored. Another order_no
gets another tracking number."""

import threading
import time

from harness import Checks, Cluster, log, main, order


def run():
    with Cluster("idempotent") as c:
        ck = Checks()
        o = order("IT-IDEM-0001", "小区门口占道经营，早上七点到九点摆摊，影响通行")

        st1, b1 = c.post_order(o)
        ck.check(st1 == 202 and isinstance(b1, dict) and b1.get("tracking_no"),
                 "first POST: expected 202 with tracking_no, got %s %r" % (st1, b1))
        tn = b1.get("tracking_no") if isinstance(b1, dict) else None

        st2, b2 = c.post_order(o)
        ck.check(st2 == 200, "second POST: expected 200, got %s %r" % (st2, b2))
        ck.check(b2 == b1, "second POST: expected the same body %r, got %r" % (b1, b2))

        # Five clients at once with a fresh order_no: one 202, four 200, one number.
        o5 = order("IT-IDEM-0002", "路灯不亮，晚上很黑，请尽快维修")
        results = [None] * 5
        barrier = threading.Barrier(5)

        def post(i):
            barrier.wait()
            results[i] = c.post_order(o5)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in results)
        ck.check(statuses == [200, 200, 200, 200, 202],
                 "5 concurrent POSTs: expected one 202 and four 200, got %s" % statuses)
        numbers = {r[1].get("tracking_no") if isinstance(r[1], dict) else repr(r[1])
                   for r in results}
        ck.check(len(numbers) == 1 and None not in numbers,
                 "5 concurrent POSTs: expected one tracking_no, got %s" % numbers)
        tn5 = next(iter(numbers))
        ck.check(tn5 != tn, "a different order_no got the same tracking_no %s" % tn)

        # A third order_no, sequentially: again a new number.
        st6, b6 = c.post_order(order("IT-IDEM-0003", "噪音扰民，夜间施工"))
        ck.check(st6 == 202 and isinstance(b6, dict) and b6.get("tracking_no") not in (tn, tn5),
                 "a third order_no: expected 202 with a new tracking_no, got %s %r" % (st6, b6))

        c.wait_dispatched(3, 30)
        rows = c.sql("SELECT idem_key, tracking_no FROM petitions ORDER BY idem_key")
        ck.check(len(rows) == 3, "expected exactly 3 petition rows, found %r" % rows)
        by_key = {r["idem_key"]: r["tracking_no"] for r in rows}
        ck.check(by_key.get("IT-IDEM-0001") == tn,
                 "petition IT-IDEM-0001 has tracking_no %s, the answer said %s"
                 % (by_key.get("IT-IDEM-0001"), tn))
        ck.check(by_key.get("IT-IDEM-0002") == tn5,
                 "petition IT-IDEM-0002 has tracking_no %s, the answers said %s"
                 % (by_key.get("IT-IDEM-0002"), tn5))

        # Still the first answer after the petition reached the database.
        st7, b7 = c.post_order(o)
        ck.check(st7 == 200 and b7 == b1,
                 "retry after dispatch: expected 200 %r, got %s %r" % (b1, st7, b7))

        # And after an intake restart (the idempotency record must be durable).
        c.daemons["intake"].restart()
        c.wait_healthy()
        st8, b8 = c.post_order(o)
        ck.check(st8 == 200 and b8 == b1,
                 "retry after intake restart: expected 200 %r, got %s %r" % (b1, st8, b8))
        time.sleep(1)  # room for a wrongly resent duplicate to arrive
        ck.check(c.sql_value("SELECT count(*) FROM petitions") == 3,
                 "petition count changed after retries")
        log("tracking numbers: %s %s %s" % (tn, tn5, b6))
        ck.finish()


if __name__ == "__main__":
    main(run)
