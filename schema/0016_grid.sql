-- 0016_grid: the grid (网格). Grid workers report what they find on patrol,
-- close what they fix on the spot, and verify on site (核查) that a
-- department's "resolved" is true before the case goes on to the resident's
-- callback. A grid worker's token is bound to one grid or community (a region
-- code); PostgreSQL confines the worker to the verification tasks whose point
-- lies in that region, as 0007 confines a department to its cases.
--
-- Session settings read by the policies (set by the worker per request, as
-- fenbo.role and fenbo.department in 0007):
--
--   fenbo.role     'grid' for a grid worker, 'street' is not a role: a street
--                  office is a department whose jurisdiction holds the region
--   fenbo.region   a grid token's region code, else ''

-- ---- tokens of role grid, bound to a region ------------------------------------

ALTER TABLE api_tokens ADD COLUMN region_code text REFERENCES regions (code);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('hotline', 'miniapp', 'open311', 'mailbox', 'operator', 'department',
                    'supervisor', 'admin', 'grid'));
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_grid_region_check
    CHECK ((role = 'grid') = (region_code IS NOT NULL));

-- ---- cases found by the grid -----------------------------------------------------

-- Who found the case and how it ended on site: found_by 'grid' for a grid
-- worker's report (the rates' "found by the grid"), solved_on_site for one
-- closed at once by that worker (not counted as a department's work).
ALTER TABLE cases ADD COLUMN found_by text CHECK (found_by IN ('grid')),
                  ADD COLUMN grid_region_code text REFERENCES regions (code),
                  ADD COLUMN solved_on_site boolean NOT NULL DEFAULT false;
CREATE INDEX cases_grid_region_idx ON cases (grid_region_code) WHERE found_by = 'grid';

-- ---- verification tasks (核查) ---------------------------------------------------

-- One per "resolved" reply on a case with a location. region_code is the
-- grid (or, without a grid polygon, the community) holding the point; due
-- is the deadline in working hours ([grid] verify_hours). outcome is set by
-- the worker's confirm/reject; escalated_at when overdue and handed to the
-- street office (street_code, the department owning the street).
CREATE TABLE verification_tasks (
    id               bigserial PRIMARY KEY,
    case_id          bigint NOT NULL REFERENCES cases (id),
    replied_event_id bigint REFERENCES case_events (id),
    department_code  text NOT NULL REFERENCES departments (code),
    region_code      text NOT NULL REFERENCES regions (code),
    street_code      text REFERENCES departments (code),
    due              timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    outcome          text CHECK (outcome IN ('confirmed', 'rejected')),
    reason           text,
    photos           jsonb NOT NULL DEFAULT '[]',
    decided_by       text,
    decided_at       timestamptz,
    escalated_at     timestamptz,
    CHECK ((outcome IS NULL) = (decided_at IS NULL)),
    CHECK (outcome IS DISTINCT FROM 'rejected' OR (reason IS NOT NULL AND reason <> ''))
);
CREATE UNIQUE INDEX verification_tasks_open_idx ON verification_tasks (case_id)
    WHERE outcome IS NULL;
CREATE INDEX verification_tasks_region_idx ON verification_tasks (region_code, outcome);
CREATE INDEX verification_tasks_due_idx ON verification_tasks (due)
    WHERE outcome IS NULL AND escalated_at IS NULL;

-- ---- who is asking: a grid worker ------------------------------------------------

CREATE FUNCTION fenbo_rls_grid_region() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN current_setting('fenbo.role', true) = 'grid'
                THEN nullif(current_setting('fenbo.region', true), '') END;

-- Region codes are hierarchical strings: a grid worker bound to a community
-- covers every grid under it.
CREATE FUNCTION fenbo_grid_covers(p_region text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN p_region IS NOT NULL AND fenbo_rls_grid_region() IS NOT NULL
           AND starts_with(p_region, fenbo_rls_grid_region());

-- Whether the grid worker asking has a verification task of the case (for
-- the policies of cases and case_events; runs as the owner so as not to
-- recurse through verification_tasks' own policy).
CREATE FUNCTION fenbo_case_grid_visible(p_case_id bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN EXISTS (SELECT 1 FROM public.verification_tasks v
                   WHERE v.case_id = p_case_id AND public.fenbo_grid_covers(v.region_code));
REVOKE EXECUTE ON FUNCTION fenbo_case_grid_visible(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fenbo_case_grid_visible(bigint) TO fenbo_app;

-- ---- row-level security ------------------------------------------------------------

ALTER TABLE verification_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE verification_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY fenbo_owner ON verification_tasks TO CURRENT_USER USING (true) WITH CHECK (true);

-- Read: everyone who reads all; a grid worker its area's tasks; a department
-- the tasks of its cases (a street office sees those it leads or assists).
CREATE POLICY fenbo_app_read ON verification_tasks FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR fenbo_grid_covers(region_code)
           OR department_code = (SELECT fenbo_rls_department())
           OR street_code = (SELECT fenbo_rls_department()));
-- Decide: the system's jobs, and a grid worker only inside its area, only
-- while the task is open.
CREATE POLICY fenbo_app_update ON verification_tasks FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()) OR (fenbo_grid_covers(region_code) AND outcome IS NULL))
    WITH CHECK ((SELECT fenbo_rls_writes_all()) OR fenbo_grid_covers(region_code));
CREATE POLICY fenbo_app_insert ON verification_tasks FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()));

-- A grid worker also reads the cases (and their events) it verifies, and
-- writes the events of its decision.
CREATE POLICY fenbo_grid_read ON cases FOR SELECT TO fenbo_app
    USING (fenbo_case_grid_visible(id));
CREATE POLICY fenbo_grid_update ON cases FOR UPDATE TO fenbo_app
    USING (fenbo_case_grid_visible(id)) WITH CHECK (fenbo_case_grid_visible(id));
