#!/usr/bin/env python3
"""test_open311_client — Open311 as clients use it: paging, fenbo's
extensions, a discovery URL behind TLS, and a third-party client library.

  - requests.json pages with page and page_size (at most 1000): pages do not
    overlap, together they hold every request of the window, newest first;
    page_size 1001 or page 0 are 400 in Open311's error format;
  - extensions=true adds extended_attributes (channel, department, where the
    category came from, the deadlines);
  - discovery's url follows X-Forwarded-Proto, and [open311] public_url wins;
  - Code for America's Node.js client (npm open311 0.0.12, installed by npm
    into a scratch folder from tests/integration/open311_client/) discovers
    the endpoint, lists services, posts a request, turns its token back into
    the request, and pages through the requests."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from harness import SOURCE_DIR, Checks, Cluster, log, main, order

CLIENT_DIR = os.path.join(SOURCE_DIR, "tests", "integration", "open311_client")


def get(c, path, headers=None):
    return c.http("GET", "/open311/v2/" + path, headers=headers or {})


def post_form(c, fields):
    return c.http("POST", "/open311/v2/requests.json", body=urllib.parse.urlencode(fields),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})


def install_client(work):
    """npm-installs the client into work; returns the folder with client.js."""
    for name in ("package.json", "client.js"):
        shutil.copy(os.path.join(CLIENT_DIR, name), work)
    npm = shutil.which("npm")
    if not npm:
        raise AssertionError("npm is missing (scripts/install-deps installs it)")
    p = subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"],
                       cwd=work, capture_output=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("npm install of the Open311 client failed:\n%s"
                             % p.stderr.decode(errors="replace")[-2000:])
    return work


def run():
    with Cluster("open311_client") as c:
        ck = Checks()
        # Seven requests in the window: five through Open311, two hotline.
        ids = []
        for i in range(5):
            st, body = post_form(c, {
                "api_key": c.tokens["open311"], "service_code": "030101",
                "lat": "30.2105", "long": "120.1203", "device_id": "pager-%d" % i,
                "description": "路面破损第%d处" % i})
            ck.check(st == 202, "POST %d: %s %r" % (i, st, body))
            ids.append(body[0]["service_request_id"])
        for i in range(2):
            st, body = c.post_order(order("PG-%d-%d" % (int(time.time()), i), "路灯不亮",
                                          category="030102"))
            ids.append(body["tracking_no"])
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions WHERE case_id IS NOT NULL")
                     == 7, 30, "seven petitions dispatched")

        pages = []
        for page in range(1, 6):
            st, rows = get(c, "requests.json?page_size=3&page=%d" % page)
            ck.check(st == 200 and isinstance(rows, list), "page %d: %s %r" % (page, st, rows))
            pages.append([r["service_request_id"] for r in rows or []])
        flat = [x for p in pages for x in p]
        ck.check([len(p) for p in pages] == [3, 3, 1, 0, 0],
                 "pages of 3: %r" % [len(p) for p in pages])
        ck.check(sorted(flat) == sorted(ids) and len(set(flat)) == len(flat),
                 "the pages hold every request once: %r" % pages)
        when = []
        for page in range(1, 4):
            st, rows = get(c, "requests.json?page_size=3&page=%d" % page)
            when += [r["requested_datetime"] for r in rows or []]
        ck.check(when == sorted(when, reverse=True), "newest first: %r" % when)
        for q in ("page_size=1001", "page=0", "page_size=x"):
            st, body = get(c, "requests.json?" + q)
            ck.check(st == 400 and isinstance(body, list) and body and "description" in body[0],
                     "%s: Open311 error 400: %s %r" % (q, st, body))

        st, rows = get(c, "requests.json?extensions=true&page_size=1")
        ext = rows[0].get("extended_attributes") if st == 200 and rows else None
        ck.check(ext and ext.get("department") and ext.get("channel") in ("hotline", "open311")
                 and "category_source" in ext and ext.get("reply_due"),
                 "extensions=true: %r" % ext)
        st, rows = get(c, "requests.json?page_size=1")
        ck.check(st == 200 and rows and "extended_attributes" not in rows[0],
                 "no extensions unless asked: %r" % rows[:1])

        st, disc = get(c, "discovery.json", headers={"X-Forwarded-Proto": "https"})
        url = disc["endpoints"][0]["url"] if st == 200 else None
        ck.check(url and url.startswith("https://"), "discovery behind TLS: %r" % url)
        st, disc = get(c, "discovery.json")
        url = disc["endpoints"][0]["url"] if st == 200 else None
        ck.check(url and url.startswith("http://"), "discovery without a proxy: %r" % url)

        work = tempfile.mkdtemp(prefix="fenbo-open311-js-")
        try:
            install_client(work)
            base = "http://127.0.0.1:%d" % c.intake_port
            def client(*args):
                p = subprocess.run(["node", "client.js", base, c.tokens["open311"]] + list(args),
                                   cwd=work, capture_output=True, timeout=120)
                err = p.stderr.decode(errors="replace")
                ck.check(p.returncode == 0, "the Node.js client (%s) ran: %d %s"
                         % (args[0], p.returncode, err))
                seen = json.loads(p.stdout.decode() or "{}") if p.returncode == 0 else {}
                log("open311.js %s saw: %s" % (args[0], json.dumps(seen, ensure_ascii=False)[:600]))
                return seen

            seen = client("post")
            c.wait_until(lambda: c.sql_value(
                "SELECT count(*) FROM petitions WHERE case_id IS NOT NULL") == 8, 30,
                "the client's request dispatched")
            seen.update(client("page", "4"))
            posted = seen.get("posted") or {}
            ck.check(seen.get("endpoint", "").endswith("/open311/v2/") and seen.get("services", 0) > 200,
                     "discovery and the service list: %r" % {k: seen.get(k) for k in
                                                             ("endpoint", "services")})
            ck.check(posted.get("service_request_id") and posted.get("follow_up_code"),
                     "the client's POST: %r" % posted)
            ck.check(posted.get("service_request_id")
                     and posted["service_request_id"] in json.dumps(seen.get("token")),
                     "its token names the request: %r" % seen.get("token"))
            got = [x for page in seen.get("pages", []) for x in page]
            ck.check(len(got) == 8 and len(set(got)) == 8 and posted.get("service_request_id") in got,
                     "the client paged through all eight requests: %r" % seen.get("pages"))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ck.finish()


if __name__ == "__main__":
    main(run)
