-- 0017_login_roles: one login role per daemon, each with exactly the
-- privileges its statements need; the tables' owner (and a superuser) is
-- left to `fenboctl db migrate`, the imports and the scripts.
--
--   fenbo_intake       reads tokens, categories, regions and the petitions'
--                      progress; writes residents' ratings (with their event
--                      and the case's status)
--   fenbo_dispatcher   reads the routing tables and the classifier; writes
--                      petitions, cases, assignments and their first events
--   fenbo_worker       a member of fenbo_app (0007): row-level security
--                      applies from its first statement, before any SET ROLE
--
-- None owns anything, none is a superuser or bypasses row-level security.
-- Intake and the dispatcher serve every department, so row-level security
-- lets them see every row (a policy of their own below, written down as the
-- owner's is); what they may do is bounded by the grants. Passwords are not
-- set here: scripts/pg gives the private cluster's roles random ones (in its
-- passfile), elsewhere a DBA does (ALTER ROLE … PASSWORD). Where the
-- migrating role may not create roles, a DBA creates these three first.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['fenbo_intake', 'fenbo_dispatcher', 'fenbo_worker'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS', r);
        END IF;
    END LOOP;
END $$;

DO $$
BEGIN
    IF NOT pg_has_role('fenbo_worker', 'fenbo_app', 'MEMBER') THEN
        GRANT fenbo_app TO fenbo_worker;
    END IF;
END $$;

-- Every table under row-level security: the two system daemons see all rows.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity LOOP
        EXECUTE format('CREATE POLICY fenbo_daemons ON %I TO fenbo_intake, fenbo_dispatcher'
                       ' USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- ---- fenbo-intake --------------------------------------------------------------

-- The token directory, the category list, the city's bounds and the grid
-- workers' areas (intake/directory.c).
GRANT SELECT (token_hash, role, name, region_code, revoked_at, expires_at) ON api_tokens
    TO fenbo_intake;
GRANT SELECT ON categories, regions, departments TO fenbo_intake;
-- A petition's progress and Open311's reads (petitions.c, open311_read.c).
GRANT SELECT ON petitions, cases, case_events, ratings TO fenbo_intake;
-- A resident's rating: the rating, its event, the case's status.
GRANT INSERT (case_id, petition_id, resolved, satisfaction, comment, source) ON ratings
    TO fenbo_intake;
GRANT INSERT (case_id, actor, type, data) ON case_events TO fenbo_intake;
GRANT UPDATE (status, updated_at) ON cases TO fenbo_intake;
GRANT USAGE ON SEQUENCE ratings_id_seq, case_events_id_seq TO fenbo_intake;

-- ---- fenbo-dispatcher ------------------------------------------------------------

-- Routing: rules, departments, jurisdictions, the calendar, categories,
-- regions, the classifier (route.c, fb_db_load_routing, fb_classify).
GRANT SELECT ON route_rules, departments, jurisdictions, calendar_days, categories, regions,
    classifier_models TO fenbo_dispatcher;
-- The batch (batch.c, dedup.c): petitions stored, cases opened or joined.
GRANT SELECT ON petitions, cases, assignments, case_events TO fenbo_dispatcher;
GRANT INSERT ON petitions, cases, assignments, case_events TO fenbo_dispatcher;
GRANT UPDATE (case_id) ON petitions TO fenbo_dispatcher;
GRANT UPDATE (updated_at) ON cases TO fenbo_dispatcher;
GRANT USAGE ON SEQUENCE petitions_id_seq, cases_id_seq, assignments_id_seq, case_events_id_seq
    TO fenbo_dispatcher;
