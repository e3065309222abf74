/* case_sql.h — SQL fragments that several parts of the case API share, so
 * that a case reads the same and a department's scope is the same whatever
 * endpoint answers. */
#ifndef FB_CASE_SQL_H
#define FB_CASE_SQL_H

/* The classifier's top 3 for a manual-queue case (stored by the dispatcher,
 * schema/0013), with the names of their categories and departments; NULL
 * when the model was not asked. */
#define SQL_CASE_SUGGESTIONS                                                                       \
    "(SELECT json_agg(json_build_object('category', x.s->>'category',"                             \
    "  'category_name', k.name, 'department', x.s->>'department', 'department_name', d.name,"      \
    "  'confidence', (x.s->>'confidence')::float8) ORDER BY x.o)"                                  \
    " FROM jsonb_array_elements(CASE jsonb_typeof(c.suggestions) WHEN 'array'"                     \
    "  THEN c.suggestions ELSE '[]'::jsonb END) WITH ORDINALITY AS x(s, o)"                        \
    " LEFT JOIN categories k ON k.code = x.s->>'category'"                                         \
    " LEFT JOIN departments d ON d.code = x.s->>'department')"

/* The case summary, over `cases c`. */
#define SQL_CASE_SUMMARY                                                                           \
    "json_build_object('id', c.id, 'status', c.status, 'department', c.department_code,"           \
    " 'category', c.category, 'region_code', c.region_code, 'urgency', c.urgency,"                 \
    " 'kind', c.kind, 'accept_due', c.accept_due, 'reply_due', c.reply_due,"                       \
    " 'created_at', c.created_at, 'updated_at', c.updated_at,"                                     \
    " 'category_source', c.category_source, 'model_version', c.model_version,"                     \
    " 'category_confidence', c.category_confidence, 'found_by', c.found_by,"                       \
    " 'grid_region_code', c.grid_region_code, 'solved_on_site', c.solved_on_site,"                 \
    " 'suggestions', " SQL_CASE_SUGGESTIONS ","                                                    \
    " 'tracking_nos', (SELECT coalesce(json_agg(p.tracking_no ORDER BY p.id), '[]'::json)"         \
    "  FROM petitions p WHERE p.case_id = c.id))"

/* The one condition that keeps a department to its own cases. $N is NULL
 * for the roles that see every case. */
#define SQL_SCOPE(n)                                                                               \
    "(" n "::text IS NULL OR EXISTS (SELECT 1 FROM assignments sa"                                 \
    " WHERE sa.case_id = c.id AND sa.department_code = " n "::text))"

#endif
