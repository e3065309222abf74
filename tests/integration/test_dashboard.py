#!/usr/bin/env python3
"""test_dashboard — the supervisors' dashboard (GET /dashboard) in a real
browser, headless Chromium, against a cluster with data.

Hotline orders received over the last two weeks go through the pipeline;
departments sign for and reply to some of them, residents rate a few through
intake, two cases are made overdue. Then:
  - /dashboard without a token shows the token form and no data;
  - /dashboard#token=<supervisor> (the fragment the page moves into
    localStorage and strips) shows the ranked table per department whose
    rows, rates and red/yellow/green marks are the API's numbers (the marks
    recomputed here from the documented thresholds), ranked by satisfaction,
    the table per street, the city tiles, the chart with one bar per day
    whose petitions add up to what the database holds, and the overdue
    section;
  - screenshots (desktop 1280×1600, the whole page at 1280×2600, and phone
    390×1800) are saved as test artefacts: $FENBO_ARTEFACT_DIR, else the
    working directory (ctest's build/tests/integration), as dashboard.png,
    dashboard-full.png and dashboard-phone.png.

Needs Debian's chromium package (scripts/install-deps) and, for readable
screenshots, a CJK font (fonts-wqy-microhei)."""

import datetime
import html.parser
import os
import shutil
import subprocess
import tempfile

from harness import Checks, Cluster, HarnessError, load_json, log, main

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000",
]


def chromium_bin():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise HarnessError("chromium is not installed (apt-get install -y chromium; "
                       "scripts/install-deps installs it)")


