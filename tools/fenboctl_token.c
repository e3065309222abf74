/* fenboctl_token.c — `fenboctl token create|list|revoke`: API bearer tokens.
 * A token is printed once, alone on stdout (scripts capture it); the
 * database keeps only its SHA-256, so neither a dump nor `token list` can
 * give it away. */
#include "fenboctl.h"
#include "fb_common.h"
#include "fb_time.h"
#include "fb_token.h"

#include <stdio.h>
#include <string.h>

/* As api_tokens' CHECK has them. */
static const char *const s_roles[] = {"hotline",    "miniapp",    "open311", "mailbox", "operator",
                                      "department", "supervisor", "admin",   "grid",    NULL};

static bool is_role(const char *s) {
    for (size_t i = 0; s_roles[i]; i++)
        if (strcmp(s, s_roles[i]) == 0)
            return true;
    return false;
}

static bool all_digits(const char *s) {
    if (!*s || strlen(s) > 9)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* --expires: an RFC 3339 time, or a duration from now ("90d", "12h",
 * "30m"), as an RFC 3339 time in out. */
static int parse_expiry(const char *s, char *out, size_t outlen) {
    int64_t at;
    if (fb_time_parse(s, &at) == 0) {
        fb_time_format(at, out, outlen);
        return 0;
    }
    char *end;
    long n = strtol(s, &end, 10);
    int64_t unit = strcmp(end, "d") == 0   ? 86400
                   : strcmp(end, "h") == 0 ? 3600
                   : strcmp(end, "m") == 0 ? 60
                                           : 0;
    if (end == s || n <= 0 || n > 36500L * 24 * 60 || !unit)
        return FB_EINVAL;
    fb_time_format(fb_now_us() + (int64_t)n * unit * 1000000, out, outlen);
    return 0;
}

int ctl_cmd_token_create(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {{"role", true, NULL},
                        {"department", true, NULL},
                        {"name", true, NULL},
                        {"region", true, NULL},
                        {"expires", true, NULL}};
    int rc = ctl_args_parse(ctl, argc, argv, opts, FB_ARRAY_LEN(opts), NULL, 0, 0, NULL);
    if (rc)
        return rc;
    const char *expires = ctl_opt(opts, FB_ARRAY_LEN(opts), "expires");
    char expires_at[40] = "";
    if (expires && parse_expiry(expires, expires_at, sizeof expires_at) != 0)
        return ctl_usage(ctl, "--expires takes an RFC 3339 time (2027-01-01T00:00:00+08:00) or a "
                              "duration from now: 90d, 12h, 30m");
    const char *role = ctl_opt(opts, FB_ARRAY_LEN(opts), "role");
    const char *dept = ctl_opt(opts, FB_ARRAY_LEN(opts), "department");
    const char *name = ctl_opt(opts, FB_ARRAY_LEN(opts), "name");
    const char *region = ctl_opt(opts, FB_ARRAY_LEN(opts), "region");
    if (!role || !is_role(role))
        return ctl_usage(ctl, "--role must be one of hotline, miniapp, open311, mailbox, "
                              "operator, department, supervisor, admin, grid");
    if (dept && !*dept)
        dept = NULL;
    if ((strcmp(role, "department") == 0) != (dept != NULL))
        return ctl_usage(ctl, "--department CODE is required for role department, and only "
                              "for it");
    if (region && !*region)
        region = NULL;
    if ((strcmp(role, "grid") == 0) != (region != NULL))
        return ctl_usage(ctl, "--region CODE is required for role grid, and only for it");

    char token[FB_TOKEN_LEN + 1], hash[FB_TOKEN_HASH_HEX];
    if (fb_token_generate(token, sizeof token) != 0 || fb_token_hash_hex(token, hash) != 0)
        return ctl_fail(ctl, "cannot make a random token");
    if (ctl_connect(ctl))
        return CTL_FAIL;
    PGresult *res = NULL;
    if (dept) {
        const char *p[1] = {dept};
        if (ctl_query(ctl, "reading departments", "SELECT 1 FROM departments WHERE code = $1", 1, p,
                      &res))
            return CTL_FAIL;
        int found = PQntuples(res);
        PQclear(res);
        if (!found)
            return ctl_fail(ctl, "no such department: %s", dept);
    }
    if (region) {
        /* A grid worker covers one grid (level 5) or one community (4). */
        const char *p[1] = {region};
        if (ctl_query(ctl, "reading regions",
                      "SELECT 1 FROM regions WHERE code = $1 AND level IN (4, 5)", 1, p, &res))
            return CTL_FAIL;
        int found = PQntuples(res);
        PQclear(res);
        if (!found)
            return ctl_fail(ctl, "no such grid or community: %s", region);
    }
    const char *params[6] = {
        hash, role, dept, name ? name : "", region, expires_at[0] ? expires_at : NULL};
    if (ctl_query(ctl, "storing the token",
                  "INSERT INTO api_tokens (token_hash, role, department_code, name, region_code,"
                  " expires_at) VALUES (decode($1, 'hex'), $2, $3, $4, $5, $6::timestamptz)",
                  6, params, NULL))
        return CTL_FAIL;
    printf("%s\n", token);
    return CTL_OK;
}

int ctl_cmd_token_list(ctl_t *ctl, int argc, char **argv) {
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, NULL, 0, 0, NULL);
    if (rc)
        return rc;
    PGresult *res = NULL;
    if (ctl_connect(ctl) ||
        ctl_query(ctl, "reading api_tokens",
                  "SELECT id, role, coalesce(department_code, '-'),"
                  " to_char(created_at, 'YYYY-MM-DD HH24:MI'),"
                  " coalesce(to_char(revoked_at, 'YYYY-MM-DD HH24:MI'), '-'),"
                  " coalesce(to_char(expires_at, 'YYYY-MM-DD HH24:MI'), '-'), name"
                  " FROM api_tokens ORDER BY id",
                  0, NULL, &res))
        return CTL_FAIL;
    /* The name, free text, goes last so that wide characters cannot break
     * the columns. */
    printf("%-5s %-10s %-20s %-16s %-16s %-16s %s\n", "ID", "ROLE", "DEPARTMENT", "CREATED",
           "REVOKED", "EXPIRES", "NAME");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-5s %-10s %-20s %-16s %-16s %-16s %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
               PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6));
    PQclear(res);
    return CTL_OK;
}

