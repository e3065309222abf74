#!/usr/bin/env python3
"""test_stats_pool — a slow statistics query never stalls a department's
request: statistics run on the worker's own pool of connections, off its
loop (dbpool.h).

fenbo_stats_json is wrapped, for this test only, in a function that first
sleeps 2 s. Four supervisors ask for statistics at once; meanwhile /healthz
and a department's case list answer within half a second, and every
statistics request still gets its 200 with the document."""

import threading
import time

from harness import Checks, Cluster, main


def run():
    with Cluster("stats_pool") as c:
        ck = Checks()
        c.psql("ALTER FUNCTION fenbo_stats_json(text, text, text, text, text)"
               " RENAME TO fenbo_stats_json_fast;"
               " CREATE FUNCTION fenbo_stats_json(a text, b text, cc text, d text, e text)"
               " RETURNS json LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2);"
               " RETURN fenbo_stats_json_fast(a, b, cc, d, e); END $$;")
        results = []

        def ask(i):
            t0 = time.monotonic()
            st, body = c.worker("GET", "/api/v1/stats?by=department&from=2026-0%d-01" % (i + 1),
                                c.tokens["supervisor"])
            results.append((st, isinstance(body, dict) and "rows" in body,
                            time.monotonic() - t0))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        dept = sorted(c.dept_tokens)[0]
        slowest = 0.0
        for _ in range(5):
            t0 = time.monotonic()
            ok = c.healthz(c.worker_port)
            st, _ = c.worker("GET", "/api/v1/cases", c.dept_tokens[dept])
            took = time.monotonic() - t0
            slowest = max(slowest, took)
            ck.check(ok and st == 200, "healthz and a department's list answer: %s %s" % (ok, st))
            time.sleep(0.2)
        ck.check(slowest < 0.5, "while four slow statistics run, the slowest answer took %.2f s"
                 % slowest)
        for t in threads:
            t.join(30)
        ck.check(len(results) == 4 and all(st == 200 and doc for st, doc, _ in results),
                 "every statistics request answered with its document: %r" % results)
        ck.check(all(took >= 2 for _, _, took in results),
                 "the statistics did take their 2 s: %r" % [round(r[2], 2) for r in results])
        ck.finish()


if __name__ == "__main__":
    main(run)