def chromium(args, timeout=120, tz="America/New_York"):
    """Runs headless Chromium with a fresh profile, in a time zone far from
    the city's (the page must show the city's times whatever the browser's);
    returns its stdout."""
    profile = tempfile.mkdtemp(prefix="fenbo-chromium-")
    try:
        p = subprocess.run([chromium_bin()] + CHROMIUM_FLAGS +
                           ["--user-data-dir=" + profile] + args,
                           capture_output=True, timeout=timeout, env=dict(os.environ, TZ=tz))
        if p.returncode != 0:
            raise HarnessError("chromium %s failed (exit %d): %s"
                               % (args, p.returncode, p.stderr.decode(errors="replace")[-2000:]))
        return p.stdout.decode("utf-8", "replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Dom(html.parser.HTMLParser):
    """What the test reads from the dumped DOM: the tables' rows and cells,
    the chart, the sections' classes and texts."""

    def __init__(self):
        super().__init__()
        self.classes = {}   # element id -> class attribute
        self.tables = {}    # table id -> [row dict]
        self.svg = None     # the chart's attributes
        self.bars = []      # attributes of each bar
        self.tiles = {}     # data-tile -> the value shown
        self.texts = {}     # element id -> text (for a few sections)
        self.overdue_cases = None  # the overdue list's count of cases
        self._table = None
        self._row = None
        self._cell = None
        self._text_ids = []
        self._depth = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.classes[a["id"]] = a.get("class", "")
            if a["id"] in ("overdue", "hotspots", "grid", "overdue-count", "status",
                           "period-label"):
                self._text_ids.append([a["id"], tag, 0])
                self.texts.setdefault(a["id"], "")
        for t in self._text_ids:
            if tag == t[1]:
                t[2] += 1
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-key" in a:
            self._row = {"key": a["data-key"], "cells": [], "rates": {}, "marks": {},
                         "counts": {}}
            self.tables[self._table].append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = {"attrs": a, "text": ""}
            self._row["cells"].append(self._cell)
        elif tag == "svg" and a.get("id") == "daily-chart":
            self.svg = a
        elif tag == "rect" and "bar" in a.get("class", "").split():
            self.bars.append(a)
        elif tag == "span" and "data-cases" in a:
            self.overdue_cases = a["data-cases"]
        elif tag == "div" and "data-tile" in a:
            self.tiles[a["data-tile"]] = a.get("data-value")

    def handle_endtag(self, tag):
        for t in list(self._text_ids):
            if tag == t[1]:
                t[2] -= 1
                if t[2] == 0:
                    self._text_ids.remove(t)
        if tag == "table":
            self._table = None
        elif tag == "tr":
            self._row = None
        elif tag == "td" and self._cell is not None:
            a = self._cell["attrs"]
            if "data-rate" in a:
                self._row["rates"][a["data-rate"]] = a.get("data-value", "")
                self._row["marks"][a["data-rate"]] = a.get("data-mark", "")
            if "data-count" in a:
                self._row["counts"][a["data-count"]] = self._cell["text"]
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        for t in self._text_ids:
            self.texts[t[0]] += data


def parse(text):
    d = Dom()
    d.feed(text)
    return d


# The documented thresholds (README): higher is better for these four …
UP = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_closure_rate")
# … lower is better for these.
DOWN = ("return_rate", "reopen_rate")


def expected_mark(rate, v):
    if v is None:
        return "n"
    if rate in UP:
        return "g" if v >= 0.95 else "y" if v >= 0.85 else "r"
    return "g" if v <= 0.05 else "y" if v <= 0.15 else "r"


MIN_RATED = 20  # the page's default minimum of ratings before a rate ranks


def composite(r):
    parts = [r.get(k) for k in ("response_rate", "resolution_rate", "satisfaction_rate")]
    return None if any(v is None for v in parts) else sum(parts) / 3


def ranked(rows):
    """The page's default ranking: the composite (the mean of response,
    resolution and satisfaction rates), best first; a row with fewer than
    MIN_RATED ratings, or no composite, last; ties by more cases, then key."""
    def k(r):
        v = composite(r) if (r.get("rated") or 0) >= MIN_RATED else None
        return (v is None, -(v or 0), -r["dispatched"], r.get("key") or "")
    return [r.get("key") or "" for r in sorted(rows, key=k)]


def setup_data(c, ck):
    fixtures = [f for f in load_json("tests/fixtures/hotline_orders.json")
                if f["expect"].get("department")][:48]
    tz = datetime.timezone(datetime.timedelta(hours=8))
    now = datetime.datetime.now(tz).replace(microsecond=0)
    sent = []
    for i, f in enumerate(fixtures):
        order = dict(f["order"])
        order["order_no"] = "DB-%04d" % i
        # A third today, the rest spread over the last two weeks (for the chart).
        days = 0 if i % 3 == 0 else i % 14
        order["received_at"] = (now - datetime.timedelta(days=days, minutes=i)).isoformat()
        st, body = c.post_order(order)
        ck.check(st == 202, "order %s: %s %r" % (order["order_no"], st, body))
        if st == 202:
            sent.append((body["tracking_no"], order))
    c.wait_dispatched(len(sent), 90)

    # Recent cases first: their deadlines are still ahead, so signing for
    # them is on time.
    cases = c.sql("SELECT c.id, c.department_code FROM cases c WHERE c.status = 'dispatched'"
                  " ORDER BY c.accept_due DESC, c.id")
    by_dept = {}
    for r in cases:
        by_dept.setdefault(r["department_code"], []).append(r["id"])
    depts = sorted(by_dept, key=lambda d: (-len(by_dept[d]), d))
    # department: (cases to sign for, cases to reply to)
    plan = {depts[0]: (len(by_dept[depts[0]]), len(by_dept[depts[0]]) - 1),
            depts[1]: (len(by_dept[depts[1]]), 1)}
    replied = []
    for dept, (n_accept, n_reply) in plan.items():
        tok = c.dept_tokens[dept]
        for i, cid in enumerate(by_dept[dept][:n_accept]):
            st, body = c.worker("POST", "/api/v1/cases/%d/accept" % cid, tok, body={})
            ck.check(st == 200, "accept %d: %s %r" % (cid, st, body))
            if i < n_reply:
                st, body = c.worker("POST", "/api/v1/cases/%d/reply" % cid, tok,
                                    body={"result": "已处理完毕。", "resolved": True})
                ck.check(st == 200, "reply %d: %s %r" % (cid, st, body))
                replied.append(cid)
    # Residents rate two replied cases through intake (proof: the follow-up
    # code of their petition).
    for cid, satisfaction in zip(replied, ("satisfied", "unsatisfied", "basically_satisfied")):
        tn = c.sql_value("SELECT tracking_no FROM petitions WHERE case_id = :'id' ORDER BY id"
                         " LIMIT 1", id=cid)
        st, body = c.http("POST", "/api/v1/petitions/%s/rating" % tn,
                          body={"proof": c.follow_up_code(tn), "resolved": satisfaction == "satisfied",
                                "satisfaction": satisfaction},
                          token=c.tokens["hotline"])
        ck.check(st in (200, 201, 202), "rating of %s: %s %r" % (tn, st, body))
    # The worker's ratings job closes or reopens the rated cases: wait for it,
    # so that the page and the API below see the same data.
    c.wait_until(lambda: c.sql_value(
        "SELECT count(*) FROM ratings WHERE processed_at IS NULL") == 0, 60,
        "the ratings applied")
    # Two cases overdue now: their deadline to sign for has passed.
    c.psql("UPDATE cases SET accept_due = now() - interval '2 hours'"
           " WHERE id IN (SELECT id FROM cases WHERE status = 'dispatched' ORDER BY id DESC"
           " LIMIT 2)")
    return depts


def artefact_dir():
    d = os.environ.get("FENBO_ARTEFACT_DIR") or os.getcwd()
    os.makedirs(d, exist_ok=True)
    return d


def run():
    chromium_bin()  # fail early when it is missing
    with Cluster("dashboard") as c:
        ck = Checks()
        depts = setup_data(c, ck)
        sup = c.tokens["supervisor"]
        base = "http://127.0.0.1:%d/dashboard" % c.worker_port

        # The page itself: public, HTML, no data in it.
        st, body = c.http("GET", "/dashboard", port=c.worker_port)
        ck.check(st == 200 and isinstance(body, bytes) and b"<!doctype html>" in body[:200],
                 "GET /dashboard: %s %r" % (st, body[:80] if isinstance(body, bytes) else body))
        if isinstance(body, bytes):
            # Nothing from elsewhere (no CDN: the machines have no internet);
            # the SVG namespace is a name, not a download.
            page = body.decode("utf-8").replace("http://www.w3.org/2000/svg", "")
            ck.check("http://" not in page and "https://" not in page and "//cdn" not in page,
                     "the page refers to an outside resource")

        # What the page must show, from the API.
        st, dep = c.worker("GET", "/api/v1/stats?by=department", sup)
        ck.check(st == 200, "stats by department: %s %r" % (st, dep))
        st, street = c.worker("GET", "/api/v1/stats?by=street", sup)
        ck.check(st == 200, "stats by street: %s %r" % (st, street))
        st, daily = c.worker("GET", "/api/v1/stats/daily", sup)
        ck.check(st == 200, "daily: %s %r" % (st, daily))
        db_petitions = c.sql_value("SELECT count(*) FROM petitions")

        # ---- without a token: the form, no data -------------------------
        dom = parse(chromium(["--dump-dom", base]))
        ck.check("hidden" not in dom.classes.get("login", "hidden").split(),
                 "no token: the token form is not shown (class %r)" % dom.classes.get("login"))
        ck.check("hidden" in dom.classes.get("main", "").split(),
                 "no token: the data section is shown")

        # ---- with the supervisor's token in the fragment ------------------
        dom = parse(chromium(["--dump-dom", base + "#token=" + sup]))
        ck.check("hidden" in dom.classes.get("login", "").split(),
                 "with a token the form still shows (class %r)" % dom.classes.get("login"))
        ck.check("hidden" not in dom.classes.get("main", "hidden").split(),
                 "with a token the data section is hidden")

        rows = dom.tables.get("t-department", [])
        want_keys = ranked(dep["rows"])
        got_keys = [r["key"] for r in rows]
        log("department rows on the page: %s" % got_keys)
        ck.check(len(rows) >= 2, "department table has %d rows" % len(rows))
        ck.check(got_keys == want_keys,
                 "department ranking %s, expected %s" % (got_keys, want_keys))
        api_rows = {r.get("key") or "": r for r in dep["rows"]}
        for r in rows:
            a = api_rows.get(r["key"])
            if not a:
                continue
            # The name, then (shown on a phone only) "派单 N".
            name = r["cells"][1]["text"] if len(r["cells"]) > 1 else ""
            ck.check(name.startswith(a["name"]),
                     "row %s name %r, expected %r" % (r["key"], name, a["name"]))
            for rate in UP + DOWN:
                v = a.get(rate)
                shown = r["rates"].get(rate)
                ck.check((shown == "" and v is None) or
                         (shown not in (None, "") and v is not None
                          and abs(float(shown) - v) < 1e-9),
                         "row %s %s shows %r, the API says %r" % (r["key"], rate, shown, v))
                ck.check(r["marks"].get(rate) == expected_mark(rate, v),
                         "row %s %s mark %r, expected %r for %r"
                         % (r["key"], rate, r["marks"].get(rate), expected_mark(rate, v), v))
            few = (a.get("rated") or 0) < MIN_RATED
            for rate in ("resolution_rate", "satisfaction_rate"):
                starred = r["rates"].get(rate) not in (None, "") and few
                cell = [x for x in r["cells"] if x["attrs"].get("data-rate") == rate]
                ck.check(bool(cell) and (cell[0]["attrs"].get("data-few") == "1") == starred,
                         "row %s %s starred as a small sample: %r (rated %r)"
                         % (r["key"], rate, cell[0]["attrs"] if cell else None, a.get("rated")))
            for cnt in ("dispatched", "rated", "overdue_now"):
                ck.check(r["counts"].get(cnt) == str(a[cnt]),
                         "row %s %s shows %r, the API says %r"
                         % (r["key"], cnt, r["counts"].get(cnt), a[cnt]))
        # The departments that acted are there, with their marks.
        for d in depts[:2]:
            ck.check(d in got_keys, "department %s missing from the table" % d)
        marks = {m for r in rows for m in r["marks"].values()}
        ck.check(marks & {"g", "y", "r"}, "no red/yellow/green mark at all: %s" % marks)

        srows = dom.tables.get("t-region", [])
        ck.check(sorted(r["key"] for r in srows) ==
                 sorted(r.get("key") or "" for r in street["rows"]),
                 "street rows %s, the API has %s" % ([r["key"] for r in srows],
                                                     [r.get("key") for r in street["rows"]]))

        # Tiles: the city's totals.
        total = dep["total"]
        ck.check(dom.tiles.get("dispatched") == str(total["dispatched"]),
                 "dispatched tile %r, total %r" % (dom.tiles.get("dispatched"),
                                                   total["dispatched"]))
        ck.check(dom.tiles.get("overdue_now") == str(total["overdue_now"]),
                 "overdue tile %r, total %r" % (dom.tiles.get("overdue_now"),
                                                total["overdue_now"]))

        # The chart: one bar per day, the petitions of the database.
        svg = dom.svg or {}
        days = daily.get("days", []) if isinstance(daily, dict) else []
        api_petitions = sum(d["petitions"] for d in days)
        api_closures = sum(d["closures"] for d in days)
        ck.check(svg.get("data-days") == str(len(days)) == str(len(dom.bars)) == "30",
                 "chart: %s days, %d bars, API %d days" % (svg.get("data-days"), len(dom.bars),
                                                            len(days)))
        ck.check(svg.get("data-petitions") == str(api_petitions) == str(db_petitions),
                 "chart petitions %s, API %d, database %s"
                 % (svg.get("data-petitions"), api_petitions, db_petitions))
        ck.check(svg.get("data-closures") == str(api_closures) and api_closures >= 1,
                 "chart closures %s, API %d" % (svg.get("data-closures"), api_closures))
        bar_days = {b.get("data-day"): int(b.get("data-petitions", "-1")) for b in dom.bars}
        ck.check(bar_days == {d["day"]: d["petitions"] for d in days},
                 "bars per day differ from the API")
        ck.check(sum(1 for v in bar_days.values() if v > 0) >= 10,
                 "petitions on fewer than 10 days: %s" % bar_days)

        # Overdue: the list (timers' API) or the counts of the stats.
        overdue = dep["total"]["overdue_now"]
        ck.check(overdue >= 2, "expected at least 2 overdue cases, the API says %d" % overdue)
        ck.check(dom.texts.get("overdue", "").strip() != "" and
                 dom.texts.get("overdue-count", "").strip() != "",
                 "overdue section empty: %r / %r" % (dom.texts.get("overdue"),
                                                     dom.texts.get("overdue-count")))
        st, olist = c.worker("GET", "/api/v1/overdue?limit=1000", sup)
        if st == 200:
            # The list (one row per missed deadline) shown one row per case:
            # as many as the stats' overdue count.
            ids = {o["case_id"] for o in olist["overdue"]}
            # Due times in the city's zone, though the browser is in New York.
            sh = datetime.timezone(datetime.timedelta(hours=8))
            dues = {datetime.datetime.fromisoformat(o["due"].replace("Z", "+00:00"))
                    .astimezone(sh).strftime("%m-%d %H:%M") for o in olist["overdue"]
                    if o.get("due")}
            text = dom.texts.get("overdue", "")
            ck.check(dues and any(d in text for d in dues),
                     "overdue due times in Asia/Shanghai %r, the page shows %r" % (dues, text[:300]))
            ck.check(dom.overdue_cases == str(len(ids)) == str(overdue),
                     "overdue list shows %s cases, /api/v1/overdue has %d, stats say %d"
                     % (dom.overdue_cases, len(ids), overdue))
        else:
            log("no /api/v1/overdue on this worker (%s): the page shows the stats' counts" % st)
        ck.check(dom.texts.get("hotspots", "").strip() != "", "hotspots section empty")
        # The grid's card shows GET /api/v1/stats?by=grid: here the
        # verifications opened by the departments' "resolved" replies.
        st, grid = c.worker("GET", "/api/v1/stats?by=grid", sup)
        text = dom.texts.get("grid", "")
        ck.check(st == 200 and grid["rows"]
                 and all((r["name"] or r["key"]) in text for r in grid["rows"]),
                 "the grid card %r shows by=grid's rows %s %r" % (text[:200], st, grid))
        st, streets = c.worker("GET", "/api/v1/stats?by=street", sup)
        with_grid = [r for r in streets.get("rows", []) if r.get("grid")] if st == 200 else []
        ck.check(with_grid and "街道 street" in text
                 and all((r["name"] or r["key"]) in text for r in with_grid),
                 "the grid card shows the streets' grid figures %r: %r" % (with_grid, text[:300]))
        ck.check("更新于" in dom.texts.get("status", ""),
                 "status does not say it refreshed: %r" % dom.texts.get("status"))

        # A revoked or wrong token: back to the form.
        dom = parse(chromium(["--dump-dom", base + "#token=fb_" + "0" * 40]))
        ck.check("hidden" not in dom.classes.get("login", "hidden").split(),
                 "bad token: the form is not shown again")

        # Screenshots, for people to look at.
        out = artefact_dir()
        for name, size in (("dashboard.png", "1280,1600"), ("dashboard-full.png", "1280,2600"),
                           ("dashboard-phone.png", "390,1800")):
            path = os.path.join(out, name)
            chromium(["--screenshot=" + path, "--window-size=" + size, base + "#token=" + sup])
            ok = os.path.exists(path) and os.path.getsize(path) > 10000
            ck.check(ok, "screenshot %s not written" % path)
            if ok:
                log("screenshot: %s (%d bytes)" % (path, os.path.getsize(path)))
        ck.finish()


if __name__ == "__main__":
    main(run)
