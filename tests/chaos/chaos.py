#!/usr/bin/env python3
"""chaos.py — the fault-injection suite: nothing acknowledged is lost, nothing
is stored twice, nothing appears that nobody sent, while the daemons and the
database are killed under load.

A throwaway installation (tests/integration/harness.py: a private PostgreSQL
and the three daemons as separate processes) takes a load of --petitions
requests, round-robin over the hotline, mini-program and Open311 channels,
from --clients threads on keep-alive connections, spread over --duration
seconds. Meanwhile, at random moments drawn from a seeded RNG (the seed is
printed; --seed repeats a run), --rounds faults are injected, the first five
one of each kind in a random order, then kinds at random:

  kill_intake      SIGKILL fenbo-intake, restart it after 0.2-2 s on the same
                   data directory (clients retry meanwhile)
  kill_dispatcher  SIGKILL fenbo-dispatcher, restart it after 0.2-2 s
  kill_worker      SIGKILL fenbo-worker, restart it after 0.2-2 s
  pg_immediate     pg_ctl stop -m immediate, start again after 1-5 s
  stop_dispatcher  SIGSTOP fenbo-dispatcher until intake's bus queue is full
                   ([bus] sndhwm = 1000 here, so that it fills quickly: intake
                   then fails to hand on new petitions) plus a second, then
                   SIGCONT

In the long form (not --short), --overlap 0.3 by default: a fault may run on
while the next begins, so that two hit at once (intake killed while
PostgreSQL is down, …), never two on the same process.

Clients behave as real ones: a request whose connection failed or that got a
5xx is sent again with the same idempotency key until it gets a 2xx (or
--retry-window seconds pass). Every attempt and its answer goes to
clients.jsonl in the run directory. When the load is done, faulting stops,
intake's spool drains, every petition reaches a case, and the client log is
compared with PostgreSQL:

  acknowledged  requests that finally got a 2xx
  stored        acknowledged requests stored under their key and with the
                tracking number they were answered
  lost          acknowledged but not stored
  duplicated    requests stored more than once (each request's text carries
                its own marker, so a copy under another key is found too)
  unexpected    petitions that no client ever sent

Lost, duplicated and unexpected must be 0, and so must: answers with another
tracking number than stored, requests never acknowledged, 4xx answers (the
load is valid), failed attempts while intake was up, daemons that died by
themselves, and petitions without a dispatched or manual case. The exit code
is 0 only then.

Runs:
  short form (ctest -L chaos):  chaos.py --short
  long form, by hand:           /usr/bin/python3 tests/chaos/chaos.py --petitions 100000 --rounds 50
(--build DIR names the build tree when not run through ctest: default build/.)
"""

import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse

# No __pycache__ in the source tree when run by hand.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures", "photos"))

from harness import PGBIN, Cluster, load_json, log, now_rfc3339  # noqa: E402
import make_photos  # noqa: E402

CHANNELS = ("hotline", "miniapp", "open311")
FAULTS = ("kill_intake", "kill_dispatcher", "kill_worker", "pg_immediate", "stop_dispatcher")
# Inside the city's bounds (lat 30.20-30.32, lng 120.10-120.26), with a margin
# for the GCJ-02 → WGS-84 shift of the mini-program's points.
LAT = (30.21, 30.31)
LNG = (120.11, 120.25)
HOTLINE_PATH = "/api/v1/hotline/orders"
MINIAPP_PATH = "/api/v1/miniapp/reports"
OPEN311_PATH = "/open311/v2/requests.json"
MARKER_SQL = r"substring(p.content from '\[chaos-r([0-9]+)\]')"
TEXTS = (
    "小区门口占道经营，早上摆摊影响通行",
    "楼下饭店油烟扰民，晚上味道很大",
    "路灯不亮，晚上很黑，请尽快维修",
    "人行道上井盖缺失，存在安全隐患",
    "工地夜间施工噪音扰民",
    "垃圾清运不及时，气味难闻",
    "公交站牌信息错误，需要更新",
    "咨询社保卡补办需要什么材料",
    "路面塌陷出现一个大坑",
    "绿化带树木倒伏挡住人行道",
)


