/* fb_db.c — libpq helpers. */
#include "fb_db.h"
#include "fb_common.h"
#include "fb_log.h"

#include <stdio.h>
#include <string.h>

const char *fb_db_error(PGconn *db) {
    static char buf[512];
    const char *m = db ? PQerrorMessage(db) : "no connection";
    size_t i = 0;
    for (; m[i] && i < sizeof buf - 1; i++)
        buf[i] = (m[i] == '\n' || m[i] == '"') ? ' ' : m[i];
    while (i > 0 && buf[i - 1] == ' ')
        i--;
    buf[i] = '\0';
    return buf;
}

/* The login every connection of this process uses, when set. */
static char s_login[64];

int fb_db_set_login(const char *user) {
    if (!user)
        user = "";
    if (strlen(user) >= sizeof s_login)
        return FB_EINVAL;
    memcpy(s_login, user, strlen(user) + 1);
    return 0;
}

int fb_db_connect(const char *conninfo, PGconn **out) {
    return fb_db_connect_timeout(conninfo, 0, out);
}

int fb_db_connect_timeout(const char *conninfo, int timeout_s, PGconn **out) {
    /* conninfo is expanded first, so the timeout given here overrides one
     * written in it; 0 keeps libpq's default (wait as long as it takes). */
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", timeout_s);
    /* application_name: the program's, so that pg_stat_activity and the
     * server log say which daemon a connection is (unless conninfo names
     * one). */
    /* The login (fb_db_set_login) comes after dbname, so it overrides a user
     * written in conninfo. */
    const char *keys[5] = {"dbname", "fallback_application_name"};
    const char *vals[5] = {conninfo, fb_log_prog()};
    size_t n = 2;
    if (timeout_s > 0) {
        keys[n] = "connect_timeout";
        vals[n++] = timeout;
    }
    if (*s_login) {
        keys[n] = "user";
        vals[n++] = s_login;
    }
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db) != CONNECTION_OK) {
        fb_log(FB_LOG_WARN, "event=db_connect_failed error=\"%s\"", fb_db_error(db));
        PQfinish(db);
        *out = NULL;
        return FB_EDB;
    }
    /* Errors in logs stay terse: a full error names the failing row, which
     * may hold a resident's phone. */
    PQsetErrorVerbosity(db, PQERRORS_TERSE);
    *out = db;
    return 0;
}

int fb_db_exec(PGconn *db, const char *sql, int nparams, const char *const *params) {
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : FB_EDB;
    if (rc)
        fb_log(FB_LOG_WARN, "event=db_error error=\"%s\"", fb_db_error(db));
    PQclear(r);
    return rc;
}

PGresult *fb_db_exec_prepared(PGconn *db, const char *name, const char *sql, int nparams,
                              const char *const *params) {
    PGresult *r = PQexecPrepared(db, name, nparams, params, NULL, NULL, 0);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state || strcmp(state, "26000") != 0) /* invalid_sql_statement_name */
        return r;
    PQclear(r);
    r = PQprepare(db, name, sql, nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return r;
    PQclear(r);
    return PQexecPrepared(db, name, nparams, params, NULL, NULL, 0);
}

int fb_db_query_json(PGconn *db, const char *sql, int nparams, const char *const *params,
                     json_t **out) {
    *out = NULL;
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 1) {
        fb_log(FB_LOG_WARN, "event=db_error error=\"%s\"", fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    if (PQgetisnull(r, 0, 0)) {
        *out = json_array();
    } else {
        json_error_t e;
        *out = json_loads(PQgetvalue(r, 0, 0), 0, &e);
    }
    PQclear(r);
    return *out ? 0 : FB_EDB;
}

int fb_db_load_routing(PGconn *db, json_t **rules, json_t **jurisdictions, json_t **calendar) {
    *rules = *jurisdictions = *calendar = NULL;
    int rc = fb_db_query_json(db,
                              "SELECT json_agg(r ORDER BY priority, id) FROM route_rules r "
                              "WHERE enabled",
                              0, NULL, rules);
    if (!rc)
        rc = fb_db_query_json(db,
                              "SELECT json_agg(json_build_object('department_code', "
                              "j.department_code, 'region_code', j.region_code)) "
                              "FROM jurisdictions j JOIN departments d ON d.code = "
                              "j.department_code WHERE d.active",
                              0, NULL, jurisdictions);
    if (!rc)
        rc = fb_db_query_json(db, "SELECT json_agg(c) FROM calendar_days c", 0, NULL, calendar);
    if (rc) {
        json_decref(*rules);
        json_decref(*jurisdictions);
        json_decref(*calendar);
        *rules = *jurisdictions = *calendar = NULL;
    }
    return rc;
}