int ctl_cmd_token_revoke(ctl_t *ctl, int argc, char **argv) {
    char *pos[1];
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, pos, 1, 1, NULL);
    if (rc)
        return rc;
    if (!all_digits(pos[0]))
        return ctl_usage(ctl, "ID must be a token id as token list shows it");
    const char *params[1] = {pos[0]};
    PGresult *res = NULL;
    if (ctl_connect(ctl) || ctl_query(ctl, "revoking",
                                      "UPDATE api_tokens SET revoked_at = now()"
                                      " WHERE id = $1 AND revoked_at IS NULL RETURNING role, name",
                                      1, params, &res))
        return CTL_FAIL;
    if (PQntuples(res) == 1) {
        printf("revoked token %s (%s%s%s); every intake drops it within a second\n", pos[0],
               PQgetvalue(res, 0, 0), *PQgetvalue(res, 0, 1) ? ", " : "", PQgetvalue(res, 0, 1));
        PQclear(res);
        return CTL_OK;
    }
    PQclear(res);
    /* Revoking twice is not an error: the token is revoked, as asked. */
    if (ctl_query(ctl, "reading api_tokens",
                  "SELECT to_char(revoked_at, 'YYYY-MM-DD HH24:MI') FROM api_tokens WHERE id = $1",
                  1, params, &res))
        return CTL_FAIL;
    rc = PQntuples(res) == 1 ? CTL_OK : CTL_FAIL;
    if (rc == CTL_OK)
        printf("token %s was already revoked at %s\n", pos[0], PQgetvalue(res, 0, 0));
    else
        ctl_fail(ctl, "no such token: %s", pos[0]);
    PQclear(res);
    return rc;
}
