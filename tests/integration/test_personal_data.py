#!/usr/bin/env python3
"""test_personal_data — residents' phone numbers and names stay where they are
needed, every read of them is on record, and they go when the case is old.

Petitions with distinctive 11-digit mobile numbers arrive by every channel:
the hotline (caller name and phone), the mini-program (an openid, no phone),
Open311 (phone, e-mail, device, and an account id that is itself a mobile
number, sent with an Idempotency-Key) and the mailbox (a sender whose
address is a mobile number, as 139.com addresses are). Then every read
endpoint is called with every role: the worker's case list and detail,
stats, overdue, callbacks, hotspots and the dashboard's JSON for the
departments, the supervisor, the operator and the admin; intake's status
page with and without proof, Open311's GET requests and tokens in JSON and
XML; /metrics and /healthz of both; and `fenboctl case show`.

A mobile number may appear only where a role needs it: the case detail and
the callback list (回访: the desk dials the resident) of the operator and the
admin, and `fenboctl case show --unmask`. Nowhere else — not in any other
answer, not in any line the daemons or PostgreSQL logged during the run (at
log level debug), not in fenboctl's masked output. The operator's unmasked
read wrote a 'pii_read' event (petition ids and field names, no values); a
department's masked read wrote none, nor did a read of a case without
caller data; fenboctl --unmask wrote one as fenboctl:<OS user>.

Retention, with two workers sharing the job: with retention_days = 0
nothing is touched; with the default (365, reloaded by SIGHUP), cases
closed long ago (their updated_at moved
back in SQL) are anonymised — masked name and phone, raw without the caller,
openid, e-mail, phone, device, account and sender, an idempotency key that
named a device replaced by a digest — with an 'anonymised' event, while
open cases and a case closed today keep everything; the audit chain still verifies, a read of an
anonymised case records no pii_read, and the resident can still prove a
hotline petition with its follow-up code."""

import email.utils
import getpass
import json
import os
import pwd
import re
import signal
import time
import urllib.parse
from email.mime.text import MIMEText

from harness import Checks, Cluster, log, main, order

# Distinctive mobile numbers, one per source; none occurs anywhere else.
HOTLINE_A = ("赵大明", "13571113579")   # replied, stays open: the callback desk's
HOTLINE_B = ("钱小红", "13691357924")   # closed by the resident's rating, then old
HOTLINE_C = ("孙立", "15024681357")     # dispatched, stays open
OPEN311 = {"first_name": "明", "last_name": "周", "phone": "18712345670",
           "email": "zhou.ming.pii@example.com", "device_id": "itest-pii-device-01"}
OPEN311_ACCOUNT = "18800001111"         # account_id, sent with an Idempotency-Key
MAIL_FROM = ("吴芳", "13922223333@139.com")
OPENID = "oPII-itest-openid-0001"
PHONES = [HOTLINE_A[1], HOTLINE_B[1], HOTLINE_C[1], OPEN311["phone"], OPEN311_ACCOUNT,
          MAIL_FROM[1].split("@")[0]]
NAMES = [HOTLINE_A[0], HOTLINE_B[0], HOTLINE_C[0], "周明", MAIL_FROM[0]]

# Any mainland mobile number standing alone (not inside a longer run of
# letters or digits: hashes, microsecond times).
MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")

WORKER_READS = ["/api/v1/cases", "/api/v1/cases?status=replied", "/api/v1/cases?pending=return",
                "/api/v1/stats", "/api/v1/stats?by=district", "/api/v1/stats?by=street",
                "/api/v1/stats/daily", "/api/v1/overdue", "/api/v1/callbacks?all=1",
                "/api/v1/callbacks?all=1&kind=rating_request", "/api/v1/hotspots",
                "/dashboard", "/metrics", "/healthz"]

_seq = [0]


class PiiCluster(Cluster):
    """A cluster whose intake also reads a Maildir (made by the harness during
    setup, so the [mailbox] section is added when the INI is written)."""

    def write_ini(self, path=None, extra=None):
        self.settings.setdefault("mailbox", {}).update({"maildir": self.maildir, "scan_s": "1"})
        super().write_ini(path, extra)


def mobiles_in(text):
    """The mobile numbers in text: any standing alone, and ours anywhere."""
    found = set(MOBILE_RE.findall(text))
    found.update(p for p in PHONES if p in text)
    return found


