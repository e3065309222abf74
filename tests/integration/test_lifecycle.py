#!/usr/bin/env python3
"""test_lifecycle — the case lifecycle end to end, against the real daemons.

Hotline orders are dispatched by the rules; then departments and an operator
walk the cases through every legal move of the lifecycle table over the
worker's case API, and residents rate through intake:

  plain      accept, extend (asked, approved; rejected), reply, a satisfied
             rating through intake → the ratings job closes the case; the
             same rating twice → 409
  illegal    reply before accept, accept twice, extend after the deadline,
             a department acting on another's case (404), an operator doing
             a department's move (403), bad bodies (422 naming the field)
  return     return (reason required) → approve → re-dispatched by the rules
             to another department (never the returning one) → returned and
             approved again → the manual queue (GET ?status=manual) → an
             operator assigns it; a return rejected goes back to the
             department
  reopen     an unsatisfied rating → reopened, same department, a new lead
             assignment with new deadlines; signed and replied again; the
             resident cannot rate twice, so the callback desk records the
             second round (an unreached attempt first) → closed
  assist     the lead asks two departments to assist (吹哨); each signs for
             and replies to its part (the case's status does not move); the
             lead replies
  merged     two petitions in one case: the first satisfied rating waits for
             the second, which closes the case
  manual     a case no rule takes is closed by an operator
  two        a second worker joins; a burst of ratings is applied exactly once
             (each rating in one worker's log, each case closed once)

Every state change must be an event with its actor and time."""

import datetime
import itertools
import os
import re
import signal
import time

from harness import Checks, Cluster, Daemon, free_ports, log, main, now_rfc3339, order

_seq = itertools.count(1)


def parse_time(s):
    return datetime.datetime.fromisoformat(s)


class SecondWorker(Daemon):
    """Another fenbo-worker on the same database, with an INI of its own (its
    own HTTP port)."""

    def __init__(self, cluster):
        super().__init__(cluster, "fenbo-worker-2", cluster.worker_bin)
        self.port = free_ports(1)[0]
        self.ini = os.path.join(cluster.tmp, "fenbo-2.ini")
        text = open(cluster.ini).read()
        text = re.sub(r"(?m)^port = %d$" % cluster.worker_port, "port = %d" % self.port, text)
        with open(self.ini, "w") as f:
            f.write(text)

    def start(self):
        ini, self.cluster.ini = self.cluster.ini, self.ini
        try:
            super().start()
        finally:
            self.cluster.ini = ini


