#!/usr/bin/env python3
"""test_follow_up — the residents' proofs and personal data in free text.

Proofs: every submission answers 202 {"tracking_no", "follow_up_code"} and a
retry 200 with the same body; the progress page and the rating accept the
code (any case, dashes, spaces) and refuse the phone's last four digits.
Wrong codes are limited per tracking number and per client address: 429
with Retry-After, even for the right code, until the wait is over; each
failure is logged without personal data and counted in /metrics.

Free text: a phone, ID number and e-mail typed into a hotline order's
content and address come back masked to the department (case API) and in
public Open311 (where the address is cut to the road or community, the
point rounded); the hotline desk (operator) still sees them; SQL's
fenbo_mask_text masks tests/fixtures/mask_text.tsv exactly like C."""

import http.client
import json
import os
import time
import urllib.parse

from harness import SOURCE_DIR, Checks, Cluster, main, order

PHONE = "19912345678"
ID_NO = "11010119900307123X"
ADDRESS = "滨江区幸福路88号幸福小区3栋2单元501 王先生 电话" + PHONE
CONTENT = "路灯不亮，楼下每晚噪音，请联系我 %s 或 zhang.san@example.com，身份证 %s" % (PHONE, ID_NO)


def raw(c, method, path, token, body=None):
    """(status, headers, parsed body) of one request to intake."""
    conn = http.client.HTTPConnection("127.0.0.1", c.intake_port, timeout=30)
    hdrs = {"Authorization": "Bearer " + token}
    if body is not None:
        body = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        data = json.loads(data)
    except ValueError:
        pass
    return r.status, dict(r.getheaders()), data


