/* fenboctl.c — the admin CLI's entry point: the table of commands, the global
 * options (--db, --config), usage, and the helpers every command shares
 * (argument parsing, errors, database connection, JSON files).
 *
 * Commands are rows of one table, as PgBouncer's admin console keeps them, so
 * that `fenboctl help`, dispatch and per-command --help cannot drift apart. */
#include "fenboctl.h"
#include "fb_common.h"
#include "fb_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*ctl_cmd_fn)(ctl_t *ctl, int argc, char **argv);

typedef struct {
    const char *group; /* first word */
    const char *verb;  /* second word, NULL for one-word commands */
    ctl_cmd_fn fn;
    const char *args;
    const char *help;
} s_command_t;

static int cmd_config(ctl_t *ctl, int argc, char **argv);
static int cmd_help(ctl_t *ctl, int argc, char **argv);

static const s_command_t s_commands[] = {
    {"db", "migrate", ctl_cmd_db_migrate, "[--dir DIR]",
     "apply schema/NNNN_*.sql not yet applied, each in its own transaction "
     "(DIR: $FENBO_SCHEMA_DIR, else the source tree's schema/)"},
    {"data", "import", ctl_cmd_data_import, "DIR",
     "import DIR/regions.json, departments.json, categories.json, calendar-*.json and "
     "rules.json in one transaction"},
    {"regions", "import", ctl_cmd_regions_import, "FILE",
     "upsert regions: [{code, parent_code, level, name, geometry}] (GeoJSON, WGS-84)"},
    {"departments", "import", ctl_cmd_departments_import, "FILE",
     "upsert departments: [{code, name, kind, jurisdiction: [region codes]}]; a listed "
     "department's jurisdiction is replaced"},
    {"categories", "import", ctl_cmd_categories_import, "FILE",
     "upsert categories: [{code, parent_code, name, terms, examples, emergency}]; terms and "
     "examples replace the catalogue's training examples"},
    {"calendar", "import", ctl_cmd_calendar_import, "FILE",
     "upsert calendar days: [{day: YYYY-MM-DD, kind: holiday|workday, name}]"},
    {"rules", "import", ctl_cmd_rules_import, "FILE",
     "validate FILE (an array of route_rules rows without id) and replace the whole rule "
     "table with it"},
    {"rules", "export", ctl_cmd_rules_export, "",
     "print the rule table as JSON, in the format rules import reads"},
    {"rules", "explain", ctl_cmd_rules_explain,
     "--text TEXT [--category CODE] [--lat LAT --lng LNG [--crs wgs84|gcj02]] "
     "[--channel CH] [--urgency U] [--kind K] [--at RFC3339] [--json]",
     "show how the dispatcher would route a petition: every rule tried and why, the "
     "department, the deadlines"},
    {"classify", "train", ctl_cmd_classify_train, "[--ngram-max N] [--c COST] [--prune W]",
     "train a classifier on training_examples and store it as the newest model (dispatchers "
     "load it at once)"},
    {"classify", "eval", ctl_cmd_classify_eval,
     "FILE [--folds K] [--threshold T] [--json] [--ngram-max N] [--c COST] [--prune W]",
     "top-1/top-3 accuracy, plausible departments and the most confused pairs on labelled JSON "
     "lines {text, category, also}: the newest model, or K-fold with FILE's other folds"},
    {"classify", "text", ctl_cmd_classify_text, "TEXT",
     "the newest model's top 3 categories for TEXT, with the n-grams that weighed most"},
    {"history", "import", ctl_cmd_history_import, "FILE",
     "past work orders as training examples: CSV (header text,category or text,department) or "
     "JSON lines; all rows or none"},
    {"token", "create", ctl_cmd_token_create,
     "--role ROLE [--department CODE] [--region CODE] [--name NAME] "
     "[--expires TIME|90d|12h|30m]",
     "make an API token and print it (only its hash is stored; it cannot be shown again)"},
    {"token", "list", ctl_cmd_token_list, "", "list API tokens (never their hashes)"},
    {"token", "revoke", ctl_cmd_token_revoke, "ID", "revoke an API token"},
    {"case", "show", ctl_cmd_case_show, "ID|TRACKING_NO [--unmask]",
     "show a case, its assignments, petitions (callers masked unless --unmask) and events"},
    {"stats", NULL, ctl_cmd_stats,
     "[--by department|district|street] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json]",
     "rates of the cases first dispatched in [from, to) (days in the city's zone; default: "
     "the last 30 days) per department, district or street, as a table or the API's JSON"},
    {"audit", "verify", ctl_cmd_audit_verify, "",
     "check the hash chain of every case's events; exit 1 and name each break"},
    {"keygen", NULL, ctl_cmd_keygen, "",
     "make a CURVE key pair for the bus ([bus] server_/client_ keys)"},
    {"config", NULL, cmd_config, "", "print the effective configuration"},
    {"help", NULL, cmd_help, "", "print this help"},
};