def run():
    with Cluster("lifecycle") as c:
        ck = Checks()
        op = c.tokens["operator"]
        dept = c.dept_tokens

        def act(cid, action, token, body=None):
            return c.worker("POST", "/api/v1/cases/%d/%s" % (cid, action), token,
                            body={} if body is None else body)

        def show(cid, token=op):
            st, body = c.worker("GET", "/api/v1/cases/%d" % cid, token)
            assert st == 200, "GET case %d: %s %r" % (cid, st, body)
            return body

        def expect(what, got, status, code=None, field=None):
            st, body = got
            ok = st == status
            err = body.get("error", {}) if isinstance(body, dict) else {}
            if ok and code:
                ok = err.get("code") == code
            if ok and field:
                ok = err.get("field") == field
            ck.check(ok, "%s: expected %s%s%s, got %s %r"
                     % (what, status, " " + code if code else "",
                        " field " + field if field else "", st, body))
            return body

        def submit(content, **extra):
            """Posts an order; returns (case id, tracking number) once dispatched."""
            o = order("LC-%04d" % next(_seq), content, **extra)
            st, body = c.post_order(o)
            assert st == 202, "order %s: %s %r" % (o["order_no"], st, body)
            tno = body["tracking_no"]
            cid = c.wait_until(lambda: c.sql_value(
                "SELECT case_id FROM petitions WHERE tracking_no = :'t'", t=tno),
                60, "petition %s dispatched" % tno)
            return cid, tno

        def status_of(cid):
            return c.sql_value("SELECT status FROM cases WHERE id = :'id'", id=cid)

        def wait_status(cid, want, timeout=20):
            return c.wait_until(lambda: status_of(cid) == want, timeout,
                                "case %d %s (is %s)" % (cid, want, status_of(cid)))

        def rate(tno, satisfaction, resolved=True):
            return c.http("POST", "/api/v1/petitions/%s/rating" % tno,
                          body={"proof": c.follow_up_code(tno), "resolved": resolved,
                                "satisfaction": satisfaction},
                          token=c.tokens["hotline"])

        def events(cid):
            return c.sql("SELECT type, actor, at, data FROM case_events"
                         " WHERE case_id = :'id' ORDER BY id", id=cid)

        def lead_of(cid):
            return c.sql_value("SELECT department_code FROM cases WHERE id = :'id'", id=cid)

        # ---- plain: accept, extend, reply, a satisfied rating closes -------
        cid, tno = submit("解放路菜市场门口流动摊贩占道经营，影响行人通行。", category="010101")
        lead = lead_of(cid)
        ck.check(lead == "chengguan", "plain case went to %r, expected chengguan" % lead)
        other = "jiaotong"
        log("plain case %d → %s" % (cid, lead))

        body = expect("reply before accept", act(cid, "reply", dept[lead],
                      {"result": "已处理", "resolved": True}), 409, "illegal_transition")
        msg = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
        ck.check(msg == "cannot reply a dispatched case; allowed: accept, return",
                 "refusal names the allowed actions: %r" % msg)
        expect("another department accepts", act(cid, "accept", dept[other]), 404, "not_found")
        expect("another department reads", c.worker("GET", "/api/v1/cases/%d" % cid,
                                                     dept[other]), 404)
        expect("operator accepts for the department", act(cid, "accept", op), 403)
        expect("department closes", act(cid, "close", dept[lead]), 403)
        expect("extend before accept", act(cid, "extend", dept[lead], {
            "until": now_rfc3339(), "reason": "x"}), 409, "illegal_transition")
        expect("unknown field", act(cid, "accept", dept[lead], {"notes": "x"}), 422,
               "unknown_field", "notes")
        expect("malformed body", c.worker("POST", "/api/v1/cases/%d/accept" % cid, dept[lead],
                                          body=b"{nope"), 400, "bad_json")
        body = expect("accept", act(cid, "accept", dept[lead], {"note": "已签收"}), 200)
        ck.check(isinstance(body, dict) and body.get("status") == "accepted",
                 "accept answers the case: %r" % body)
        expect("accept twice", act(cid, "accept", dept[lead]), 409, "illegal_transition")

        due = parse_time(show(cid)["reply_due"])
        until = (due + datetime.timedelta(days=2)).isoformat()
        expect("extend without reason", act(cid, "extend", dept[lead], {"until": until}), 422,
               "missing_field", "reason")
        expect("extend to a bad time", act(cid, "extend", dept[lead], {
            "until": "next week", "reason": "需协调"}), 422, "invalid_field", "until")
        expect("extend to before the deadline", act(cid, "extend", dept[lead], {
            "until": (due - datetime.timedelta(hours=1)).isoformat(), "reason": "需协调"}),
            422, "invalid_field", "until")
        expect("approve with nothing pending", act(cid, "extend/approve", op), 409,
               "no_pending_extension")
        expect("extend", act(cid, "extend", dept[lead], {"until": until,
                                                         "reason": "需协调多个摊点统一清理"}), 200)
        expect("extend twice", act(cid, "extend", dept[lead], {
            "until": until, "reason": "再延"}), 409, "extension_pending")
        st, body = c.worker("GET", "/api/v1/cases?pending=extension", op)
        ck.check(st == 200 and [x["id"] for x in body.get("cases", [])] == [cid],
                 "the desk's extension queue: %s %r" % (st, body))
        expect("an unknown queue", c.worker("GET", "/api/v1/cases?pending=nothing", op), 400,
               "invalid", "pending")
        expect("department approves its own extension", act(cid, "extend/approve", dept[lead]),
               403)
        expect("operator approves", act(cid, "extend/approve", op, {"note": "同意"}), 200)
        new_due = parse_time(show(cid)["reply_due"])
        ck.check(new_due == parse_time(until),
                 "reply_due after the approved extension: %s, expected %s" % (new_due, until))
        lead_due = c.sql_value("SELECT reply_due FROM assignments WHERE case_id = :'id'"
                               " AND role = 'lead'", id=cid)
        ck.check(lead_due and parse_time(lead_due) == parse_time(until),
                 "the lead assignment's reply_due follows: %r" % lead_due)
        until2 = (parse_time(until) + datetime.timedelta(days=1)).isoformat()
        expect("extend again", act(cid, "extend", dept[lead], {"until": until2,
                                                               "reason": "还需一天"}), 200)
        expect("operator rejects", act(cid, "extend/reject", op, {"note": "不同意"}), 200)
        ck.check(parse_time(show(cid)["reply_due"]) == parse_time(until),
                 "a rejected extension leaves the deadline")
        exts = show(cid).get("extensions", [])
        ck.check([x["status"] for x in exts] == ["approved", "rejected"],
                 "extensions as the case shows them: %r" % exts)

        expect("reply without result", act(cid, "reply", dept[lead], {"resolved": True}), 422,
               "missing_field", "result")
        expect("reply with a blank result", act(cid, "reply", dept[lead], {
            "result": "  ", "resolved": True}), 422, "invalid_field", "result")
        expect("reply", act(cid, "reply", dept[lead],
                            {"result": "已清理占道摊贩并加强巡查。", "resolved": True}), 200)
        expect("reply twice", act(cid, "reply", dept[lead], {"result": "x", "resolved": True}),
               409, "illegal_transition")
        expect("close before the rating, by the department", act(cid, "close", dept[lead]), 403)
        expect("rate", rate(tno, "satisfied"), 200)
        expect("rate twice", rate(tno, "satisfied"), 409, "already_rated")
        wait_status(cid, "closed")
        ev = events(cid)
        types = [e["type"] for e in ev]
        want = ["dispatched", "accepted", "extension_requested", "extension_approved",
                "extension_requested", "extension_rejected", "replied", "rated", "closed"]
        it = iter(types)
        ck.check(all(w in it for w in want), "plain case events %s lack %s" % (types, want))
        last = ev[-1]
        ck.check(last["type"] == "closed" and last["actor"] == "worker"
                 and last["data"].get("reason") == "rated",
                 "the rating's close: %r" % last)
        ck.check(all(e["actor"] and e["at"] for e in ev), "every event has actor and time")
        ck.check(next(e for e in ev if e["type"] == "accepted")["actor"] == "dept:" + lead,
                 "accept's actor")
        ck.check(next(e for e in ev if e["type"] == "extension_approved")["actor"]
                 .startswith("operator:"), "approval's actor")
        ck.check(c.sql_value("SELECT count(*) FROM ratings WHERE case_id = :'id'"
                             " AND processed_at IS NULL", id=cid) == 0,
                 "the rating is marked processed")
        expect("rate a closed case", rate(tno, "unsatisfied"), 409)
        expect("close a closed case", act(cid, "close", op), 409, "illegal_transition")

        # ---- extend after the deadline ------------------------------------
        cid2, _ = submit("中山路口公交站台顶棚破损漏雨，等车乘客淋雨。", category="030201")
        lead2 = lead_of(cid2)
        log("late case %d → %s" % (cid2, lead2))
        # A return the desk rejects: back to the department, which must sign.
        expect("return without reason", act(cid2, "return", dept[lead2]), 422,
               "missing_field", "reason")
        expect("return with a blank reason", act(cid2, "return", dept[lead2], {"reason": " "}),
               422, "invalid_field", "reason")
        expect("return", act(cid2, "return", dept[lead2], {"reason": "站台归交通局管理"}), 200)
        expect("accept a returned case", act(cid2, "accept", dept[lead2]), 409,
               "illegal_transition")
        expect("reject the return", act(cid2, "return/reject", op,
                                        {"note": "公交站台设施由公交公司维护"}), 200)
        ck.check(status_of(cid2) == "dispatched" and lead_of(cid2) == lead2,
                 "a rejected return goes back to %s: %s %s" % (lead2, status_of(cid2),
                                                              lead_of(cid2)))
        expect("reject again", act(cid2, "return/reject", op), 409, "illegal_transition")
        expect("accept after the rejection", act(cid2, "accept", dept[lead2]), 200)
        c.psql("UPDATE cases SET reply_due = now() - interval '1 hour' WHERE id = %d" % cid2)
        expect("extend after the deadline", act(cid2, "extend", dept[lead2], {
            "until": (datetime.datetime.now(datetime.timezone.utc)
                      + datetime.timedelta(days=3)).isoformat(),
            "reason": "来不及了"}), 409, "deadline_passed")

        # ---- return → re-dispatch → return → manual → assign ---------------
        cid3, _ = submit("东风路人行道有人摆摊占道经营，旁边道路破损。", category="010101")
        first = lead_of(cid3)
        log("returned case %d → %s" % (cid3, first))
        expect("return", act(cid3, "return", dept[first], {"reason": "道路破损不属城管职责"}), 200)
        ck.check(status_of(cid3) == "returned", "status after return: %s" % status_of(cid3))
        st, body = c.worker("GET", "/api/v1/cases?pending=return", op)
        ck.check(st == 200 and [x["id"] for x in body.get("cases", [])] == [cid3],
                 "the desk's return queue: %s %r" % (st, body))
        expect("approve", act(cid3, "return/approve", op, {"note": "同意退单"}), 200)
        second = lead_of(cid3)
        ck.check(status_of(cid3) == "dispatched" and second and second != first,
                 "re-dispatched to %r (status %s), not back to %s"
                 % (second, status_of(cid3), first))
        ck.check(second == "jiaotong", "the rules' next choice is jiaotong, got %r" % second)
        red = [e for e in events(cid3) if e["type"] == "redispatched"]
        ck.check(len(red) == 1 and red[0]["data"].get("excluded") == [first]
                 and red[0]["data"].get("department") == second
                 and red[0]["actor"].startswith("operator:"),
                 "redispatched event: %r" % red)
        ck.check(c.sql_value("SELECT count(*) FROM assignments WHERE case_id = :'id'"
                             " AND department_code = :'d' AND withdrawn_at IS NOT NULL",
                             id=cid3, d=first) == 1,
                 "the returning department's assignment is withdrawn")
        expect("the returning department still reads it", c.worker(
            "GET", "/api/v1/cases/%d" % cid3, dept[first]), 200)
        expect("… but does not act on it", act(cid3, "accept", dept[first]), 403, "forbidden")
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM assignments WHERE case_id = :'id' AND department_code = :'d'"
            " AND delivered_at IS NOT NULL", id=cid3, d=second) == 1, 20,
            "the new assignment delivered")
        expect("second return", act(cid3, "return", dept[second],
                                    {"reason": "摆摊占道不属交通局"}), 200)
        expect("approve again", act(cid3, "return/approve", op), 200)
        ck.check(status_of(cid3) == "manual" and lead_of(cid3) is None,
                 "no rule left: the manual queue (%s, %s)" % (status_of(cid3), lead_of(cid3)))
        ev = events(cid3)
        ck.check(ev[-1]["type"] == "manual"
                 and sorted(ev[-1]["data"].get("excluded", [])) == sorted([first, second]),
                 "manual event: %r" % ev[-1])
        st, body = c.worker("GET", "/api/v1/cases?status=manual", op)
        ck.check(st == 200 and cid3 in [x["id"] for x in body.get("cases", [])],
                 "the manual queue lists case %d: %s %r" % (cid3, st, body))
        expect("accept a manual case", act(cid3, "accept", dept[first]), 403)
        expect("assign to nobody", act(cid3, "assign", op), 422, "missing_field", "department")
        expect("assign to an unknown department", act(cid3, "assign", op,
                                                      {"department": "nosuch"}), 422,
               "invalid_field", "department")
        expect("assign", act(cid3, "assign", op, {"department": "zhujian",
                                                  "note": "人工派至住建"}), 200)
        ck.check(status_of(cid3) == "dispatched" and lead_of(cid3) == "zhujian",
                 "assigned: %s %s" % (status_of(cid3), lead_of(cid3)))
        d = show(cid3)
        ck.check(d.get("accept_due") and d.get("reply_due"), "assigned with deadlines: %r" % d)
        ck.check([r["status"] for r in d.get("returns", [])] == ["approved", "approved"],
                 "returns of the case: %r" % d.get("returns"))
        expect("assign a dispatched case", act(cid3, "assign", op, {"department": "zhujian"}),
               409, "illegal_transition")

        # ---- unsatisfied → reopened → replied again → callback → closed ----
        cid4, tno4 = submit("幸福里小区门口垃圾箱长期无人清运，气味难闻。", category="010105")
        lead4 = lead_of(cid4)
        if lead4 is None:  # no street office without a location: the desk dispatches
            expect("assign", act(cid4, "assign", op, {"department": "chengguan"}), 200)
            lead4 = "chengguan"
        log("reopened case %d → %s" % (cid4, lead4))
        expect("accept", act(cid4, "accept", dept[lead4]), 200)
        expect("reply", act(cid4, "reply", dept[lead4],
                            {"result": "已清运。", "resolved": True}), 200)
        before = show(cid4)
        expect("callback attempt", act(cid4, "callback", op, {
            "reached": False, "comment": "无人接听"}), 200)
        ck.check(status_of(cid4) == "replied", "an unreached callback changes no status")
        expect("callback without satisfaction", act(cid4, "callback", op, {
            "reached": True, "resolved": False}), 422, "missing_field", "satisfaction")
        expect("rate unsatisfied", rate(tno4, "unsatisfied", resolved=False), 200)
        wait_status(cid4, "reopened")
        after = show(cid4)
        ck.check(after["department"] == lead4, "reopened to the same department: %r"
                 % after["department"])
        leads = [a for a in after["assignments"] if a["role"] == "lead"]
        ck.check(len(leads) == 2 and leads[-1]["accepted_at"] is None
                 and leads[-1]["department"] == lead4,
                 "a new lead assignment for the new round: %r" % leads)
        # Computed anew from now (on a weekend both count from Monday 00:00,
        # so the new one may equal the old).
        ck.check(parse_time(after["reply_due"]) >= parse_time(before["reply_due"]),
                 "new reply deadline %s before the old %s"
                 % (after["reply_due"], before["reply_due"]))
        ck.check(leads[-1]["reply_due"] and parse_time(leads[-1]["reply_due"])
                 == parse_time(after["reply_due"]), "the round's deadline is the case's")
        reo = [e for e in events(cid4) if e["type"] == "reopened"]
        ck.check(len(reo) == 1 and reo[0]["actor"] == "worker"
                 and reo[0]["data"].get("department") == lead4
                 and parse_time(reo[0]["data"].get("reply_due"))
                 == parse_time(after["reply_due"]), "reopened event: %r" % reo)
        expect("reply a reopened case unsigned", act(cid4, "reply", dept[lead4], {
            "result": "x", "resolved": True}), 409, "illegal_transition")
        expect("accept again", act(cid4, "accept", dept[lead4]), 200)
        expect("reply again", act(cid4, "reply", dept[lead4],
                                  {"result": "已安排每日清运两次。", "resolved": True}), 200)
        expect("the resident rates twice", rate(tno4, "satisfied"), 409, "already_rated")
        body = expect("callback, satisfied", act(cid4, "callback", op, {
            "reached": True, "resolved": True, "satisfaction": "basically_satisfied",
            "comment": "基本满意"}), 200)
        ck.check(isinstance(body, dict) and body.get("status") == "closed",
                 "the callback closes at once: %r" % body)
        r = c.sql("SELECT source, petition_id, satisfaction, processed_at FROM ratings"
                  " WHERE case_id = :'id' ORDER BY id", id=cid4)
        ck.check(len(r) == 2 and r[1]["source"] == "callback" and r[1]["petition_id"] is None
                 and r[1]["processed_at"], "the callback's rating: %r" % r)
        types = [e["type"] for e in events(cid4)]
        want = ["accepted", "replied", "callback_attempted", "rated", "reopened", "accepted",
                "replied", "callback_recorded", "closed"]
        it = iter(types)
        ck.check(all(w in it for w in want), "reopened case events %s lack %s" % (types, want))

        # ---- assist: two departments, each its part ------------------------
        cid5, _ = submit("南湖公园湖边绿化带树木倒伏压坏护栏。", category="0104")
        lead5 = lead_of(cid5)
        helpers = [d for d in ("shuiwu", "zhujian") if d != lead5][:2]
        log("assisted case %d → %s, assisted by %s" % (cid5, lead5, helpers))
        expect("assist before accept", act(cid5, "assist", dept[lead5], {
            "departments": helpers}), 409, "illegal_transition")
        expect("accept", act(cid5, "accept", dept[lead5]), 200)
        expect("assist itself", act(cid5, "assist", dept[lead5], {
            "departments": [lead5]}), 422, "invalid_field", "departments")
        expect("assist nobody", act(cid5, "assist", dept[lead5], {"departments": []}), 422,
               "invalid_field", "departments")
        expect("assist an unknown department", act(cid5, "assist", dept[lead5], {
            "departments": ["nosuch"]}), 422, "invalid_field", "departments")
        expect("a helper before it was asked", act(cid5, "accept", dept[helpers[0]]), 404)
        expect("assist", act(cid5, "assist", dept[lead5], {
            "departments": helpers, "note": "请水务、住建协助"}), 200)
        expect("assist the same again", act(cid5, "assist", dept[lead5], {
            "departments": [helpers[0]]}), 409, "already_assisting")
        h1, h2 = helpers
        expect("helper replies before signing", act(cid5, "reply", dept[h1], {
            "result": "x", "resolved": True}), 409, "illegal_transition")
        expect("helper returns the case", act(cid5, "return", dept[h1], {"reason": "x"}), 403)
        expect("helper 1 accepts its part", act(cid5, "accept", dept[h1]), 200)
        expect("helper 1 accepts twice", act(cid5, "accept", dept[h1]), 409,
               "illegal_transition")
        expect("helper 2 accepts its part", act(cid5, "accept", dept[h2]), 200)
        ck.check(status_of(cid5) == "accepted", "parts do not move the case")
        expect("helper 1 replies its part", act(cid5, "reply", dept[h1], {
            "result": "护栏已由住建修复", "resolved": True}), 200)
        expect("helper 2 replies its part", act(cid5, "reply", dept[h2], {
            "result": "排水无影响", "resolved": True}), 200)
        ck.check(status_of(cid5) == "accepted", "replied parts do not move the case either")
        expect("helper 1 replies twice", act(cid5, "reply", dept[h1], {
            "result": "x", "resolved": True}), 409, "illegal_transition")
        expect("lead replies", act(cid5, "reply", dept[lead5], {
            "result": "倒伏树木已清理，护栏已修复。", "resolved": True}), 200)
        ev = events(cid5)
        parts = [(e["type"], e["actor"]) for e in ev if e["type"].startswith("assist_")]
        ck.check(parts == [("assist_requested", "dept:" + lead5),
                           ("assist_accepted", "dept:" + h1), ("assist_accepted", "dept:" + h2),
                           ("assist_replied", "dept:" + h1), ("assist_replied", "dept:" + h2)],
                 "assist events: %r" % parts)
        rep = [e for e in ev if e["type"] == "replied"]
        ck.check(len(rep) == 1 and "assists_unanswered" not in rep[0]["data"],
                 "the lead's reply: %r" % rep)
        a = c.sql("SELECT department_code, accepted_at IS NOT NULL AS acc,"
                  " replied_at IS NOT NULL AS rep FROM assignments WHERE case_id = :'id'"
                  " AND role = 'assist' ORDER BY id", id=cid5)
        ck.check([(x["department_code"], x["acc"], x["rep"]) for x in a]
                 == [(h1, True, True), (h2, True, True)], "assist parts: %r" % a)
        expect("operator closes the replied case", act(cid5, "close", op, {
            "reason": "居民表示无需回访"}), 200)
        ck.check(status_of(cid5) == "closed", "closed by the desk")

        # ---- merged: the first satisfied rating waits for the second ------
        loc = {"lat": 30.253162, "lng": 120.19538, "crs": "wgs84"}
        cid6, tno6 = submit("白沙路52号对面的垃圾桶满了好几天没有人来清运", category="010103",
                            location=loc)
        cid6b, tno6b = submit("白沙路52号对面垃圾桶满了好几天都没有人来清运", category="010103",
                              location=loc)
        if cid6b != cid6:
            log("the two petitions were not merged (%d, %d): merged subtest skipped"
                % (cid6, cid6b))
        else:
            lead6 = lead_of(cid6)
            if lead6 is None:
                expect("assign", act(cid6, "assign", op, {"department": "chengguan"}), 200)
                lead6 = "chengguan"
            expect("accept", act(cid6, "accept", dept[lead6]), 200)
            expect("reply", act(cid6, "reply", dept[lead6], {"result": "已清运",
                                                             "resolved": True}), 200)
            expect("first resident rates", rate(tno6, "satisfied"), 200)
            c.wait_until(lambda: c.sql_value(
                "SELECT count(*) FROM ratings WHERE case_id = :'id' AND processed_at IS NULL",
                id=cid6) == 0, 20, "the first rating processed")
            ck.check(status_of(cid6) == "rated", "waits for the second petitioner: %s"
                     % status_of(cid6))
            expect("second resident rates", rate(tno6b, "basically_satisfied"), 200)
            wait_status(cid6, "closed")

        # ---- manual: nothing takes it, the desk closes it -------------------
        cid7, _ = submit("请问市民卡在哪里可以补办", kind="consult")
        ck.check(status_of(cid7) == "manual", "no rule: manual (%s)" % status_of(cid7))
        if status_of(cid7) == "manual":
            expect("reply a manual case", act(cid7, "reply", op, {"result": "x",
                                                                  "resolved": True}), 403)
            body = expect("supervisor may not close", act(cid7, "close",
                                                          c.tokens["supervisor"]), 403)
            expect("close", act(cid7, "close", op, {"reason": "咨询类，已当场答复"}), 200)
            ck.check(status_of(cid7) == "closed", "manual case closed")

        # ---- the detail names what the caller may do next -------------------
        d = show(cid2, dept[lead2])
        ck.check(d.get("actions") == ["assist", "extend", "reply"],
                 "actions offered to the lead: %r" % d.get("actions"))
        d = show(cid2, op)
        ck.check(d.get("actions") == ["approve_extension", "reject_extension"],
                 "actions offered to the desk: %r" % d.get("actions"))

        # ---- two workers: each rating applied exactly once ------------------
        w2 = SecondWorker(c)
        c.daemons["worker2"] = w2  # stopped (and its log checked) at teardown
        w2.start()
        c.wait_until(lambda: c.healthz(w2.port), 30, "the second worker")
        burst = []
        for i in range(12):
            cid, tno = submit("第%d个测试：园林绿化带树枝遮挡路灯需要修剪。" % i, category="0104")
            ld = lead_of(cid)
            ok = (act(cid, "accept", dept[ld])[0] == 200 and act(cid, "reply", dept[ld], {
                "result": "已修剪", "resolved": True})[0] == 200)
            ck.check(ok, "burst case %d accepted and replied" % cid)
            burst.append((cid, tno))
        first_rating = c.sql_value("SELECT coalesce(max(id), 0) + 1 FROM ratings")
        # Both workers paused while the ratings arrive, then woken together:
        # their overdue timers fire at once and they race for the same rows.
        workers = (c.daemons["worker"], w2)
        for d in workers:
            os.kill(d.pid(), signal.SIGSTOP)
        try:
            for cid, tno in burst:
                expect("burst rating", rate(tno, "satisfied"), 200)
            time.sleep(2.5)  # past both timers' period
        finally:
            for d in workers:
                os.kill(d.pid(), signal.SIGCONT)
        for cid, _ in burst:
            wait_status(cid, "closed", 30)
        ids = [r["id"] for r in c.sql("SELECT id FROM ratings WHERE id >= :'f' ORDER BY id",
                                      f=first_rating)]
        logs = c.daemons["worker"].log_text() + w2.log_text()
        applied = re.findall(r"event=rating_applied rating_id=(\d+) ", logs)
        for rid in ids:
            ck.check(applied.count(str(rid)) == 1, "rating %d applied %d times"
                     % (rid, applied.count(str(rid))))
        by_worker = [len(re.findall(r"event=rating_applied", d.log_text())) for d in workers]
        log("ratings applied by the two workers: %s" % by_worker)
        for cid, _ in burst:
            n = c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'id'"
                            " AND type = 'closed'", id=cid)
            ck.check(n == 1, "case %d closed %s times" % (cid, n))

        # ---- every lifecycle event has an actor of the known kinds ----------
        bad = c.sql("SELECT id, type, actor FROM case_events WHERE actor !~"
                    " '^(dept:[a-z0-9_-]+|operator:[0-9]+|admin:[0-9]+|worker|fenbo-dispatcher"
                    "|fenbo-worker|resident:[a-z0-9]+)$'")
        ck.check(not bad, "events with odd actors: %r" % bad)
        ck.finish()


if __name__ == "__main__":
    main(run)
