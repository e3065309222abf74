#!/usr/bin/env python3
"""test_open311 — the Open311 GeoReport v2 channel under /open311/v2/.

Every endpoint in .json and .xml: the JSON validates against the community's
schemas in ../shared/open311-schemas/ (python3-jsonschema), the XML parses
with the spec's element names. POST requests: refusals in the spec's error
format (403 without a valid api_key, 404 for an unknown service_code or
jurisdiction_id, 400 naming each wrong field) that write nothing; 202 with a
service_request_id (the tracking number), 200 and the same id for a retry.
Once dispatched, GET requests/{id} names the department and the deadline,
and no GET ever shows the resident's name, phone, e-mail, device or text.
With PostgreSQL down the reads answer 503 while POSTs are still taken."""

import datetime
import http.client
import json
import os
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import jsonschema

from harness import SOURCE_DIR, Checks, Cluster, log, main, order

BASE = "/open311/v2/"
SCHEMA_DIR_CANDIDATES = (
    os.environ.get("FENBO_OPEN311_SCHEMAS", ""),
    os.path.join(SOURCE_DIR, "..", "shared", "open311-schemas"),
    "/work/shared/open311-schemas",
)

# A point in 滨江市 (江城社区), and the resident's personal data that no GET may show.
LAT, LNG = "30.2105", "120.1203"
PERSON = {
    "first_name": "小明",
    "last_name": "王",
    "phone": "13912345678",
    "email": "wang.xiaoming@example.com",
    "device_id": "itest-device-7f3a9c",
}
TEXT = "滨江路与江城路路口的人行道塌陷了一个大坑，晚上很危险，已有老人摔倒"
# Everything XML must escape, in a place a GET shows.
ADDRESS6 = "滨江市望江区江城路 88 号 <B&B 旅馆> \"东门\" 对面'小卖部'"
TRACKING_RE = re.compile(r"^\d{8}-\d+-\d{6}$")

# The spec's element names (GeoReport v2), per resource.
REQUEST_ELEMENTS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
    "long", "media_url",
}
SERVICE_ELEMENTS = {"service_code", "service_name", "description", "metadata", "type",
                    "keywords", "group"}


# ---- schemas ------------------------------------------------------------------

def schema_dir():
    for d in SCHEMA_DIR_CANDIDATES:
        if d and os.path.exists(os.path.join(d, "request.json")):
            return os.path.abspath(d)
    raise RuntimeError("open311 schemas not found in %s" % (SCHEMA_DIR_CANDIDATES,))


def load_validators():
    """name → validator for the schema files; requests.json and services.json
    refer to request.json and service.json by relative $ref, resolved against
    the folder (referencing where installed, else jsonschema's RefResolver)."""
    d = schema_dir()
    base = "file://" + d + "/"
    schemas = {}
    for name in ("request.json", "requests.json", "service.json", "services.json",
                 "service-definition.json"):
        with open(os.path.join(d, name), encoding="utf-8") as f:
            s = json.load(f)
        s["$id"] = base + name
        schemas[name] = s
    cls = jsonschema.Draft7Validator
    fc = jsonschema.FormatChecker()
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        registry = Registry().with_resources(
            (s["$id"], Resource.from_contents(s, default_specification=DRAFT7))
            for s in schemas.values())
        return {n: cls(s, registry=registry, format_checker=fc) for n, s in schemas.items()}
    except ImportError:
        store = {s["$id"]: s for s in schemas.values()}
        return {n: cls(s, resolver=jsonschema.RefResolver(s["$id"], s, store=store),
                       format_checker=fc)
                for n, s in schemas.items()}


def w3_time(s):
    """True when s is a date-time with its zone, as the spec requires."""
    if not isinstance(s, str) or not re.match(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", s):
        return False
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).tzinfo is not None


# ---- HTTP ---------------------------------------------------------------------

class Resp:
    def __init__(self, status, ctype, data):
        self.status = status
        self.ctype = ctype
        self.data = data
        self.text = data.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.data.decode("utf-8"))

    def xml(self):
        return ET.fromstring(self.data)

    def __repr__(self):
        return "%s %s %s" % (self.status, self.ctype, self.text[:300])


