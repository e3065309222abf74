/* test_rule.c — the routing rule matcher that the dispatcher and `fenboctl
 * rules explain` both run (fb_rule.h). Rules are written inline as JSON;
 * the last test routes hand-checked petitions through the demo rule table. */
#include "fb_common.h"
#include "fb_rule.h"
#include "fb_text.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Street offices and one community office of the demo city. */
static const char *const s_juris = "[{'department_code':'jd_jiangcheng','region_code':'339901001'},"
                                   " {'department_code':'jd_fengshan','region_code':'339901002'},"
                                   " {'department_code':'sq_nanmen','region_code':'339901001002'}]";

/* JSON written with ' for " so that it reads in C. */
static json_t *jq(const char *text) {
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t jerr;
    json_t *j = json_loads(s, 0, &jerr);
    ck_assert_msg(j != NULL, "bad JSON in test: %s: %s", jerr.text, s);
    free(s);
    return j;
}

static fb_ruleset_t *load(const char *rules, const char *juris) {
    json_t *r = jq(rules), *j = juris ? jq(juris) : NULL;
    fb_ruleset_t *rs = NULL;
    char err[256] = "";
    int rc = fb_ruleset_from_json(r, j, &rs, err, sizeof err);
    ck_assert_msg(rc == 0, "rules refused: %s", err);
    ck_assert_ptr_nonnull(rs);
    json_decref(r);
    json_decref(j);
    return rs;
}

/* Compiles rules expecting a refusal; returns the message (static). */
static const char *load_refused(const char *rules, const char *juris) {
    static char err[256];
    json_t *r = jq(rules), *j = juris ? jq(juris) : NULL;
    fb_ruleset_t *rs = (fb_ruleset_t *)0x1;
    err[0] = '\0';
    int rc = fb_ruleset_from_json(r, j, &rs, err, sizeof err);
    ck_assert_msg(rc == FB_EINVAL, "accepted: %s", rules);
    ck_assert_ptr_null(rs);
    ck_assert_msg(err[0] != '\0', "refused without a message: %s", rules);
    json_decref(r);
    json_decref(j);
    return err;
}

/* A petition that no condition singles out: a hotline complaint at 10:00. */
static fb_rule_input_t base(void) {
    fb_rule_input_t in = {0};
    in.channel = "hotline";
    in.category = "010101";
    in.region_code = "339901001002";
    in.content_norm = "路边有人占道经营";
    in.local_minutes = 10 * 60;
    in.urgency = "normal";
    in.kind = "complaint";
    return in;
}

/* The department chosen, or NULL for the manual queue; checks that the
 * return value and the out-parameters agree. */
static const char *dept_of(const fb_ruleset_t *rs, const fb_rule_input_t *in) {
    fb_rule_match_t m = {(const fb_rule_t *)0x1, "garbage"};
    bool ok = fb_rule_match(rs, in, &m, NULL, NULL);
    if (!ok) {
        ck_assert_ptr_null(m.rule);
        ck_assert_ptr_null(m.department);
        return NULL;
    }
    ck_assert_ptr_nonnull(m.rule);
    ck_assert_ptr_nonnull(m.department);
    return m.department;
}

static const char *rule_of(const fb_ruleset_t *rs, const fb_rule_input_t *in) {
    fb_rule_match_t m;
    return fb_rule_match(rs, in, &m, NULL, NULL) ? m.rule->name : NULL;
}

static void expect_dept(const fb_ruleset_t *rs, const fb_rule_input_t *in, const char *want) {
    const char *got = dept_of(rs, in);
    if (!want)
        ck_assert_msg(got == NULL, "expected the manual queue, got %s", got);
    else
        ck_assert_msg(got && strcmp(got, want) == 0, "expected %s, got %s", want,
                      got ? got : "the manual queue");
}

/* ---- order ---- */

START_TEST(test_priority_order) {
    fb_ruleset_t *rs = load("[{'name':'late','priority':20,'action_department':'B'},"
                            " {'name':'early','priority':10,'action_department':'A'},"
                            " {'name':'later','priority':30,'action_department':'C'}]",
                            NULL);
    ck_assert_uint_eq(fb_ruleset_size(rs), 3);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "A");
    ck_assert_str_eq(rule_of(rs, &in), "early");
    fb_ruleset_destroy(&rs);
    ck_assert_ptr_null(rs);
}
END_TEST