static void print_usage(FILE *out) {
    fprintf(out, "usage: fenboctl [--db CONNINFO] [--config FILE] COMMAND [ARGS]\n\n"
                 "commands:\n");
    for (size_t i = 0; i < FB_ARRAY_LEN(s_commands); i++) {
        const s_command_t *c = &s_commands[i];
        fprintf(out, "  fenboctl %s%s%s%s%s\n      %s\n", c->group, c->verb ? " " : "",
                c->verb ? c->verb : "", *c->args ? " " : "", c->args, c->help);
    }
    fprintf(out, "\ndatabase: --db CONNINFO, else $FENBO_PG, else [db] conninfo of --config, "
                 "else \"dbname=fenbo\"\n"
                 "exit status: 0 success, 1 failure, 2 usage error\n");
}

static int cmd_help(ctl_t *ctl, int argc, char **argv) {
    (void)ctl;
    (void)argc;
    (void)argv;
    print_usage(stdout);
    return CTL_OK;
}

static int cmd_config(ctl_t *ctl, int argc, char **argv) {
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, NULL, 0, 0, NULL);
    if (rc)
        return rc;
    fb_config_print(&ctl->cfg, stdout);
    return CTL_OK;
}

/* ---- messages ---------------------------------------------------------- */

static void vreport(const ctl_t *ctl, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One line, whatever PostgreSQL or a file put into the message. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (ctl && ctl->cmd)
        fprintf(stderr, "fenboctl: %s: %s\n", ctl->cmd, msg);
    else
        fprintf(stderr, "fenboctl: %s\n", msg);
}

int ctl_fail(const ctl_t *ctl, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(ctl, fmt, ap);
    va_end(ap);
    return CTL_FAIL;
}

int ctl_usage(const ctl_t *ctl, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctl && ctl->cmd)
        fprintf(stderr, "fenboctl: %s: %s (see fenboctl %s --help)\n", ctl->cmd, msg, ctl->cmd);
    else
        fprintf(stderr, "fenboctl: %s (see fenboctl help)\n", msg);
    return CTL_USAGE;
}

/* ---- arguments --------------------------------------------------------- */

static ctl_opt_t *find_opt(ctl_opt_t *opts, size_t nopts, const char *name, size_t len) {
    for (size_t i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

int ctl_args_parse(ctl_t *ctl, int argc, char **argv, ctl_opt_t *opts, size_t nopts, char **pos,
                   size_t minpos, size_t maxpos, size_t *npos) {
    size_t n = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (n == maxpos)
                return ctl_usage(ctl, "unexpected argument '%s'", a);
            pos[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (a[1] != '-')
            return ctl_usage(ctl, "unknown option '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        ctl_opt_t *o = find_opt(opts, nopts, name, len);
        if (!o)
            return ctl_usage(ctl, "unknown option '--%.*s'", (int)len, name);
        if (o->value)
            return ctl_usage(ctl, "--%s given twice", o->name);
        if (!o->takes_value) {
            if (eq)
                return ctl_usage(ctl, "--%s takes no value", o->name);
            o->value = "";
        } else if (eq) {
            o->value = eq + 1;
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            return ctl_usage(ctl, "--%s needs a value", o->name);
        }
    }
    if (n < minpos)
        return ctl_usage(ctl, "missing argument");
    if (npos)
        *npos = n;
    return 0;
}

const char *ctl_opt(const ctl_opt_t *opts, size_t nopts, const char *name) {
    for (size_t i = 0; i < nopts; i++)
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].value;
    return NULL;
}

/* ---- database ---------------------------------------------------------- */

/* Notices (e.g. "relation already exists, skipping" from IF NOT EXISTS) are
 * not news to an administrator; warnings and errors still come through. */
static void on_notice(void *ud, const PGresult *res) {
    (void)ud;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && (strcmp(sev, "NOTICE") == 0 || strcmp(sev, "INFO") == 0 ||
                strcmp(sev, "DEBUG") == 0 || strcmp(sev, "LOG") == 0))
        return;
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "fenboctl: %s: %s\n", sev ? sev : "notice", m ? m : "");
}

