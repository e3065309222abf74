#!/usr/bin/env python3
"""test_grid_flow — the grid's whole path through the public interfaces, with
real daemons (intake, dispatcher, worker) on the demo city:

- a grid worker's report (POST /api/v1/grid/reports, multipart as the
  mini-program's) at a point outside its grid: 403, nothing written; without
  a place: 422; "resolved_on_site" without a photo: 422; a channel token: 403;
- fixed on the spot (with a photo): a case closed at once, found by the grid,
  solved on site, its events (solved_on_site, closed) in the worker's name,
  no department's assignment; its retry answers 200 with the same number;
- the place from a photo's EXIF GPS: inside the grid taken, elsewhere 403;
- not fixed: dispatched by the rules (channel grid); the department signs
  and replies "resolved": a verification task (核查) for that grid, due in
  [grid] verify_hours working hours, and the callback waits for it;
- another grid's worker finds no such task (404, and an empty list); the
  grid's worker confirms it (JSON): the case stays replied and goes on;
- a second case: a rejection without a photo is refused (422); with a reason
  and a photo (multipart) the case is reopened to the same department;
- an overdue verification is escalated to the street office by the timers,
  and the street office's list (GET /api/v1/street) shows the grid's
  reports and that verification;
- the street office 吹哨 on a case in its street that a city bureau leads
  (its departments join as assists); another street's office cannot;
- GET /api/v1/stats?by=grid and ?by=street carry the grid's figures."""

import json
import os
import sys
import time

from harness import SOURCE_DIR, Checks, Cluster, CurlForm, log, main, order

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "fixtures", "photos"))
import make_photos  # noqa: E402  (test data built with the standard library)

GRID_A = "339901001001001"   # lng 120.10-120.12, lat 30.20-30.21
GRID_B = "339901001001002"
STREET = "339901001"
STREET_OFFICE = "jd_jiangcheng"
POINT_A1 = (30.2030, 120.1030)
POINT_A2 = (30.2075, 120.1170)
POINT_A3 = (30.2050, 120.1100)
POINT_B = (30.2050, 120.1300)


class Uploads:
    def __init__(self, c):
        self.form = CurlForm(c, "grid-upload")

    def post(self, url, token, parts, key=None):
        """parts: [(name, bytes, type)] as multipart/form-data."""
        headers = ["Authorization: Bearer " + token]
        if key:
            headers.append("Idempotency-Key: " + key)
        return self.form.post(url, parts, headers)


def photo(seed):
    return ("photo", make_photos.jpeg(b"grid flow %s %f" % (seed.encode(), time.time())),
            "image/jpeg")


def report_part(content, point=None, **extra):
    r = {"content": content}
    if point:
        r["location"] = {"lat": point[0], "lng": point[1], "crs": "wgs84"}
    r.update(extra)
    return ("report", json.dumps(r, ensure_ascii=False).encode(), "application/json")


