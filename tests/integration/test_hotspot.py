#!/usr/bin/env python3
"""test_hotspot — hotspot alerts (未诉先办), as supervisors and the street
offices see them, with two workers sweeping at once.

- 5 hotline orders of one category (乱堆乱放) from the four grids of one
  community (江城社区: the grids count towards it) within the window: exactly
  one alert, for that community and its street office (jd_jiangcheng),
  naming the five petitions, with a 'hotspot' event on their cases; a sixth
  petition within the window joins that alert (the same burst) instead of
  raising a second one.
- 4 orders of one category from another community (南门社区): none.
- 5 orders of one category from a third community (白沙社区), one of them
  received three hours ago, outside the two-hour window: none.
- GET /api/v1/hotspots: supervisors and operators see the alert, the street
  office jd_jiangcheng sees it, another street office does not."""

import datetime
import os
import time

from harness import Checks, Cluster, Daemon, free_ports, main, order

TZ = datetime.timezone(datetime.timedelta(hours=8))


def at(minutes_ago):
    t = datetime.datetime.now(TZ) - datetime.timedelta(minutes=minutes_ago)
    return t.isoformat(timespec="seconds")


class SecondWorker(Daemon):
    def __init__(self, cluster, ini):
        super().__init__(cluster, "fenbo-worker-2", cluster.worker_bin)
        self.ini = ini

    def start(self):
        saved = self.cluster.ini
        self.cluster.ini = self.ini
        try:
            super().start()
        finally:
            self.cluster.ini = saved


ALERTS_SQL = ("SELECT a.*, (SELECT array_agg(p.idem_key ORDER BY p.idem_key)"
              " FROM hotspot_petitions h JOIN petitions p ON p.id = h.petition_id"
              " WHERE h.alert_id = a.id) AS orders FROM hotspot_alerts a")


def located(no, text, category, lat, lng, minutes_ago=0):
    return order(no, text, category=category, received_at=at(minutes_ago),
                 location={"lat": lat, "lng": lng, "crs": "wgs84"}, kind="complaint")


