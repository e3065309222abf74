/* fenboctl.h — what the files of fenboctl, the admin CLI, share: the
 * invocation context, the argument parser, and the few helpers every command
 * repeats (errors, queries, JSON files). Each command lives in the file named
 * after its group: fenboctl_migrate.c, fenboctl_import.c (imports and rules
 * export), fenboctl_explain.c, fenboctl_token.c, fenboctl_case.c.
 *
 * Exit codes: 0 success, 1 failure (the cause on one stderr line), 2 usage. */
#ifndef FENBOCTL_H
#define FENBOCTL_H

#include "fb_config.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

typedef struct ctl {
    const char *db_opt;      /* --db, or NULL */
    const char *config_path; /* --config, or NULL */
    fb_config_t cfg;         /* defaults, or the --config file over them */
    const char *cmd;         /* "rules import", for messages */
    PGconn *db;              /* opened by ctl_connect(), closed by main */
} ctl_t;

/* One --option a command accepts. value is NULL when the option was absent,
 * "" for a flag that was given. */
typedef struct ctl_opt {
    const char *name; /* without the leading "--" */
    bool takes_value;
    const char *value;
} ctl_opt_t;

/* Splits argv into opts (as "--name value" or "--name=value") and positional
 * arguments (at most maxpos, at least minpos) into pos. Prints a usage error
 * and returns CTL_USAGE on anything else. */
int ctl_args_parse(ctl_t *ctl, int argc, char **argv, ctl_opt_t *opts, size_t nopts, char **pos,
                   size_t minpos, size_t maxpos, size_t *npos);
/* The value of option name (NULL when absent). */
const char *ctl_opt(const ctl_opt_t *opts, size_t nopts, const char *name);

/* "fenboctl: <cmd>: <message>" on stderr; return CTL_FAIL / CTL_USAGE. */
int ctl_fail(const ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_usage(const ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens ctl->db: --db, else $FENBO_PG, else [db] conninfo of --config, else
 * "dbname=fenbo". The session runs in the city's time zone and UTF-8. */
int ctl_connect(ctl_t *ctl);

/* PostgreSQL's message for a failed result, primary text and detail on one
 * line. Borrowed: valid until the next call. */
const char *ctl_pg_error(PGconn *db, const PGresult *res);
/* Runs a parameterised statement. On success stores the result in *res (the
 * caller's: PQclear) or clears it when res is NULL; on failure prints
 * "<what>: <error>" and returns FB_EDB. */
int ctl_query(ctl_t *ctl, const char *what, const char *sql, int nparams, const char *const *params,
              PGresult **res);
/* BEGIN / COMMIT / ROLLBACK (the latter never fails loudly). */
int ctl_begin(ctl_t *ctl);
int ctl_commit(ctl_t *ctl);
void ctl_rollback(ctl_t *ctl);

/* Reads a whole file; *out is the caller's (free()), NUL-terminated. On
 * failure prints the cause and returns FB_EIO. */
int ctl_read_file(ctl_t *ctl, const char *path, char **out, size_t *len);
/* Parses a JSON file (duplicate keys refused); *out is the caller's. On
 * failure prints "file:line:column: why" and returns FB_EINVAL. */
int ctl_load_json(ctl_t *ctl, const char *path, json_t **out);

/* Commands: argv holds what follows the command's words. Each returns an
 * exit code. */
int ctl_cmd_db_migrate(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_regions_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_departments_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_categories_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_calendar_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_rules_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_rules_export(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_data_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_rules_explain(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_classify_train(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_classify_eval(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_classify_text(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_history_import(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_token_create(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_token_list(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_token_revoke(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_case_show(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_stats(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_keygen(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_audit_verify(ctl_t *ctl, int argc, char **argv);

#endif
