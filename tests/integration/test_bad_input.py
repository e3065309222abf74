#!/usr/bin/env python3
"""test_bad_input — bad input to POST /api/v1/hotline/orders gets the fitting
4xx with a JSON error {"error": {"code", "message", "field"}} naming the
field where there is one, and changes nothing: after all of it and one good
control order, the control order is the only petition and intake's spool
holds nothing pending."""

import json
import socket
import time

from harness import Checks, Cluster, log, main, order

PATH = "/api/v1/hotline/orders"


def raw_request(c, method, path, body, headers):
    """Sends one request on a fresh socket, bytes as they are, and reads the
    answer until the server closes. Written by hand so that a server that
    answers 413 and closes while the body is still being sent is handled:
    the answer is read even when sending failed."""
    s = socket.create_connection(("127.0.0.1", c.intake_port), timeout=30)
    try:
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (
            method, path, c.intake_port)
        for k, v in headers.items():
            head += "%s: %s\r\n" % (k, v)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        head += "\r\n"
        try:
            s.sendall(head.encode("latin-1"))
            if body:
                for i in range(0, len(body), 65536):
                    s.sendall(body[i:i + 65536])
        except OSError:
            pass  # the server may answer (413) and close before it read everything
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    raw = b"".join(chunks)
    if not raw:
        raise ConnectionError("no answer")
    head, _, data = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        out, rest = b"", data
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        data = out
    elif "content-length" in hdrs:
        data = data[:int(hdrs["content-length"])]
    return status, hdrs.get("content-type", ""), data