def as_text(body):
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray)):
        return body.decode("utf-8", "replace")
    if isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False)


def multipart(fields):
    """multipart/form-data of [(name, bytes, content type)] → (body, content type)."""
    boundary = "pii-itest-boundary-7d1f"
    out = b""
    for name, data, ctype in fields:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n"
                "Content-Type: %s\r\n\r\n" % (boundary, name, ctype)).encode() + data + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return out, "multipart/form-data; boundary=" + boundary


def run():
    with PiiCluster("personal_data", settings={"general": {"log_level": "debug"}}) as c:
        ck = Checks()
        op, adm, sup = c.tokens["operator"], c.tokens["admin"], c.tokens["supervisor"]
        dept = c.dept_tokens
        answers = []  # (who, what, body text): every answer of the run

        def http(who, method, path, port=None, token=None, body=None, headers=None):
            st, b = c.http(method, path, body=body, headers=headers, port=port, token=token)
            answers.append((who, "%s %s" % (method, path), as_text(b)))
            return st, b

        def worker(who, token, method, path, body=None):
            return http(who, method, path, port=c.worker_port, token=token, body=body)

        # ---- petitions by every channel ------------------------------------
        tnos = {}
        for key, (name, phone), content, extra in (
                ("A", HOTLINE_A, "解放路菜市场门口流动摊贩占道经营，影响行人通行。",
                 {"category": "010101", "callback": True}),
                ("B", HOTLINE_B, "幸福小区门口垃圾堆放多日无人清理，气味很大。",
                 {"category": "010101"}),
                ("C", HOTLINE_C, "人民路公交站台顶棚破损漏雨，候车乘客淋雨。", {})):
            _seq[0] += 1
            o = order("PII-%d-%d" % (os.getpid(), _seq[0]), content, **extra)
            o["caller"] = {"name": name, "phone": phone}
            st, b = http("hotline", "POST", "/api/v1/hotline/orders", body=o,
                         token=c.tokens["hotline"])
            assert st == 202, "hotline order %s: %s %r" % (key, st, b)
            tnos[key] = b["tracking_no"]

        report = {"openid": OPENID, "content": "小区门口井盖缺失，晚上很危险，请尽快处理。"}
        body, ctype = multipart([("report", json.dumps(report, ensure_ascii=False).encode(),
                                  "application/json")])
        st, b = http("miniapp", "POST", "/api/v1/miniapp/reports", body=body,
                     token=c.tokens["miniapp"],
                     headers={"Content-Type": ctype, "Idempotency-Key": "pii-miniapp-1"})
        assert st == 202, "mini-program report: %s %r" % (st, b)
        tnos["M"] = b["tracking_no"]

        form = {"api_key": c.tokens["open311"], "jurisdiction_id": "binjiang.example.gov.cn",
                "service_code": "030101", "lat": "30.2105", "long": "120.1203",
                "description": "滨江路人行道塌陷一个大坑，晚上很危险。"}
        form.update(OPEN311)
        st, b = http("open311", "POST", "/open311/v2/requests.json",
                     body=urllib.parse.urlencode(form),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st in (200, 201, 202), "Open311 POST: %s %r" % (st, b)
        tnos["O"] = b[0]["service_request_id"]
        form2 = {k: v for k, v in form.items()
                 if k not in ("device_id", "phone", "email", "first_name", "last_name")}
        form2.update({"account_id": OPEN311_ACCOUNT, "description": "江城路路灯不亮已经一周。"})
        st, b = http("open311", "POST", "/open311/v2/requests.json",
                     body=urllib.parse.urlencode(form2),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Idempotency-Key": "pii-open311-account-1"})
        assert st in (200, 201, 202), "Open311 POST with account_id: %s %r" % (st, b)
        tnos["O2"] = b[0]["service_request_id"]

        msg = MIMEText("公园东侧步道的路灯坏了两个星期，晚上散步很不安全，请尽快维修。", "plain", "utf-8")
        msg["From"] = email.utils.formataddr(MAIL_FROM)
        msg["To"] = "12345@binjiang.example.gov.cn"
        msg["Subject"] = "关于公园路灯损坏的反映"
        msg["Message-ID"] = "<pii-itest-%d@itest.example.cn>" % os.getpid()
        msg["Date"] = email.utils.formatdate(localtime=True)
        name = "%d.M1P%d.pii-itest" % (int(time.time()), os.getpid())
        with open(os.path.join(c.maildir, "tmp", name), "wb") as f:
            f.write(msg.as_bytes())
        os.rename(os.path.join(c.maildir, "tmp", name), os.path.join(c.maildir, "new", name))
        mail_tno = c.wait_until(lambda: c.sql_value(
            "SELECT tracking_no FROM petitions WHERE channel = 'mailbox'"), 60, "the mail stored")
        tnos["E"] = mail_tno

        def case_of(tno):
            return c.sql_value("SELECT case_id FROM petitions WHERE tracking_no = :'t'", t=tno)

        cases = {k: c.wait_until(lambda t=t: case_of(t), 60, "petition %s dispatched" % t)
                 for k, t in tnos.items()}
        pid = {k: c.sql_value("SELECT id FROM petitions WHERE tracking_no = :'t'", t=t)
               for k, t in tnos.items()}
        log("cases: %s" % cases)
        stored = c.sql_value("SELECT caller_phone FROM petitions WHERE tracking_no = :'t'",
                             t=tnos["A"])
        ck.check(stored == HOTLINE_A[1], "the hotline caller's phone is stored: %r" % stored)

        def lead(k):
            return c.sql_value("SELECT department_code FROM cases WHERE id = :'id'", id=cases[k])

        def act(k, action, token, body=None):
            return worker(action, token, "POST", "/api/v1/cases/%d/%s" % (cases[k], action),
                          body={} if body is None else body)

        # A: replied (the callback desk's list); B: replied and rated → closed.
        for k in ("A", "B"):
            d = lead(k)
            assert d, "case %s was not dispatched to a department" % k
            st, b = act(k, "accept", dept[d])
            ck.check(st == 200, "accept %s: %s %r" % (k, st, b))
            st, b = act(k, "reply", dept[d], {"result": "已安排清理并加强巡查。", "resolved": True})
            ck.check(st == 200, "reply %s: %s %r" % (k, st, b))
        st, b = http("hotline", "POST", "/api/v1/petitions/%s/rating" % tnos["B"],
                     token=c.tokens["hotline"],
                     body={"proof": c.follow_up_code(tnos["B"]), "resolved": True,
                           "satisfaction": "satisfied"})
        ck.check(st == 200, "rating B: %s %r" % (st, b))
        # The others close at the desk (from manual or from dispatched → reply).
        for k in ("M", "O", "E", "O2"):
            status = c.sql_value("SELECT status FROM cases WHERE id = :'id'", id=cases[k])
            if status != "manual":
                d = lead(k)
                act(k, "accept", dept[d])
                act(k, "reply", dept[d], {"result": "已处理。", "resolved": True})
            st, b = act(k, "close", op)
            ck.check(st == 200, "close %s (was %s): %s %r" % (k, status, st, b))
        c.wait_until(lambda: c.sql_value("SELECT status FROM cases WHERE id = :'id'",
                                         id=cases["B"]) == "closed", 30, "case B closed")
        # The callback desk's task for A (the timers' sweep schedules it).
        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM callback_tasks"
                                         " WHERE case_id = :'id' AND kind = 'phone'",
                                         id=cases["A"]), 30, "A's callback task")

        def pii_reads(k=None):
            q = "SELECT actor, data FROM case_events WHERE type = 'pii_read'"
            if k is None:
                return c.sql(q + " ORDER BY id")
            return c.sql(q + " AND case_id = :'id' ORDER BY id", id=cases[k])

        # ---- every read, every role ------------------------------------------
        def read_everything(phase):
            readers = [("operator", op), ("admin", adm), ("supervisor", sup)]
            readers += [("dept:" + d, t) for d, t in sorted(dept.items())]
            for who, tok in readers:
                for path in WORKER_READS:
                    worker(who, tok, "GET", path)
                for k in sorted(cases):
                    worker(who, tok, "GET", "/api/v1/cases/%d" % cases[k])
            for who in ("hotline", "miniapp", "open311", "mailbox", "operator", "supervisor",
                        "admin"):
                for k, t in sorted(tnos.items()):
                    http(who, "GET", "/api/v1/petitions/%s" % t, token=c.tokens[who])
            proofs = {k: c.follow_up_code(tnos[k]) for k in ("A", "B", "C", "M", "O", "E")}
            proofs["O2"] = "0000"
            for k, proof in proofs.items():
                http("resident", "GET", "/api/v1/petitions/%s?proof=%s"
                     % (tnos[k], urllib.parse.quote(proof)), token=c.tokens["hotline"])
            for fmt in ("json", "xml"):
                for path in ("discovery", "services", "requests", "requests?status=closed"):
                    p, _, q = path.partition("?")
                    http("public", "GET", "/open311/v2/%s.%s%s" % (p, fmt, "?" + q if q else ""))
                for k in ("O", "O2", "A", "E", "M"):
                    http("public", "GET", "/open311/v2/requests/%s.%s" % (tnos[k], fmt))
                    http("public", "GET", "/open311/v2/tokens/%s.%s" % (tnos[k], fmt))
            for path in ("/metrics", "/healthz"):
                http("public", "GET", path)
            log("%s: %d answers so far" % (phase, len(answers)))

        before = len(pii_reads())
        d_a = lead("A")
        st, b = worker("dept:" + d_a, dept[d_a], "GET", "/api/v1/cases/%d" % cases["A"])
        ck.check(st == 200, "the department reads its case: %s %r" % (st, b))
        caller = (b.get("petitions") or [{}])[0].get("caller", {}) if st == 200 else {}
        ck.check(caller.get("phone") == "135****3579" and caller.get("name") == "赵*",
                 "the department sees the caller masked: %r" % caller)
        ck.check(len(pii_reads()) == before, "a masked read records no pii_read")

        st, b = worker("operator", op, "GET", "/api/v1/cases/%d" % cases["A"])
        caller = (b.get("petitions") or [{}])[0].get("caller", {}) if st == 200 else {}
        ck.check(caller.get("phone") == HOTLINE_A[1] and caller.get("name") == HOTLINE_A[0],
                 "the operator sees the caller: %r" % caller)
        ev = pii_reads("A")
        op_id = c.sql_value("SELECT id FROM api_tokens WHERE name = 'itest-operator'")
        ck.check(len(ev) == 1 and ev[0]["actor"] == "operator:%s" % op_id
                 and ev[0]["data"] == {"petitions": [pid["A"]],
                                       "fields": ["caller_phone", "caller_name"]},
                 "the operator's read is on record: %r" % ev)
        ck.check(not any(p in json.dumps(ev, ensure_ascii=False) for p in PHONES),
                 "the pii_read event holds no phone")
        worker("operator", op, "GET", "/api/v1/cases/%d" % cases["M"])
        ck.check(pii_reads("M") == [],
                 "reading a case without caller data records nothing: %r" % pii_reads("M"))

        read_everything("open cases")
        ck.check(len(pii_reads("A")) > 1 and {e["actor"].split(":")[0] for e in pii_reads()}
                 == {"operator", "admin"},
                 "every unmasked read, and only those, is on record: %r"
                 % sorted({e["actor"] for e in pii_reads()}))

        # ---- fenboctl ----------------------------------------------------------
        ctl_outputs = []
        for k in ("A", "O", "E"):
            out = c.fenboctl("case", "show", cases[k])
            ctl_outputs.append(("fenboctl case show %s" % k, out))
        out = c.fenboctl("case", "show", tnos["A"], "--unmask")
        ck.check(HOTLINE_A[1] in out and HOTLINE_A[0] in out,
                 "fenboctl case show --unmask shows the caller")
        try:
            osuser = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            osuser = getpass.getuser()
        ev = [e for e in pii_reads("A") if e["actor"].startswith("fenboctl:")]
        ck.check(len(ev) == 1 and ev[0]["actor"] == "fenboctl:" + osuser,
                 "fenboctl's unmasked read is on record as fenboctl:%s: %r" % (osuser, ev))
        n = len(pii_reads())
        ctl_outputs.append(("fenboctl stats", c.fenboctl("stats")))
        ck.check(len(pii_reads()) == n, "fenboctl's masked reads record nothing")

        # ---- retention -----------------------------------------------------------
        closed = ["B", "M", "O", "E"]
        for k in closed:
            ck.check(c.sql_value("SELECT status FROM cases WHERE id = :'id'", id=cases[k])
                     == "closed", "case %s is closed" % k)
        # Two workers share the job (FOR UPDATE SKIP LOCKED): each case once.
        w2, w2_port = c.add_worker("fenbo-worker-2")
        workers = [(c.daemons["worker"], c.ini, {}),
                   (w2, os.path.join(c.tmp, "fenbo-worker-2.ini"), {"port": w2_port})]

        def hup_workers():
            for d, _, _ in workers:
                d.proc.send_signal(signal.SIGHUP)

        def reload_worker(days, was):
            """Sets [worker] retention_days (None: the default) and waits until
            both workers have taken it."""
            for d, ini, own in workers:
                kv = dict(own)
                if days is not None:
                    kv["retention_days"] = days
                c.write_ini(path=ini, extra={"worker": kv})
            mark = "event=retention_reloaded retention_days=%d was=%d" % (
                365 if days is None else days, was)
            hup_workers()
            for d, _, _ in workers:
                c.wait_until(lambda d=d: mark in d.log_text(), 20, "%s's %s" % (d.name, mark))

        # retention_days = 0 keeps everything, however old.
        reload_worker(0, 365)
        # Closed 400 days ago (a closed case's updated_at is when it closed);
        # O2 closed just now.
        c.psql("UPDATE cases SET updated_at = now() - interval '400 days'"
               " WHERE id = ANY(:'ids'::bigint[]);",
               {"ids": "{%s}" % ",".join(str(cases[k]) for k in closed)})
        hup_workers()
        time.sleep(2)
        ck.check(c.sql_value("SELECT count(*) FROM petitions WHERE anonymised_at IS NOT NULL")
                 == 0, "retention_days = 0 anonymises nothing")
        # The default (365 days), reloaded: the pass runs at once.
        reload_worker(None, 0)

        def anonymised(k):
            return c.sql_value("SELECT anonymised_at IS NOT NULL FROM petitions"
                               " WHERE id = :'id'", id=pid[k])

        c.wait_until(lambda: all(anonymised(k) for k in closed), 30,
                     "the old closed cases anonymised")
        rows = {r["k"]: r for r in c.sql(
            "SELECT x.k, p.caller_name, p.caller_phone, p.raw, p.idem_key, p.anonymised_at"
            " FROM petitions p JOIN (SELECT * FROM json_each_text(:'m'::json)) x(k, id)"
            " ON p.id = x.id::bigint", m=json.dumps(pid))}
        b_row = rows["B"]
        ck.check(b_row["caller_phone"] == "136****7924" and b_row["caller_name"] == "钱*",
                 "B's caller masked: %r %r" % (b_row["caller_name"], b_row["caller_phone"]))
        ck.check("caller" not in b_row["raw"] and "anonymised_at" in b_row["raw"],
                 "B's raw without the caller: %r" % b_row["raw"])
        o_row = rows["O"]
        ck.check(not any(f in o_row["raw"] for f in ("phone", "email", "device_id",
                                                     "first_name", "last_name"))
                 and o_row["raw"].get("description"),
                 "the Open311 raw keeps the report, not the person: %r" % o_row["raw"])
        ck.check(o_row["caller_phone"] == "187****5670", "Open311 phone masked: %r"
                 % o_row["caller_phone"])
        ck.check(o_row["idem_key"].startswith("sha256:") and OPEN311["device_id"]
                 not in o_row["idem_key"], "the Open311 key replaced: %r" % o_row["idem_key"])
        ck.check("openid" not in rows["M"]["raw"]
                 and "openid" not in rows["M"]["raw"].get("report", {}),
                 "the mini-program raw without the openid: %r" % rows["M"]["raw"])
        ck.check("from" not in rows["E"]["raw"] and rows["E"]["caller_name"] == "吴*",
                 "the mail's sender gone: %r %r" % (rows["E"]["caller_name"], rows["E"]["raw"]))
        for k in ("A", "C", "O2"):
            ck.check(rows[k]["anonymised_at"] is None, "case %s untouched" % k)
        ck.check(OPEN311_ACCOUNT in rows["O2"]["idem_key"],
                 "O2, closed today, keeps its key until its time comes")
        ck.check(rows["A"]["caller_phone"] == HOTLINE_A[1] and "caller" in rows["A"]["raw"],
                 "open case A keeps its caller")
        ck.check(rows["C"]["caller_phone"] == HOTLINE_C[1], "open case C keeps its caller")
        for k in closed:
            ev = c.sql("SELECT actor, data FROM case_events WHERE case_id = :'id'"
                       " AND type = 'anonymised'", id=cases[k])
            ck.check(len(ev) == 1 and ev[0]["actor"] == "fenbo-worker"
                     and ev[0]["data"]["petitions"] == [pid[k]],
                     "case %s's 'anonymised' event: %r" % (k, ev))
        for k in ("A", "C", "O2"):
            ck.check(c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'id'"
                                 " AND type = 'anonymised'", id=cases[k]) == 0,
                     "no 'anonymised' event for case %s" % k)
        verify = c.fenboctl("audit", "verify", check=False)
        ck.check(verify.returncode == 0, "the audit chain still verifies: %s"
                 % (verify.stdout + verify.stderr).decode(errors="replace"))

        n = len(pii_reads("B"))
        st, b = worker("operator", op, "GET", "/api/v1/cases/%d" % cases["B"])
        caller = (b.get("petitions") or [{}])[0].get("caller", {}) if st == 200 else {}
        ck.check(caller.get("phone") == "136****7924", "the operator now sees B masked: %r"
                 % caller)
        ck.check(len(pii_reads("B")) == n, "reading an anonymised case records no pii_read")
        st, b = http("resident", "GET", "/api/v1/petitions/%s?proof=%s"
                     % (tnos["B"], c.follow_up_code(tnos["B"])), token=c.tokens["hotline"])
        ck.check(st == 200 and b.get("proven") is True,
                 "the follow-up code still proves B: %s %r" % (st, b))
        # A second pass (another SIGHUP) finds nothing more to do.
        hup_workers()
        read_everything("after retention")
        out = c.fenboctl("case", "show", cases["B"], "--unmask")
        ck.check(HOTLINE_B[1] not in out, "fenboctl --unmask of an anonymised case: masked")
        ctl_outputs.append(("fenboctl case show B --unmask (anonymised)", out))
        ck.check(c.sql_value("SELECT count(*) FROM case_events WHERE type = 'anonymised'")
                 == len(closed), "each case anonymised once, by one of the two workers")

        # ---- the scan: answers ---------------------------------------------------
        allowed_roles = ("operator", "admin")

        def allowed(who, what):
            path = what.split(" ", 1)[1]
            return who in allowed_roles and what.startswith("GET ") and (
                re.fullmatch(r"/api/v1/cases/\d+", path) or path.startswith("/api/v1/callbacks"))

        leaks = []
        seen_allowed = 0
        for who, what, text in answers:
            found = mobiles_in(text)
            if found and allowed(who, what):
                seen_allowed += 1
            elif found:
                leaks.append("%s %s: %s" % (who, what, sorted(found)))
        ck.check(not leaks, "mobile numbers in %d answers: %s" % (len(leaks), leaks[:10]))
        ck.check(seen_allowed > 0, "the scan sees the numbers where they are allowed")
        names = [(who, what) for who, what, text in answers
                 if not allowed(who, what) and any(n in text for n in NAMES)]
        ck.check(not names, "full names in answers: %s" % names[:10])
        log("scanned %d answers (%d with numbers, all of the operator or admin)"
            % (len(answers), seen_allowed))

        for what, out in ctl_outputs:
            found = mobiles_in(out)
            ck.check(not found, "%s prints %s" % (what, sorted(found)))

        # ---- the scan: logs --------------------------------------------------------
        for d in list(c.daemons.values()):
            d.stop()
        logdir = os.path.join(c.tmp, "log")
        files = [os.path.join(logdir, f) for f in sorted(os.listdir(logdir))]
        pglog = os.path.join(c.pg_dir, "log")
        if os.path.isdir(pglog):
            files += [os.path.join(pglog, f) for f in sorted(os.listdir(pglog))]
        total = 0
        for path in files:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            total += len(text.splitlines())
            bad = [line for line in text.splitlines() if mobiles_in(line)
                   or any(n in line for n in NAMES) or OPENID in line
                   or OPEN311["email"] in line or OPEN311["device_id"] in line]
            ck.check(not bad, "%s logs personal data in %d lines, e.g. %s"
                     % (os.path.basename(path), len(bad), bad[:3]))
        ck.check(total > 100, "the logs were read (%d lines)" % total)
        log("scanned %d log lines in %d files" % (total, len(files)))
        ck.finish()


if __name__ == "__main__":
    main(run)