START_TEST(test_priority_ties_by_file_order) {
    fb_rule_input_t in = base();
    fb_ruleset_t *rs = load("[{'name':'first','priority':10,'action_department':'A'},"
                            " {'name':'second','priority':10,'action_department':'B'}]",
                            NULL);
    expect_dept(rs, &in, "A");
    fb_ruleset_destroy(&rs);
    rs = load("[{'name':'second','priority':10,'action_department':'B'},"
              " {'name':'first','priority':10,'action_department':'A'}]",
              NULL);
    expect_dept(rs, &in, "B");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_priority_ties_by_id) {
    /* Rows from route_rules carry ids: equal priorities go by id. */
    fb_rule_input_t in = base();
    fb_ruleset_t *rs = load("[{'id':7,'name':'seven','priority':10,'action_department':'A'},"
                            " {'id':3,'name':'three','priority':10,'action_department':'B'}]",
                            NULL);
    expect_dept(rs, &in, "B");
    fb_ruleset_destroy(&rs);
}
END_TEST

/* ---- conditions ---- */

START_TEST(test_channel) {
    fb_ruleset_t *rs = load("[{'name':'photo','priority':1,'channel':'miniapp',"
                            "  'action_department':'photo_desk'},"
                            " {'name':'rest','priority':2,'action_department':'chengguan'}]",
                            NULL);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "chengguan");
    in.channel = "miniapp";
    expect_dept(rs, &in, "photo_desk");
    in.channel = "miniapp2";
    expect_dept(rs, &in, "chengguan");
    in.channel = NULL;
    expect_dept(rs, &in, "chengguan");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_category_prefix) {
    fb_ruleset_t *rs = load("[{'name':'city','priority':1,'category_prefix':'0101',"
                            "  'action_department':'chengguan'}]",
                            NULL);
    fb_rule_input_t in = base();
    in.category = "010101";
    expect_dept(rs, &in, "chengguan");
    in.category = "0101";
    expect_dept(rs, &in, "chengguan");
    in.category = "0102";
    expect_dept(rs, &in, NULL);
    in.category = "01"; /* shorter than the prefix: not under it */
    expect_dept(rs, &in, NULL);
    in.category = "100101";
    expect_dept(rs, &in, NULL);
    in.category = NULL;
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_region_prefix) {
    fb_ruleset_t *rs = load("[{'name':'wangjiang','priority':1,'region_prefix':'339901',"
                            "  'action_department':'wj_zhifa'},"
                            " {'name':'rest','priority':2,'action_department':'chengguan'}]",
                            NULL);
    fb_rule_input_t in = base();
    in.region_code = "339901001002";
    expect_dept(rs, &in, "wj_zhifa");
    in.region_code = "339901";
    expect_dept(rs, &in, "wj_zhifa");
    in.region_code = "339902001001";
    expect_dept(rs, &in, "chengguan");
    in.region_code = "3399";
    expect_dept(rs, &in, "chengguan");
    in.region_code = NULL; /* no location */
    expect_dept(rs, &in, "chengguan");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_keywords_any) {
    fb_ruleset_t *rs = load("[{'name':'noise','priority':1,'keywords_any':['噪音','扰民'],"
                            "  'action_department':'shengtai'}]",
                            NULL);
    fb_rule_input_t in = base();
    in.content_norm = "楼上装修噪音很大";
    expect_dept(rs, &in, "shengtai");
    in.content_norm = "半夜唱歌扰民";
    expect_dept(rs, &in, "shengtai");
    in.content_norm = "路灯不亮";
    expect_dept(rs, &in, NULL);
    in.content_norm = "";
    expect_dept(rs, &in, NULL);
    in.content_norm = NULL;
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_keywords_none) {
    fb_ruleset_t *rs = load("[{'name':'parking','priority':1,'keywords_any':['违停','乱停'],"
                            "  'keywords_none':['小区','地下车库'],'action_department':'jiaojing'},"
                            " {'name':'street','priority':2,'action_department':'@street'}]",
                            s_juris);
    fb_rule_input_t in = base();
    in.content_norm = "路口有车违停";
    expect_dept(rs, &in, "jiaojing");
    in.content_norm = "小区里有车违停";
    expect_dept(rs, &in, "jd_jiangcheng");
    in.content_norm = "违停在地下车库入口";
    expect_dept(rs, &in, "jd_jiangcheng");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_empty_conditions_hold) {
    /* null, "" and [] all mean "no condition". */
    fb_ruleset_t *rs = load("[{'name':'all','priority':1,'channel':null,'category_prefix':'',"
                            "  'region_prefix':null,'keywords_any':[],'keywords_none':[],"
                            "  'time_from':null,'time_to':null,'urgency':'','kind':null,"
                            "  'action_department':'catchall'}]",
                            NULL);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "catchall");
    fb_rule_input_t empty = {0};
    expect_dept(rs, &empty, "catchall");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_time_window_wrapping_midnight) {
    fb_ruleset_t *rs = load("[{'name':'night','priority':1,'time_from':'22:00','time_to':'06:00',"
                            "  'action_department':'night_patrol'},"
                            " {'name':'day','priority':2,'action_department':'day_office'}]",
                            NULL);
    fb_rule_input_t in = base();
    struct {
        int minutes;
        const char *want;
    } cases[] = {
        {23 * 60 + 30, "night_patrol"}, {5 * 60 + 59, "night_patrol"},  {6 * 60, "day_office"},
        {22 * 60, "night_patrol"},      {21 * 60 + 59, "day_office"},   {0, "night_patrol"},
        {12 * 60, "day_office"},        {23 * 60 + 59, "night_patrol"},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(cases); i++) {
        in.local_minutes = cases[i].minutes;
        const char *got = dept_of(rs, &in);
        ck_assert_msg(got && strcmp(got, cases[i].want) == 0, "at %02d:%02d got %s, want %s",
                      cases[i].minutes / 60, cases[i].minutes % 60, got ? got : "manual",
                      cases[i].want);
    }
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_time_window_daytime) {
    fb_ruleset_t *rs = load("[{'name':'office','priority':1,'time_from':'09:00',"
                            "  'time_to':'17:30:00','action_department':'office'}]",
                            NULL);
    fb_rule_input_t in = base();
    in.local_minutes = 9 * 60;
    expect_dept(rs, &in, "office");
    in.local_minutes = 17 * 60 + 29;
    expect_dept(rs, &in, "office");
    in.local_minutes = 17 * 60 + 30;
    expect_dept(rs, &in, NULL);
    in.local_minutes = 8 * 60 + 59;
    expect_dept(rs, &in, NULL);
    in.local_minutes = 23 * 60 + 30;
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_urgency_and_kind) {
    fb_ruleset_t *rs = load("[{'name':'gas','priority':1,'urgency':'emergency',"
                            "  'action_department':'gas_co'},"
                            " {'name':'ask','priority':2,'kind':'consult',"
                            "  'action_department':'info_desk'}]",
                            NULL);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, NULL);
    in.urgency = "emergency";
    expect_dept(rs, &in, "gas_co");
    in.urgency = "urgent";
    expect_dept(rs, &in, NULL);
    in.urgency = NULL;
    in.kind = "consult";
    expect_dept(rs, &in, "info_desk");
    in.kind = NULL;
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_all_conditions_together) {
    fb_ruleset_t *rs = load("[{'name':'strict','priority':1,'channel':'hotline',"
                            "  'category_prefix':'0101','region_prefix':'339901',"
                            "  'keywords_any':['占道'],'keywords_none':['小区'],"
                            "  'time_from':'08:00','time_to':'20:00','urgency':'normal',"
                            "  'kind':'complaint','action_department':'wj_zhifa'}]",
                            NULL);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "wj_zhifa");
    /* Each condition alone can refuse. */
    fb_rule_input_t x = in;
    x.channel = "mailbox";
    expect_dept(rs, &x, NULL);
    x = in;
    x.category = "0202";
    expect_dept(rs, &x, NULL);
    x = in;
    x.region_code = "339902001001";
    expect_dept(rs, &x, NULL);
    x = in;
    x.content_norm = "路灯不亮";
    expect_dept(rs, &x, NULL);
    x = in;
    x.content_norm = "小区门口占道经营";
    expect_dept(rs, &x, NULL);
    x = in;
    x.local_minutes = 21 * 60;
    expect_dept(rs, &x, NULL);
    x = in;
    x.urgency = "urgent";
    expect_dept(rs, &x, NULL);
    x = in;
    x.kind = "consult";
    expect_dept(rs, &x, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

/* ---- @street / @community ---- */

static const char *const s_street_rules =
    "[{'name':'属地','priority':10,'category_prefix':'0101','action_department':'@street'},"
    " {'name':'城管兜底','priority':20,'category_prefix':'0101',"
    "  'action_department':'chengguan'}]";

START_TEST(test_street_resolves_owner) {
    fb_ruleset_t *rs = load(s_street_rules, s_juris);
    fb_rule_input_t in = base();
    /* A community of 江城街道 → 江城街道办. */
    in.region_code = "339901001002";
    expect_dept(rs, &in, "jd_jiangcheng");
    ck_assert_str_eq(rule_of(rs, &in), "属地");
    /* A grid under another community of the same street. */
    in.region_code = "339901001001003";
    expect_dept(rs, &in, "jd_jiangcheng");
    /* The street itself, and a community of 凤山街道. */
    in.region_code = "339901002";
    expect_dept(rs, &in, "jd_fengshan");
    in.region_code = "339901002004";
    expect_dept(rs, &in, "jd_fengshan");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_street_unowned_skipped) {
    fb_ruleset_t *rs = load(s_street_rules, s_juris);
    fb_rule_input_t in = base();
    /* 望湖街道 has no office in this table: the next rule wins. */
    in.region_code = "339901003001";
    expect_dept(rs, &in, "chengguan");
    ck_assert_str_eq(rule_of(rs, &in), "城管兜底");
    /* Only the district is known: no street office owns it. */
    in.region_code = "339901";
    expect_dept(rs, &in, "chengguan");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_street_without_location_skipped) {
    fb_ruleset_t *rs = load(s_street_rules, s_juris);
    fb_rule_input_t in = base();
    in.region_code = NULL;
    expect_dept(rs, &in, "chengguan");
    fb_ruleset_destroy(&rs);
    /* With no fallback rule: the manual queue. */
    rs = load("[{'name':'属地','priority':10,'action_department':'@street'}]", s_juris);
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_street_without_jurisdictions) {
    fb_ruleset_t *rs = load(s_street_rules, NULL);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "chengguan");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_community_resolves_owner) {
    fb_ruleset_t *rs = load("[{'name':'社区','priority':1,'action_department':'@community'},"
                            " {'name':'街道','priority':2,'action_department':'@street'}]",
                            s_juris);
    fb_rule_input_t in = base();
    in.region_code = "339901001002"; /* 南门社区 has its own office */
    expect_dept(rs, &in, "sq_nanmen");
    in.region_code = "339901001002001"; /* a grid in it */
    expect_dept(rs, &in, "sq_nanmen");
    in.region_code = "339901001003"; /* 柳营社区 has none: its street's office */
    expect_dept(rs, &in, "jd_jiangcheng");
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_owner_lookup) {
    fb_ruleset_t *rs = load("[]", s_juris);
    ck_assert_uint_eq(fb_ruleset_size(rs), 0);
    ck_assert_str_eq(fb_ruleset_owner(rs, "339901001002", 3), "jd_jiangcheng");
    ck_assert_str_eq(fb_ruleset_owner(rs, "339901001002", 4), "sq_nanmen");
    ck_assert_ptr_null(fb_ruleset_owner(rs, "339901001003", 4));
    ck_assert_ptr_null(fb_ruleset_owner(rs, "339901003001", 3));
    ck_assert_ptr_null(fb_ruleset_owner(rs, "339901", 3));
    ck_assert_ptr_null(fb_ruleset_owner(rs, "339902001001", 3));
    ck_assert_ptr_null(fb_ruleset_owner(rs, NULL, 3));
    fb_ruleset_destroy(&rs);
}
END_TEST

