/* fenboctl_audit.c — `fenboctl audit verify`: checks the hash chain of every
 * case's event history (schema/0006_audit.sql) and names each break. */
#include "fenboctl.h"

#include <stdio.h>
#include <stdlib.h>

int ctl_cmd_audit_verify(ctl_t *ctl, int argc, char **argv) {
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "fenboctl: audit verify takes no arguments\n");
        return 2;
    }
    PGresult *n = NULL, *r = NULL;
    if (ctl_connect(ctl) ||
        ctl_query(ctl, "counting events",
                  "SELECT count(*), count(DISTINCT case_id) FROM case_events", 0, NULL, &n) ||
        ctl_query(ctl, "verifying the chain",
                  "SELECT case_id, id, type, problem FROM fenbo_audit_breaks ORDER BY case_id, id",
                  0, NULL, &r)) {
        PQclear(n);
        return 1;
    }
    int breaks = PQntuples(r);
    for (int i = 0; i < breaks; i++)
        printf("case %s, event %s (%s): %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    printf("%s events of %s cases checked: %s\n", PQgetvalue(n, 0, 0), PQgetvalue(n, 0, 1),
           breaks ? "the history was changed" : "every chain holds");
    PQclear(n);
    PQclear(r);
    return breaks ? 1 : 0;
}
