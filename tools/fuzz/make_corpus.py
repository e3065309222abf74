#!/usr/bin/env python3
"""make_corpus.py — (re)writes the seed corpora of the fuzz targets,
tools/fuzz/corpus/<target>/, from the repository's fixtures and demo data
plus a few hand-made invalid inputs. Deterministic: running it again gives
the same files.

    python3 tools/fuzz/make_corpus.py

A seed is a starting point, not a test: valid inputs lead the fuzzer deep
into the validators (the checks after parsing), invalid ones into the
refusals. Input formats are described at the top of each fuzz_<target>.c.
"""

import json
import os
import shutil
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True  # nothing left behind in tests/fixtures/photos/
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "photos"))
import make_photos  # noqa: E402  (the repository's photo builder)

OPEN311_KEY = "fuzz-open311-api-key"  # fuzz_http.h FZ_TOKEN_OPEN311


def reset(target):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def dumps(o):
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"))


# ---- hotline: the body of POST /api/v1/hotline/orders ----------------------

def hotline():
    d = reset("hotline")
    with open(os.path.join(ROOT, "config", "demo", "sample_orders.json"), encoding="utf-8") as f:
        demo = json.load(f)
    for i, o in enumerate(demo):
        put(d, "demo-%02d.json" % i, dumps(o))
    with open(os.path.join(ROOT, "tests", "fixtures", "hotline_orders.json"), encoding="utf-8") as f:
        fixtures = json.load(f)
    # One of each shape of order (which fields are present).
    seen = set()
    for i, x in enumerate(fixtures):
        shape = tuple(sorted(x["order"].keys()))
        if shape not in seen:
            seen.add(shape)
            put(d, "fixture-%03d.json" % i, dumps(x["order"]))
    base = demo[0]

    def variant(name, **changes):
        o = dict(base)
        for k, v in changes.items():
            if v is None:
                o.pop(k, None)
            else:
                o[k] = v
        put(d, name, dumps(o))

    variant("gcj02.json", location={"lat": 30.22, "lng": 120.16, "crs": "gcj02"})
    variant("outside-city.json", location={"lat": 39.9, "lng": 116.4})
    variant("bad-lat.json", location={"lat": 91, "lng": 120.16})
    variant("unknown-category.json", category="999999")
    variant("bad-urgency.json", urgency="asap")
    variant("bad-kind.json", kind="rant")
    variant("no-content.json", content=None)
    variant("empty-content.json", content="　 ")
    variant("traditional.json", content="市民來電反映：路燈壞了，晚上很暗。")
    variant("fullwidth.json", content="ＡＢＣ１２３　路灯不亮")
    variant("bad-time.json", received_at="2026-13-40T25:61:00+08:00")
    variant("phone-text.json", caller={"name": "李", "phone": "call me"})
    variant("number-order.json", order_no=12345)
    put(d, "duplicate-key.json", '{"order_no":"A","order_no":"B","content":"x"}')
    put(d, "not-object.json", '["order"]')
    put(d, "truncated.json", dumps(base)[:80])
    put(d, "invalid-utf8.json", b'{"order_no":"A-1","content":"\xe5\x9d"}')
    put(d, "nul.json", b'{"order_no":"A-1","content":"a\\u0000b"}')
    put(d, "empty", b"")
    # Findings of the fuzzer, kept as seeds so that the short ctest run
    # checks them every time (regress-*).
    put(d, "regress-json-error-partial-utf8.json",
        b'{"order_no":"A-1","content":"a\\u00\xe6\x98\xa0"}')
    variant("regress-year-0124.json", received_at="0124-11-19T09:58:26+08:00")
    variant("regress-year-1899.json", received_at="1899-11-19T09:58:26+08:00")


# ---- open311: selector byte + body of POST /open311/v2/requests.* ----------