# ---- the installation ------------------------------------------------------------


class ChaosCluster(Cluster):
    """The harness's cluster, plus what chaos needs: PostgreSQL stopped the
    hard way."""

    def pg_stop_immediate(self):
        """pg_ctl stop -m immediate: no checkpoint, crash recovery at the next start."""
        argv = [os.path.join(PGBIN, "pg_ctl"), "-D", os.path.join(self.pg_dir, "data"),
                "-m", "immediate", "-w", "-t", "60", "stop"]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        self._run(argv, timeout=90)


# ---- the client log ----------------------------------------------------------------


class ClientLog:
    """clients.jsonl: one line per attempt (and per fault), written as it happens."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "w", encoding="utf-8")
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def write(self, rec):
        rec["t"] = round(time.monotonic() - self.t0, 4)
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        with self.lock:
            self.f.write(line)

    def close(self):
        with self.lock:
            self.f.close()


# ---- requests ------------------------------------------------------------------------


class Load:
    """Builds request number i, deterministically from the seed."""

    def __init__(self, c, seed, tag):
        self.c = c
        self.seed = seed
        self.tag = tag
        cats = load_json("config/demo/categories.json")
        parents = {x["parent_code"] for x in cats}
        self.leaves = sorted(x["code"] for x in cats if x["code"] not in parents)

    def key(self, i):
        """(channel, the key the client sends, the idem_key intake stores)."""
        ch = CHANNELS[i % len(CHANNELS)]
        if ch == "hotline":
            k = "CHAOS-%s-%07d" % (self.tag, i)
            return ch, k, k
        if ch == "miniapp":
            k = "chaos-%s-m%07d" % (self.tag, i)
            return ch, k, k
        k = "chaos-%s-o%07d" % (self.tag, i)
        dev = self.device(i)
        # intake/open311_post.c: with an Idempotency-Key, the device's key.
        return ch, k, "d%d:%s:%s" % (len(dev), dev, k)

    @staticmethod
    def device(i):
        return "chaos-device-%03d" % (i % 97)

    def build(self, i):
        """(channel, client key, stored key, method, path, headers, body)."""
        rng = random.Random(self.seed * 1000003 + i)
        ch, key, stored_key = self.key(i)
        text = "%s（第%d件）[chaos-r%07d]" % (rng.choice(TEXTS), i, i)
        lat = round(rng.uniform(*LAT), 6)
        lng = round(rng.uniform(*LNG), 6)
        if ch == "hotline":
            o = {
                "order_no": key,
                "received_at": now_rfc3339(),
                "caller": {"name": "测试%d" % (i % 100), "phone": "138%08d" % (i % 10 ** 8)},
                "content": text,
                "urgency": rng.choice(("normal", "normal", "urgent")),
            }
            if rng.random() < 0.7:
                o["location"] = {"lat": lat, "lng": lng, "crs": "wgs84"}
            if rng.random() < 0.5:
                o["category"] = rng.choice(self.leaves)
            body = json.dumps(o, ensure_ascii=False).encode("utf-8")
            headers = {"Authorization": "Bearer " + self.c.tokens["hotline"],
                       "Content-Type": "application/json"}
            return ch, key, stored_key, "POST", HOTLINE_PATH, headers, body
        if ch == "miniapp":
            rep = {"openid": "oChaos-openid-%04d" % (i % 500), "content": text,
                   "location": {"lat": lat, "lng": lng,
                                "crs": rng.choice(("wgs84", "gcj02"))}}
            if rng.random() < 0.3:
                rep["category"] = rng.choice(self.leaves)
            parts = [("report", "report.json", "application/json",
                      json.dumps(rep, ensure_ascii=False).encode("utf-8"))]
            if rng.random() < 0.1:
                parts.append(("photo", "photo.png", "image/png",
                              make_photos.png(b"chaos %s %d" % (self.tag.encode(), i),
                                              grey=rng.randrange(256))))
            boundary = "----chaos%016x" % rng.getrandbits(64)
            body = multipart(boundary, parts)
            headers = {"Authorization": "Bearer " + self.c.tokens["miniapp"],
                       "Idempotency-Key": key,
                       "Content-Type": "multipart/form-data; boundary=" + boundary}
            return ch, key, stored_key, "POST", MINIAPP_PATH, headers, body
        form = {
            "api_key": self.c.tokens["open311"],
            "service_code": rng.choice(self.leaves),
            "lat": "%.6f" % lat,
            "long": "%.6f" % lng,
            "description": text,
            "device_id": self.device(i),
        }
        body = urllib.parse.urlencode(form).encode("ascii")
        headers = {"Idempotency-Key": key,
                   "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return ch, key, stored_key, "POST", OPEN311_PATH, headers, body


def multipart(boundary, parts):
    """multipart/form-data by hand: [(name, filename, type, bytes)]."""
    out = []
    for name, filename, ctype, data in parts:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (boundary, name, filename, ctype)).encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out)


def tracking_of(channel, body):
    """The tracking number in a 2xx answer, or None."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if channel == "open311":
        if isinstance(doc, list) and doc and isinstance(doc[0], dict):
            return doc[0].get("service_request_id")
        return None
    return doc.get("tracking_no") if isinstance(doc, dict) else None


