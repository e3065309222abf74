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