/* ---- exclusion, no match, disabled ---- */

START_TEST(test_exclusion_list) {
    fb_ruleset_t *rs = load("[{'name':'zhifa','priority':1,'action_department':'wj_zhifa'},"
                            " {'name':'street','priority':2,'action_department':'@street'},"
                            " {'name':'city','priority':3,'action_department':'chengguan'}]",
                            s_juris);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "wj_zhifa");
    /* Returned by 执法: the street office. */
    const char *const ex1[] = {"wj_zhifa"};
    in.exclude = ex1;
    in.n_exclude = 1;
    expect_dept(rs, &in, "jd_jiangcheng");
    /* Returned by both: the bureau. The resolved office counts, not "@street". */
    const char *const ex2[] = {"jd_jiangcheng", "wj_zhifa"};
    in.exclude = ex2;
    in.n_exclude = 2;
    expect_dept(rs, &in, "chengguan");
    /* Returned by all three: the manual queue. */
    const char *const ex3[] = {"jd_jiangcheng", "chengguan", "wj_zhifa"};
    in.exclude = ex3;
    in.n_exclude = 3;
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_no_match_manual) {
    fb_ruleset_t *rs = load("[{'name':'water','priority':1,'category_prefix':'0201',"
                            "  'action_department':'water_co'}]",
                            NULL);
    fb_rule_input_t in = base();
    fb_rule_match_t m = {(const fb_rule_t *)0x1, "garbage"};
    ck_assert(!fb_rule_match(rs, &in, &m, NULL, NULL));
    ck_assert_ptr_null(m.rule);
    ck_assert_ptr_null(m.department);
    fb_ruleset_destroy(&rs);
    /* An empty table sends everything to the manual queue. */
    rs = load("[]", NULL);
    m = (fb_rule_match_t){(const fb_rule_t *)0x1, "garbage"};
    ck_assert(!fb_rule_match(rs, &in, &m, NULL, NULL));
    ck_assert_ptr_null(m.rule);
    ck_assert_ptr_null(m.department);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_disabled_rules_ignored) {
    fb_ruleset_t *rs = load("[{'name':'off','priority':1,'enabled':false,"
                            "  'action_department':'gongan'},"
                            " {'name':'on','priority':2,'enabled':true,"
                            "  'action_department':'chengguan'}]",
                            NULL);
    fb_rule_input_t in = base();
    expect_dept(rs, &in, "chengguan");
    ck_assert_str_eq(rule_of(rs, &in), "on");
    fb_ruleset_destroy(&rs);
    rs = load("[{'name':'off','priority':1,'enabled':false,'action_department':'gongan'}]", NULL);
    expect_dept(rs, &in, NULL);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_action_compiled) {
    /* What the dispatcher takes from the winning rule besides the department. */
    fb_ruleset_t *rs = load("[{'id':42,'name':'夜间施工噪音','priority':30,"
                            "  'keywords_any':['施工'],'action_department':'shengtai',"
                            "  'assist_departments':['chengguan','jd_jiangcheng'],"
                            "  'set_urgency':'urgent','accept_hours':2,'reply_workdays':1,"
                            "  'time_from':'22:00','time_to':'06:00'}]",
                            NULL);
    fb_rule_input_t in = base();
    in.content_norm = "工地夜间施工噪音";
    in.local_minutes = 23 * 60;
    fb_rule_match_t m;
    ck_assert(fb_rule_match(rs, &in, &m, NULL, NULL));
    ck_assert_str_eq(m.department, "shengtai");
    ck_assert_int_eq(m.rule->id, 42);
    ck_assert_int_eq(m.rule->priority, 30);
    ck_assert_str_eq(m.rule->name, "夜间施工噪音");
    ck_assert_str_eq(m.rule->action, "shengtai");
    ck_assert_uint_eq(m.rule->n_assists, 2);
    ck_assert_str_eq(m.rule->assists[0], "chengguan");
    ck_assert_str_eq(m.rule->assists[1], "jd_jiangcheng");
    ck_assert_str_eq(m.rule->set_urgency, "urgent");
    ck_assert_int_eq(m.rule->accept_hours, 2);
    ck_assert_int_eq(m.rule->reply_workdays, 1);
    ck_assert_int_eq(m.rule->time_from, 22 * 60);
    ck_assert_int_eq(m.rule->time_to, 6 * 60);
    fb_ruleset_destroy(&rs);
}
END_TEST