def run():
    settings = {"worker": {"timers_s": 1, "hotspot_threshold": 5, "hotspot_window_min": 120,
                           "hotspot_every_s": 5}}
    with Cluster("hotspot", settings=settings) as c:
        ck = Checks()
        (port2,) = free_ports(1)
        ini2 = os.path.join(c.tmp, "fenbo-worker-2.ini")
        with open(ini2, "w") as f:
            f.write(open(c.ini).read().replace("port = %d" % c.worker_port, "port = %d" % port2))
        c.daemons["worker2"] = SecondWorker(c, ini2)
        c.daemons["worker2"].start()
        c.wait_until(lambda: c.healthz(port2), 30, "the second worker")

        # 江城社区 (339901001001): one or two points in each of its four grids,
        # a few hundred metres apart, so that they stay separate cases.
        jiangcheng = [(30.205, 120.11), (30.205, 120.13), (30.215, 120.11), (30.215, 120.13),
                      (30.208, 120.115)]
        texts = ["楼道里堆满了杂物和纸箱，消防通道被堵", "小区门口建筑垃圾乱堆乱放好几天了",
                 "河边空地被人堆放大量废旧家具", "单元门口电动车和杂物乱堆，老人出行困难",
                 "绿化带里堆了装修垃圾没人清理"]
        orders = [located("HS-J%d" % i, "江城社区" + texts[i], "010105", lat, lng,
                          minutes_ago=50 - 10 * i) for i, (lat, lng) in enumerate(jiangcheng)]
        # 南门社区 (339901001002): four of a kind, below the threshold.
        orders += [located("HS-N%d" % i, "南门社区路边违规户外广告牌第%d块，摇摇欲坠" % i, "010104",
                           30.21, 120.145 + 0.008 * i) for i in range(4)]
        # 白沙社区 (339902002001): five, but one of them three hours ago.
        orders += [located("HS-B%d" % i, "白沙社区垃圾桶满溢无人清运第%d处" % i, "010103",
                           30.245 if i < 3 else 30.255, 120.185 + 0.01 * (i % 3),
                           minutes_ago=180 if i == 0 else 5) for i in range(5)]
        for o in orders:
            st, body = c.post_order(o)
            ck.check(st == 202, "order %s: %s %r" % (o["order_no"], st, body))
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE idem_key LIKE 'HS-%' AND case_id IS NOT NULL")
            == len(orders), 60, "the orders dispatched")
        regions = {r["idem_key"]: r["region_code"] for r in c.sql(
            "SELECT idem_key, region_code FROM petitions WHERE idem_key LIKE 'HS-%'")}
        ck.check(all(regions["HS-J%d" % i].startswith("339901001001") and
                     len(regions["HS-J%d" % i]) == 15 for i in range(5)),
                 "江城 orders not located in its grids: %r" % regions)
        ck.check(all(regions["HS-N%d" % i] == "339901001002" for i in range(4)),
                 "南门 orders not located in 南门社区: %r" % regions)
        ck.check(all(regions["HS-B%d" % i].startswith("339902002001") for i in range(5)),
                 "白沙 orders not located in 白沙社区: %r" % regions)

        c.wait_until(lambda: c.sql_value("SELECT count(*) FROM hotspot_alerts") >= 1, 20,
                     "a hotspot alert")
        time.sleep(6)  # more sweeps by both workers (hotspots: every 5 s at most)
        alerts = c.sql(ALERTS_SQL)
        ck.check(len(alerts) == 1, "alerts: %r" % alerts)
        if alerts:
            a = alerts[0]
            ck.check(a["category"] == "010105" and a["region_code"] == "339901001001",
                     "alert for %s in %s" % (a["category"], a["region_code"]))
            ck.check(a["department_code"] == "jd_jiangcheng",
                     "alert to %r, want jd_jiangcheng" % a["department_code"])
            ck.check(a["petitions"] == 5 and a["orders"] == ["HS-J%d" % i for i in range(5)],
                     "alert's petitions: %r" % a["orders"])
            ck.check(a["threshold"] == 5 and a["window_min"] == 120, "alert %r" % a)
            evs = c.sql("SELECT case_id, data FROM case_events WHERE type = 'hotspot'")
            cases = {r["case_id"] for r in c.sql(
                "SELECT case_id FROM petitions WHERE idem_key LIKE 'HS-J%'")}
            ck.check({e["case_id"] for e in evs} == cases and len(evs) == len(cases),
                     "hotspot events on %r, want one on each of %r" % (evs, cases))
            ck.check(all(e["data"]["alert_id"] == a["id"] for e in evs), "events %r" % evs)
            ck.check(c.sql_value("SELECT count(*) FROM hotspot_petitions"
                                 " WHERE noted_at IS NULL") == 0,
                     "hotspot petitions whose case was never noted")

        # A sixth within the window: the same burst, so the alert grows.
        st, body = c.post_order(located("HS-J5", "江城社区又有人在楼下乱堆旧沙发和床垫",
                                        "010105", 30.218, 120.135))
        ck.check(st == 202, "sixth order: %s %r" % (st, body))
        c.wait_until(lambda: c.sql_value(
            "SELECT count(*) FROM petitions WHERE idem_key = 'HS-J5' AND case_id IS NOT NULL"),
            30, "the sixth order dispatched")
        c.wait_until(lambda: c.sql_value("SELECT max(petitions) FROM hotspot_alerts") == 6, 20,
                     "the alert taking in the sixth petition")
        time.sleep(6)
        alerts = c.sql(ALERTS_SQL)
        ck.check(len(alerts) == 1 and alerts[0]["orders"] == ["HS-J%d" % i for i in range(6)]
                 and alerts[0]["petitions"] == 6, "after a sixth petition: %r" % alerts)
        sixth = c.sql_value("SELECT case_id FROM petitions WHERE idem_key = 'HS-J5'")
        ck.check(c.sql_value("SELECT count(*) FROM case_events WHERE case_id = :'id'"
                             " AND type = 'hotspot'", id=sixth) == 1,
                 "the sixth petition's case has no hotspot event")

        # The list.
        for who, tok in (("supervisor", c.tokens["supervisor"]),
                         ("operator", c.tokens["operator"]),
                         ("jd_jiangcheng", c.dept_tokens["jd_jiangcheng"])):
            st, body = c.worker("GET", "/api/v1/hotspots", tok)
            hs = body.get("hotspots") if st == 200 else None
            ck.check(st == 200 and len(hs) == 1 and hs[0]["region_code"] == "339901001001"
                     and hs[0]["region_name"] == "江城社区" and hs[0]["petitions"] == 6
                     and len(hs[0]["tracking_nos"]) == 6 and hs[0]["department"] == "jd_jiangcheng",
                     "%s's hotspot list: %s %r" % (who, st, body))
        st, body = c.worker("GET", "/api/v1/hotspots", c.dept_tokens["jd_fengshan"])
        ck.check(st == 200 and body["hotspots"] == [],
                 "another street office's list: %s %r" % (st, body))
        st, body = c.worker("GET", "/api/v1/hotspots?hours=0", c.tokens["supervisor"])
        ck.check(st == 400, "hours=0: %s %r" % (st, body))
        st, body = c.worker("GET", "/api/v1/hotspots", c.tokens["miniapp"])
        ck.check(st == 403, "a channel token: %s %r" % (st, body))
        m = (c.metrics(c.worker_port) or {}).get("fenbo_worker_hotspot_alerts_total", 0) + \
            (c.metrics(port2) or {}).get("fenbo_worker_hotspot_alerts_total", 0)
        ck.check(m == 1, "alerts counted by the two workers: %r" % m)
        log_lines = sum(d.log_text().count("event=hotspot_alert ") for d in c.daemons.values())
        ck.check(log_lines == 1, "hotspot_alert log lines: %d" % log_lines)
        for d in c.daemons.values():
            if d.name.startswith("fenbo-worker"):
                errors = [l for l in d.log_text().splitlines() if "event=db_error" in l]
                ck.check(not errors, "%s logged database errors: %s" % (d.name, errors[:3]))
        ck.finish()


if __name__ == "__main__":
    main(run)
