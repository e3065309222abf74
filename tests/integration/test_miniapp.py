#!/usr/bin/env python3
"""test_miniapp — the WeChat mini-program channel, POST /api/v1/miniapp/reports,
sent as a real client would: multipart/form-data built by curl.

Accepted: one photo; nine photos; a PNG declared as JPEG (stored as PNG); a
report without location placed by its photo's EXIF GPS (JPEG and PNG); a
GCJ-02 location stored converted to WGS-84 (and resolved to the region the
converted point lies in); the same Idempotency-Key twice (202, then 200 with
the same tracking number, one petition).

Refused, each with the fitting 4xx and a JSON error naming the field, and
each writing nothing — no photo file, nothing spooled, no petition: a tenth
photo, a text file declared as JPEG, a photo over [intake] photo_max_bytes, no
Idempotency-Key, a point outside the city, bad coordinates, bad report JSON,
missing fields, a body that is not multipart, bad tokens."""

import hashlib
import json
import math
import os
import sys
import time

from harness import SOURCE_DIR, Checks, Cluster, CurlForm, log, main

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "fixtures", "photos"))
import make_photos  # noqa: E402  (test data built with the standard library)

PATH = "/api/v1/miniapp/reports"
PHOTO_MAX = 300000  # [intake] photo_max_bytes for this cluster

# A point (GCJ-02, as wx.getLocation gives it) just east of the border between
# 望江区 (lng < 120.18) and 东湖区: converted to WGS-84 it moves ~450 m west,
# into 望江区 凤山街道 (339901002).
GCJ_POINT = (30.25, 120.182)
GCJ_REGION = "339901002"
# Where the EXIF photos were "taken" (WGS-84), in 望江区 凤山街道 as well.
EXIF_POINT = (30.2741, 120.1551)
EXIF_POINT_PNG = (30.2105, 120.2233)  # 东湖区 长河街道


def wgs84_to_gcj02(lat, lng):
    """The published GCJ-02 forward transform (Krasovsky 1940 ellipsoid),
    to check what intake stored against what the client sent."""
    a, ee = 6378245.0, 0.00669342162296594323

    def t_lat(x, y):
        r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
        r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
        r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
        r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
        return r

    def t_lng(x, y):
        r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
        r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
        r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
        r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
        return r

    dlat = t_lat(lng - 105.0, lat - 35.0)
    dlng = t_lng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrtmagic) * math.pi)
    dlng = (dlng * 180.0) / (a / sqrtmagic * math.cos(radlat) * math.pi)
    return lat + dlat, lng + dlng


