-- 0018_grid_flow: what the grid's path needs beyond 0016's contract.
--
-- - Rules may match the grid channel (a grid worker's report not fixed on
--   the spot is dispatched like any petition, its channel 'grid').
-- - fenbo.region travels with fenbo.role = 'grid' (workers/dblink.c sets
--   both), so 0016's policies confine a grid worker to its area.
-- - A street office (a department whose jurisdiction is a street, level 3)
--   reads the cases in its street (事权归街道): the grid's reports, the
--   verifications it is escalated, the cases it may 吹哨 on even when a city
--   bureau leads them.

ALTER TABLE route_rules DROP CONSTRAINT route_rules_channel_check;
ALTER TABLE route_rules ADD CONSTRAINT route_rules_channel_check
    CHECK (channel IN ('hotline', 'miniapp', 'mailbox', 'open311', 'grid'));

-- The region a verification goes to: the grid holding the point, else its
-- community (a community without grid polygons is walked by its own
-- workers); NULL outside every community.
CREATE FUNCTION fenbo_verification_region(p_point geometry) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT r.code FROM regions r WHERE r.level IN (4, 5) AND ST_Covers(r.geom, p_point)
            ORDER BY r.level DESC, r.code LIMIT 1);

-- The street office of a region code: the department whose jurisdiction is
-- the street (level 3) above or at it.
CREATE FUNCTION fenbo_street_office(p_region text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT j.department_code FROM jurisdictions j JOIN regions r ON r.code = j.region_code
            WHERE r.level = 3 AND p_region IS NOT NULL AND starts_with(p_region, r.code)
            ORDER BY j.department_code LIMIT 1);

-- Whether the department asking is the street office of a region: the
-- policies' test (runs as the owner, so that jurisdictions' reads do not
-- depend on the caller).
CREATE FUNCTION fenbo_street_covers(p_region text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN p_region IS NOT NULL AND public.fenbo_rls_department() IS NOT NULL
           AND EXISTS (SELECT 1 FROM public.jurisdictions j JOIN public.regions r
                        ON r.code = j.region_code
                        WHERE j.department_code = public.fenbo_rls_department() AND r.level = 3
                          AND starts_with(p_region, r.code));
REVOKE EXECUTE ON FUNCTION fenbo_street_covers(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fenbo_street_covers(text) TO fenbo_app;

CREATE FUNCTION fenbo_case_street_visible(p_case_id bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN EXISTS (SELECT 1 FROM public.cases c
                   WHERE c.id = p_case_id
                     AND public.fenbo_street_covers(coalesce(c.region_code, c.grid_region_code)));
REVOKE EXECUTE ON FUNCTION fenbo_case_street_visible(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fenbo_case_street_visible(bigint) TO fenbo_app;

CREATE POLICY fenbo_street_read ON cases FOR SELECT TO fenbo_app
    USING (fenbo_street_covers(coalesce(region_code, grid_region_code)));
CREATE POLICY fenbo_street_read ON case_events FOR SELECT TO fenbo_app
    USING (fenbo_case_street_visible(case_id));
CREATE POLICY fenbo_street_read ON assignments FOR SELECT TO fenbo_app
    USING (fenbo_case_street_visible(case_id));

GRANT EXECUTE ON FUNCTION fenbo_verification_region(geometry), fenbo_street_office(text)
    TO fenbo_app;
CREATE POLICY fenbo_street_read ON petitions FOR SELECT TO fenbo_app
    USING (fenbo_case_street_visible(case_id));

-- GET /api/v1/stats?by=street: each street's rates (0005) with its grid's
-- figures beside them ("grid": found, solved_on_site, on_site_rate,
-- verifications, verified_on_time, on_time_rate, rejected, rejection_rate;
-- 0016's fenbo_stats_grid), and a row for a street whose grid solved all it
-- found on the spot (no department's case to rate). Every other `by` goes on
-- to 0016's function (by=grid, and 0005's groupings), renamed
-- fenbo_stats_json_grid.
ALTER FUNCTION fenbo_stats_json(text, text, text, text, text) RENAME TO fenbo_stats_json_grid;
CREATE FUNCTION fenbo_stats_json(p_by text, p_from text, p_to text, p_tz text,
                                 p_department text DEFAULT NULL) RETURNS json
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    per record;
    base json;
    v_rows json;
BEGIN
    IF p_by IS DISTINCT FROM 'street' THEN
        RETURN fenbo_stats_json_grid(p_by, p_from, p_to, p_tz, p_department);
    END IF;
    -- 0005's rows per street (it refuses a department any by but its own).
    base := fenbo_stats_json_cases(p_by, p_from, p_to, p_tz, p_department);
    per := fenbo_stats_period(p_from, p_to, p_tz, NULL);
    WITH s AS (SELECT value AS row, value->>'key' AS key
               FROM json_array_elements(base->'rows')),
         g AS (SELECT g.key, to_jsonb(g) - 'key' AS figures, r.name
               FROM fenbo_stats_grid('street', per.from_day::timestamp AT TIME ZONE p_tz,
                                     per.to_day::timestamp AT TIME ZONE p_tz) g
               LEFT JOIN regions r ON r.code = g.key)
    SELECT coalesce(json_agg((coalesce(s.row::jsonb, jsonb_build_object('key', g.key,
               'name', g.name)) || jsonb_build_object('grid', g.figures))::json
               ORDER BY coalesce(s.key, g.key)), '[]'::json)
      INTO v_rows
      FROM s FULL JOIN g ON g.key = s.key;
    RETURN json_build_object('by', p_by, 'from', base->'from', 'to', base->'to',
                             'timezone', p_tz, 'rows', v_rows, 'total', base->'total');
END $$;
GRANT EXECUTE ON FUNCTION fenbo_stats_json(text, text, text, text, text) TO fenbo_app;