/* ---- malformed rules ---- */

START_TEST(test_missing_action_refused) {
    const char *err =
        load_refused("[{'name':'broken','priority':1,'category_prefix':'0101'}]", NULL);
    ck_assert_msg(strstr(err, "broken") && strstr(err, "action_department"),
                  "message does not name the rule and field: %s", err);
    load_refused("[{'name':'ok','priority':1,'action_department':'A'},"
                 " {'name':'empty','priority':2,'action_department':''}]",
                 NULL);
}
END_TEST

START_TEST(test_missing_name_or_priority_refused) {
    load_refused("[{'priority':1,'action_department':'A'}]", NULL);
    const char *err = load_refused("[{'name':'nopri','action_department':'A'}]", NULL);
    ck_assert_msg(strstr(err, "nopri") && strstr(err, "priority"), "message: %s", err);
    load_refused("[{'name':'strpri','priority':'1','action_department':'A'}]", NULL);
}
END_TEST

START_TEST(test_bad_time_refused) {
    const char *bad[] = {
        "[{'name':'t1','priority':1,'time_from':'25:00','time_to':'06:00','action_department':'A'}"
        "]",
        "[{'name':'t2','priority':1,'time_from':'22:00','time_to':'06:60','action_department':'A'}"
        "]",
        "[{'name':'t3','priority':1,'time_from':'late','time_to':'06:00','action_department':'A'}]",
        "[{'name':'t4','priority':1,'time_from':'22:00','action_department':'A'}]",
        "[{'name':'t5','priority':1,'time_to':'06:00','action_department':'A'}]",
        "[{'name':'t6','priority':1,'time_from':'-1:00','time_to':'06:00','action_department':'A'}"
        "]",
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(bad); i++) {
        const char *err = load_refused(bad[i], NULL);
        char name[4];
        snprintf(name, sizeof name, "t%zu", i + 1);
        ck_assert_msg(strstr(err, name) && strstr(err, "time"), "message: %s", err);
    }
}
END_TEST

