/* fenboctl_case.c — `fenboctl case show ID|TRACKING_NO`: one case as an
 * administrator needs to see it: where it stands, who holds it, every
 * petition that joined it, and its append-only event history in order.
 * Callers' names and phones are masked unless --unmask is given: an admin
 * terminal is still a screen others may see. An unmasked read is recorded as
 * a 'pii_read' event of the case, actor fenboctl:<OS user>. */
#include "fenboctl.h"
#include "fb_common.h"
#include "fb_log.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TS(col) "to_char(" col ", 'YYYY-MM-DD HH24:MI:SS')"

static const char *const s_case_sql =
    "SELECT c.id, c.status, c.department_code, d.name, c.rule_id, r.name,"
    " c.category, cat.name, c.region_code, rg.name, c.urgency, c.kind,"
    " CASE WHEN c.location IS NOT NULL THEN format('%s, %s',"
    "      round(ST_Y(c.location)::numeric, 6), round(ST_X(c.location)::numeric, 6)) END,"
    " " TS("c.created_at") ", " TS("c.updated_at") ", " TS("c.accept_due") ", " TS(
        "c.reply_due") ","
                       " c.status = 'dispatched' AND c.accept_due < now(),"
                       " c.status IN ('dispatched', 'accepted', 'reopened') AND c.reply_due < "
                       "now(),"
                       " c.category_source, c.model_version, round(c.category_confidence::numeric, "
                       "3),"
                       /* the manual queue's suggestions, one line each */
                       " (SELECT string_agg(format('%s %s -> %s %s (%s)', x.s->>'category',"
                       "   coalesce(k.name, '?'), coalesce(x.s->>'department', '-'),"
                       "   coalesce(dd.name, ''), round((x.s->>'confidence')::numeric, 3)),"
                       "   E'\n' ORDER BY x.o)"
                       "  FROM jsonb_array_elements(CASE jsonb_typeof(c.suggestions) WHEN 'array'"
                       "   THEN c.suggestions ELSE '[]'::jsonb END) WITH ORDINALITY AS x(s, o)"
                       "  LEFT JOIN categories k ON k.code = x.s->>'category'"
                       "  LEFT JOIN departments dd ON dd.code = x.s->>'department')"
                       " FROM cases c"
                       " LEFT JOIN departments d ON d.code = c.department_code"
                       " LEFT JOIN route_rules r ON r.id = c.rule_id"
                       " LEFT JOIN categories cat ON cat.code = c.category"
                       " LEFT JOIN regions rg ON rg.code = c.region_code"
                       " WHERE c.id = $1";

static const char *const s_assignments_sql =
    "SELECT a.role, a.department_code, coalesce(d.name, ''), " TS(
        "a.assigned_at") ","
                         " " TS("a.accepted_at") ", " TS("a.replied_at") ", " TS(
                             "a.accept_due") ","
                                             " " TS("a.reply_due") " FROM assignments a"
                                                                   " LEFT JOIN departments d ON "
                                                                   "d.code = a.department_code"
                                                                   " WHERE a.case_id = $1 ORDER BY "
                                                                   "a.id";

static const char *const s_petitions_sql = "SELECT tracking_no, channel, " TS(
    "received_at") ", caller_name, caller_phone, content,"
                   " address, callback FROM petitions WHERE case_id = $1 ORDER BY received_at, id";

static const char *const s_events_sql =
    "SELECT " TS("at") ", actor, type,"
                       " CASE WHEN data = '{}'::jsonb THEN '' ELSE data::text END"
                       " FROM case_events WHERE case_id = $1 ORDER BY id";

/* "张三" → "张*", "欧阳娜娜" → "欧***": the surname stays, so an operator
 * can still say 张先生 on the phone. */
static void mask_name(const char *name, char *out, size_t outlen) {
    size_t first = 1, rest = 0;
    if (!*name) {
        snprintf(out, outlen, "-");
        return;
    }
    while (name[first] && ((unsigned char)name[first] & 0xC0) == 0x80)
        first++;
    for (const char *p = name + first; *p; p++)
        if (((unsigned char)*p & 0xC0) != 0x80)
            rest++;
    if (rest == 0) {
        snprintf(out, outlen, "*");
        return;
    }
    snprintf(out, outlen, "%.*s%s", (int)first, name, rest == 1 ? "*" : rest == 2 ? "**" : "***");
}

