#!/usr/bin/env python3
# ctest: exclusive
"""test_scaleout — two intakes and two dispatchers on one database, the
deployment shape of docker-compose.yml, under load and with one dispatcher
killed with SIGKILL in the middle of it.

The shape:
- fenbo-intake instance 1 and instance 2, each with its own port, data_dir
  (spool, idempotency journal) and instance id (part of every tracking
  number); each one's [bus] petitions lists BOTH dispatchers, and its DEALER
  spreads petitions over them and resends to whichever is alive;
- fenbo-dispatcher A and B, each binding its own ROUTER and PUB endpoints;
- one fenbo-worker whose [bus] assignments lists both PUB endpoints.

The load: eight clients (four per intake, kept-alive connections) post
orders with locations and categories, clustered so that many are duplicates
(并案) of each other and both dispatchers write to the same cases at once.
Besides, SHARED order numbers are each posted to BOTH intakes at the same
moment. Dispatcher B is killed with SIGKILL at 40 % of the load and only
started again after the intakes have had everything acknowledged through A;
then a second, smaller wave goes through both.

What must hold:
- every answer is 2xx; every tracking number a client got for a unique
  order is stored exactly once, with the order's key, and routed (a case);
- tracking numbers of the two instances never collide: each carries the
  instance id of the intake that gave it;
- a SHARED order number is stored once — the unique (channel, idem_key)
  decides. Idempotency is per intake: each intake answered 202 with a
  tracking number of its own, and only the copy that reached PostgreSQL
  first was stored. The other client holds a number that fenbo never stored:
  GET /api/v1/petitions/{that number} does not find it (logged below, not
  asserted — see the README on scale-out);
- both dispatchers dispatched petitions (their logs), B before the kill and
  after its restart; the worker delivered assignments published by each;
- every stored petition has exactly one dispatch event (dispatched, manual
  or merged): no petition was handled by both dispatchers;
- nothing is left unacknowledged in either intake's spool; a batch that
  failed (a deadlock between the two dispatchers, a connection lost) was
  retried until stored — failed batches and deadlocks are counted and
  logged;
- every assignment is delivered, and the audit chains of all cases hold
  (`fenboctl audit verify`) although two dispatchers and a worker appended
  events to the same cases concurrently.
"""

import http.client
import os
import re
import threading
import time

from harness import Checks, Cluster, Daemon, HarnessError, free_ports, log, main, now_rfc3339

UNIQUE = 1600  # unique orders in the first wave, split over the two intakes
SHARED = 60  # order numbers posted to both intakes at once
WAVE2 = 200  # after B is back
CLIENTS_PER_INTAKE = 4
RATE = 220  # orders per second over all clients: ~8 s, long enough to kill into
KILL_AT = 0.4

# Clusters of reports: the same complaint, a few metres apart, so that the
# duplicate search merges them — and both dispatchers update the same cases.
SPOTS = [
    ("030103", 30.2105, 120.1203, "江城路与望江路口的井盖缺失，晚上很危险，请尽快处理"),
    ("030102", 30.2450, 120.1510, "人民路这一段路灯坏了一个星期，晚上漆黑一片"),
    ("040101", 30.2810, 120.2020, "工地夜间施工噪音很大，凌晨两点还在施工"),
    ("010103", 30.2230, 120.1830, "小区垃圾桶满了三天没人清运，臭味很重"),
    ("020103", 30.3010, 120.1100, "人行道下面水管破裂漏水，水流到马路上"),
    ("040201", 30.2650, 120.2400, "楼下饭店油烟直排，窗户都不敢开"),
]