START_TEST(test_time_past_midnight_refused) {
    /* "24:30" is no time of day: a window ending there is a typing error. */
    load_refused("[{'name':'t24','priority':1,'time_from':'22:00','time_to':'24:30',"
                 "  'action_department':'A'}]",
                 NULL);
}
END_TEST

START_TEST(test_bad_lists_refused) {
    const char *err = load_refused("[{'name':'kw','priority':1,'keywords_any':'噪音',"
                                   "  'action_department':'A'}]",
                                   NULL);
    ck_assert_msg(strstr(err, "kw") != NULL, "message: %s", err);
    load_refused("[{'name':'kw2','priority':1,'keywords_none':[1,2],'action_department':'A'}]",
                 NULL);
    load_refused("[{'name':'as','priority':1,'assist_departments':{'a':1},"
                 "  'action_department':'A'}]",
                 NULL);
}
END_TEST

START_TEST(test_bad_top_level_refused) {
    load_refused("{'name':'not a list'}", NULL);
    load_refused("[]", "{'department_code':'x'}");
    load_refused("[]", "[{'department_code':'jd_x'}]");
    load_refused("[]", "[{'region_code':'339901001'}]");
}
END_TEST

/* ---- trace (rules explain) ---- */

typedef struct {
    int n;
    const char *names[16];
    char reasons[16][256];
    bool is_null[16];
} s_trace_t;

