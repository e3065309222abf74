#!/usr/bin/env python3
"""test_duplicates — 并案: five reports of the same burst water pipe, from
the hotline, the mini-program and Open311, within 30 m of each other, become
one case with five petitions; each petitioner keeps their own tracking
number and sees the case's progress. A report of the same thing 500 m away,
or of another category at the same spot, opens a case of its own."""

import json
import os
import subprocess
import tempfile
import urllib.parse
import uuid

from harness import Checks, Cluster, main, order

CATEGORY = "020103"  # 供水 › 水管漏水
LAT, LNG = 30.2105, 120.1203  # inside 江城街道, WGS-84
M = 1 / 111000.0  # about a metre of latitude, in degrees


def miniapp(c, content, lat, lng):
    report = {"openid": "oTest" + uuid.uuid4().hex[:20], "content": content, "category": CATEGORY,
              "location": {"lat": lat, "lng": lng, "crs": "wgs84"}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(report, f, ensure_ascii=False)
    try:
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}",
             "-H", "Authorization: Bearer " + c.tokens["miniapp"],
             "-H", "Idempotency-Key: " + uuid.uuid4().hex,
             "-F", "report=@%s;type=application/json" % f.name,
             "http://127.0.0.1:%d/api/v1/miniapp/reports" % c.intake_port],
            capture_output=True, check=True)
    finally:
        os.unlink(f.name)
    body, status = p.stdout.decode().rsplit("\n", 1)
    return int(status), json.loads(body)


def open311(c, content, lat, lng):
    form = urllib.parse.urlencode({
        "api_key": c.tokens["open311"], "service_code": CATEGORY, "lat": "%.7f" % lat,
        "long": "%.7f" % lng, "description": content, "device_id": uuid.uuid4().hex})
    st, body = c.http("POST", "/open311/v2/requests.json", body=form.encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    return st, {"tracking_no": body[0]["service_request_id"]} if st in (200, 202) else body


def hotline(c, n, content, lat, lng, category=CATEGORY):
    return c.post_order(order("DUP-%d" % n, content, category=category,
                              location={"lat": lat, "lng": lng, "crs": "wgs84"}))


def run():
    with Cluster("duplicates") as c:
        ck = Checks()
        sent = [
            hotline(c, 1, "市民来电：江城路12号门口水管爆裂，大量漏水，路面积水", LAT, LNG),
            miniapp(c, "江城路这里水管爆了，水漫到马路上了", LAT + 10 * M, LNG),
            open311(c, "水管爆裂漏水，路面积水严重", LAT - 12 * M, LNG + 8 * M),
            hotline(c, 2, "江城路水管爆裂漏水，水流到路上", LAT + 20 * M, LNG - 10 * M),
            miniapp(c, "路边水管漏水很严重，爆裂了", LAT - 5 * M, LNG + 20 * M),
        ]
        for i, (st, body) in enumerate(sent):
            ck.check(st == 202 and body.get("tracking_no"),
                     "report %d: expected 202 with a tracking number, got %s %r" % (i, st, body))
        numbers = [b.get("tracking_no") for _, b in sent]
        far = hotline(c, 3, "江城路水管爆裂，大量漏水", LAT + 500 * M, LNG)
        other = hotline(c, 4, "江城路12号门口水管爆裂，路面积水", LAT, LNG, category="020101")
        ck.check(far[0] == 202 and other[0] == 202, "far/other: %r %r" % (far, other))

        c.wait_dispatched(7, 30)
        cases = c.sql_value("SELECT count(DISTINCT case_id) FROM petitions WHERE tracking_no = "
                            "ANY (string_to_array(:'t', ','))", t=",".join(numbers))
        ck.check(cases == 1, "the five burst-pipe reports: expected one case, got %s" % cases)
        channels = c.sql("SELECT DISTINCT channel FROM petitions WHERE tracking_no = "
                         "ANY (string_to_array(:'t', ',')) ORDER BY 1", t=",".join(numbers))
        ck.check([r["channel"] for r in channels] == ["hotline", "miniapp", "open311"],
                 "the five came from three channels: %r" % channels)
        merged = c.sql_value("SELECT count(*) FROM case_events e JOIN petitions p ON p.case_id = "
                             "e.case_id WHERE p.tracking_no = :'t' AND e.type = 'merged'",
                             t=numbers[0])
        ck.check(merged == 4, "expected 4 merged events on the case, got %s" % merged)
        for label, (st, body) in (("500 m away", far), ("another category", other)):
            own = c.sql_value("SELECT count(*) FROM petitions WHERE case_id = (SELECT case_id "
                              "FROM petitions WHERE tracking_no = :'t')", t=body["tracking_no"])
            ck.check(own == 1, "%s: expected a case of its own, its case has %s petitions"
                     % (label, own))

        # Each petitioner follows the one case with their own number.
        for n in numbers:
            st, body = c.http("GET", "/api/v1/petitions/" + n, token=c.tokens["hotline"])
            ck.check(st == 200 and body.get("petitions_in_case") == 5
                     and body.get("tracking_no") == n,
                     "%s: expected its progress with 5 petitions in the case, got %s %r"
                     % (n, st, body))
        ck.finish()


if __name__ == "__main__":
    main(run)