CREATE POLICY fenbo_grid_read ON case_events FOR SELECT TO fenbo_app
    USING (fenbo_case_grid_visible(case_id));
CREATE POLICY fenbo_grid_insert ON case_events FOR INSERT TO fenbo_app
    WITH CHECK (fenbo_case_grid_visible(case_id));

-- ---- grants to fenbo_app (as 0007/0013) ---------------------------------------------

GRANT SELECT ON verification_tasks TO fenbo_app;
GRANT INSERT (case_id, replied_event_id, department_code, region_code, street_code, due)
    ON verification_tasks TO fenbo_app;
GRANT UPDATE (outcome, reason, photos, decided_by, decided_at, escalated_at)
    ON verification_tasks TO fenbo_app;
GRANT USAGE ON SEQUENCE verification_tasks_id_seq TO fenbo_app;
GRANT UPDATE (found_by, grid_region_code, solved_on_site) ON cases TO fenbo_app;

-- ---- the grid's rates ---------------------------------------------------------------

-- Per street (first 9 characters of the region code) or per grid (the whole
-- code), over [p_from, p_to):
--   found           cases found by the grid (cases.found_by = 'grid'), by
--                   their creation time and the reporting worker's region
--   solved_on_site  of those, closed at once by the worker; they have no
--                   dispatch event, so 0005's department rates never count them
--   verifications   verification tasks created in the period, by the
--                   region holding the point
--   on_time         of those, decided at or before due
--   rejected        of those, rejected (a "resolved" that was not)
-- Rates are fractions rounded to 4 decimals, NULL over 0 (fenbo_stats_rate).
CREATE FUNCTION fenbo_stats_grid(p_by text, p_from timestamptz, p_to timestamptz)
    RETURNS TABLE (key text, found bigint, solved_on_site bigint, on_site_rate numeric,
                   verifications bigint, verified_on_time bigint, on_time_rate numeric,
                   rejected bigint, rejection_rate numeric)
    LANGUAGE sql STABLE
    BEGIN ATOMIC
    WITH f AS (
        SELECT CASE WHEN p_by = 'street' THEN left(c.grid_region_code, 9)
                    ELSE c.grid_region_code END AS k,
               count(*) AS found,
               count(*) FILTER (WHERE c.solved_on_site) AS on_site
        FROM cases c
        WHERE c.found_by = 'grid' AND c.created_at >= p_from AND c.created_at < p_to
        GROUP BY 1),
    v AS (
        SELECT CASE WHEN p_by = 'street' THEN left(t.region_code, 9) ELSE t.region_code END AS k,
               count(*) AS n,
               count(*) FILTER (WHERE t.decided_at <= t.due) AS on_time,
               count(*) FILTER (WHERE t.outcome = 'rejected') AS rejected
        FROM verification_tasks t
        WHERE t.created_at >= p_from AND t.created_at < p_to
        GROUP BY 1)
    SELECT coalesce(f.k, v.k), coalesce(f.found, 0), coalesce(f.on_site, 0),
           fenbo_stats_rate(coalesce(f.on_site, 0), coalesce(f.found, 0)),
           coalesce(v.n, 0), coalesce(v.on_time, 0),
           fenbo_stats_rate(coalesce(v.on_time, 0), coalesce(v.n, 0)),
           coalesce(v.rejected, 0), fenbo_stats_rate(coalesce(v.rejected, 0), coalesce(v.n, 0))
    FROM f FULL JOIN v ON f.k = v.k
    ORDER BY 1;
    END;
GRANT EXECUTE ON FUNCTION fenbo_stats_grid(text, timestamptz, timestamptz) TO fenbo_app;

-- GET /api/v1/stats?by=grid: the grid's rates per grid, in the shape of the
-- other groupings ({"by", "from", "to", "timezone", "rows", "total"}); every
-- other `by` goes on to 0005's function, renamed fenbo_stats_json_cases.
ALTER FUNCTION fenbo_stats_json(text, text, text, text, text) RENAME TO fenbo_stats_json_cases;
CREATE FUNCTION fenbo_stats_json(p_by text, p_from text, p_to text, p_tz text,
                                 p_department text DEFAULT NULL) RETURNS json
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    per record;
    t0 timestamptz;
    t1 timestamptz;
    v_rows json;
BEGIN
    IF p_by IS DISTINCT FROM 'grid' THEN
        RETURN fenbo_stats_json_cases(p_by, p_from, p_to, p_tz, p_department);
    END IF;
    IF p_department IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'a department sees its own row only: use by=department';
    END IF;
    per := fenbo_stats_period(p_from, p_to, p_tz, NULL);
    t0 := per.from_day::timestamp AT TIME ZONE p_tz;
    t1 := per.to_day::timestamp AT TIME ZONE p_tz;
    SELECT coalesce(json_agg(json_build_object(
               'key', g.key, 'name', r.name, 'found', g.found,
               'solved_on_site', g.solved_on_site, 'on_site_rate', g.on_site_rate,
               'verifications', g.verifications, 'verified_on_time', g.verified_on_time,
               'on_time_rate', g.on_time_rate, 'rejected', g.rejected,
               'rejection_rate', g.rejection_rate) ORDER BY g.key), '[]'::json)
      INTO v_rows
      FROM fenbo_stats_grid('grid', t0, t1) g LEFT JOIN regions r ON r.code = g.key;
    RETURN json_build_object('by', p_by, 'from', per.from_day, 'to', per.to_day,
                             'timezone', p_tz, 'rows', v_rows, 'total', NULL);
END $$;
GRANT EXECUTE ON FUNCTION fenbo_stats_json(text, text, text, text, text) TO fenbo_app;