def run():
    with Cluster("grid_flow", settings={"worker": {"timers_s": 1}}) as c:
        ck = Checks()
        up = Uploads(c)
        intake = "http://127.0.0.1:%d/api/v1/grid/reports" % c.intake_port
        tok_a = c.fenboctl("token", "create", "--role", "grid", "--region", GRID_A,
                           "--name", "网格员甲").strip()
        tok_b = c.fenboctl("token", "create", "--role", "grid", "--region", GRID_B,
                           "--name", "网格员乙").strip()
        street = c.create_token("department", department=STREET_OFFICE)
        # The intake's token directory follows the token table within a second.
        time.sleep(1.5)

        # ---- refusals: nothing written -------------------------------------------
        def petitions():
            return c.sql_value("SELECT count(*) FROM petitions")
        before = petitions()
        st, body = up.post(intake, tok_a, [report_part("路边垃圾堆积", POINT_B), photo("b")],
                           key="g-outside")
        ck.check(st == 403 and body["error"]["code"] == "outside_area"
                 and body["error"]["field"] == "location", "outside the grid: %s %r" % (st, body))
        st, body = up.post(intake, tok_a, [report_part("路边垃圾堆积")], key="g-noplace")
        ck.check(st == 422 and body["error"]["field"] == "location",
                 "no place: %s %r" % (st, body))
        st, body = up.post(intake, tok_a, [report_part("路边垃圾已清理", POINT_A1,
                                                       resolved_on_site=True)], key="g-nophoto")
        ck.check(st == 422 and body["error"]["field"] == "photo",
                 "on site without a photo: %s %r" % (st, body))
        st, body = up.post(intake, c.tokens["miniapp"], [report_part("x", POINT_A1)],
                           key="g-miniapp")
        ck.check(st == 403, "a mini-program token on the grid channel: %s %r" % (st, body))
        time.sleep(1)
        ck.check(petitions() == before, "nothing written by the refusals")

        # ---- fixed on the spot -------------------------------------------------------
        st, body = up.post(intake, tok_a, [report_part("人行道上的共享单车乱停放，已挪开摆放整齐",
                                                       POINT_A1, resolved_on_site=True,
                                                       category="010101"),
                                           photo("fixed")], key="g-fixed")
        ck.check(st == 202 and body.get("tracking_no"), "fixed on site: %s %r" % (st, body))
        tn_fixed = body.get("tracking_no")
        row = c.wait_until(lambda: (c.sql("SELECT c.id, c.status, c.found_by, c.solved_on_site,"
                                          " c.grid_region_code, c.department_code, p.channel"
                                          " FROM petitions p JOIN cases c ON c.id = p.case_id"
                                          " WHERE p.tracking_no = :'t'", t=tn_fixed) or [None])[0],
                           30, "the on-site case stored")
        ck.check(row["status"] == "closed" and row["found_by"] == "grid" and row["solved_on_site"]
                 and row["grid_region_code"] == GRID_A and row["department_code"] is None
                 and row["channel"] == "grid", "closed at once, by the grid: %r" % row)
        ev = [(e["type"], e["actor"]) for e in c.sql(
            "SELECT type, actor FROM case_events WHERE case_id = :'c' ORDER BY id", c=row["id"])]
        ck.check(ev == [("solved_on_site", "grid:网格员甲"), ("closed", "grid:网格员甲")],
                 "its events: %r" % ev)
        n = c.sql_value("SELECT count(*) FROM assignments WHERE case_id = :'c'", c=row["id"])
        ck.check(n == 0, "no department's assignment: %r" % n)
        # A retry with the same Idempotency-Key: 200, the same tracking number.
        st, again = up.post(intake, tok_a, [report_part("人行道上的共享单车乱停放，已挪开摆放整齐",
                                                        POINT_A1, resolved_on_site=True,
                                                        category="010101"),
                                            photo("fixed")], key="g-fixed")
        ck.check(st == 200 and again.get("tracking_no") == tn_fixed,
                 "the retry: %s %r" % (st, again))
        # The place from a photo's GPS when the report names none: inside the
        # worker's grid taken, in another grid refused.
        def gps_photo(point):
            return ("photo", make_photos.jpeg(b"grid gps %f" % time.time(), gps=point),
                    "image/jpeg")
        st, body = up.post(intake, tok_a, [report_part("路边窨井盖松动"), gps_photo(POINT_A3)],
                           key="g-exif-in")
        ck.check(st == 202, "a place from EXIF inside the grid: %s %r" % (st, body))
        st, body = up.post(intake, tok_a, [report_part("路边窨井盖松动"), gps_photo(POINT_B)],
                           key="g-exif-out")
        ck.check(st == 403 and body["error"]["code"] == "outside_area",
                 "a place from EXIF in another grid: %s %r" % (st, body))

        # ---- dispatched, replied, verified ---------------------------------------------
        def grid_case(key, text, point):
            st, body = up.post(intake, tok_a, [report_part(text, point, category="010101"),
                                               photo(key)], key=key)
            ck.check(st == 202, "report %s: %s %r" % (key, st, body))
            return c.wait_until(lambda: (c.sql(
                "SELECT c.id, c.status, c.department_code, c.found_by FROM petitions p"
                " JOIN cases c ON c.id = p.case_id WHERE p.tracking_no = :'t'",
                t=body["tracking_no"]) or [None])[0], 30, "case of " + key)

        def dept_token(code):
            return c.dept_tokens.get(code) or c.create_token("department", department=code)

        def reply(case):
            tok = dept_token(case["department_code"])
            st, b = c.worker("POST", "/api/v1/cases/%d/accept" % case["id"], tok, {})
            ck.check(st == 200, "accept %d: %s %r" % (case["id"], st, b))
            st, b = c.worker("POST", "/api/v1/cases/%d/reply" % case["id"], tok,
                             {"result": "已清理占道摊位", "resolved": True})
            ck.check(st == 200, "reply %d: %s %r" % (case["id"], st, b))

        case1 = grid_case("g-case1", "小区门口有流动摊贩占道经营，影响通行", POINT_A1)
        ck.check(case1["status"] == "dispatched" and case1["department_code"]
                 and case1["found_by"] == "grid", "dispatched by the rules: %r" % case1)
        reply(case1)
        task = c.sql("SELECT id, region_code, street_code, outcome, due > now() AS future"
                     " FROM verification_tasks WHERE case_id = :'c'", c=case1["id"])
        ck.check(len(task) == 1 and task[0]["region_code"] == GRID_A
                 and task[0]["street_code"] == STREET_OFFICE and task[0]["outcome"] is None
                 and task[0]["future"], "a verification for grid A: %r" % task)
        st, body = c.worker("GET", "/api/v1/verifications", tok_b)
        ck.check(st == 200 and body["verifications"] == [], "grid B sees none: %s %r" % (st, body))
        st, body = c.worker("GET", "/api/v1/verifications", tok_a)
        ck.check(st == 200 and [v["case_id"] for v in body["verifications"]] == [case1["id"]],
                 "grid A sees its task: %s %r" % (st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/verify" % case1["id"], tok_b,
                            {"confirmed": True})
        ck.check(st == 404, "grid B cannot verify grid A's case: %s %r" % (st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/verify" % case1["id"], tok_a,
                            {"confirmed": True, "note": "现场已无摊位"})
        ck.check(st == 200 and body["verification"]["outcome"] == "confirmed"
                 and body["case"]["status"] == "replied", "confirmed: %s %r" % (st, body))
        st, body = c.worker("POST", "/api/v1/cases/%d/verify" % case1["id"], tok_a,
                            {"confirmed": True})
        ck.check(st == 404, "decided once: %s %r" % (st, body))

        # ---- rejected: reopened to the same department --------------------------------
        case2 = grid_case("g-case2", "菜市场外马路边摆摊卖水果，占了半条路", POINT_A2)
        reply(case2)
        st, body = c.worker("POST", "/api/v1/cases/%d/verify" % case2["id"], tok_a,
                            {"confirmed": False, "reason": "摊贩仍在"})
        ck.check(st == 422 and body["error"]["field"] == "photo",
                 "a rejection needs a photo: %s %r" % (st, body))
        url = "http://127.0.0.1:%d/api/v1/cases/%d/verify" % (c.worker_port, case2["id"])
        st, body = up.post(url, tok_a, [("verify", json.dumps(
            {"confirmed": False, "reason": "现场摊贩仍在经营"}, ensure_ascii=False).encode(),
            "application/json"), photo("reject")])
        ck.check(st == 200 and body["verification"]["outcome"] == "rejected"
                 and len(body["verification"]["photos"]) == 1
                 and body["case"]["status"] == "reopened"
                 and body["case"]["department"] == case2["department_code"],
                 "rejected and reopened: %s %r" % (st, body))
        ev = [e["type"] for e in c.sql("SELECT type FROM case_events WHERE case_id = :'c'"
                                       " ORDER BY id", c=case2["id"])]
        ck.check(ev[-2:] == ["verification_rejected", "reopened"], "events: %r" % ev)

        # ---- overdue: escalated to the street office --------------------------------------
        case3 = grid_case("g-case3", "街角烧烤摊占道经营到深夜", POINT_A3)
        reply(case3)
        c.psql("UPDATE verification_tasks SET due = now() - interval '1 minute'"
               " WHERE case_id = :'c'", {"c": case3["id"]})
        esc = c.wait_until(lambda: c.sql_value(
            "SELECT escalated_at IS NOT NULL FROM verification_tasks WHERE case_id = :'c'",
            c=case3["id"]) or None, 30, "the overdue verification escalated")
        ck.check(esc, "escalated")
        n = c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'c'"
                        " AND type = 'verification_overdue'", c=case3["id"])
        ck.check(n == 1, "one verification_overdue event: %r" % n)
        st, body = c.worker("GET", "/api/v1/street", street)
        ck.check(st == 200 and [s["code"] for s in body["streets"]] == [STREET]
                 and case3["id"] in [v["case_id"] for v in body["verifications"]]
                 and {row["id"], case1["id"]} <= {r["id"] for r in body["reports"]},
                 "the street office's list: %s %r" % (st, body))
        st, body = c.worker("GET", "/api/v1/street", dept_token("chengguan"))
        ck.check(st == 403, "a bureau holds no street: %s %r" % (st, body))

        # ---- 吹哨: the street summons departments to a bureau's case ---------------------
        st, body = c.post_order(order("GRID-WHISTLE-1", "江城路人行道大面积塌陷，有个大坑",
                                      category="030101", location={"lat": POINT_A3[0],
                                                                   "lng": POINT_A3[1],
                                                                   "crs": "wgs84"}))
        ck.check(st == 202, "a hotline order in the street: %s %r" % (st, body))
        bureau_case = c.wait_until(lambda: (c.sql(
            "SELECT c.id, c.department_code FROM petitions p JOIN cases c ON c.id = p.case_id"
            " WHERE p.tracking_no = :'t'", t=body["tracking_no"]) or [None])[0], 30, "its case")
        ck.check(bureau_case["department_code"] not in (None, STREET_OFFICE),
                 "led by a city bureau: %r" % bureau_case)
        bt = dept_token(bureau_case["department_code"])
        st, b = c.worker("POST", "/api/v1/cases/%d/accept" % bureau_case["id"], bt, {})
        ck.check(st == 200, "the bureau signs: %s %r" % (st, b))
        other = c.create_token("department", department="jd_fengshan")
        st, b = c.worker("POST", "/api/v1/cases/%d/assist" % bureau_case["id"], other,
                         {"departments": ["chengguan"]})
        ck.check(st in (403, 404), "another street's office cannot 吹哨: %s %r" % (st, b))
        st, b = c.worker("POST", "/api/v1/cases/%d/assist" % bureau_case["id"], street,
                         {"departments": ["chengguan"], "note": "请城管协同处置"})
        ck.check(st == 200, "the street office 吹哨: %s %r" % (st, b))
        roles = {(r["department_code"], r["role"]) for r in c.sql(
            "SELECT department_code, role FROM assignments WHERE case_id = :'c'",
            c=bureau_case["id"])}
        ck.check(("chengguan", "assist") in roles
                 and (bureau_case["department_code"], "lead") in roles,
                 "chengguan assists, the bureau still leads: %r" % roles)
        ev = c.sql("SELECT actor, data->>'street_office' AS s FROM case_events WHERE case_id = :'c'"
                   " AND type = 'assist_requested'", c=bureau_case["id"])
        ck.check(ev == [{"actor": "dept:" + STREET_OFFICE, "s": STREET_OFFICE}],
                 "the assist's event: %r" % ev)

        # ---- rates -------------------------------------------------------------------------
        st, body = c.worker("GET", "/api/v1/stats?by=grid", c.tokens["supervisor"])
        rows = {r["key"]: r for r in body.get("rows", [])} if st == 200 else {}
        a = rows.get(GRID_A, {})
        ck.check(a.get("found") == 5 and a.get("solved_on_site") == 1
                 and a.get("verifications") == 3 and a.get("rejected") == 1,
                 "by=grid: %s %r" % (st, a))
        st, body = c.worker("GET", "/api/v1/stats?by=street", c.tokens["supervisor"])
        rows = {r["key"]: r for r in body.get("rows", [])} if st == 200 else {}
        g = (rows.get(STREET) or {}).get("grid") or {}
        ck.check(g.get("found") == 5 and g.get("solved_on_site") == 1 and g.get("rejected") == 1
                 and "dispatched" in rows.get(STREET, {}), "by=street: %s %r" % (st, rows.get(STREET)))
        log("grid flow checks done")
        ck.finish()


if __name__ == "__main__":
    main(run)