# ---- the run ----------------------------------------------------------------------------


class Run:
    def __init__(self, args, c, clog):
        self.a = args
        self.c = c
        self.clog = clog
        self.load = Load(c, args.seed, "%x" % args.seed)
        self.lock = threading.Lock()
        self.next_i = 0
        self.done = 0
        self.stop = threading.Event()
        n = args.petitions
        self.final = [None] * n  # final status (None: never answered)
        self.tn = [None] * n  # tracking number of the final 2xx
        self.attempts = [0] * n
        self.sent = [False] * n
        self.bad_attempts = []  # (sent, answered, i, status or error) of every failed attempt
        self.faults = []  # dicts, as logged
        self.intake_down = []  # [start, end] (monotonic) while intake was not serving
        self.crashes = []  # daemons that died without being killed
        self.notes = []
        self.hwm = []  # per stop_dispatcher: whether the bus filled up
        # One lock per thing a fault acts on: faults running at once (--overlap)
        # take different ones, and the watchdog leaves a locked daemon alone.
        self.targets = {name: threading.Lock() for name in ("intake", "dispatcher", "worker",
                                                            "pg")}
        self.t0 = None

    # ---- clients ----

    def client(self, k):
        conn = None
        port = self.c.intake_port
        rate = self.a.petitions / self.a.duration
        while not self.stop.is_set():
            with self.lock:
                i = self.next_i
                if i >= self.a.petitions:
                    break
                self.next_i += 1
            delay = self.t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ch, key, _, method, path, headers, body = self.load.build(i)
            give_up = time.monotonic() + self.a.retry_window
            backoff = 0.05
            attempt = 0
            while True:
                attempt += 1
                t1 = time.monotonic()
                st, err, data = None, None, b""
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    self.sent[i] = True
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    st = resp.status
                    if resp.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as e:
                    err = "%s: %s" % (type(e).__name__, e)
                    if conn is not None:
                        conn.close()
                    conn = None
                t2 = time.monotonic()
                tn = tracking_of(ch, data) if st is not None and 200 <= st < 300 else None
                rec = {"i": i, "ch": ch, "key": key, "try": attempt, "client": k,
                       "ms": round((t2 - t1) * 1000, 1), "status": st}
                if tn:
                    rec["tn"] = tn
                if err:
                    rec["err"] = err
                elif st is not None and not 200 <= st < 300:
                    rec["body"] = data[:300].decode("utf-8", "replace")
                self.clog.write(rec)
                self.attempts[i] = attempt
                if st is not None and 200 <= st < 300:
                    self.final[i] = st
                    self.tn[i] = tn
                    break
                with self.lock:
                    self.bad_attempts.append((t1, t2, i, st if st is not None else err))
                if st is not None and 400 <= st < 500:
                    self.final[i] = st  # refused: a real client would not retry either
                    break
                if time.monotonic() >= give_up or self.stop.is_set():
                    self.final[i] = st
                    break
                time.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(1.0, backoff * 2)
            with self.lock:
                self.done += 1
        if conn is not None:
            conn.close()

    # ---- faults ----

    def note_fault(self, kind, **info):
        info.update(fault=kind, answered=self.done)
        with self.lock:
            self.faults.append(info)
        self.clog.write(dict(info))
        log("fault %-15s %s" % (kind, " ".join("%s=%s" % kv for kv in info.items()
                                                  if kv[0] not in ("fault",))))

    def load_running(self):
        return self.done < self.a.petitions and not self.stop.is_set()

    def watchdog(self):
        """A daemon that exited without being killed is a crash: note it,
        restart it. A daemon a fault is busy with is that fault's business."""
        for name, d in self.c.daemons.items():
            if not self.targets[name].acquire(blocking=False):
                continue
            try:
                if d.proc is not None and d.proc.poll() is not None:
                    rc = d.proc.returncode
                    d._reap()
                    self.crashes.append("%s exited by itself with %s" % (d.name, rc))
                    log("CRASH: %s exited with %s; restarting it" % (d.name, rc))
                    window = [time.monotonic(), None]
                    if name == "intake":
                        self.intake_down.append(window)
                    d.start()
                    if name == "intake":
                        self.wait_intake(window)
            finally:
                self.targets[name].release()

    def wait_intake(self, window):
        """After intake's start: until /healthz answers; closes its down window."""
        self.c.wait_until(lambda: self.c.healthz(self.c.intake_port), 120,
                          "intake answering /healthz after its restart", interval=0.05)
        window[1] = time.monotonic()

    def intake_counters(self):
        m = self.c.metrics() or {}
        return (m.get("fenbo_intake_petitions_accepted_total", 0.0),
                m.get("fenbo_intake_sends_total", 0.0))

    def inject(self, kind, rng):
        """One fault, holding its target's lock: two faults at once (--overlap)
        never act on the same process."""
        # stop_dispatcher reads intake's counters: a restart would reset them.
        names = {"pg_immediate": ("pg",), "stop_dispatcher": ("dispatcher", "intake")}.get(
            kind, (kind[len("kill_"):],))
        locks = [self.targets[n] for n in sorted(names)]  # one order: no deadlock
        for lk in locks:
            lk.acquire()
        try:
            self._inject(kind, rng)
        finally:
            for lk in reversed(locks):
                lk.release()

    def _inject(self, kind, rng):
        c = self.c
        if kind.startswith("kill_"):
            name = kind[len("kill_"):]
            d = c.daemons[name]
            pid = d.pid()
            window = [time.monotonic(), None]
            if name == "intake":
                self.intake_down.append(window)
            d.kill9()
            pause = rng.uniform(0.2, 2.0)
            time.sleep(pause)
            d.start()
            if name == "intake":
                self.wait_intake(window)
            self.note_fault(kind, pid=pid, down_s=round(pause, 2))
        elif kind == "pg_immediate":
            pause = rng.uniform(1.0, 5.0)
            t1 = time.monotonic()
            c.pg_stop_immediate()
            time.sleep(pause)
            c.start_pg()
            self.note_fault(kind, down_s=round(time.monotonic() - t1, 2))
        elif kind == "stop_dispatcher":
            d = c.daemons["dispatcher"]
            pid = d.pid()
            a0, s0 = self.intake_counters()
            t1 = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            reached = None
            try:
                while time.monotonic() - t1 < self.a.max_pause:
                    time.sleep(0.2)
                    a, s = self.intake_counters()
                    # A petition intake could not hand to the bus is accepted
                    # but not counted as sent: the queue is at its HWM. (Up
                    # to one petition per client may be accepted and not yet
                    # flushed when /metrics answers: more than that is the HWM.)
                    if (a - a0) - (s - s0) > self.a.clients:
                        reached = time.monotonic() - t1
                        time.sleep(1.0)
                        break
            finally:
                os.kill(pid, signal.SIGCONT)
            held = time.monotonic() - t1
            self.hwm.append(reached is not None)
            self.note_fault(kind, pid=pid, stopped_s=round(held, 2),
                            hwm_full_after_s=round(reached, 2) if reached is not None else None,
                            accepted_while_stopped=int(self.intake_counters()[0] - a0))

    def _inject_bg(self, kind, rng):
        try:
            self.inject(kind, rng)
        except Exception as e:
            self.notes.append("fault %s failed: %s: %s" % (kind, type(e).__name__, e))
            log("fault %s failed: %r" % (kind, e))
            self.stop.set()

    def faulter(self, schedule, rng):
        """Injects the schedule's faults at their times while the load runs.
        With --overlap P, a fault after the first round of one of each kind
        is, with probability P, left running in the background while the
        next ones begin (intake killed while PostgreSQL is down, …)."""
        background = []
        try:
            for k, (at, kind) in enumerate(schedule):
                while time.monotonic() < self.t0 + at and self.load_running():
                    self.watchdog()
                    time.sleep(0.05)
                if not self.load_running():
                    break
                self.watchdog()
                frng = random.Random(rng.getrandbits(64))
                if k >= len(FAULTS) and rng.random() < self.a.overlap:
                    t = threading.Thread(target=self._inject_bg, args=(kind, frng), daemon=True)
                    t.start()
                    background.append(t)
                else:
                    self.inject(kind, frng)
            while self.load_running():
                self.watchdog()
                time.sleep(0.1)
            for t in background:
                t.join()
            self.watchdog()
        except Exception as e:  # the main thread reports it
            self.notes.append("fault thread failed: %s: %s" % (type(e).__name__, e))
            log("fault thread failed: %r" % e)
            self.stop.set()
            for t in background:
                t.join()

    def make_schedule(self, rng):
        """(seconds after the start, kind) for every round: spread over the
        first 85% of the load, one of each kind first."""
        n = self.a.rounds
        kinds = list(FAULTS)
        rng.shuffle(kinds)
        kinds = kinds[:n] + [rng.choice(FAULTS) for _ in range(max(0, n - len(FAULTS)))]
        span = self.a.duration * 0.80
        slot = span / max(1, n)
        return [(self.a.duration * 0.05 + k * slot + rng.uniform(0, slot * 0.6), kind)
                for k, kind in enumerate(kinds)]

    # ---- the whole run ----

    def run(self):
        rng = random.Random(self.a.seed)
        schedule = self.make_schedule(rng)
        log("schedule: %s" % ", ".join("%.1fs %s" % s for s in schedule))
        clients = [threading.Thread(target=self.client, args=(k,), daemon=True)
                   for k in range(self.a.clients)]
        faulter = threading.Thread(target=self.faulter, args=(schedule, rng), daemon=True)
        self.t0 = time.monotonic()
        for t in clients:
            t.start()
        faulter.start()
        last = 0
        while any(t.is_alive() for t in clients):
            time.sleep(0.5)
            now = time.monotonic()
            if now - last >= 10:
                last = now
                log("progress: %d/%d answered, %d failed attempts, %d faults"
                    % (self.done, self.a.petitions, len(self.bad_attempts), len(self.faults)))
        self.load_s = time.monotonic() - self.t0
        self.stop.set()
        faulter.join()
        log("load done: %d requests in %.1fs (%.0f/s), %d faults injected"
            % (self.done, self.load_s, self.done / max(self.load_s, 0.001), len(self.faults)))
        # The faults are over: everything must be up again.
        for d in self.c.daemons.values():
            d.start()
        self.c.start_pg()
        self.drain()

    def drain(self):
        c = self.c
        t1 = time.monotonic()

        def spool_empty():
            m = c.metrics() or {}
            return m.get("fenbo_intake_spool_pending") == 0

        c.wait_until(spool_empty, self.a.drain_timeout, "intake's spool to drain", interval=0.5)
        left = max(10.0, self.a.drain_timeout - (time.monotonic() - t1))
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE case_id IS NULL") == 0, left,
            "every petition to have a case", interval=0.5)
        self.drain_s = time.monotonic() - t1
        log("drained in %.1fs" % self.drain_s)

    # ---- the verdict ----

    def verdict(self):
        c = self.c
        ld = self.load
        rows = c.sql("SELECT p.tracking_no AS tn, p.channel AS ch, p.idem_key AS k, "
                     + MARKER_SQL + " AS r, p.case_id AS case_id, k.status AS st, "
                     "k.department_code AS dept FROM petitions p "
                     "LEFT JOIN cases k ON k.id = p.case_id")
        by_key = {}
        by_tn = {}
        by_rid = collections.defaultdict(list)
        for r in rows:
            by_key.setdefault((r["ch"], r["k"]), []).append(r)
            by_tn.setdefault(r["tn"], []).append(r)
            if r["r"] is not None:
                by_rid[int(r["r"])].append(r)

        n = self.a.petitions
        sent_keys = {}
        for i in range(n):
            if self.sent[i]:
                ch, _, sk = ld.key(i)
                sent_keys[(ch, sk)] = i
        acked = [i for i in range(n) if self.final[i] is not None and 200 <= self.final[i] < 300]
        acked_set = set(acked)
        stored, lost, wrong_tn = [], [], []
        for i in acked:
            ch, _, sk = ld.key(i)
            rs = by_key.get((ch, sk), [])
            if not rs and not by_tn.get(self.tn[i]):
                lost.append(i)
            elif not any(r["tn"] == self.tn[i] for r in rs):
                wrong_tn.append(i)
            else:
                stored.append(i)
        dup_requests = sorted(i for i, rs in by_rid.items() if len(rs) > 1)
        dup_keys = [k for k, rs in by_key.items() if len(rs) > 1]
        dup_tns = [t for t, rs in by_tn.items() if len(rs) > 1]
        unexpected = [r for r in rows
                      if (r["ch"], r["k"]) not in sent_keys
                      or r["r"] is None or int(r["r"]) >= n or not self.sent[int(r["r"])]
                      or sent_keys[(r["ch"], r["k"])] != int(r["r"])]
        answer_lost_stored = [i for i in range(n) if self.sent[i] and i not in acked_set
                              and (ld.key(i)[0], ld.key(i)[2]) in by_key]
        never_acked = [i for i in range(n) if self.sent[i] and i not in acked_set
                       and not (self.final[i] is not None and 400 <= self.final[i] < 500)]
        refused = [i for i in range(n) if self.final[i] is not None and 400 <= self.final[i] < 500]
        unsent = n - sum(self.sent)
        recovered = sum(1 for i in acked if self.final[i] == 200)
        undispatched = [r for r in rows
                        if r["case_id"] is None
                        or not ((r["st"] == "dispatched" and r["dept"])
                                or (r["st"] == "manual" and not r["dept"]))]
        statuses = collections.Counter(r["st"] for r in rows)

        # Failed attempts outside the windows where intake was down (plus a
        # second's grace for connections opened to the old process).
        windows = [(s, (e if e is not None else float("inf")) + 1.0) for s, e in self.intake_down]
        failed_up = [b for b in self.bad_attempts
                     if not any(s <= b[1] and b[0] <= e for s, e in windows)]

        kinds = collections.Counter(f["fault"] for f in self.faults)
        table = [
            ("requests sent", n - unsent, ""),
            ("attempts", sum(self.attempts), "%d failed and retried" % len(self.bad_attempts)),
            ("acknowledged", len(acked), "2xx in the end; %d got 200 on a retry "
             "(an earlier attempt's answer was lost)" % recovered),
            ("stored", len(stored), "under its key, with the tracking number answered"),
            ("lost", len(lost), "acknowledged but absent"),
            ("duplicated", len(dup_requests) + len(dup_keys) + len(dup_tns),
             "a request stored twice"),
            ("unexpected", len(unexpected), "stored but never sent"),
            ("wrong tracking_no", len(wrong_tn), "stored under another number than answered"),
            ("stored, answer lost", len(answer_lost_stored), "sent, never acknowledged, stored"),
            ("never acknowledged", len(never_acked), "gave up after %ds of retries"
             % self.a.retry_window),
            ("refused (4xx)", len(refused), "the load is valid: none expected"),
            ("failed while intake up", len(failed_up), "5xx or broken connections outside "
             "intake's restarts"),
            ("daemon crashes", len(self.crashes), "exits nobody caused"),
            ("undispatched", len(undispatched), "stored without a dispatched/manual case"),
            ("petitions in db", len(rows), ", ".join("%s %d" % kv for kv in sorted(
                statuses.items(), key=lambda kv: str(kv[0])))),
        ]
        failures = []
        for name, value, _ in table:
            if name in ("lost", "duplicated", "unexpected", "wrong tracking_no",
                        "never acknowledged", "refused (4xx)", "failed while intake up",
                        "daemon crashes", "undispatched") and value:
                failures.append("%s: %d" % (name, value))
        if unsent:
            failures.append("%d requests were never sent (the run was cut short)" % unsent)
        missing_kinds = [k for k in FAULTS if k not in kinds and self.a.rounds >= len(FAULTS)]
        if missing_kinds:
            failures.append("fault kinds not injected (the load ended first): %s"
                            % ", ".join(missing_kinds))
        if self.hwm and not all(self.hwm):
            failures.append("the bus HWM was not reached in %d of %d dispatcher stops"
                            % (self.hwm.count(False), len(self.hwm)))
        failures += self.notes + self.crashes

        print()
        print("chaos: seed %d, %d petitions over %d clients, %d fault rounds"
              % (self.a.seed, n, self.a.clients, self.a.rounds))
        print("  faults: %s" % ", ".join("%s x%d" % (k, kinds[k]) for k in FAULTS if kinds[k]))
        print("  load %.1fs (%.0f requests/s), drain %.1fs"
              % (self.load_s, n / max(self.load_s, 0.001), self.drain_s))
        print("  %-24s %8s   %s" % ("", "count", ""))
        for name, value, why in table:
            print("  %-24s %8d   %s" % (name, value, why))
        examples = [("lost", lost), ("wrong tracking_no", wrong_tn), ("duplicated", dup_requests),
                    ("never acknowledged", never_acked), ("refused", refused)]
        for name, lst in examples:
            if lst:
                print("  e.g. %s: %s" % (name, ", ".join(
                    "#%d %s %s" % (i, ld.key(i)[1], self.final[i]) for i in lst[:5])))
        if unexpected:
            print("  e.g. unexpected: %s" % [(r["tn"], r["ch"], r["k"]) for r in unexpected[:5]])
        if undispatched:
            print("  e.g. undispatched: %s" % [(r["tn"], r["case_id"], r["st"], r["dept"])
                                              for r in undispatched[:5]])
        if failed_up:
            print("  e.g. failed while intake up: %s"
                  % [("%.2fs" % (b[0] - self.t0), b[2], b[3]) for b in failed_up[:5]])
        return failures


