/* route.c — applies lib's matcher (the same code as `fenboctl rules explain`)
 * and the working-day calendar to a petition. */
#include "route.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_log.h"
#include "fb_time.h"

int router_reload(router_t *rt, PGconn *db) {
    json_t *rules, *juris, *days;
    int rc = fb_db_load_routing(db, &rules, &juris, &days);
    if (rc)
        return rc;
    char err[256];
    fb_ruleset_t *rs = NULL;
    fb_calendar_t *cal = fb_calendar_new();
    rc = fb_ruleset_from_json(rules, juris, &rs, err, sizeof err);
    if (rc)
        fb_log(FB_LOG_ERROR, "event=rules_invalid error=\"%s\"", err);
    else if (!cal || (rc = fb_calendar_load_json(cal, days)) != 0)
        fb_log(FB_LOG_ERROR, "event=calendar_invalid");
    if (rc == 0) {
        fb_ruleset_destroy(&rt->rules);
        fb_calendar_destroy(&rt->calendar);
        rt->rules = rs;
        rt->calendar = cal;
        fb_log(FB_LOG_INFO, "event=rules_loaded rules=%zu calendar_days=%zu", fb_ruleset_size(rs),
               json_array_size(days));
    } else {
        fb_ruleset_destroy(&rs);
        fb_calendar_destroy(&cal);
    }
    json_decref(rules);
    json_decref(juris);
    json_decref(days);
    return rc;
}

void router_free(router_t *rt) {
    fb_ruleset_destroy(&rt->rules);
    fb_calendar_destroy(&rt->calendar);
}

void router_route(const router_t *rt, const fb_petition_t *p, const char *region_code,
                  route_result_t *out) {
    fb_rule_input_t in = {
        .channel = p->channel,
        .category = p->category,
        .region_code = region_code,
        .content_norm = p->content_norm,
        .local_minutes = fb_time_local_minutes(p->received_at_us),
        .urgency = p->urgency,
        .kind = p->kind,
    };
    fb_rule_match_t m = {0};
    if (rt->rules)
        fb_rule_match(rt->rules, &in, &m, NULL, NULL);
    out->rule = m.rule;
    out->department = m.department;
    out->urgency = m.rule && m.rule->set_urgency ? m.rule->set_urgency : p->urgency;
    fb_deadlines(rt->calendar, p->received_at_us, out->urgency, p->kind,
                 m.rule ? m.rule->accept_hours : 0, m.rule ? m.rule->reply_workdays : 0,
                 &out->accept_due, &out->reply_due);
}