def run():
    settings = {"intake": {"proof_free_failures": "3", "proof_client_free_failures": "12",
                           "proof_max_wait_s": "4"}}
    with Cluster("follow_up", settings=settings) as c:
        ck = Checks()
        tok = c.tokens["hotline"]
        o = order("IT-FU-0001", CONTENT, address=ADDRESS,
                  caller={"name": "王五", "phone": PHONE})
        st, b = c.post_order(o)
        ck.check(st == 202 and isinstance(b, dict) and b.get("tracking_no"),
                 "202 with tracking_no: %s %r" % (st, b))
        tno, code = b["tracking_no"], b.get("follow_up_code") or ""
        ck.check(len(code) == 10 and code.isalnum() and code.upper() == code,
                 "a 10-character follow-up code: %r" % code)
        ck.check(code == c.follow_up_code(tno), "the code is derived as documented")
        st2, b2 = c.post_order(o)
        ck.check(st2 == 200 and b2 == b, "a retry answers 200 with the same body: %s %r" % (st2, b2))

        # A second petition: its code differs, and the first's does not prove it.
        st, b3 = c.post_order(order("IT-FU-0002", "路灯不亮"))
        ck.check(b3.get("follow_up_code") not in (None, code), "codes differ: %r" % b3)
        # The progress page reads PostgreSQL: wait until both are stored.
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM petitions") == 2, 60,
                     "both petitions stored")

        def show(proof, tn=tno):
            return raw(c, "GET", "/api/v1/petitions/%s?proof=%s" % (tn, urllib.parse.quote(proof)),
                       tok)

        st, _, body = show(code.lower()[:5] + "-" + code.lower()[5:])
        ck.check(st == 200 and body.get("proven") is True and body.get("content") == CONTENT,
                 "the code (any case, a dash) proves the resident: %s %r" % (st, body))
        st, _, body = show(PHONE[-4:])
        ck.check(st == 200 and body.get("proven") is False and "content" not in body,
                 "the phone's last four digits prove nothing: %s %r" % (st, body))
        st, _, body = raw(c, "POST", "/api/v1/petitions/%s/rating" % tno, tok,
                          {"proof": PHONE[-4:], "resolved": True, "satisfaction": "satisfied"})
        ck.check(st == 403, "a rating with the last four digits: 403, got %s %r" % (st, body))
        st, _, body = raw(c, "POST", "/api/v1/petitions/%s/rating" % b3["tracking_no"], tok,
                          {"proof": code, "resolved": True, "satisfaction": "satisfied"})
        ck.check(st == 403, "another petition's code: 403, got %s %r" % (st, body))

        # Wrong codes: with the last-four and the other code that makes 2 on
        # tno (and 1 on the other); the 3rd waits 1 s, then each doubles.
        st, _, _ = show("ABCDEFGHJK")
        st, hdrs, body = show(code)
        ck.check(st == 429 and int(hdrs.get("Retry-After", "0")) >= 1,
                 "after 3 wrong codes even the right one waits: %s %r %r" % (st, hdrs, body))
        st, hdrs, body = raw(c, "POST", "/api/v1/petitions/%s/rating" % tno, tok,
                             {"proof": code, "resolved": True, "satisfaction": "satisfied"})
        ck.check(st == 429 and "Retry-After" in hdrs, "the rating waits too: %s %r" % (st, body))
        time.sleep(int(hdrs.get("Retry-After", "1")) + 0.2)
        st, _, body = show(code)
        ck.check(st == 200 and body.get("proven") is True,
                 "after the wait the right code works: %s %r" % (st, body))
        st, _, body = raw(c, "POST", "/api/v1/petitions/%s/rating" % tno, tok,
                          {"proof": code, "resolved": True, "satisfaction": "satisfied"})
        ck.check(st == 409 and body["error"]["code"] == "not_replied",
                 "a proven rating of an open case: 409 not_replied, got %s %r" % (st, body))

        # One client trying many tracking numbers is limited as well.
        statuses = []
        for i in range(14):
            st, hdrs, _ = show("2345678923", tn="20261122-7-%06d" % (900000 + i))
            statuses.append(st)
        # 4 wrong codes so far from this client; its 12th makes it wait.
        ck.check(statuses[:8] == [404] * 8 and statuses[8:] == [429] * 6,
                 "a client's 12th wrong code makes it wait: %r" % statuses)

        m = c.metrics()
        ck.check(m.get("fenbo_intake_proof_failures_total", 0) >= 12
                 and m.get("fenbo_intake_proof_limited_total", 0) >= 3,
                 "failures and refusals counted: %r" % {k: v for k, v in m.items() if "proof" in k})
        log_text = c.daemons["intake"].log_text()
        failed = [l for l in log_text.splitlines() if "event=proof_failed" in l]
        ck.check(len(failed) >= 12, "each failure is logged: %d" % len(failed))
        ck.check(PHONE not in log_text and not any("127.0.0.1" in l or code in l for l in failed),
                 "no personal data and no code in the log: %r" % failed[:2])

        # ---- free text ----------------------------------------------------
        c.wait_dispatched(2, 60)
        row = c.sql("SELECT c.id, c.department_code FROM cases c JOIN petitions p"
                    " ON p.case_id = c.id WHERE p.tracking_no = :'t'", t=tno)[0]
        case_id, dept = row["id"], row["department_code"]
        ck.check(dept in c.dept_tokens, "the case went to a department: %r" % row)
        if dept in c.dept_tokens:
            st, body = c.worker("GET", "/api/v1/cases/%s" % case_id, c.dept_tokens[dept])
            pet = [p for p in body["petitions"] if p["tracking_no"] == tno][0]
            text = json.dumps(pet, ensure_ascii=False)
            ck.check(PHONE not in text and ID_NO not in text and "zhang.san" not in text
                     and "199****5678" in pet["content"] and "110****123X" in pet["content"]
                     and "z***@example.com" in pet["content"] and "199****5678" in pet["address"],
                     "the department sees the free text masked: %r" % pet)
        st, body = c.worker("GET", "/api/v1/cases/%s" % case_id, c.tokens["operator"])
        pet = [p for p in body["petitions"] if p["tracking_no"] == tno][0]
        ck.check(pet["content"] == CONTENT and pet["address"] == ADDRESS,
                 "the hotline desk sees the text as typed: %r" % pet)

        for path in ("/open311/v2/requests/%s.json" % tno, "/open311/v2/requests.json"):
            st, body = c.http("GET", path)
            if isinstance(body, list):
                body = [r for r in body if r.get("service_request_id") == tno]
            text = json.dumps(body, ensure_ascii=False)
            ck.check(st == 200 and PHONE not in text and "501" not in text and "王先生" not in text
                     and "88号" not in text,
                     "public Open311 %s shows no house and no phone: %s %s" % (path, st, text))
            ck.check(isinstance(body, list) and body and body[0].get("address") == "滨江区幸福路",
                     "public Open311 %s shows the road: %r" % (path, body))

        # Open311's POST answer carries the code too (and a retry the same).
        form = urllib.parse.urlencode({"api_key": c.tokens["open311"], "service_code": "030101",
                                       "lat": "30.2105", "long": "120.1203",
                                       "description": "人行道塌陷"})
        for _ in range(2):
            st, body = c.http("POST", "/open311/v2/requests.json", body=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded",
                                       "Idempotency-Key": "it-fu-311"})
            row = body[0] if isinstance(body, list) and body else {}
            sid = row.get("service_request_id") or ""
            ck.check(st in (200, 201, 202) and sid and
                     row.get("follow_up_code") == c.follow_up_code(sid),
                     "Open311 POST answers the follow-up code: %s %r" % (st, body))

        # SQL masks like C.
        fixture = os.path.join(SOURCE_DIR, "tests", "fixtures", "mask_text.tsv")
        n = 0
        for line in open(fixture, encoding="utf-8"):
            line = line.rstrip("\n")
            if line.startswith("#") or "\t" not in line:
                continue
            given, want = line.split("\t")
            got = c.sql_value("SELECT fenbo_mask_text(:'x')", x=given)
            ck.check(got == want, "fenbo_mask_text(%r) = %r, want %r" % (given, got, want))
            n += 1
        ck.check(n >= 20, "the fixture was read")
        ck.finish()


if __name__ == "__main__":
    main(run)