static void trace_cb(void *ud, const fb_rule_t *rule, const char *reason) {
    s_trace_t *t = ud;
    ck_assert_int_lt(t->n, 16);
    t->names[t->n] = rule->name;
    t->is_null[t->n] = reason == NULL;
    snprintf(t->reasons[t->n], sizeof t->reasons[t->n], "%s", reason ? reason : "");
    t->n++;
}

START_TEST(test_trace_reports_each_rule) {
    fb_ruleset_t *rs = load("[{'name':'photo','priority':1,'channel':'miniapp',"
                            "  'action_department':'A'},"
                            " {'name':'water','priority':2,'category_prefix':'0201',"
                            "  'action_department':'B'},"
                            " {'name':'night','priority':3,'time_from':'22:00',"
                            "  'time_to':'06:00','action_department':'C'},"
                            " {'name':'street','priority':4,'action_department':'@street'},"
                            " {'name':'noise','priority':5,'keywords_any':['噪音'],"
                            "  'action_department':'D'},"
                            " {'name':'winner','priority':6,'action_department':'E'},"
                            " {'name':'never','priority':7,'action_department':'F'}]",
                            s_juris);
    fb_rule_input_t in = base();
    in.region_code = "339901003001"; /* no office */
    s_trace_t t = {0};
    fb_rule_match_t m;
    ck_assert(fb_rule_match(rs, &in, &m, trace_cb, &t));
    ck_assert_str_eq(m.department, "E");
    /* Every rule up to the winner, in order; none after it. */
    ck_assert_int_eq(t.n, 6);
    const char *order[] = {"photo", "water", "night", "street", "noise", "winner"};
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(t.names[i], order[i]);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(!t.is_null[i] && t.reasons[i][0], "no reason for %s", t.names[i]);
    ck_assert(t.is_null[5]);
    /* The reasons say what an administrator needs to know. */
    ck_assert_msg(strstr(t.reasons[0], "channel") != NULL, "%s", t.reasons[0]);
    ck_assert_msg(strstr(t.reasons[1], "0201") != NULL, "%s", t.reasons[1]);
    ck_assert_msg(strstr(t.reasons[2], "10:00") != NULL, "%s", t.reasons[2]);
    ck_assert_msg(strstr(t.reasons[3], "339901003001") != NULL, "%s", t.reasons[3]);
    fb_ruleset_destroy(&rs);
}
END_TEST

START_TEST(test_trace_no_match_and_exclusion) {
    fb_ruleset_t *rs = load("[{'name':'zhifa','priority':1,'action_department':'wj_zhifa'},"
                            " {'name':'water','priority':2,'category_prefix':'0201',"
                            "  'action_department':'water_co'}]",
                            NULL);
    fb_rule_input_t in = base();
    const char *const ex[] = {"wj_zhifa"};
    in.exclude = ex;
    in.n_exclude = 1;
    s_trace_t t = {0};
    fb_rule_match_t m;
    ck_assert(!fb_rule_match(rs, &in, &m, trace_cb, &t));
    ck_assert_ptr_null(m.rule);
    ck_assert_int_eq(t.n, 2);
    ck_assert(!t.is_null[0] && !t.is_null[1]);
    ck_assert_msg(strstr(t.reasons[0], "wj_zhifa") != NULL, "%s", t.reasons[0]);
    /* Tracing does not change the decision. */
    ck_assert(!fb_rule_match(rs, &in, &m, NULL, NULL));
    fb_ruleset_destroy(&rs);
}
END_TEST

/* ---- the demo rule table ---- */

#ifndef FENBO_SOURCE_DIR
#error "FENBO_SOURCE_DIR must name the source tree"
#endif