int ctl_connect(ctl_t *ctl) {
    const char *conninfo = ctl->db_opt;
    if (!conninfo)
        conninfo = getenv("FENBO_PG");
    if (!conninfo || !*conninfo)
        conninfo = ctl->cfg.db_conninfo;
    if (!conninfo || !*conninfo)
        conninfo = "dbname=fenbo";
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "fenboctl", NULL};
    ctl->db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(ctl->db) != CONNECTION_OK) {
        ctl_fail(ctl, "cannot connect to the database: %s", ctl_pg_error(ctl->db, NULL));
        return FB_EDB;
    }
    PQsetNoticeReceiver(ctl->db, on_notice, NULL);
    if (PQsetClientEncoding(ctl->db, "UTF8") != 0) {
        ctl_fail(ctl, "cannot use UTF8: %s", ctl_pg_error(ctl->db, NULL));
        return FB_EDB;
    }
    /* Times the database formats (case show, token list) are the city's. */
    const char *params[1] = {ctl->cfg.timezone};
    return ctl_query(ctl, "setting the time zone", "SELECT set_config('TimeZone', $1, false)", 1,
                     params, NULL);
}

const char *ctl_pg_error(PGconn *db, const PGresult *res) {
    static char buf[1024];
    char raw[1024];
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary) {
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        snprintf(raw, sizeof raw, "%s%s%s", primary, detail ? " — " : "", detail ? detail : "");
    } else {
        snprintf(raw, sizeof raw, "%s", db ? PQerrorMessage(db) : "no connection");
    }
    /* libpq's messages span lines ("\n\tIs the server running…"): one line,
     * single spaces. */
    size_t n = 0;
    for (const char *p = raw; *p; p++) {
        char ch = *p;
        bool space = ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ';
        if (space && (n == 0 || buf[n - 1] == ' '))
            continue;
        if (space)
            ch = ' ';
        buf[n++] = ch;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

int ctl_query(ctl_t *ctl, const char *what, const char *sql, int nparams, const char *const *params,
              PGresult **res) {
    PGresult *r = PQexecParams(ctl->db, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        ctl_fail(ctl, "%s: %s", what, ctl_pg_error(ctl->db, r));
        PQclear(r);
        if (res)
            *res = NULL;
        return FB_EDB;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return 0;
}

int ctl_begin(ctl_t *ctl) {
    return ctl_query(ctl, "BEGIN", "BEGIN", 0, NULL, NULL);
}

int ctl_commit(ctl_t *ctl) {
    return ctl_query(ctl, "COMMIT", "COMMIT", 0, NULL, NULL);
}

void ctl_rollback(ctl_t *ctl) {
    PQclear(PQexec(ctl->db, "ROLLBACK"));
}

/* ---- files ------------------------------------------------------------- */

int ctl_read_file(ctl_t *ctl, const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        goto fail;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                errno = ENOMEM;
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
fail:
    ctl_fail(ctl, "%s: %s", path, strerror(errno));
    free(buf);
    if (f)
        fclose(f);
    return FB_EIO;
}

int ctl_load_json(ctl_t *ctl, const char *path, json_t **out) {
    json_error_t e;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!*out) {
        if (e.line > 0)
            ctl_fail(ctl, "%s:%d:%d: %s", path, e.line, e.column, e.text);
        else
            ctl_fail(ctl, "%s: %s", path, e.text);
        return FB_EINVAL;
    }
    return 0;
}

/* ---- main -------------------------------------------------------------- */

/* Takes --db and --config out of argv wherever they stand, so that both
 * `fenboctl --db X rules export` and `fenboctl rules export --db X` work. */
static int take_globals(ctl_t *ctl, int *argc, char **argv) {
    int n = 0;
    for (int i = 0; i < *argc; i++) {
        const char **slot = NULL;
        const char *a = argv[i];
        size_t len = 0;
        if (strncmp(a, "--db", 4) == 0 && (a[4] == '\0' || a[4] == '='))
            slot = &ctl->db_opt, len = 4;
        else if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '='))
            slot = &ctl->config_path, len = 8;
        if (!slot) {
            argv[n++] = argv[i];
            continue;
        }
        if (a[len] == '=')
            *slot = a + len + 1;
        else if (i + 1 < *argc)
            *slot = argv[++i];
        else
            return ctl_usage(NULL, "%s needs a value", a);
    }
    *argc = n;
    return 0;
}