def open311():
    d = reset("open311")
    valid = [
        ("api_key", OPEN311_KEY),
        ("service_code", "010101"),
        ("lat", "30.223193"),
        ("long", "120.161479"),
        ("address_string", "望江区江城街道鼓楼巷与解放路交叉口"),
        ("description", "早市占道经营，人行道走不了。"),
        ("first_name", "小明"),
        ("last_name", "王"),
        ("phone", "+86 138-1234-5678"),
        ("email", "wang@example.com"),
        ("device_id", "dev-1"),
        ("media_url", "https://example.com/p/1.jpg"),
        ("attribute[urgency]", "urgent"),
        ("attribute[address_detail]", "3 号楼东侧"),
    ]

    def form(fields):
        return urllib.parse.urlencode(fields).encode()

    # selector: bit 0-1 head (0 urlencoded, 1 + Idempotency-Key, 2 multipart,
    # 3 urlencoded; charset=utf-8), bit 2 XML answer
    put(d, "valid-json", b"\x00" + form(valid))
    put(d, "valid-xml", b"\x04" + form(valid))
    put(d, "valid-idem", b"\x01" + form(valid))
    put(d, "valid-charset", b"\x03" + form(valid))
    minimal = [("api_key", OPEN311_KEY), ("service_code", "010102"),
               ("address_string", "白沙路 1 号"), ("description", "违章搭建")]
    put(d, "minimal", b"\x00" + form(minimal))
    put(d, "address-id", b"\x04" + form(minimal[:2] + [("address_id", "A-17"),
                                                       ("description", "x")]))
    put(d, "no-api-key", b"\x00" + form(valid[1:]))
    put(d, "bad-api-key", b"\x04" + form([("api_key", "nope")] + valid[1:]))
    put(d, "two-api-keys", b"\x00" + form([valid[0]] + valid))
    put(d, "jurisdiction", b"\x04" + form(valid + [("jurisdiction_id", "elsewhere.example")]))
    put(d, "unknown-service", b"\x00" + form([valid[0], ("service_code", "0101")] + valid[2:]))
    put(d, "repeated", b"\x04" + form(valid + [("description", "again"), ("lat", "1")]))
    put(d, "outside-city", b"\x00" + form(valid[:2] + [("lat", "39.9"), ("long", "116.4")] +
                                          valid[4:]))
    put(d, "bad-fields", b"\x04" + form(valid[:2] + [
        ("lat", "north"), ("long", "1e999"), ("email", "a@b"), ("phone", "12"),
        ("device_id", "has space"), ("media_url", "javascript:alert(1)"),
        ("first_name", "a\nb"), ("attribute[urgency]", "now"), ("attribute[color]", "red"),
        ("attribute[urgency][]", "urgent"), ("attributes", "x"), ("description", "")]))
    put(d, "invalid-utf8", b"\x00api_key=" + OPEN311_KEY.encode() +
        b"&service_code=010101&address_string=x&description=%E5%9D")
    put(d, "control-chars", b"\x04" + form(valid[:4] + [("description", "a\x01b"),
                                                       ("attribute\x02", "v")]))
    put(d, "too-many-fields", b"\x00" + form(valid + [("f%d" % i, "v") for i in range(60)]))
    put(d, "malformed", b"\x00api_key&=&&%zz%&description=%")
    b = "fuzzb"
    parts = "".join('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (b, k, v)
                    for k, v in valid)
    put(d, "multipart", b"\x02" + (parts + "--%s--\r\n" % b).encode())
    put(d, "multipart-file", b"\x06" + (parts + '--%s\r\nContent-Disposition: form-data; '
                                        'name="media"; filename="a.jpg"\r\nContent-Type: '
                                        'image/jpeg\r\n\r\nJPEG\r\n--%s--\r\n' % (b, b)).encode())
    put(d, "empty", b"\x00")
    put(d, "regress-nameless-part",
        b"\x02--fuzzb\r\nContent-Disposition: form-data\r\n\r\nv\r\n--fuzzb--\r\n")


# ---- miniapp: multipart body of POST /api/v1/miniapp/reports ---------------

BOUNDARY = b"fuzzboundary"  # fuzz_miniapp.c's Content-Type


def multipart(parts):
    out = b""
    for name, ctype, filename, data in parts:
        if isinstance(data, str):
            data = data.encode("utf-8")
        out += b"--" + BOUNDARY + b"\r\n"
        disp = b'Content-Disposition: form-data; name="' + name.encode() + b'"'
        if filename:
            disp += b'; filename="' + filename.encode() + b'"'
        out += disp + b"\r\n"
        if ctype:
            out += b"Content-Type: " + ctype.encode() + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