def request(c, method, path, form=None, headers=None, body=None, ctype=None):
    hdrs = dict(headers or {})
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    elif ctype:
        hdrs["Content-Type"] = ctype
    conn = http.client.HTTPConnection("127.0.0.1", c.intake_port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Resp(r.status, r.getheader("Content-Type", ""), r.read())
    finally:
        conn.close()


def get(c, path):
    return request(c, "GET", BASE + path)


def post(c, fmt, form, headers=None):
    return request(c, "POST", BASE + "requests." + fmt, form=form, headers=headers)


# ---- checks shared by the sections ----------------------------------------------

class Open311Checks(Checks):
    def __init__(self, validators):
        super().__init__()
        self.v = validators
        self.get_bodies = []  # every GET answer, for the personal-data check

    def valid(self, schema, doc, what):
        errs = sorted(self.v[schema].iter_errors(doc), key=str)
        return self.check(not errs, "%s does not validate against %s: %s"
                          % (what, schema, "; ".join(e.message for e in errs[:3])))

    def json_error(self, r, status, what, contains=None):
        ok = self.check(r.status == status and r.ctype.startswith("application/json"),
                        "%s: expected %d JSON, got %r" % (what, status, r))
        if not ok:
            return
        try:
            body = r.json()
        except ValueError:
            self.check(False, "%s: body is not JSON: %r" % (what, r.text[:200]))
            return
        self.check(isinstance(body, list) and body and all(
            isinstance(e, dict) and set(e) == {"code", "description"} and
            isinstance(e["code"], int) and isinstance(e["description"], str) and e["description"]
            for e in body), "%s: not the Open311 error array: %r" % (what, body))
        if contains and isinstance(body, list):
            self.check(any(contains in e.get("description", "") for e in body
                           if isinstance(e, dict)),
                       "%s: no error mentions %r: %r" % (what, contains, body))
        return body

    def xml_error(self, r, status, what):
        if not self.check(r.status == status and r.ctype.startswith("text/xml"),
                          "%s: expected %d XML, got %r" % (what, status, r)):
            return
        try:
            root = r.xml()
        except ET.ParseError as e:
            self.check(False, "%s: XML does not parse (%s): %r" % (what, e, r.text[:200]))
            return
        errs = root.findall("error")
        self.check(root.tag == "errors" and errs and all(
            e.findtext("code") == str(status) and e.findtext("description") for e in errs),
            "%s: not <errors><error><code>%d</code><description>: %r"
            % (what, status, r.text[:300]))

    def xml_ok(self, r, root_tag, what):
        if not self.check(r.status == 200 and r.ctype.startswith("text/xml"),
                          "%s: expected 200 text/xml, got %r" % (what, r)):
            return None
        self.check(r.text.startswith('<?xml version="1.0" encoding="utf-8"?>'),
                   "%s: no XML declaration: %r" % (what, r.text[:80]))
        try:
            root = r.xml()
        except ET.ParseError as e:
            self.check(False, "%s: XML does not parse (%s): %r" % (what, e, r.text[:300]))
            return None
        self.check(root.tag == root_tag, "%s: root <%s>, expected <%s>"
                   % (what, root.tag, root_tag))
        self.get_bodies.append((what, r.text))
        return root

    def json_ok(self, r, what, status=200):
        if not self.check(r.status == status and r.ctype.startswith("application/json"),
                          "%s: expected %d application/json, got %r" % (what, status, r)):
            return None
        self.get_bodies.append((what, r.text))
        return r.json()


# ---- sections -------------------------------------------------------------------

def check_discovery(c, ck):
    d = ck.json_ok(get(c, "discovery.json"), "discovery.json")
    if d:
        ck.check({"changeset", "contact", "key_service", "endpoints"} <= set(d),
                 "discovery.json lacks fields: %r" % d)
        ep = (d.get("endpoints") or [{}])[0]
        ck.check(ep.get("specification") == "http://wiki.open311.org/GeoReport_v2" and
                 ep.get("type") == "production" and
                 set(ep.get("formats", [])) == {"application/json", "text/xml"} and
                 str(ep.get("url", "")).endswith(BASE) and w3_time(ep.get("changeset")),
                 "discovery.json endpoint: %r" % ep)
    root = ck.xml_ok(get(c, "discovery.xml"), "discovery", "discovery.xml")
    if root is not None:
        fmts = [f.text for f in root.findall("endpoints/endpoint/formats/format")]
        ck.check(sorted(fmts) == ["application/json", "text/xml"] and
                 root.findtext("endpoints/endpoint/specification") ==
                 "http://wiki.open311.org/GeoReport_v2",
                 "discovery.xml endpoint: %r" % ET.tostring(root)[:300])


def check_services(c, ck):
    services = ck.json_ok(get(c, "services.json"), "services.json")
    codes = []
    if services is not None:
        ck.valid("services.json", services, "services.json")
        codes = [s.get("service_code") for s in services]
        road = [s for s in services if s.get("service_code") == "030101"]
        ck.check(road and road[0].get("service_name") == "道路破损" and
                 road[0].get("group") == "道路交通" and road[0].get("metadata") is True and
                 road[0].get("type") == "realtime",
                 "services.json: 030101 should be 道路破损 in group 道路交通: %r" % road)
        ck.check("01" not in codes and "0101" not in codes,
                 "services.json lists the inner nodes of the category tree as services")
    root = ck.xml_ok(get(c, "services.xml"), "services", "services.xml")
    if root is not None:
        items = root.findall("service")
        ck.check([s.findtext("service_code") for s in items] == codes,
                 "services.xml lists other codes than services.json")
        ck.check(all({e.tag for e in s} <= SERVICE_ELEMENTS for s in items) and
                 all(s.findtext("metadata") in ("true", "false") for s in items),
                 "services.xml: element names outside the spec")

    sd = ck.json_ok(get(c, "services/030101.json"), "services/030101.json")
    if sd is not None:
        ck.valid("service-definition.json", sd, "services/030101.json")
        attrs = {a.get("code"): a for a in sd.get("attributes", [])}
        ck.check(sd.get("service_code") == "030101" and "urgency" in attrs and
                 "address_detail" in attrs and
                 [v["key"] for v in attrs["urgency"].get("values", [])] ==
                 ["normal", "urgent", "emergency"] and
                 attrs["urgency"].get("datatype") == "singlevaluelist",
                 "services/030101.json attributes: %r" % sd)
    root = ck.xml_ok(get(c, "services/030101.xml"), "service_definition", "services/030101.xml")
    if root is not None:
        ck.check(root.findtext("service_code") == "030101" and
                 [a.findtext("code") for a in root.findall("attributes/attribute")] ==
                 ["address_detail", "urgency"] and
                 [v.findtext("key") for v in root.findall(
                     "attributes/attribute/values/value")] == ["normal", "urgent", "emergency"],
                 "services/030101.xml: %r" % ET.tostring(root)[:400])
    ck.json_error(get(c, "services/999999.json"), 404, "unknown service definition (json)")
    ck.xml_error(get(c, "services/999999.xml"), 404, "unknown service definition (xml)")
    ck.json_error(get(c, "services/0301.json"), 404, "an inner category is no service")


def check_routing(c, ck):
    ck.json_error(get(c, "nothing.json"), 404, "unknown resource")
    ck.xml_error(get(c, "nothing.xml"), 404, "unknown resource (xml)")
    ck.json_error(get(c, "services.txt"), 404, "bad format suffix")
    ck.json_error(get(c, "services"), 404, "no format suffix")
    ck.json_error(get(c, "requests/a/b.json"), 404, "too many segments")
    ck.json_error(request(c, "DELETE", BASE + "requests.json"), 405, "DELETE requests.json")
    ck.xml_error(request(c, "PUT", BASE + "requests.xml", body=b"x"), 405, "PUT requests.xml")
    ck.json_error(request(c, "POST", BASE + "services.json", form={"a": "b"}), 405,
                  "POST services.json")
    ck.json_error(get(c, "services.json?jurisdiction_id=elsewhere.example.org"), 404,
                  "wrong jurisdiction_id on GET", contains="jurisdiction_id")
    r = get(c, "services.json?jurisdiction_id=binjiang.example.gov.cn")
    ck.check(r.status == 200, "the configured jurisdiction_id: expected 200, got %r" % r)
    r = get(c, "services.json?jurisdiction_id=")
    ck.check(r.status == 200, "an empty jurisdiction_id counts as absent, got %r" % r)


def good_form(c, **over):
    f = {
        "api_key": c.tokens["open311"],
        "jurisdiction_id": "binjiang.example.gov.cn",
        "service_code": "030101",
        "lat": LAT,
        "long": LNG,
        "description": TEXT,
        "attribute[urgency]": "urgent",
        "attribute[address_detail]": "公交站台东侧 20 米",
        "media_url": "https://photos.example.com/itest/pothole.jpg",
    }
    f.update(PERSON)
    for k, v in over.items():
        if v is None:
            f.pop(k, None)
        else:
            f[k] = v
    return f


def check_refusals(c, ck):
    """Every refusal in the spec's format, and none of them writes anything."""
    no_key = good_form(c, api_key=None)
    ck.json_error(post(c, "json", no_key), 403, "POST without api_key", contains="api_key")
    ck.xml_error(post(c, "xml", no_key), 403, "POST without api_key (xml)")
    ck.json_error(post(c, "json", good_form(c, api_key="fb_" + "0" * 40)), 403,
                  "POST with an unknown api_key")
    ck.json_error(post(c, "json", good_form(c, api_key=c.tokens["hotline"])), 403,
                  "POST with a hotline token as api_key")
    ck.json_error(post(c, "json", good_form(c, jurisdiction_id="elsewhere.example.org")), 404,
                  "POST for another jurisdiction", contains="jurisdiction_id")
    ck.json_error(post(c, "json", good_form(c, service_code="999999")), 404,
                  "POST with an unknown service_code", contains="service_code")
    ck.xml_error(post(c, "xml", good_form(c, service_code="999999")), 404,
                 "POST with an unknown service_code (xml)")
    ck.json_error(post(c, "json", good_form(c, service_code=None)), 400,
                  "POST without service_code", contains="service_code")
    ck.json_error(post(c, "json", good_form(c, lat=None, long=None)), 400,
                  "POST without a location", contains="location")
    ck.xml_error(post(c, "xml", good_form(c, lat=None, long=None)), 400,
                 "POST without a location (xml)")
    ck.json_error(post(c, "json", good_form(c, long=None)), 400, "POST with lat but no long",
                  contains="long")
    ck.json_error(post(c, "json", good_form(c, lat="north", long="east")), 400,
                  "POST with lat/long that are no numbers")
    ck.json_error(post(c, "json", good_form(c, lat="95", long="120.1")), 400,
                  "POST with lat beyond 90")
    ck.json_error(post(c, "json", good_form(c, lat="39.9042", long="116.4074")), 400,
                  "POST for a point outside the city", contains="outside")
    ck.json_error(post(c, "json", good_form(c, description=None)), 400,
                  "POST without description", contains="description")
    ck.json_error(post(c, "json", good_form(c, description="坑" * 4001)), 400,
                  "POST with 4001 characters of description", contains="4000")
    ck.json_error(post(c, "json", good_form(c, **{"attribute[urgency]": "whenever"})), 400,
                  "POST with an urgency outside the list", contains="urgency")
    ck.json_error(post(c, "json", good_form(c, **{"attribute[colour]": "red"})), 400,
                  "POST with an undefined attribute", contains="colour")
    ck.json_error(post(c, "json", good_form(c, email="not-an-address")), 400,
                  "POST with a bad email", contains="email")
    ck.json_error(post(c, "json", good_form(c, phone="call me maybe")), 400,
                  "POST with a bad phone", contains="phone")
    ck.json_error(post(c, "json", good_form(c, media_url="javascript:alert(1)")), 400,
                  "POST with a media_url that is no http(s) URL", contains="media_url")
    body = ck.json_error(post(c, "json", good_form(c, email="x", phone="y", lat=None, long=None)),
                         400, "POST with three wrong fields")
    ck.check(isinstance(body, list) and len(body) == 3,
             "three wrong fields: expected three errors, got %r" % body)
    dup = urllib.parse.urlencode(good_form(c)) + "&service_code=010101"
    r = request(c, "POST", BASE + "requests.json", body=dup.encode(),
                ctype="application/x-www-form-urlencoded")
    ck.json_error(r, 400, "POST with service_code twice", contains="more than once")
    twice = urllib.parse.urlencode(good_form(c)) + "&attribute%5Burgency%5D=normal"
    r = request(c, "POST", BASE + "requests.json", body=twice.encode(),
                ctype="application/x-www-form-urlencoded")
    body = ck.json_error(r, 400, "POST with attribute[urgency] twice", contains="urgency")
    ck.check(isinstance(body, list) and len(body) == 1,
             "a repeated attribute: expected one error, got %r" % body)
    r = request(c, "POST", BASE + "requests.json", body=json.dumps(good_form(c)).encode(),
                ctype="application/json")
    ck.json_error(r, 400, "POST with a JSON body", contains="form-urlencoded")
    r = request(c, "POST", BASE + "requests.json", body=b"api_key=%FF%FE&service_code=1",
                ctype="application/x-www-form-urlencoded")
    ck.check(r.status in (400, 403), "POST with invalid UTF-8: expected 400/403, got %r" % r)
    r = post(c, "json", good_form(c), headers={"Idempotency-Key": "has spaces in it"})
    ck.json_error(r, 400, "POST with a bad Idempotency-Key header", contains="Idempotency-Key")

    time.sleep(1)  # room for anything wrongly spooled to reach the database
    m = c.metrics() or {}
    ck.check(m.get("fenbo_intake_petitions_accepted_total") == 0,
             "refused POSTs spooled petitions: accepted_total=%r"
             % m.get("fenbo_intake_petitions_accepted_total"))
    ck.check(c.sql_value("SELECT count(*) FROM petitions") == 0,
             "refused POSTs wrote petitions")


def check_post(c, ck):
    """Returns the service_request_ids of the accepted POSTs."""
    form = good_form(c)
    r1 = post(c, "json", form)
    b1 = ck.json_ok(r1, "first POST", status=202) or [{}]
    sid = b1[0].get("service_request_id") if isinstance(b1, list) and b1 else None
    ck.check(isinstance(b1, list) and len(b1) == 1 and TRACKING_RE.match(str(sid)) and
             "service_notice" in b1[0] and b1[0].get("account_id", "x") is None,
             "first POST: expected [{service_request_id, service_notice, account_id: null}], "
             "got %r" % b1)
    r2 = post(c, "json", form)
    ck.check(r2.status == 200 and r2.data == r1.data,
             "identical retry: expected 200 with the same body, got %r" % r2)
    reordered = dict(reversed(list(form.items())))
    r3 = post(c, "json", reordered)
    ck.check(r3.status == 200 and r3.data == r1.data,
             "retry with the fields in another order: expected 200 and the same id, got %r" % r3)

    # With an Idempotency-Key the key is the device's: a changed retry is the same request.
    hk = {"Idempotency-Key": "itest-op-0001"}
    f4 = good_form(c, description="马路中间的下水道盖板不见了，车辆经过很危险", service_code="030103",
                   lat="30.2301", long="120.2012")
    r4 = post(c, "json", f4, headers=hk)
    b4 = ck.json_ok(r4, "POST with Idempotency-Key", status=202) or [{}]
    sid4 = b4[0].get("service_request_id") if b4 else None
    ck.check(sid4 and sid4 != sid, "a new request got the id of another: %r" % b4)
    r5 = post(c, "json", good_form(c, description="马路中间的下水道盖板不见了（重发）", service_code="030103",
                                   lat="30.2301", long="120.2012"), headers=hk)
    ck.check(r5.status == 200 and r5.data == r4.data,
             "a retry with the same Idempotency-Key: expected 200 and %r, got %r" % (sid4, r5))

    # XML, located by address only, and without any personal data at all.
    f6 = {"api_key": c.tokens["open311"], "service_code": "030102",
          "address_string": ADDRESS6, "description": "路灯不亮已经三天了"}
    r6 = post(c, "xml", f6)
    sid6 = None
    if ck.check(r6.status == 202 and r6.ctype.startswith("text/xml"),
                "XML POST: expected 202 text/xml, got %r" % r6):
        root = r6.xml()
        sid6 = root.findtext("request/service_request_id")
        ck.check(root.tag == "service_requests" and TRACKING_RE.match(str(sid6)) and
                 root.find("request/account_id") is not None and
                 root.findtext("request/service_notice"),
                 "XML POST answer: %r" % r6.text)
    r7 = post(c, "xml", f6)
    ck.check(r7.status == 200 and r7.data == r6.data, "XML retry: expected 200, got %r" % r7)
    return sid, sid4, sid6


def check_stored(c, ck, sid):
    rows = c.sql("SELECT channel, caller_name, caller_phone, urgency, address, category,"
                 " ST_Y(location) AS lat, ST_X(location) AS lng, raw, content"
                 " FROM petitions WHERE tracking_no = :'t'", t=sid)
    if not ck.check(len(rows) == 1, "petition %s: expected one row, got %r" % (sid, rows)):
        return
    p = rows[0]
    ck.check(p["channel"] == "open311" and p["caller_name"] == "王小明" and
             p["caller_phone"] == PERSON["phone"] and p["urgency"] in ("urgent", "emergency") and
             p["category"] == "030101" and p["content"] == TEXT and
             abs(p["lat"] - float(LAT)) < 1e-9 and abs(p["lng"] - float(LNG)) < 1e-9,
             "stored petition: %r" % {k: v for k, v in p.items() if k != "raw"})
    ck.check("api_key" not in p["raw"] and p["raw"].get("email") == PERSON["email"] and
             p["raw"].get("attribute[urgency]") == "urgent",
             "stored raw: api_key must be gone, the rest kept: %r" % p["raw"])
    ck.check(c.tokens["open311"] not in json.dumps(p, ensure_ascii=False),
             "the api_key reached the database")


def check_requests(c, ck, sid, sid4, sid6):
    one = ck.json_ok(get(c, "requests/%s.json" % sid), "requests/{id}.json")
    if one is not None:
        ck.valid("requests.json", one, "requests/{id}.json")
        req = one[0] if isinstance(one, list) and len(one) == 1 else {}
        ck.check(req.get("service_request_id") == sid and req.get("status") == "open" and
                 req.get("service_code") == "030101" and req.get("service_name") == "道路破损" and
                 req.get("agency_responsible") == "滨江市交通运输局" and
                 "交通运输局" in (req.get("status_notes") or "") and
                 w3_time(req.get("requested_datetime")) and
                 w3_time(req.get("updated_datetime")) and
                 w3_time(req.get("expected_datetime")) and
                 req.get("description") is None and
                 # the point rounded to 0.001° (about 100 m): no house
                 abs(float(req.get("lat") or 0) - float(LAT)) <= 5e-4 and
                 abs(float(req.get("long") or 0) - float(LNG)) <= 5e-4 and
                 req.get("media_url") == "https://photos.example.com/itest/pothole.jpg",
                 "requests/{id}.json once dispatched: %r" % one)
        ck.check(set(req) == REQUEST_ELEMENTS, "requests/{id}.json fields %s differ from the "
                 "spec's" % sorted(set(req) ^ REQUEST_ELEMENTS))
    root = ck.xml_ok(get(c, "requests/%s.xml" % sid), "service_requests", "requests/{id}.xml")
    if root is not None:
        items = root.findall("request")
        ck.check(len(items) == 1 and {e.tag for e in items[0]} == REQUEST_ELEMENTS and
                 items[0].findtext("service_request_id") == sid and
                 items[0].findtext("agency_responsible") == "滨江市交通运输局" and
                 w3_time(items[0].findtext("expected_datetime")),
                 "requests/{id}.xml: %r" % ET.tostring(root, encoding="unicode")[:600])
    root = ck.xml_ok(get(c, "requests/%s.xml" % sid6), "service_requests",
                     "requests/{id}.xml with markup in the address")
    if root is not None:
        # Public Open311 shows the road, never the house number.
        ck.check(root.findtext("request/address") == "滨江市望江区江城路",
                 "address %r came back cut to its road, got %r"
                 % (ADDRESS6, root.findtext("request/address")))
    ck.json_error(get(c, "requests/20000101-9-999999.json"), 404, "unknown request")
    ck.xml_error(get(c, "requests/20000101-9-999999.xml"), 404, "unknown request (xml)")

    lst = ck.json_ok(get(c, "requests.json"), "requests.json")
    if lst is not None:
        ck.valid("requests.json", lst, "requests.json")
        ids = [x.get("service_request_id") for x in lst]
        ck.check({sid, sid4, sid6} <= set(ids), "requests.json lacks %s: %r"
                 % ({sid, sid4, sid6} - set(ids), ids))
        times = [x.get("requested_datetime") for x in lst]
        ck.check(times == sorted(times, reverse=True), "requests.json is not newest first")
    root = ck.xml_ok(get(c, "requests.xml"), "service_requests", "requests.xml")
    if root is not None and lst is not None:
        ck.check([r.findtext("service_request_id") for r in root.findall("request")] ==
                 [x.get("service_request_id") for x in lst],
                 "requests.xml lists other requests than requests.json")

    def ids_of(query):
        r = get(c, "requests.json?" + query)
        body = ck.json_ok(r, "requests.json?" + query)
        if body is None:
            return None
        ck.valid("requests.json", body, "requests.json?" + query)
        return [x.get("service_request_id") for x in body]

    ck.check(ids_of("service_code=030101") == [sid],
             "service_code=030101 should find only %s" % sid)
    got = ids_of("service_code=030101,030102")
    ck.check(got is not None and set(got) == {sid, sid6}, "two service codes: %r" % got)
    got = ids_of("service_request_id=%s,%s" % (sid, sid6))
    ck.check(got is not None and set(got) == {sid, sid6}, "service_request_id list: %r" % got)
    got = ids_of("status=closed")
    ck.check(got == [], "status=closed should find nothing yet: %r" % got)
    got = ids_of("status=open")
    ck.check(got is not None and sid in got, "status=open should find %s: %r" % (sid, got))
    tomorrow = (datetime.datetime.now(datetime.timezone.utc) +
                datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = ids_of("start_date=" + urllib.parse.quote(tomorrow))
    ck.check(got == [], "start_date tomorrow should find nothing: %r" % got)
    ck.json_error(get(c, "requests.json?start_date=yesterday"), 400, "bad start_date",
                  contains="start_date")
    ck.json_error(get(c, "requests.json?start_date=2026-01-01T00:00:00Z&"
                         "end_date=2026-06-01T00:00:00Z"), 400, "a span over 90 days",
                  contains="90 days")
    ck.json_error(get(c, "requests.json?status=pending"), 400, "bad status", contains="status")
    ck.xml_error(get(c, "requests.xml?status=pending"), 400, "bad status (xml)")

    tok = ck.json_ok(get(c, "tokens/%s.json" % sid), "tokens/{token}.json")
    ck.check(tok == [{"service_request_id": sid, "token": sid}], "tokens/{token}.json: %r" % tok)
    root = ck.xml_ok(get(c, "tokens/%s.xml" % sid6), "service_requests", "tokens/{token}.xml")
    if root is not None:
        ck.check(root.findtext("request/service_request_id") == sid6 and
                 root.findtext("request/token") == sid6, "tokens/{token}.xml: %r"
                 % ET.tostring(root, encoding="unicode"))
    ck.json_error(get(c, "tokens/20000101-9-999999.json"), 404, "unknown token")
    ck.xml_error(get(c, "tokens/nothing-here.xml"), 404, "unknown token (xml)")


def check_hotline_number(c, ck):
    """A hotline caller's tracking number is a service_request_id too, and the
    caller's name and phone stay out of it."""
    # A control character (the hotline does not refuse them) XML cannot carry.
    st, body = c.post_order(order("IT-O311-0001", "路灯故障，整条街都是黑的", category="030102",
                                  address="江城路\u0001 1 号",
                                  caller={"name": "李四海", "phone": "13788889999"},
                                  location={"lat": 30.215, "lng": 120.125, "crs": "wgs84"}))
    tn = body.get("tracking_no") if isinstance(body, dict) else None
    if not ck.check(st == 202 and tn, "hotline order: %s %r" % (st, body)):
        return None
    c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions WHERE tracking_no = :'t'"
                                     " AND case_id IS NOT NULL", t=tn) == 1,
                 30, "the hotline order dispatched")
    one = ck.json_ok(get(c, "requests/%s.json" % tn), "requests/{hotline id}.json")
    if one is not None:
        ck.valid("requests.json", one, "requests/{hotline id}.json")
        ck.check(one and one[0].get("service_code") == "030102" and
                 one[0].get("description") is None,
                 "hotline request through Open311: %r" % one)
    root = ck.xml_ok(get(c, "requests/%s.xml" % tn), "service_requests",
                     "requests/{hotline id}.xml with a control character in the address")
    if root is not None:
        ck.check(root.findtext("request/address") == "江城路",
                 "the road only, without the house or the control character: %r"
                 % root.findtext("request/address"))
    return tn