static json_t *demo_jurisdictions(const json_t *departments) {
    json_t *out = json_array();
    size_t i, k;
    json_t *d, *r;
    json_array_foreach(departments, i, d) {
        json_array_foreach(json_object_get(d, "jurisdiction"), k, r) {
            json_array_append_new(out, json_pack("{s:O,s:O}", "department_code",
                                                 json_object_get(d, "code"), "region_code", r));
        }
    }
    return out;
}

typedef struct {
    const char *what;
    const char *channel, *category, *region, *content;
    int minutes;
    const char *urgency, *kind, *exclude;
    const char *want_rule, *want_dept; /* NULL, NULL: the manual queue */
} s_demo_case_t;

/* Each expectation was worked out by reading config/demo/rules.json top
 * down; the comment says which earlier rules refuse and why. */
static const s_demo_case_t s_demo_cases[] = {
    /* 21 (0101 + 江城社区) refuses: 南门社区; 22 matches in 望江区. */
    {"street vendor in 望江区", "hotline", "010101", "339901001002", "路边有人占道经营", 600,
     "normal", "complaint", NULL, "望江区占道经营-综合执法", "wj_zhifa"},
    /* 22 refuses (东湖区); 23 sends it to the owning street, 白沙街道. */
    {"street vendor in 东湖区", "hotline", "010101", "339902002003", "路边有人占道经营", 600,
     "normal", "complaint", NULL, "东湖区占道经营-属地", "jd_baisha"},
    /* No location: 22 and 23 refuse on region; the city-wide rule 25. */
    {"street vendor, no location", "hotline", "010101", NULL, "路边有人占道经营", 600, "normal",
     "complaint", NULL, "占道经营", "chengguan"},
    /* Returned by 执法大队: 22 skipped, 23 refuses on region, 25. */
    {"street vendor returned by wj_zhifa", "hotline", "010101", "339901001002", "路边有人占道经营",
     600, "normal", "complaint", "wj_zhifa", "占道经营", "chengguan"},
    /* Traditional text normalised first: 煤氣 → 煤气 hits rule 3. */
    {"gas leak, emergency, traditional", "hotline", NULL, "339901002001",
     "家裡廚房煤氣洩漏，味道很大", 600, "emergency", "help", NULL, "燃气泄漏-紧急来电", "gas_co"},
    /* Night construction at 23:30: rule 9. */
    {"construction noise 23:30", "hotline", "040101", "339902001001", "工地夜间施工噪音很大",
     23 * 60 + 30, "normal", "complaint", NULL, "夜间施工噪音", "shengtai"},
    /* The same at 10:00: 9 refuses on time; no keyword rule before 45. */
    {"construction noise 10:00", "hotline", "040101", "339902001001", "工地夜间施工噪音很大", 600,
     "normal", "complaint", NULL, "施工噪音", "chengguan"},
    /* 17 refuses (楼下 is an excluded keyword); 18 → 望湖街道. */
    {"neighbour's cooking fumes", "hotline", NULL, "339901003002", "楼下饭店油烟太大", 600,
     "normal", "complaint", NULL, "居民油烟纠纷-属地", "jd_wanghu"},
    /* Mini-program photo of rubbish: rule 2 → 新塘街道. */
    {"miniapp rubbish photo", "miniapp", "010103", "339902003001", "路边垃圾没人清理", 600,
     "normal", "complaint", NULL, "小程序随手拍-市容属地", "jd_xintang"},
    /* Mini-program outside every street: 2 refuses (no office), 29. */
    {"miniapp advert, no street office", "miniapp", "010104", "339903001001", "墙上乱贴小广告", 600,
     "normal", "complaint", NULL, "户外广告", "chengguan"},
    /* A consultation about social insurance: rule 57. */
    {"social insurance question", "hotline", NULL, NULL, "咨询社保断缴怎么补", 600, "normal",
     "consult", NULL, "社保咨询", "renshe"},
    /* Rule 1 (fireworks) is disabled: the noise rule 67 → 江城街道. */
    {"fireworks (rule disabled)", "hotline", NULL, "339901001001", "半夜有人放鞭炮，噪音扰民", 600,
     "normal", "complaint", NULL, "关键词-噪音属地", "jd_jiangcheng"},
    /* 15 refuses (no category), 16 refuses (小区): nothing else fits. */
    {"parking inside an estate, no category", "hotline", NULL, "339902003002", "小区里有车乱停",
     600, "normal", "complaint", NULL, NULL, NULL},
};