def metres(lat1, lng1, lat2, lng2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


class Client:
    """Sends reports with curl, the way a developer tries the API by hand."""

    def __init__(self, c):
        self.c = c
        self.form = CurlForm(c, "upload")
        self.sent = 0

    def post(self, report=None, photos=(), key="auto", token="miniapp", headers=None,
             raw_report=None, raw_body=None, method=None, extra_parts=()):
        """report: a dict (sent as the JSON part), raw_report: bytes as they are;
        photos: [(bytes, declared type)]; extra_parts: [(name, bytes, type)] after
        them; key None leaves Idempotency-Key out.
        Returns (status, parsed JSON or raw bytes)."""
        self.sent += 1
        h = []
        if token:
            h.append("Authorization: Bearer " + self.c.tokens.get(token, token))
        if key == "auto":
            key = "it-miniapp-%d-%d" % (os.getpid(), self.sent)
        if key is not None:
            h.append("Idempotency-Key: " + key)
        h += headers or ()
        parts = []
        if raw_body is None:
            if report is not None or raw_report is not None:
                data = (raw_report if raw_report is not None
                        else json.dumps(report, ensure_ascii=False).encode("utf-8"))
                parts.append(("report", data, "application/json"))
            parts += [("photo", data, ctype) for data, ctype in photos]
            parts += extra_parts
        return self.form.post("http://127.0.0.1:%d%s" % (self.c.intake_port, PATH), parts, h,
                              method, raw_body)


def report(content="小区门口井盖缺失，晚上很危险", **extra):
    r = {"openid": "oAbC-test_openid_0001", "content": content}
    r.update(extra)
    return r


_seq = [0]


def jpg(gps=None):
    """A fresh JPEG (its own SHA-256) as (bytes, declared type)."""
    _seq[0] += 1
    return make_photos.jpeg(b"it-miniapp photo %d %f" % (_seq[0], time.time()), gps=gps), \
        "image/jpeg"


def pngp(declared="image/png", gps=None):
    _seq[0] += 1
    return make_photos.png(b"it-miniapp photo %d %f" % (_seq[0], time.time()), gps=gps), declared


def run():
    with Cluster("miniapp", settings={"intake": {"photo_max_bytes": PHOTO_MAX}}) as c:
        ck = Checks()
        cl = Client(c)
        photos_dir = os.path.join(c.data_dir, "photos")

        def stored_files():
            found = set()
            for root, _, files in os.walk(photos_dir):
                for f in files:
                    found.add(os.path.relpath(os.path.join(root, f), photos_dir))
            return found

        def spool_pending():
            m = c.metrics() or {}
            return m.get("fenbo_intake_spool_pending")

        accepted = {}  # name → (key, tracking_no, photos sent)

        def accept(name, rep, photos, key=None):
            key = key or "it-miniapp-" + name
            st, body = cl.post(rep, photos, key=key)
            log("%-22s -> %s %s" % (name, st, body))
            ok = ck.check(st == 202 and isinstance(body, dict) and body.get("tracking_no"),
                          "%s: expected 202 with tracking_no, got %s %r" % (name, st, body))
            accepted[name] = (key, body.get("tracking_no") if ok else None, photos)
            return st, body

        # ---- accepted -----------------------------------------------------
        accept("one_photo_gcj", report(location={"lat": GCJ_POINT[0], "lng": GCJ_POINT[1]},
                                       address="江城路 12 号"), [jpg()])
        accept("nine_photos", report("路灯坏了九盏", kind="complaint", urgency="urgent"),
               [jpg() if i % 2 else pngp() for i in range(9)])
        accept("png_as_jpeg", report("垃圾桶满了没人清理"), [pngp(declared="image/jpeg")])
        accept("exif_jpeg", report("路面塌陷"), [jpg(), jpg(gps=EXIF_POINT)])
        accept("exif_png", report("绿化带枯死"), [pngp(gps=EXIF_POINT_PNG)])
        # At the limit, and larger than libmicrohttpd's 64 KiB post-processor
        # buffer: the part arrives in pieces that must join byte for byte.
        accept("photo_at_limit", report("违章搭建"),
               [(make_photos.padded_jpeg(PHOTO_MAX, b"at the limit"), "image/jpeg"),
                (make_photos.padded_jpeg(PHOTO_MAX - 70001, b"second"), "image/jpeg")])
        # The committed fixtures the README's curl example sends.
        fixtures = os.path.join(SOURCE_DIR, "tests", "fixtures", "photos")
        accept("committed_fixtures", report("README 示例：井盖缺失"),
               [(open(os.path.join(fixtures, "plain.png"), "rb").read(), "image/png"),
                (open(os.path.join(fixtures, "gps.jpg"), "rb").read(), "image/jpeg")])
        accept("no_photo", report("噪音扰民", location={"lat": 30.3, "lng": 120.25,
                                                       "crs": "wgs84"}), [])

        # The same Idempotency-Key again: 200 and the first answer.
        key, tn, _ = accepted["one_photo_gcj"]
        before = stored_files()
        st, body = cl.post(report(location={"lat": GCJ_POINT[0], "lng": GCJ_POINT[1]}),
                           [jpg()], key=key)
        ck.check(st == 200 and body == {"tracking_no": tn,
                                        "follow_up_code": cl.c.follow_up_code(tn)},
                 "retry with the same Idempotency-Key: expected 200 {tracking_no: %s}, got %s %r"
                 % (tn, st, body))
        ck.check(stored_files() == before, "a retry stored photos: %s"
                 % sorted(stored_files() - before))

        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions") == len(accepted),
                     60, "%d petitions stored" % len(accepted))
        c.wait_until(lambda: spool_pending() == 0, 30, "intake's spool drained")

        rows = {r["idem_key"]: r for r in c.sql(
            "SELECT idem_key, tracking_no, channel, caller_name, caller_phone, content, kind,"
            " urgency, address, region_code, raw, ST_Y(location) AS lat, ST_X(location) AS lng"
            " FROM petitions")}
        for name, (key, tn, photos) in accepted.items():
            row = rows.get(key)
            if not ck.check(row is not None, "%s: no petition row for key %s" % (name, key)):
                continue
            ck.check(row["tracking_no"] == tn and row["channel"] == "miniapp",
                     "%s: row has tracking_no %s channel %s, expected %s miniapp"
                     % (name, row["tracking_no"], row["channel"], tn))
            ck.check(row["caller_name"] is None and row["caller_phone"] is None,
                     "%s: caller name/phone should be NULL, got %r %r"
                     % (name, row["caller_name"], row["caller_phone"]))
            raw = row["raw"] or {}
            ck.check(raw.get("openid") == "oAbC-test_openid_0001"
                     and isinstance(raw.get("report"), dict)
                     and raw["report"].get("content") == row["content"],
                     "%s: raw lacks openid/report: %r" % (name, raw))
            listed = raw.get("photos")
            if not ck.check(isinstance(listed, list) and len(listed) == len(photos),
                            "%s: raw.photos should list %d photos, got %r"
                            % (name, len(photos), listed)):
                continue
            for i, ((data, _declared), entry) in enumerate(zip(photos, listed)):
                sha = hashlib.sha256(data).hexdigest()
                real = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
                ck.check(entry == {"sha256": sha, "content_type": real, "bytes": len(data)},
                         "%s: photo %d listed as %r, expected sha256 %s %s %d bytes"
                         % (name, i + 1, entry, sha, real, len(data)))
                ext = "png" if real == "image/png" else "jpg"
                path = os.path.join(photos_dir, sha[:2], "%s.%s" % (sha, ext))
                ok = os.path.exists(path) and open(path, "rb").read() == data
                ck.check(ok, "%s: photo %d not stored as %s" % (name, i + 1, path))

        # Defaults and fields.
        r = rows.get(accepted["one_photo_gcj"][0], {})
        ck.check(r.get("kind") == "help" and r.get("urgency") == "normal"
                 and r.get("address") == "江城路 12 号",
                 "defaults: kind %r urgency %r address %r"
                 % (r.get("kind"), r.get("urgency"), r.get("address")))
        r = rows.get(accepted["nine_photos"][0], {})
        ck.check(r.get("kind") == "complaint" and r.get("urgency") == "urgent",
                 "nine_photos: kind %r urgency %r" % (r.get("kind"), r.get("urgency")))

        # The PNG declared as JPEG is a PNG: listed so, stored with .png only.
        data = accepted["png_as_jpeg"][2][0][0]
        sha = hashlib.sha256(data).hexdigest()
        ck.check(not os.path.exists(os.path.join(photos_dir, sha[:2], sha + ".jpg")),
                 "png_as_jpeg: a .jpg file was stored for a PNG")

        # GCJ-02 → WGS-84: the stored point is the one whose GCJ-02 is the input.
        r = rows.get(accepted["one_photo_gcj"][0], {})
        if ck.check(r.get("lat") is not None, "one_photo_gcj: no location stored"):
            back = wgs84_to_gcj02(r["lat"], r["lng"])
            moved = metres(r["lat"], r["lng"], *GCJ_POINT)
            log("GCJ-02 %s stored as WGS-84 (%.6f, %.6f): moved %.0f m"
                % (GCJ_POINT, r["lat"], r["lng"], moved))
            ck.check(300 <= moved <= 600, "GCJ-02 conversion moved the point %.0f m, expected "
                     "300-600" % moved)
            ck.check(metres(back[0], back[1], *GCJ_POINT) < 2,
                     "stored point (%.6f, %.6f) is not the WGS-84 of GCJ-02 %s (round trip %s)"
                     % (r["lat"], r["lng"], GCJ_POINT, back))
            ck.check((r.get("region_code") or "").startswith(GCJ_REGION),
                     "converted point should lie in %s, region_code is %r"
                     % (GCJ_REGION, r.get("region_code")))
        r = rows.get(accepted["no_photo"][0], {})
        ck.check(r.get("lat") is not None and abs(r["lat"] - 30.3) < 1e-9
                 and abs(r["lng"] - 120.25) < 1e-9,
                 "crs wgs84 location stored as is: got (%r, %r)" % (r.get("lat"), r.get("lng")))

        # EXIF GPS (WGS-84, not converted) when the report has no location.
        for name, point in (("exif_jpeg", EXIF_POINT), ("exif_png", EXIF_POINT_PNG),
                            ("committed_fixtures", EXIF_POINT)):
            r = rows.get(accepted[name][0], {})
            ck.check(r.get("lat") is not None and abs(r["lat"] - point[0]) < 1e-5
                     and abs(r["lng"] - point[1]) < 1e-5,
                     "%s: location should be the EXIF GPS %s, got (%r, %r)"
                     % (name, point, r.get("lat"), r.get("lng")))
        r = rows.get(accepted["nine_photos"][0], {})
        ck.check(r.get("lat") is None, "nine_photos: no location was given, got (%r, %r)"
                 % (r.get("lat"), r.get("lng")))

        # ---- refused: nothing written -------------------------------------
        petitions_before = c.sql_value("SELECT count(*) FROM petitions")
        files_before = stored_files()
        text = b"This is a text file, not a photo.\n"
        big = make_photos.oversized_jpeg(PHOTO_MAX + 1)
        beijing = {"lat": 39.9087, "lng": 116.3975}
        # (name, post kwargs, allowed statuses, allowed fields)
        cases = [
            ("a tenth photo", dict(report=report(), photos=[jpg() for _ in range(10)]),
             (422,), ("photo",)),
            ("text declared as JPEG", dict(report=report(),
                                           photos=[jpg(), (text, "image/jpeg")]),
             (415, 422), ("photo",)),
            ("oversized photo", dict(report=report(), photos=[jpg(), (big, "image/jpeg")]),
             (413,), ("photo",)),
            ("empty photo", dict(report=report(), photos=[(b"", "image/jpeg")]),
             (415, 422), ("photo",)),
            ("no Idempotency-Key", dict(report=report(), photos=[jpg()], key=None),
             (422,), ("Idempotency-Key",)),
            ("Idempotency-Key too long", dict(report=report(), photos=[jpg()], key="k" * 129),
             (422,), ("Idempotency-Key",)),
            ("location outside the city", dict(report=report(location=beijing),
                                               photos=[jpg()]), (422,), ("location",)),
            ("latitude 999", dict(report=report(location={"lat": 999, "lng": 120.2}),
                                  photos=[jpg()]), (422,), ("location.lat",)),
            ("longitude a string", dict(report=report(location={"lat": 30.25, "lng": "east"}),
                                        photos=[jpg()]), (422,), ("location.lng",)),
            ("longitude 200", dict(report=report(location={"lat": 30.25, "lng": 200}),
                                   photos=[jpg()]), (422,), ("location.lng",)),
            ("location not an object", dict(report=report(location=[30.25, 120.2]),
                                            photos=[jpg()]), (422,), ("location",)),
            ("missing openid", dict(report={"content": "没有 openid"}, photos=[jpg()]),
             (422,), ("openid",)),
            ("openid too long", dict(report=report(openid="o" * 65), photos=[jpg()]),
             (422,), ("openid",)),
            ("missing content", dict(report={"openid": "oAbC"}, photos=[jpg()]),
             (422,), ("content",)),
            ("blank content", dict(report=report(" \t\n "), photos=[jpg()]),
             (422,), ("content",)),
            ("bad urgency", dict(report=report(urgency="very"), photos=[jpg()]),
             (422,), ("urgency",)),
            ("bad kind", dict(report=report(kind="rant"), photos=[jpg()]), (422,), ("kind",)),
            ("unknown category", dict(report=report(category="99999999"), photos=[jpg()]),
             (422,), ("category",)),
            ("malformed report JSON", dict(raw_report=b'{"openid": "o", "content": ',
                                           photos=[jpg()]), (400,), ("report",)),
            ("report not UTF-8", dict(raw_report=b'{"openid": "o", "content": "\xff\xfe"}',
                                      photos=[jpg()]), (400, 422), ("report", "content")),
            ("no report part", dict(photos=[jpg()]), (422,), ("report",)),
            ("two report parts", dict(report=report(), photos=[jpg()], extra_parts=[
                ("report", json.dumps(report()).encode(), "application/json")]),
             (422,), ("report",)),
            ("an unknown part", dict(report=report(), photos=[jpg()], extra_parts=[
                ("video", b"\x00\x00\x00\x18ftypmp42", "video/mp4")]), (422,), ("video",)),
            ("multipart without boundary", dict(raw_body=b"--x\r\n\r\n--x--\r\n",
                                                headers=["Content-Type: multipart/form-data"]),
             (400, 422), None),
            ("garbage multipart", dict(raw_body=b"\x00\x01 not multipart at all",
                                       headers=["Content-Type: multipart/form-data; boundary=zz"]),
             (400, 422), None),
            ("JSON body, not multipart", dict(raw_body=json.dumps(report()).encode(),
                                              headers=["Content-Type: application/json"]),
             (415,), None),
            ("no token", dict(report=report(), photos=[jpg()], token=None), (401,), None),
            ("hotline token", dict(report=report(), photos=[jpg()], token="hotline"),
             (403,), None),
            ("GET", dict(method="GET"), (405,), None),
        ]
        for name, kwargs, allowed, fields in cases:
            before_case = stored_files()
            st, body = cl.post(**kwargs)
            err = body.get("error") if isinstance(body, dict) else None
            log("%-26s -> %s %s" % (name, st, json.dumps(body, ensure_ascii=False)[:200]
                                    if isinstance(body, dict) else body[:200]))
            ck.check(st in allowed, "%s: expected %s, got %s %r" % (name, allowed, st, body))
            ok_shape = (isinstance(err, dict) and isinstance(err.get("code"), str)
                        and isinstance(err.get("message"), str) and err["message"])
            ck.check(ok_shape, "%s: body is not {\"error\": {code, message, field}}: %r"
                     % (name, body))
            if fields and ok_shape:
                ck.check(err.get("field") in fields, "%s: error.field is %r, expected %s"
                         % (name, err.get("field"), fields))
            new = sorted(stored_files() - before_case)
            ck.check(not new, "%s: %d photo file(s) written, e.g. %s" % (name, len(new), new[:2]))
            ck.check(spool_pending() == 0, "%s: something was spooled (pending %s)"
                     % (name, spool_pending()))

        # A control report after all of that: the only new petition and file.
        control = jpg()
        st, body = cl.post(report("控制请求：共享单车乱停放"), [control], key="it-miniapp-control")
        ck.check(st == 202, "control report: expected 202, got %s %r" % (st, body))
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions") > petitions_before,
                     30, "the control report in petitions")
        time.sleep(1.5)  # anything wrongly spooled would arrive with it or right after
        new_keys = [r["idem_key"] for r in c.sql(
            "SELECT idem_key FROM petitions WHERE NOT (idem_key = ANY (:'keys'::text[]))",
            keys="{%s}" % ",".join(k for k, _, _ in accepted.values()))]
        ck.check(new_keys == ["it-miniapp-control"],
                 "after the refusals, expected only the control petition, got %s" % new_keys)
        sha = hashlib.sha256(control[0]).hexdigest()
        new = sorted(stored_files() - files_before)
        ck.check(new == ["%s/%s.jpg" % (sha[:2], sha)],
                 "after the refusals, expected only the control photo, got %d file(s), e.g. %s"
                 % (len(new), new[:3]))
        ck.check(not [f for f in stored_files() if os.path.basename(f).startswith(".")],
                 "temporary files left in the photo store")
        ck.check(c.daemons["intake"].running(), "intake died")
        ck.finish()


if __name__ == "__main__":
    main(run)