static const s_command_t *find_command(int argc, char **argv, int *words) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_commands); i++) {
        const s_command_t *c = &s_commands[i];
        if (strcmp(argv[0], c->group) != 0)
            continue;
        if (!c->verb) {
            *words = 1;
            return c;
        }
        if (argc > 1 && strcmp(argv[1], c->verb) == 0) {
            *words = 2;
            return c;
        }
    }
    return NULL;
}

static bool wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int main(int argc, char **argv) {
    ctl_t ctl = {0};
    char cmdname[64] = "";
    int rc;
    fb_log_init("fenboctl", FB_LOG_ERROR);
    fb_config_defaults(&ctl.cfg);
    argc--, argv++;
    rc = take_globals(&ctl, &argc, argv);
    if (rc)
        goto done;
    if (argc == 0) {
        print_usage(stderr);
        rc = CTL_USAGE;
        goto done;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        print_usage(stdout);
        rc = CTL_OK;
        goto done;
    }
    int words = 0;
    const s_command_t *c = find_command(argc, argv, &words);
    if (!c) {
        char verbs[256] = "";
        for (size_t i = 0; i < FB_ARRAY_LEN(s_commands); i++)
            if (s_commands[i].verb && strcmp(s_commands[i].group, argv[0]) == 0)
                snprintf(verbs + strlen(verbs), sizeof verbs - strlen(verbs), "%s%s",
                         *verbs ? ", " : "", s_commands[i].verb);
        if (*verbs)
            rc = ctl_usage(NULL, "%s needs one of: %s", argv[0], verbs);
        else
            rc = ctl_usage(NULL, "unknown command '%s'", argv[0]);
        goto done;
    }
    snprintf(cmdname, sizeof cmdname, "%s%s%s", c->group, c->verb ? " " : "",
             c->verb ? c->verb : "");
    ctl.cmd = cmdname;
    if (wants_help(argc - words, argv + words)) {
        printf("usage: fenboctl %s%s%s\n  %s\n", cmdname, *c->args ? " " : "", c->args, c->help);
        rc = CTL_OK;
        goto done;
    }
    if (ctl.config_path) {
        char err[512];
        if (fb_config_load(&ctl.cfg, ctl.config_path, err, sizeof err) != 0) {
            rc = ctl_fail(&ctl, "%s", err);
            goto done;
        }
    }
    /* Deadlines and the calendar work in the city's zone, whatever the
     * administrator's shell says. */
    if (setenv("TZ", ctl.cfg.timezone, 1) != 0) {
        rc = ctl_fail(&ctl, "cannot set TZ: %s", strerror(errno));
        goto done;
    }
    tzset();
    rc = c->fn(&ctl, argc - words, argv + words);
done:
    if (ctl.db)
        PQfinish(ctl.db);
    fb_config_free(&ctl.cfg);
    if (fflush(stdout) != 0 && rc == CTL_OK) {
        fprintf(stderr, "fenboctl: cannot write output: %s\n", strerror(errno));
        rc = CTL_FAIL;
    }
    return rc;
}
