-- 0019_hot_path: what every petition costs PostgreSQL, cut where it buys
-- nothing.
--
-- Row-level security: PostgreSQL ORs a table's permissive policies in an
-- order of its own, and put 0016's and 0018's policies (the grid worker's,
-- the street office's) before 0007's: their SECURITY DEFINER functions —
-- never inlined, planned again on every call — ran for every row the
-- worker's own jobs read or wrote, although those jobs see every row
-- anyway. Each now asks first, through an init plan evaluated once per
-- statement, whether the session is a grid worker or a department at all.
ALTER POLICY fenbo_grid_read ON cases
    USING ((SELECT fenbo_rls_grid_region()) IS NOT NULL AND fenbo_case_grid_visible(id));
ALTER POLICY fenbo_grid_update ON cases
    USING ((SELECT fenbo_rls_grid_region()) IS NOT NULL AND fenbo_case_grid_visible(id))
    WITH CHECK ((SELECT fenbo_rls_grid_region()) IS NOT NULL AND fenbo_case_grid_visible(id));
ALTER POLICY fenbo_grid_read ON case_events
    USING ((SELECT fenbo_rls_grid_region()) IS NOT NULL AND fenbo_case_grid_visible(case_id));
ALTER POLICY fenbo_grid_insert ON case_events
    WITH CHECK ((SELECT fenbo_rls_grid_region()) IS NOT NULL
                AND fenbo_case_grid_visible(case_id));
ALTER POLICY fenbo_street_read ON cases
    USING ((SELECT fenbo_rls_department()) IS NOT NULL
           AND fenbo_street_covers(coalesce(region_code, grid_region_code)));
ALTER POLICY fenbo_street_read ON case_events
    USING ((SELECT fenbo_rls_department()) IS NOT NULL AND fenbo_case_street_visible(case_id));
ALTER POLICY fenbo_street_read ON assignments
    USING ((SELECT fenbo_rls_department()) IS NOT NULL AND fenbo_case_street_visible(case_id));
ALTER POLICY fenbo_street_read ON petitions
    USING ((SELECT fenbo_rls_department()) IS NOT NULL AND fenbo_case_street_visible(case_id));

-- Indexes: every index on a hot table costs on every insert. One serves no
-- query: cases_location_idx (0002), a GiST over every case's point. The
-- duplicate search probes open cases only, through their own partial index
-- (0010), and nothing else searches cases by place; a GiST insert is among
-- the dearest per row.
DROP INDEX cases_location_idx;
