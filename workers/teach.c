/* teach.c — training examples from operators' decisions (see teach.h). All
 * statements run inside the caller's transaction, as fenbo_app: the grants
 * of schema/0013 let it insert examples and set a case's category. */
#include "teach.h"
#include "fb_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The text is the resident's own (training normalises it); the category must
 * be a leaf, as the model only ever answers leaves. */
static const char s_example_sql[] =
    "INSERT INTO training_examples (text, category, source, who, case_id)"
    " SELECT p.content, k.code, 'operator', $3::text, c.id FROM cases c"
    " JOIN categories k ON k.code = coalesce($2::text, c.category)"
    "  AND NOT EXISTS (SELECT 1 FROM categories l WHERE l.parent_code = k.code)"
    " CROSS JOIN LATERAL (SELECT q.content FROM petitions q WHERE q.case_id = c.id"
    "  ORDER BY q.id LIMIT 1) p"
    " WHERE c.id = $1::bigint AND p.content <> ''"
    " RETURNING id";

static const char s_known_sql[] =
    "SELECT NOT EXISTS (SELECT 1 FROM categories l WHERE l.parent_code = k.code)"
    " FROM categories k WHERE k.code = $1::text";

static const char s_set_sql[] =
    "UPDATE cases SET category = $2::text, category_source = 'operator', model_version = NULL,"
    " category_confidence = NULL, updated_at = now()"
    " WHERE id = $1::bigint AND (category IS DISTINCT FROM $2::text"
    "  OR category_source IS DISTINCT FROM 'operator') RETURNING id";

static const char s_suggested_sql[] =
    "SELECT x.s->>'category' FROM cases c,"
    " jsonb_array_elements(CASE jsonb_typeof(c.suggestions) WHEN 'array' THEN c.suggestions"
    "  ELSE '[]'::jsonb END) WITH ORDINALITY AS x(s, o)"
    " WHERE c.id = $1::bigint AND x.s->>'department' = $2::text ORDER BY x.o LIMIT 1";

int fb_teach_example(fb_casetx_t *t, int64_t case_id, const char *category, const char *who,
                     bool *written) {
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    const char *params[] = {idb, category, who};
    PGresult *r = fb_casetx_query(t, s_example_sql, 3, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    *written = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

int fb_teach_category_known(fb_casetx_t *t, const char *category, bool *known, bool *leaf) {
    const char *params[] = {category};
    PGresult *r = fb_casetx_query(t, s_known_sql, 1, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    *known = PQntuples(r) == 1;
    *leaf = *known && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return 0;
}

int fb_teach_set_category(fb_casetx_t *t, int64_t case_id, const char *category, bool *changed) {
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    const char *params[] = {idb, category};
    PGresult *r = fb_casetx_query(t, s_set_sql, 2, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    *changed = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

int fb_teach_suggested_category(fb_casetx_t *t, int64_t case_id, const char *department, char *out,
                                size_t outlen) {
    char idb[24];
    snprintf(idb, sizeof idb, "%" PRId64, case_id);
    const char *params[] = {idb, department};
    PGresult *r = fb_casetx_query(t, s_suggested_sql, 2, params, PGRES_TUPLES_OK);
    if (!r)
        return FB_EDB;
    snprintf(out, outlen, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return 0;
}