def make_order(order_no, i):
    cat, lat, lng, text = SPOTS[i % len(SPOTS)]
    if i % 4 == 0:
        # At a spot, up to ~20 m apart: within the 50 m duplicate radius.
        dlat = ((i * 7919) % 37 - 18) * 0.000005
        dlng = ((i * 104729) % 41 - 20) * 0.000005
    else:
        # Anywhere in the city (30.20–30.32 N, 120.10–120.26 E): a case of its own.
        lat, lng = 30.201, 120.101
        dlat = ((i * 7919) % 1181) * 0.0001
        dlng = ((i * 104729) % 1579) * 0.0001
    return {
        "order_no": order_no,
        "received_at": now_rfc3339(),
        "caller": {"name": "测试", "phone": "138%08d" % (i % 100000000)},
        "content": "%s（第%d位来电）" % (text, i),
        "category": cat,
        "location": {"lat": lat + dlat, "lng": lng + dlng, "crs": "wgs84"},
        "kind": "complaint",
    }


class ScaleOutCluster(Cluster):
    """Cluster with two intakes, two dispatchers and one worker."""

    def __init__(self):
        super().__init__("scaleout", start_daemons=False,
                         settings={"general": {"instance_id": "1"}})

    def setup(self):
        super().setup()  # database, tokens, cluster INI (not started)
        self.daemons = {}
        (self.intake2_port, self.bus_b_petitions_port,
         self.bus_b_assignments_port) = free_ports(3)
        a_pet = "tcp://127.0.0.1:%d" % self.bus_petitions_port
        a_asg = "tcp://127.0.0.1:%d" % self.bus_assignments_port
        b_pet = "tcp://127.0.0.1:%d" % self.bus_b_petitions_port
        b_asg = "tcp://127.0.0.1:%d" % self.bus_b_assignments_port
        both_pet, both_asg = a_pet + "," + b_pet, a_asg + "," + b_asg
        data2 = os.path.join(self.tmp, "data-2")
        os.makedirs(data2)
        inis = {
            "dispatcher-a": {"bus": {"petitions": a_pet, "assignments": a_asg}},
            "dispatcher-b": {"bus": {"petitions": b_pet, "assignments": b_asg}},
            "intake-1": {"general": {"instance_id": "1"},
                         "bus": {"petitions": both_pet, "assignments": a_asg}},
            "intake-2": {"general": {"instance_id": "2", "data_dir": data2},
                         "bus": {"petitions": both_pet, "assignments": a_asg},
                         "intake": {"port": str(self.intake2_port)}},
            "worker": {"bus": {"petitions": a_pet, "assignments": both_asg}},
        }
        bins = {"dispatcher": self.dispatcher_bin, "intake": self.intake_bin,
                "worker": self.worker_bin}
        for name, extra in inis.items():
            ini = os.path.join(self.tmp, name + ".ini")
            self.write_ini(path=ini, extra=extra)
            self.daemons[name] = Daemon(self, name, bins[name.split("-")[0]], ini=ini)
        self.intake_ports = {"intake-1": self.intake_port, "intake-2": self.intake2_port}
        for name in ("dispatcher-a", "dispatcher-b", "worker", "intake-1", "intake-2"):
            self.daemons[name].start()
        self.wait_until(self.all_healthy, 60, "five daemons answering /healthz")

    def all_healthy(self):
        for d in self.daemons.values():
            if d.proc is not None and d.proc.poll() is not None:
                raise HarnessError("%s exited with %s" % (d.name, d.proc.returncode))
        return all(self.healthz(p) for p in list(self.intake_ports.values()) +
                   [self.worker_port])

    def intake_health(self, name):
        try:
            st, body = self.http("GET", "/healthz", port=self.intake_ports[name], timeout=5)
        except OSError:
            return None
        return body if st == 200 and isinstance(body, dict) else None

    def all_acknowledged(self):
        hs = [self.intake_health(n) for n in self.intake_ports]
        return all(h is not None and h.get("unacked") == 0 and h.get("spool_pending") == 0
                   for h in hs)


def dispatched_in(text):
    return re.findall(r"event=dispatched tracking_no=(\S+)", text)


def cases_opened_in(text):
    """Case ids of the petitions a dispatcher's log says opened a case."""
    return [int(cid) for cid, rule in
            re.findall(r"event=dispatched tracking_no=\S+ case_id=(\d+) department=\S+ "
                       r"rule=(\S+)", text) if rule != "(merged)"]