def miniapp():
    d = reset("miniapp")
    photos = os.path.join(ROOT, "tests", "fixtures", "photos")

    def photo(name):
        with open(os.path.join(photos, name), "rb") as f:
            return f.read()

    report = {"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "content": "小区门口的路灯坏了一个星期了",
              "category": "010101", "address": "江城街道鼓楼巷 5 号", "urgency": "normal",
              "kind": "report", "location": {"lat": 30.22, "lng": 120.17}}
    no_loc = dict(report)
    del no_loc["location"]

    def rep(r):
        return ("report", "application/json", None, dumps(r))

    def ph(data, ctype="image/jpeg", fn="a.jpg"):
        return ("photo", ctype, fn, data)

    put(d, "report-only", multipart([rep(report)]))
    put(d, "wgs84", multipart([rep(dict(report, location={"lat": 30.22, "lng": 120.17,
                                                          "crs": "wgs84"}))]))
    put(d, "photos", multipart([rep(report), ph(photo("plain.jpg")),
                                ph(photo("plain.png"), "image/png", "b.png")]))
    put(d, "exif-location", multipart([rep(no_loc), ph(photo("gps.jpg"))]))
    put(d, "png-exif-location", multipart([
        rep(no_loc), ph(make_photos.png(b"fuzz", gps=(30.25, 120.15)), "image/png", "g.png")]))
    put(d, "exif-outside-city", multipart([
        rep(no_loc), ph(make_photos.jpeg(b"fuzz", gps=(39.9, 116.4)))]))
    put(d, "not-a-photo", multipart([rep(report), ph(photo("not-a-photo.txt"), "image/jpeg")]))
    put(d, "ten-photos", multipart([rep(report)] + [ph(photo("plain.jpg"))] * 10))
    put(d, "two-reports", multipart([rep(report), rep(report)]))
    put(d, "no-report", multipart([ph(photo("plain.jpg"))]))
    put(d, "unknown-part", multipart([rep(report), ("comment", None, None, "hi")]))
    put(d, "bad-json", multipart([("report", "application/json", None, '{"openid":')]))
    put(d, "bad-fields", multipart([rep({"openid": "has space", "content": 5,
                                         "category": "999", "urgency": "x", "kind": "y",
                                         "location": {"lat": "n", "lng": 500, "crs": "bd09"}})]))
    put(d, "missing-content", multipart([rep({"openid": "o1"})]))
    put(d, "outside-city", multipart([rep(dict(report, location={"lat": 39.9, "lng": 116.4}))]))
    put(d, "invalid-utf8", multipart([("report", None, None,
                                       b'{"openid":"o1","content":"\xe8\xb7"}')]))
    put(d, "empty", b"")
    put(d, "regress-json-error-partial-utf8",
        multipart([("report", None, None, b'{"openid":"o1","content":"a\\u00\xe6\x98\xa0"}')]))


# ---- photo: a photo's bytes -------------------------------------------------

def photo():
    d = reset("photo")
    src = os.path.join(ROOT, "tests", "fixtures", "photos")
    for name in ("gps.jpg", "plain.jpg", "plain.png", "not-a-photo.txt"):
        shutil.copy(os.path.join(src, name), os.path.join(d, name))
    put(d, "gps-south-west.jpg", make_photos.jpeg(b"sw", gps=(-33.86, -151.2)))
    put(d, "gps.png", make_photos.png(b"g", gps=(30.25, 120.15)))
    put(d, "padded.jpg", make_photos.padded_jpeg(600, b"p"))
    put(d, "magic-only.jpg", b"\xff\xd8\xff")
    put(d, "magic-only.png", b"\x89PNG\r\n\x1a\n")


# ---- mail: one raw e-mail ---------------------------------------------------

def mail():
    d = reset("mail")
    src = os.path.join(ROOT, "tests", "fixtures", "mail")
    for name in sorted(os.listdir(src)):
        if name.endswith(".eml"):
            shutil.copy(os.path.join(src, name), os.path.join(d, name))
    put(d, "minimal.eml", "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n")
    put(d, "empty.eml", b"")


if __name__ == "__main__":
    hotline()
    open311()
    miniapp()
    photo()
    mail()