# ---- main ----------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", action="store_true",
                   help="the short form run by ctest: 10,000 petitions, 6 rounds, ~1 minute "
                   "of load (scaled down by FENBO_CHAOS_SCALE, e.g. 0.5)")
    p.add_argument("--petitions", type=int, default=None, help="requests to send (10000)")
    p.add_argument("--rounds", type=int, default=None, help="fault rounds (10)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds the load is spread over (default: petitions/200, at "
                   "least 30; --short: 60)")
    p.add_argument("--clients", type=int, default=8, help="client threads (8)")
    p.add_argument("--overlap", type=float, default=None,
                   help="probability that a fault (after the first five) runs on while the "
                   "next begins, so that two hit at once (0 with --short, else 0.3)")
    p.add_argument("--seed", type=int, default=None, help="the RNG seed (default: random)")
    p.add_argument("--retry-window", type=int, default=120,
                   help="seconds a client keeps retrying one request (120)")
    p.add_argument("--max-pause", type=float, default=30.0,
                   help="longest SIGSTOP of the dispatcher, in s (30)")
    p.add_argument("--drain-timeout", type=float, default=180.0,
                   help="seconds to wait for the spool to drain at the end (180)")
    p.add_argument("--build", default=None,
                   help="build tree with the daemons when not run by ctest (default: build/)")
    p.add_argument("--keep", action="store_true",
                   help="keep the run directory (client log) and the cluster's directory "
                   "even when the run passes")
    a = p.parse_args(argv)
    scale = float(os.environ.get("FENBO_CHAOS_SCALE", "1") or 1)
    if a.short:
        a.petitions = a.petitions or max(300, int(10000 * scale))
        a.rounds = a.rounds if a.rounds is not None else 6
        a.duration = a.duration or max(30.0, 60.0 * scale)
        a.overlap = a.overlap if a.overlap is not None else 0.0
    a.overlap = a.overlap if a.overlap is not None else 0.3
    a.petitions = a.petitions or 10000
    a.rounds = a.rounds if a.rounds is not None else 10
    a.duration = a.duration or max(30.0, a.petitions / 200.0)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 2 ** 31)
    return a