/* An unmasked read is itself an event of the case (0008_retention.sql),
 * in the transaction of the read; the actor is the person at the terminal. */
static const char *const s_pii_read_sql = "SELECT fenbo_pii_read($1::bigint, $2)";

static void os_actor(char *out, size_t outlen) {
    const struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name && *pw->pw_name)
        snprintf(out, outlen, "fenboctl:%s", pw->pw_name);
    else
        snprintf(out, outlen, "fenboctl:uid%ld", (long)getuid());
}

static const char *val(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* "code name", "code" or "-". */
static void print_named(const char *label, const char *code, const char *name) {
    printf("  %-12s %s%s%s\n", label, code ? code : "-", name ? " " : "", name ? name : "");
}

/* Prints text indented, a continuation line for each line of it. */
static void print_block(const char *indent, const char *text) {
    fputs(indent, stdout);
    for (const char *p = text; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1])
            fputs(indent, stdout);
    }
    if (!*text || text[strlen(text) - 1] != '\n')
        putchar('\n');
}

/* The case id of arg: a case id when it is all digits and such a case
 * exists, else a petition's tracking number. *id is "" when neither. */
static int resolve(ctl_t *ctl, const char *arg, char *id, size_t idlen) {
    PGresult *res = NULL;
    const char *params[1] = {arg};
    size_t n = strspn(arg, "0123456789");
    id[0] = '\0';
    if (n > 0 && n <= 18 && arg[n] == '\0') {
        if (ctl_query(ctl, "finding the case", "SELECT id FROM cases WHERE id = $1", 1, params,
                      &res))
            return FB_EDB;
        if (PQntuples(res) == 1)
            snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (*id)
            return 0;
    }
    if (ctl_query(ctl, "finding the case",
                  "SELECT case_id FROM petitions WHERE tracking_no = $1 AND case_id IS NOT NULL", 1,
                  params, &res))
        return FB_EDB;
    if (PQntuples(res) == 1)
        snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static void print_case(const PGresult *c) {
    char rule[256] = "-";
    if (val(c, 0, 4))
        snprintf(rule, sizeof rule, "#%s %s", val(c, 0, 4),
                 val(c, 0, 5) ? val(c, 0, 5) : "(no longer in the rule table)");
    printf("case %s: %s\n", val(c, 0, 0), val(c, 0, 1));
    print_named("department:", val(c, 0, 2), val(c, 0, 2) ? val(c, 0, 3) : "(manual queue)");
    printf("  %-12s %s\n", "rule:", rule);
    print_named("category:", val(c, 0, 6), val(c, 0, 7));
    if (val(c, 0, 19) && strcmp(val(c, 0, 19), "model") == 0)
        printf("  %-12s model v%s, confidence %s\n", "from:", val(c, 0, 20) ? val(c, 0, 20) : "?",
               val(c, 0, 21) ? val(c, 0, 21) : "?");
    else
        printf("  %-12s %s\n", "from:", val(c, 0, 19) ? val(c, 0, 19) : "-");
    if (val(c, 0, 22)) {
        printf("  %-12s\n", "suggestions:");
        for (const char *line = val(c, 0, 22); *line;) {
            size_t n = strcspn(line, "\n");
            printf("    %.*s\n", (int)n, line);
            line += n + (line[n] == '\n');
        }
    }
    print_named("region:", val(c, 0, 8), val(c, 0, 9));
    printf("  %-12s %s, %s\n", "urgency:", val(c, 0, 10), val(c, 0, 11));
    printf("  %-12s %s\n", "location:", val(c, 0, 12) ? val(c, 0, 12) : "-");
    printf("  %-12s %s (updated %s)\n", "created:", val(c, 0, 13), val(c, 0, 14));
    printf("  %-12s %s%s\n", "sign for by:", val(c, 0, 15) ? val(c, 0, 15) : "-",
           strcmp(PQgetvalue(c, 0, 17), "t") == 0 ? " (overdue)" : "");
    printf("  %-12s %s%s\n", "reply by:", val(c, 0, 16) ? val(c, 0, 16) : "-",
           strcmp(PQgetvalue(c, 0, 18), "t") == 0 ? " (overdue)" : "");
}

static void print_assignments(const PGresult *a) {
    printf("assignments (%d):\n", PQntuples(a));
    for (int i = 0; i < PQntuples(a); i++) {
        printf("  %-6s %s %s  assigned %s", val(a, i, 0), val(a, i, 1), val(a, i, 2), val(a, i, 3));
        if (val(a, i, 4))
            printf(", accepted %s", val(a, i, 4));
        if (val(a, i, 5))
            printf(", replied %s", val(a, i, 5));
        printf("\n         due: sign for %s, reply %s\n", val(a, i, 6) ? val(a, i, 6) : "-",
               val(a, i, 7) ? val(a, i, 7) : "-");
    }
}

static void print_petitions(const PGresult *p, bool unmask) {
    printf("petitions (%d):\n", PQntuples(p));
    for (int i = 0; i < PQntuples(p); i++) {
        const char *name = val(p, i, 3), *phone = val(p, i, 4);
        char mname[64] = "-", mphone[32] = "-";
        if (name && *name) {
            if (unmask)
                snprintf(mname, sizeof mname, "%s", name);
            else
                mask_name(name, mname, sizeof mname);
        }
        if (phone && *phone) {
            if (unmask)
                snprintf(mphone, sizeof mphone, "%s", phone);
            else
                fb_mask_phone(phone, mphone, sizeof mphone);
        }
        printf("  %s  %s  received %s  caller %s %s%s\n", val(p, i, 0), val(p, i, 1), val(p, i, 2),
               mname, mphone, strcmp(PQgetvalue(p, i, 7), "t") == 0 ? "  (wants a call back)" : "");
        if (val(p, i, 6) && *val(p, i, 6))
            printf("    address: %s\n", val(p, i, 6));
        print_block("    | ", val(p, i, 5));
    }
}

static void print_events(const PGresult *e) {
    printf("events (%d):\n", PQntuples(e));
    for (int i = 0; i < PQntuples(e); i++)
        printf("  %s  %-12s %s%s%s\n", val(e, i, 0), val(e, i, 1), val(e, i, 2),
               *val(e, i, 3) ? "  " : "", val(e, i, 3));
}

int ctl_cmd_case_show(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {{"unmask", false, NULL}};
    char *pos[1];
    int rc = ctl_args_parse(ctl, argc, argv, opts, FB_ARRAY_LEN(opts), pos, 1, 1, NULL);
    if (rc)
        return rc;
    bool unmask = ctl_opt(opts, FB_ARRAY_LEN(opts), "unmask") != NULL;
    char id[32];
    PGresult *c = NULL, *a = NULL, *p = NULL, *e = NULL;
    rc = CTL_FAIL;
    if (ctl_connect(ctl) || resolve(ctl, pos[0], id, sizeof id))
        goto done;
    if (!*id) {
        ctl_fail(ctl, "no such case: %s", pos[0]);
        goto done;
    }
    const char *params[1] = {id};
    /* One snapshot for the four reads, so that the events agree with the
     * status shown above them; an unmasked read also writes its event, and
     * nothing is shown unless that committed. */
    char actor[160];
    os_actor(actor, sizeof actor);
    const char *pii[2] = {id, actor};
    if (ctl_query(ctl, "BEGIN",
                  unmask ? "BEGIN ISOLATION LEVEL REPEATABLE READ"
                         : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                  0, NULL, NULL) ||
        ctl_query(ctl, "reading the case", s_case_sql, 1, params, &c) ||
        ctl_query(ctl, "reading assignments", s_assignments_sql, 1, params, &a) ||
        ctl_query(ctl, "reading petitions", s_petitions_sql, 1, params, &p) ||
        ctl_query(ctl, "reading events", s_events_sql, 1, params, &e) ||
        (unmask && ctl_query(ctl, "recording the unmasked read", s_pii_read_sql, 2, pii, NULL)))
        goto done;
    if (unmask) {
        if (ctl_commit(ctl))
            goto done;
    } else {
        ctl_rollback(ctl);
    }
    if (PQntuples(c) != 1) {
        ctl_fail(ctl, "no such case: %s", pos[0]);
        goto done;
    }
    print_case(c);
    print_assignments(a);
    print_petitions(p, unmask);
    print_events(e);
    rc = CTL_OK;
done:
    PQclear(e);
    PQclear(p);
    PQclear(a);
    PQclear(c);
    return rc;
}
