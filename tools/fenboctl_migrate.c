/* fenboctl_migrate.c — `fenboctl db migrate`: applies schema/NNNN_name.sql
 * files in name order, each in its own transaction together with its row in
 * schema_migrations, so that a file is either wholly applied and recorded or
 * not at all, and a second run applies nothing.
 *
 * A migration file is the repository's own SQL (several statements, $$
 * function bodies), not user data, so it travels as one simple-protocol
 * PQexec; the version recorded beside it still goes as a parameter. Files
 * must not contain BEGIN/COMMIT themselves: the transaction is ours. */
#include "fenboctl.h"
#include "fb_common.h"

#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FENBO_SOURCE_DIR
#define FENBO_SOURCE_DIR "."
#endif

/* Held for the whole run, so that two migrators started together (two
 * hosts deploying at once) apply each file once: the second waits, then
 * finds the files recorded. The number is arbitrary but fixed. */
static const char *const s_lock_sql = "SELECT pg_advisory_lock(7310582604447719168)";

static const char *const s_table_sql = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version text PRIMARY KEY,"
                                       " applied_at timestamptz DEFAULT now())";

/* "0001_core.sql": at least four digits, '_', a name, ".sql". */
static int is_migration(const struct dirent *d) {
    const char *s = d->d_name;
    size_t digits = 0, n = strlen(s);
    while (isdigit((unsigned char)s[digits]))
        digits++;
    return digits >= 4 && s[digits] == '_' && n > digits + 5 && strcmp(s + n - 4, ".sql") == 0;
}

/* Byte order, not the locale's collation: the order must be the same on
 * every host. */
static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* The version of a migration is its number: renaming 0002_foo.sql to
 * 0002_bar.sql must not apply it again. */
static void version_of(const char *name, char *out, size_t outlen) {
    size_t n = strcspn(name, "_");
    snprintf(out, outlen, "%.*s", (int)n, name);
}

/* PostgreSQL reports an error's position in characters from the start of
 * the query string; an editor wants the line. */
static int line_of(const char *text, long pos) {
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && chars < pos - 1; p++) {
        if ((*p & 0xC0) != 0x80)
            chars++;
        if (*p == '\n')
            line++;
    }
    return line;
}

static bool recorded(const PGresult *applied, const char *version) {
    for (int i = 0; i < PQntuples(applied); i++)
        if (strcmp(PQgetvalue(applied, i, 0), version) == 0)
            return true;
    return false;
}

static int apply_file(ctl_t *ctl, const char *dir, const char *name, const char *version) {
    char path[4096];
    char *sql = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ctl_read_file(ctl, path, &sql, NULL))
        return FB_EIO;
    if (ctl_begin(ctl))
        goto fail;
    PGresult *r = PQexec(ctl->db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        char where[32] = "";
        if (pos)
            snprintf(where, sizeof where, " line %d", line_of(sql, strtol(pos, NULL, 10)));
        ctl_fail(ctl, "%s%s: %s (nothing of it applied)", name, where, ctl_pg_error(ctl->db, r));
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    const char *params[1] = {version};
    if (ctl_query(ctl, name, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params,
                  NULL) ||
        ctl_commit(ctl))
        goto fail;
    free(sql);
    return 0;
fail:
    ctl_rollback(ctl);
    free(sql);
    return FB_EDB;
}

int ctl_cmd_db_migrate(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {{"dir", true, NULL}};
    int rc = ctl_args_parse(ctl, argc, argv, opts, FB_ARRAY_LEN(opts), NULL, 0, 0, NULL);
    if (rc)
        return rc;
    const char *dir = ctl_opt(opts, FB_ARRAY_LEN(opts), "dir");
    if (!dir || !*dir)
        dir = getenv("FENBO_SCHEMA_DIR");
    if (!dir || !*dir)
        dir = FENBO_SOURCE_DIR "/schema";

    struct dirent **files = NULL;
    PGresult *applied = NULL;
    int n = scandir(dir, &files, is_migration, by_name);
    if (n < 0) {
        rc = ctl_fail(ctl, "cannot read %s: %s", dir, strerror(errno));
        files = NULL;
        n = 0;
        goto done;
    }
    if (n == 0) {
        rc = ctl_fail(ctl, "no migrations (NNNN_name.sql) in %s", dir);
        goto done;
    }
    for (int i = 1; i < n; i++) {
        char a[64], b[64];
        version_of(files[i - 1]->d_name, a, sizeof a);
        version_of(files[i]->d_name, b, sizeof b);
        if (strcmp(a, b) == 0) {
            rc = ctl_fail(ctl, "%s and %s have the same version %s", files[i - 1]->d_name,
                          files[i]->d_name, a);
            goto done;
        }
    }

    rc = CTL_FAIL;
    if (ctl_connect(ctl) || ctl_query(ctl, "locking", s_lock_sql, 0, NULL, NULL) ||
        ctl_query(ctl, "creating schema_migrations", s_table_sql, 0, NULL, NULL) ||
        ctl_query(ctl, "reading schema_migrations",
                  "SELECT version FROM schema_migrations ORDER BY version", 0, NULL, &applied))
        goto done;

    int done_now = 0;
    char last[64] = "";
    for (int i = 0; i < n; i++) {
        char version[64];
        version_of(files[i]->d_name, version, sizeof version);
        snprintf(last, sizeof last, "%s", version);
        if (recorded(applied, version))
            continue;
        if (apply_file(ctl, dir, files[i]->d_name, version))
            goto done;
        printf("applied %s\n", files[i]->d_name);
        fflush(stdout);
        done_now++;
    }
    if (done_now == 0)
        printf("nothing to apply: the database has every migration in %s (%d, latest %s)\n", dir, n,
               last);
    /* A database migrated by newer code than this tree is worth a word: the
     * daemons built from this tree may not expect its schema. */
    for (int i = 0; i < PQntuples(applied); i++) {
        const char *v = PQgetvalue(applied, i, 0);
        bool known = false;
        for (int j = 0; j < n && !known; j++) {
            char version[64];
            version_of(files[j]->d_name, version, sizeof version);
            known = strcmp(version, v) == 0;
        }
        if (!known)
            fprintf(stderr,
                    "fenboctl: db migrate: note: the database has migration %s, which %s "
                    "does not\n",
                    v, dir);
    }
    rc = CTL_OK;
done:
    PQclear(applied);
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return rc;
}