START_TEST(test_demo_rules) {
    json_error_t jerr;
    json_t *rules = json_load_file(FENBO_SOURCE_DIR "/config/demo/rules.json", 0, &jerr);
    ck_assert_msg(rules != NULL, "rules.json: %s (line %d)", jerr.text, jerr.line);
    json_t *depts = json_load_file(FENBO_SOURCE_DIR "/config/demo/departments.json", 0, &jerr);
    ck_assert_msg(depts != NULL, "departments.json: %s (line %d)", jerr.text, jerr.line);
    json_t *juris = demo_jurisdictions(depts);
    ck_assert_uint_ge(json_array_size(juris), 6);
    fb_ruleset_t *rs = NULL;
    char err[256] = "";
    ck_assert_msg(fb_ruleset_from_json(rules, juris, &rs, err, sizeof err) == 0,
                  "demo rules refused: %s", err);
    ck_assert_int_eq(fb_text_init(), 0);

    for (size_t i = 0; i < FB_ARRAY_LEN(s_demo_cases); i++) {
        const s_demo_case_t *c = &s_demo_cases[i];
        char *norm = NULL;
        ck_assert_int_eq(fb_text_normalize(c->content, &norm), 0);
        fb_rule_input_t in = {0};
        in.channel = c->channel;
        in.category = c->category;
        in.region_code = c->region;
        in.content_norm = norm;
        in.local_minutes = c->minutes;
        in.urgency = c->urgency;
        in.kind = c->kind;
        const char *ex[1] = {c->exclude};
        if (c->exclude) {
            in.exclude = ex;
            in.n_exclude = 1;
        }
        fb_rule_match_t m;
        bool ok = fb_rule_match(rs, &in, &m, NULL, NULL);
        if (!c->want_dept) {
            ck_assert_msg(!ok, "%s: expected the manual queue, got rule %s → %s", c->what,
                          ok ? m.rule->name : "", ok ? m.department : "");
        } else {
            ck_assert_msg(ok, "%s: went to the manual queue (text \"%s\")", c->what, norm);
            ck_assert_msg(strcmp(m.rule->name, c->want_rule) == 0 &&
                              strcmp(m.department, c->want_dept) == 0,
                          "%s: got rule %s → %s, want %s → %s", c->what, m.rule->name, m.department,
                          c->want_rule, c->want_dept);
        }
        free(norm);
    }
    fb_text_shutdown();
    fb_ruleset_destroy(&rs);
    json_decref(juris);
    json_decref(depts);
    json_decref(rules);
}
END_TEST

static Suite *rule_suite(void) {
    Suite *s = suite_create("rule");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, test_priority_order);
    tcase_add_test(tc, test_priority_ties_by_file_order);
    tcase_add_test(tc, test_priority_ties_by_id);
    suite_add_tcase(s, tc);

    tc = tcase_create("conditions");
    tcase_add_test(tc, test_channel);
    tcase_add_test(tc, test_category_prefix);
    tcase_add_test(tc, test_region_prefix);
    tcase_add_test(tc, test_keywords_any);
    tcase_add_test(tc, test_keywords_none);
    tcase_add_test(tc, test_empty_conditions_hold);
    tcase_add_test(tc, test_time_window_wrapping_midnight);
    tcase_add_test(tc, test_time_window_daytime);
    tcase_add_test(tc, test_urgency_and_kind);
    tcase_add_test(tc, test_all_conditions_together);
    suite_add_tcase(s, tc);

    tc = tcase_create("jurisdiction");
    tcase_add_test(tc, test_street_resolves_owner);
    tcase_add_test(tc, test_street_unowned_skipped);
    tcase_add_test(tc, test_street_without_location_skipped);
    tcase_add_test(tc, test_street_without_jurisdictions);
    tcase_add_test(tc, test_community_resolves_owner);
    tcase_add_test(tc, test_owner_lookup);
    suite_add_tcase(s, tc);

    tc = tcase_create("outcome");
    tcase_add_test(tc, test_exclusion_list);
    tcase_add_test(tc, test_no_match_manual);
    tcase_add_test(tc, test_disabled_rules_ignored);
    tcase_add_test(tc, test_action_compiled);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, test_missing_action_refused);
    tcase_add_test(tc, test_missing_name_or_priority_refused);
    tcase_add_test(tc, test_bad_time_refused);
    tcase_add_test(tc, test_time_past_midnight_refused);
    tcase_add_test(tc, test_bad_lists_refused);
    tcase_add_test(tc, test_bad_top_level_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("trace");
    tcase_add_test(tc, test_trace_reports_each_rule);
    tcase_add_test(tc, test_trace_no_match_and_exclusion);
    suite_add_tcase(s, tc);

    tc = tcase_create("demo");
    tcase_add_test(tc, test_demo_rules);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(rule_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