def check_no_personal_data(ck):
    secrets = list(PERSON.values()) + [TEXT, TEXT[:10], "王小明", "李四海", "13788889999",
                                       "路灯不亮已经三天了", "下水道盖板", "整条街都是黑的"]
    for what, text in ck.get_bodies:
        for s in secrets:
            ck.check(s not in text, "%s shows personal data or free text %r" % (what, s))


def check_pg_outage(c, ck):
    sid = None
    c.stop_pg()
    try:
        ck.json_error(get(c, "requests.json"), 503, "requests.json while PostgreSQL is down")
        ck.xml_error(get(c, "requests/20000101-9-999999.xml"), 503,
                     "requests/{id}.xml while PostgreSQL is down")
        r = post(c, "json", good_form(c, description="人行道地砖松动，下雨踩上去溅一身水",
                                      lat="30.2222", long="120.1111"))
        ck.check(r.status == 202, "POST while PostgreSQL is down: expected 202, got %r" % r)
        sid = r.json()[0]["service_request_id"] if r.status == 202 else None
        r = get(c, "services.json")
        ck.check(r.status == 200, "services.json without PostgreSQL: expected 200, got %r" % r)
    finally:
        c.start_pg()
    if sid:
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions WHERE tracking_no ="
                                         " :'t'", t=sid) == 1,
                     60, "the POST taken during the outage stored")


def run():
    validators = load_validators()
    with Cluster("open311") as c:
        ck = Open311Checks(validators)
        # The checker must be able to fail: a request with a status outside the spec.
        ck.check(not ck.v["requests.json"].is_valid(
            [{"service_request_id": "1", "status": "pending", "service_code": "x",
              "requested_datetime": "2026-01-01T00:00:00Z"}]),
            "the schema validator accepts what the schema forbids")

        check_discovery(c, ck)
        check_services(c, ck)
        check_routing(c, ck)
        check_refusals(c, ck)
        sid, sid4, sid6 = check_post(c, ck)
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE channel = 'open311' AND case_id IS NOT NULL"
        ) == 3, 30, "3 Open311 petitions dispatched")
        check_stored(c, ck, sid)
        check_requests(c, ck, sid, sid4, sid6)
        check_hotline_number(c, ck)
        check_no_personal_data(ck)
        ck.check(c.sql_value("SELECT count(*) FROM petitions WHERE channel = 'open311'") == 3,
                 "retries stored more petitions")
        check_pg_outage(c, ck)
        log("service_request_ids: %s %s %s" % (sid, sid4, sid6))
        ck.finish()


if __name__ == "__main__":
    main(run)