def use_build_tree(build):
    """Binaries from a build tree, for runs by hand (ctest sets them itself)."""
    build = os.path.abspath(build or os.path.join(REPO, "build"))
    for var, rel in (("FENBO_INTAKE_BIN", "intake/fenbo-intake"),
                     ("FENBO_DISPATCHER_BIN", "dispatcher/fenbo-dispatcher"),
                     ("FENBO_WORKER_BIN", "workers/fenbo-worker"),
                     ("FENBOCTL_BIN", "tools/fenboctl")):
        if not os.environ.get(var):
            os.environ[var] = os.path.join(build, rel)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    use_build_tree(a.build)
    run_dir = tempfile.mkdtemp(prefix="fenbo-chaos-run-", dir="/tmp")
    start = time.monotonic()
    log("chaos: seed %d (repeat with --seed %d), %d petitions, %d rounds, %.0fs of load, "
        "run directory %s" % (a.seed, a.seed, a.petitions, a.rounds, a.duration, run_dir))
    # ctest's TIMEOUT, or the long form's own size, bounds the whole run.
    timeout = int(os.environ.get("FENBO_TEST_TIMEOUT", "0")) or int(
        a.duration * 3 + a.drain_timeout + 300)
    settings = {
        # A small HWM, so that a stopped dispatcher fills intake's queue quickly.
        "bus": {"sndhwm": 1000},
        # Count petitions, not cases: no duplicate merging (并案).
        "dispatcher": {"dedup_radius_m": 0},
        "general": {"log_level": "warn"},
    }
    failures = []
    clog = ClientLog(os.path.join(run_dir, "clients.jsonl"))
    r = None
    try:
        with ChaosCluster("chaos", settings=settings, timeout=timeout) as c:
            r = Run(a, c, clog)
            try:
                r.run()
            finally:
                # Whatever happened: nothing left stopped, PostgreSQL up, so
                # that the teardown (and a failed run's post-mortem) works.
                r.stop.set()
                d = c.daemons["dispatcher"]
                if d.running():
                    os.kill(d.pid(), signal.SIGCONT)
            failures = r.verdict()
            if failures:
                # The daemons' logs beside the client log, for the post-mortem
                # (the cluster itself goes, unless --keep or FENBO_KEEP_TMP).
                c.print_logs(60)
                for name in os.listdir(os.path.join(c.tmp, "log")):
                    shutil.copy(os.path.join(c.tmp, "log", name), run_dir)
    except BaseException as e:
        failures.append("%s: %s" % (type(e).__name__, str(e)[:2000]))
    finally:
        clog.close()
    if a.keep:
        os.environ["FENBO_KEEP_TMP"] = "1"
    took = time.monotonic() - start
    print()
    if failures:
        print("chaos: FAILED after %.1fs (seed %d):" % (took, a.seed))
        for f in failures:
            print("  - " + f)
        print("client log (clients.jsonl) and daemon logs kept in %s" % run_dir)
        return 1
    print("chaos: PASSED in %.1fs (seed %d): lost 0, duplicated 0, unexpected 0"
          % (took, a.seed))
    if a.keep:
        print("client log in %s" % run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