def run():
    with Cluster("bad_input") as c:
        ck = Checks()
        hot = c.tokens["hotline"]
        good = order("IT-BAD-CONTROL", "小区门口占道经营，影响通行")

        def j(o):
            return json.dumps(o, ensure_ascii=False).encode("utf-8")

        def variant(key, **changes):
            o = order(key, good["content"])
            for k, v in changes.items():
                if v is DELETE:
                    o.pop(k, None)
                else:
                    o[k] = v
            return j(o)

        # (name, method, body bytes, token, extra headers, allowed statuses, field)
        # field: None = no requirement; a tuple = any of these names is right.
        big = variant("IT-BAD-BIG", content="大" * (700 * 1024))  # ~2.1 MB of UTF-8
        bad_utf8 = variant("IT-BAD-UTF8", content="PLACEHOLDER").replace(
            b"PLACEHOLDER", b"\xe5\x8d\xa0\xff\xfe\xc3\x28")
        cases = [
            ("malformed JSON", "POST", b'{"order_no": "IT-BAD-1", "content": ', hot, {},
             (400,), None),
            ("JSON that is not an object", "POST", b'["IT-BAD-2"]', hot, {}, (400, 422), None),
            # Where the UTF-8 is broken is found before the JSON is parsed,
            # so naming "content" is welcome but not required (SOFT).
            ("invalid UTF-8 in content", "POST", bad_utf8, hot, {}, (400, 422),
             SOFT + ("content",)),
            ("missing content", "POST", variant("IT-BAD-3", content=DELETE), hot, {},
             (400, 422), ("content",)),
            ("empty content", "POST", variant("IT-BAD-4", content=""), hot, {}, (400, 422),
             ("content",)),
            ("blank content", "POST", variant("IT-BAD-4b", content=" \t\n "), hot, {},
             (400, 422), ("content",)),
            ("missing order_no", "POST", variant("IT-BAD-5", order_no=DELETE), hot, {},
             (400, 422), ("order_no",)),
            ("latitude 999", "POST",
             variant("IT-BAD-6", location={"lat": 999, "lng": 120.2, "crs": "wgs84"}), hot, {},
             (400, 422), ("location.lat", "location", "lat")),
            ("unknown crs", "POST",
             variant("IT-BAD-7", location={"lat": 30.25, "lng": 120.2, "crs": "bd09"}), hot, {},
             (400, 422), ("location.crs", "location", "crs")),
            ("bad received_at", "POST", variant("IT-BAD-8", received_at="yesterday"), hot, {},
             (400, 422), ("received_at",)),
            ("bad urgency", "POST", variant("IT-BAD-9", urgency="very"), hot, {}, (400, 422),
             ("urgency",)),
            ("unknown category", "POST", variant("IT-BAD-10", category="99999999"), hot, {},
             (400, 422), ("category",)),
            ("2 MB body", "POST", big, hot, {}, (413,), None),
            ("no token", "POST", variant("IT-BAD-11"), None, {}, (401,), None),
            ("wrong token", "POST", variant("IT-BAD-12"), "fb_" + "0" * 40, {}, (401,), None),
            ("malformed Authorization", "POST", variant("IT-BAD-13"), None,
             {"Authorization": "Basic dXNlcjpwYXNz"}, (401,), None),
            ("department token", "POST", variant("IT-BAD-14"),
             next(iter(c.dept_tokens.values())), {}, (403,), None),
            ("miniapp token", "POST", variant("IT-BAD-15"), c.tokens["miniapp"], {}, (403,),
             None),
            # (Operator and admin tokens may post hotline orders: operators
            # enter them, an admin may do anything.)
            ("supervisor token", "POST", variant("IT-BAD-16"), c.tokens["supervisor"], {},
             (403,), None),
            ("GET on the orders resource", "GET", None, hot, {}, (405,), None),
            ("PUT on the orders resource", "PUT", variant("IT-BAD-17"), hot, {}, (405,), None),
        ]

        for name, method, body, token, extra, allowed, fields in cases:
            headers = {"Content-Type": "application/json"}
            if token is not None:
                headers["Authorization"] = "Bearer " + token
            headers.update(extra)
            try:
                st, ctype, data = raw_request(c, method, PATH, body, headers)
            except (OSError, ValueError, IndexError) as e:
                ck.check(False, "%s: request failed: %s: %s" % (name, type(e).__name__, e))
                continue
            try:
                doc = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                doc = None
            err = doc.get("error") if isinstance(doc, dict) else None
            log("%-28s -> %s %s" % (name, st, data[:200].decode("utf-8", "replace")))
            ck.check(st in allowed, "%s: expected %s, got %s %r" % (name, allowed, st, data[:300]))
            ck.check("json" in ctype.lower(), "%s: Content-Type %r is not JSON" % (name, ctype))
            # "field" may be left out (or null) when no field is to blame.
            ok_shape = (isinstance(err, dict) and isinstance(err.get("code"), str) and err["code"]
                        and isinstance(err.get("message"), str) and err["message"]
                        and isinstance(err.get("field"), (str, type(None))))
            ck.check(ok_shape, "%s: body is not {\"error\": {\"code\", \"message\", \"field\"}}: %r"
                     % (name, data[:300]))
            if fields and ok_shape and fields[0] is SOFT[0]:
                if err.get("field") not in fields[1:]:
                    log("NOTE: %s: error.field is %r; %s would help the caller"
                        % (name, err.get("field"), fields[1:]))
            elif fields and ok_shape:
                ck.check(err.get("field") in fields, "%s: error.field is %r, expected one of %s"
                         % (name, err.get("field"), fields))

        # Something that is not HTTP at all must not hurt intake either.
        s = socket.create_connection(("127.0.0.1", c.intake_port), timeout=10)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()

        # Nothing above may have been spooled: only the control order lands.
        st, body = c.post_order(good)
        ck.check(st == 202, "control order: expected 202, got %s %r" % (st, body))
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE case_id IS NOT NULL") >= 1,
            30, "the control order in petitions")
        time.sleep(1.5)  # anything wrongly spooled would arrive with it or right after
        rows = c.sql("SELECT idem_key FROM petitions")
        ck.check([r["idem_key"] for r in rows] == ["IT-BAD-CONTROL"],
                 "petitions other than the control order: %s"
                 % [r["idem_key"] for r in rows if r["idem_key"] != "IT-BAD-CONTROL"])

        m = c.metrics()
        if m is None:
            log("intake has no /metrics; spool pending count not checked")
        else:
            pending = {k: v for k, v in m.items() if "spool" in k and "pending" in k}
            if not pending:
                log("no spool pending metric in /metrics; names: %s" % sorted(m)[:30])
            for k, v in pending.items():
                ck.check(v == 0, "intake /metrics %s = %s after everything was acknowledged"
                         % (k, v))
        ck.check(c.daemons["intake"].running(), "intake died")
        ck.finish()


class _Delete:
    pass


DELETE = _Delete()
SOFT = (_Delete(),)  # marks a field expectation as a wish, not a requirement


if __name__ == "__main__":
    main(run)