def run():
    with ScaleOutCluster() as c:
        ck = Checks()
        lock = threading.Lock()
        answers = {}  # (intake, order_no) -> (status, tracking_no or error)
        progress = [0]
        jobs = {"intake-1": [], "intake-2": []}
        for i in range(UNIQUE):
            jobs["intake-%d" % (1 + i % 2)].append(("IT-SO-%05d" % i, i))
        shared = ["IT-SO-SHARED-%03d" % k for k in range(SHARED)]
        total = UNIQUE + 2 * SHARED
        # Spread the shared numbers through the stream; each is posted by a
        # client of intake-1 and one of intake-2 after the same barrier.
        barriers = dict((no, threading.Barrier(2)) for no in shared)
        for k, no in enumerate(shared):
            pos = (k + 1) * len(jobs["intake-1"]) // (SHARED + 1)
            for name in jobs:
                jobs[name].insert(pos, (no, UNIQUE + k))
        t0 = time.monotonic() + 0.5

        def client(name, idx):
            port = c.intake_ports[name]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine = jobs[name][idx::CLIENTS_PER_INTAKE]
            # Shared orders must be posted by the same client index on both
            # sides so that the barrier pairs them: index = position % N.
            for seq, (order_no, i) in enumerate(mine):
                n_global = (idx + seq * CLIENTS_PER_INTAKE) * 2
                delay = t0 + n_global / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if order_no in barriers:
                    try:
                        barriers[order_no].wait(30)
                    except threading.BrokenBarrierError:
                        pass
                o = make_order(order_no, i)
                res = None
                for attempt in range(5):
                    try:
                        st, body = c.post_order(o, conn=conn)
                        tn = body.get("tracking_no") if isinstance(body, dict) else None
                        res = (st, tn if tn else body)
                        break
                    except (OSError, http.client.HTTPException) as e:
                        res = (None, "%s: %s" % (type(e).__name__, e))
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                        time.sleep(0.1)
                with lock:
                    answers[(name, order_no)] = res
                    progress[0] += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(name, k))
                   for name in jobs for k in range(CLIENTS_PER_INTAKE)]
        log("wave 1: %d unique orders + %d order numbers posted to both intakes, %d clients"
            % (UNIQUE, SHARED, len(threads)))
        for t in threads:
            t.start()
        c.wait_until(lambda: progress[0] >= KILL_AT * total, 120, "40 % of the orders")
        b = c.daemons["dispatcher-b"]
        b_before = dispatched_in(b.log_text())
        log("SIGKILL dispatcher-b after %d answers (it had dispatched %d)"
            % (progress[0], len(b_before)))
        b.kill9()
        t_kill = time.monotonic()
        for t in threads:
            t.join()
        log("wave 1 answered in %.1fs" % (time.monotonic() - t0))
        c.wait_until(c.all_acknowledged, 120, "both intakes to have everything acknowledged")
        log("everything acknowledged through dispatcher-a %.1fs after the kill"
            % (time.monotonic() - t_kill))

        # B back; a second wave through both.
        b.start()
        b_start_mark = len(b.log_text())
        time.sleep(1)
        wave2 = []
        for i in range(WAVE2):
            name = "intake-%d" % (1 + i % 2)
            wave2.append((name, "IT-SO-W2-%04d" % i, UNIQUE + SHARED + i))

        def client2(k):
            conns = {}
            for name, order_no, i in wave2[k::4]:
                if name not in conns:
                    conns[name] = http.client.HTTPConnection(
                        "127.0.0.1", c.intake_ports[name], timeout=60)
                st, body = c.post_order(make_order(order_no, i), conn=conns[name])
                tn = body.get("tracking_no") if isinstance(body, dict) else None
                with lock:
                    answers[(name, order_no)] = (st, tn if tn else body)
                time.sleep(0.01)
            for cn in conns.values():
                cn.close()

        t2 = [threading.Thread(target=client2, args=(k,)) for k in range(4)]
        for t in t2:
            t.start()
        for t in t2:
            t.join()
        c.wait_until(c.all_acknowledged, 120, "wave 2 acknowledged")
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM assignments WHERE delivered_at IS NULL") == 0,
            120, "every assignment delivered by the worker")

        # ---- answers ------------------------------------------------------
        bad = dict((k, v) for k, v in answers.items() if v is None or v[0] not in (200, 202))
        ck.check(not bad, "%d orders not acknowledged, e.g. %r" % (len(bad), list(bad.items())[:5]))
        expected_answers = UNIQUE + 2 * SHARED + WAVE2
        ck.check(len(answers) == expected_answers,
                 "expected %d answers, got %d" % (expected_answers, len(answers)))
        acked = dict((k, v[1]) for k, v in answers.items() if v and v[0] in (200, 202))
        numbers = list(acked.values())
        ck.check(len(set(numbers)) == len(numbers),
                 "%d tracking numbers were given twice" % (len(numbers) - len(set(numbers))))
        wrong_instance = [(k, tn) for k, tn in acked.items()
                          if not re.fullmatch(r"\d{8}-%s-\d{6}" % k[0][-1], str(tn))]
        ck.check(not wrong_instance, "tracking numbers without their intake's instance id: %r"
                 % wrong_instance[:5])

        # ---- the database -------------------------------------------------
        rows = c.sql("SELECT tracking_no, idem_key, case_id FROM petitions")
        by_tn = dict((r["tracking_no"], r) for r in rows)
        by_key = {}
        for r in rows:
            by_key.setdefault(r["idem_key"], []).append(r)
        unique_keys = [k for k in acked if not k[1].startswith("IT-SO-SHARED-")]
        missing = [(k, acked[k]) for k in unique_keys if acked[k] not in by_tn]
        ck.check(not missing, "%d acknowledged petitions not stored, e.g. %r"
                 % (len(missing), missing[:5]))
        wrong_key = [(k, acked[k]) for k in unique_keys
                     if acked[k] in by_tn and by_tn[acked[k]]["idem_key"] != k[1]]
        ck.check(not wrong_key, "stored under another key: %r" % wrong_key[:5])
        dup = [k for k, v in by_key.items() if len(v) != 1]
        ck.check(not dup, "keys stored more than once: %r" % dup[:5])
        ck.check(len(rows) == UNIQUE + SHARED + WAVE2,
                 "expected %d petitions, found %d" % (UNIQUE + SHARED + WAVE2, len(rows)))
        unrouted = [r["tracking_no"] for r in rows if r["case_id"] is None]
        ck.check(not unrouted, "%d petitions without a case: %r" % (len(unrouted), unrouted[:5]))

        # The shared order numbers: stored once, under one of the two numbers.
        winners = {"intake-1": 0, "intake-2": 0}
        loser_status = {}
        for no in shared:
            tn1, tn2 = acked.get(("intake-1", no)), acked.get(("intake-2", no))
            stored = by_key.get(no, [])
            ok = (len(stored) == 1 and tn1 and tn2 and tn1 != tn2 and
                  stored[0]["tracking_no"] in (tn1, tn2))
            ck.check(ok, "shared %s: intake-1 gave %s, intake-2 gave %s, stored %r"
                     % (no, tn1, tn2, [s["tracking_no"] for s in stored]))
            if not ok:
                continue
            win = "intake-1" if stored[0]["tracking_no"] == tn1 else "intake-2"
            winners[win] += 1
            won_tn, lost_tn = (tn1, tn2) if win == "intake-1" else (tn2, tn1)
            st, _ = c.http("GET", "/api/v1/petitions/" + won_tn, token=c.tokens["hotline"])
            ck.check(st == 200, "GET of the stored number %s answered %s" % (won_tn, st))
            st, _ = c.http("GET", "/api/v1/petitions/" + lost_tn, token=c.tokens["hotline"])
            loser_status[st] = loser_status.get(st, 0) + 1
        log("shared order numbers: stored once each; the copy stored came from intake-1 %d "
            "times, intake-2 %d times; GET of the other client's tracking number answered %r "
            "(per status)" % (winners["intake-1"], winners["intake-2"], loser_status))

        # One dispatch event per petition: nobody handled a petition twice.
        ev = c.sql_value(
            "SELECT count(*) FROM case_events WHERE type IN ('dispatched', 'manual', 'merged')")
        ck.check(ev == len(rows), "expected %d dispatch events (one per petition), found %s"
                 % (len(rows), ev))
        merged = c.sql_value("SELECT count(*) FROM case_events WHERE type = 'merged'")
        log("%d petitions, %s cases, %d merged into a case another petition opened"
            % (len(rows), c.sql_value("SELECT count(*) FROM cases"), merged))
        ck.check(merged > 0, "no duplicates were merged: the test did not make both "
                 "dispatchers write to the same cases")

        # ---- both dispatchers worked ---------------------------------------
        a_text, b_text = c.daemons["dispatcher-a"].log_text(), b.log_text()
        a_tns, b_tns_after = dispatched_in(a_text), dispatched_in(b_text[b_start_mark:])
        log("dispatched: dispatcher-a %d, dispatcher-b %d before the kill, %d after its restart"
            % (len(a_tns), len(b_before), len(b_tns_after)))
        ck.check(len(a_tns) > 0, "dispatcher-a dispatched nothing")
        ck.check(len(b_before) > 0, "dispatcher-b dispatched nothing before the kill")
        ck.check(len(b_tns_after) > 0, "dispatcher-b dispatched nothing after its restart")
        all_dispatched = a_tns + dispatched_in(b_text)
        ck.check(len(all_dispatched) == len(set(all_dispatched)),
                 "a tracking number was dispatched by both dispatchers (or twice)")
        # The worker heard both PUB sockets: assignments of each dispatcher's
        # cases delivered "via bus".
        for who, text in (("dispatcher-a", a_text), ("dispatcher-b", b_text)):
            cases = cases_opened_in(text)
            n = c.sql_value(
                "SELECT count(DISTINCT case_id) FROM case_events"
                " WHERE type = 'delivered' AND data->>'via' = 'bus'"
                " AND case_id = ANY (string_to_array(:'ids', ',')::bigint[])",
                ids=",".join(str(x) for x in cases) or "0")
            log("cases opened by %s: %d, delivered by the worker from the bus: %s"
                % (who, len(cases), n))
            ck.check(n and n > 0, "the worker delivered none of %s's assignments from the bus"
                     % who)

        # ---- failures, recovered ---------------------------------------------
        failed = dict((n, len(re.findall(r"event=batch_failed", c.daemons[n].log_text())))
                      for n in ("dispatcher-a", "dispatcher-b"))
        pglog = os.path.join(c.pg_dir, "log", "postgresql.log")
        pgtext = open(pglog, errors="replace").read() if os.path.exists(pglog) else ""
        deadlocks = pgtext.count("deadlock detected")
        log("failed batches (retried until stored): %r; deadlocks in PostgreSQL's log: %d"
            % (failed, deadlocks))
        ck.check(c.all_acknowledged(), "petitions left unacknowledged in an intake's spool")
        verify = c.fenboctl("audit", "verify", check=False)
        ck.check(verify.returncode == 0, "fenboctl audit verify failed: %s"
                 % (verify.stdout + verify.stderr).decode(errors="replace")[-500:])

        # B's stop line says how many already-stored copies it was handed
        # (queued for it while it was dead, then resent elsewhere).
        rc = b.stop()
        m = re.findall(r"event=stopped stored=(\d+) merged=\d+ resent=(\d+)", b.log_text())
        if m:
            log("dispatcher-b after its restart: stored %s, already-stored copies %s"
                % m[-1])
        ck.check(rc == 0, "dispatcher-b exited %s on SIGTERM" % rc)
        ck.finish()


if __name__ == "__main__":
    main(run)
