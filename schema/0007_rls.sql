-- 0007_rls: a department reads and changes only its own cases, enforced by
-- PostgreSQL itself (row-level security), not only by the worker's C.
--
-- fenbo-worker runs its queries as fenbo_app ([worker] db_role: it connects
-- as whatever [db] conninfo names, then SET ROLE), a role that owns nothing
-- and holds only the privileges below: SELECT, and INSERT/UPDATE of the
-- columns the worker writes; no DELETE or TRUNCATE anywhere. Before each API
-- request and each of its jobs the worker tells the session whom it runs
-- for:
--
--   fenbo.role        the token's role: operator, supervisor, admin,
--                     department, or a channel's; 'system' for the worker's
--                     own jobs (catch-up, timers, ratings, retention)
--   fenbo.department  a department token's department, else ''
--
-- (set_config(…, false) on its one connection, outside any transaction;
-- reset to '' after the request or job). The policies read them:
--
--   operator, supervisor, admin, system   read every row
--   operator, admin, system               write (supervisors only read)
--   department   reads a case, and the rows hanging off it, when it has an
--                assignment of the case — lead or assist, withdrawn or not:
--                a department keeps the history of what it worked on (the
--                worker's scope, workers/case_sql.h); changes one only while
--                it has an assignment not withdrawn (what actions.c lets it
--                do: a withdrawn part acts no more)
--   anything else, or nothing set         sees and changes nothing
--
-- The settings are the worker's word, not a proof: a client that can run
-- SQL as fenbo_app can set them too. What this guards against is the worker
-- itself forgetting a department's scope in one of its queries.
--
-- The tables keep their owner (the role the migrations run as, which
-- fenbo-dispatcher, fenbo-intake and fenboctl connect as). Row-level
-- security is FORCEd, so that the owner too goes through a policy: its own,
-- which lets it do everything, written down here rather than implied by
-- ownership. (A superuser, as the demo and the tests connect, bypasses row
-- security altogether; pg_dump as a non-superuser owner needs
-- --enable-row-security.)
--
-- Unique constraints: a department must not learn of another's case from an
-- error. PostgreSQL checks a policy's WITH CHECK before any constraint, so
-- an INSERT for a case the department cannot change fails the same way
-- whether the case is someone else's or does not exist; rows only the desk
-- and the worker's jobs write (ratings, callback tasks, timer actions,
-- hotspots, petitions) refuse every department write the same way; and the
-- keys (ids, case_id, seq…) of the tables a department writes are not among
-- the columns fenbo_app may write, so that no INSERT or UPDATE of its can
-- collide with a hidden row's key.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fenbo_app') THEN
        CREATE ROLE fenbo_app NOLOGIN;
    END IF;
    -- The worker connects as the owner in the demo and the tests, and must
    -- be able to SET ROLE. (Where the migrating role may not grant it, a
    -- DBA creates fenbo_app and grants it to the worker's login beforehand.)
    IF NOT pg_has_role(current_user, 'fenbo_app', 'MEMBER') THEN
        GRANT fenbo_app TO CURRENT_USER;
    END IF;
END $$;

-- ---- who is asking -----------------------------------------------------------

-- Plain SQL functions, which the planner inlines.
CREATE FUNCTION fenbo_rls_reads_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(current_setting('fenbo.role', true), '')
           IN ('operator', 'supervisor', 'admin', 'system');

CREATE FUNCTION fenbo_rls_writes_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(current_setting('fenbo.role', true), '') IN ('operator', 'admin', 'system');

-- The department a department token acts for; NULL for every other role.
CREATE FUNCTION fenbo_rls_department() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN current_setting('fenbo.role', true) = 'department'
                THEN nullif(current_setting('fenbo.department', true), '') END;

-- Whether the department asking has an assignment of the case (any, resp.
-- one not withdrawn). For the policies of assignments themselves, which
-- cannot query assignments under their own policy (that would recurse):
-- these run as the owner, whose policy lets it see every assignment. The
-- bodies are bound to their tables when created (SQL-standard bodies), so no
-- search_path of the caller's can swap the table.
CREATE FUNCTION fenbo_case_visible(p_case_id bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN EXISTS (SELECT 1 FROM assignments a
                   WHERE a.case_id = p_case_id AND a.department_code = fenbo_rls_department());

CREATE FUNCTION fenbo_case_writable(p_case_id bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN EXISTS (SELECT 1 FROM assignments a
                   WHERE a.case_id = p_case_id AND a.department_code = fenbo_rls_department()
                     AND a.withdrawn_at IS NULL);

REVOKE EXECUTE ON FUNCTION fenbo_case_visible(bigint), fenbo_case_writable(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fenbo_case_visible(bigint), fenbo_case_writable(bigint) TO fenbo_app;

-- Departments look up their cases' assignments by department.
CREATE INDEX assignments_department_case_idx ON assignments (department_code, case_id)
    INCLUDE (withdrawn_at);

-- ---- what fenbo_app may touch at all -----------------------------------------

-- What the worker reads and nobody's case: reference data, and the tokens
-- (by hash) it authenticates with.
GRANT SELECT ON regions, departments, jurisdictions, categories, route_rules, calendar_days,
    api_tokens TO fenbo_app;

GRANT SELECT ON cases, petitions, assignments, case_events, ratings, case_returns, extensions,
    timer_actions, callback_tasks, hotspot_alerts, hotspot_petitions TO fenbo_app;

-- Cases are opened by the dispatcher; the worker moves them.
GRANT UPDATE (status, department_code, rule_id, urgency, accept_due, reply_due, updated_at)
    ON cases TO fenbo_app;
-- Petitions are written by the dispatcher; the worker's retention job
-- anonymises them (0008), whatever columns that takes.
GRANT UPDATE ON petitions TO fenbo_app;
GRANT INSERT (case_id, department_code, role, rule_id, accept_due, reply_due),
    UPDATE (reply_due, delivered_at, accepted_at, replied_at, withdrawn_at)
    ON assignments TO fenbo_app;
-- Not at: an event's time is the database's.
GRANT INSERT (case_id, actor, type, data) ON case_events TO fenbo_app;
GRANT INSERT (case_id, petition_id, resolved, satisfaction, comment, source, processed_at),
    UPDATE (processed_at) ON ratings TO fenbo_app;
GRANT INSERT (case_id, assignment_id, department_code, reason, requested_by),
    UPDATE (status, decided_by, decided_at, note) ON case_returns TO fenbo_app;
GRANT INSERT (case_id, assignment_id, department_code, reason, previous_due, until,
              requested_by),
    UPDATE (status, decided_by, decided_at, note) ON extensions TO fenbo_app;
GRANT INSERT (case_id, action, due) ON timer_actions TO fenbo_app;
GRANT INSERT (case_id, petition_id, replied_event_id, channel, kind, due_at, expires_at),
    UPDATE (sent_at, attempts, done_at, done_by, outcome, note) ON callback_tasks TO fenbo_app;
GRANT INSERT (category, region_code, department_code, first_petition_id, petitions, threshold,
              window_min, first_at, last_at),
    UPDATE (petitions, first_at, last_at, updated_at) ON hotspot_alerts TO fenbo_app;
GRANT INSERT (petition_id, alert_id) ON hotspot_petitions TO fenbo_app;
GRANT USAGE ON SEQUENCE assignments_id_seq, case_events_id_seq, ratings_id_seq,
    case_returns_id_seq, extensions_id_seq, callback_tasks_id_seq, hotspot_alerts_id_seq
    TO fenbo_app;

-- The statistics read their view as the caller, under the caller's
-- policies: a view otherwise reads its tables as its owner, past every
-- policy. (0005's functions are SECURITY INVOKER already, so a department's
-- numbers come only from the cases it can see.)
ALTER VIEW fenbo_stats_cases SET (security_invoker = true);
ALTER VIEW fenbo_audit_breaks SET (security_invoker = true);
GRANT SELECT ON fenbo_stats_cases TO fenbo_app;

-- ---- the policies --------------------------------------------------------------

-- Each table of a case: row security on, for the owner too, and the owner's
-- policy.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cases', 'petitions', 'assignments', 'case_events', 'ratings',
                             'case_returns', 'extensions', 'timer_actions', 'callback_tasks',
                             'hotspot_alerts', 'hotspot_petitions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY fenbo_owner ON %I TO CURRENT_USER'
                       ' USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- fenbo_app's policies. (SELECT fenbo_rls_…()) is computed once per
-- statement (an InitPlan), not once per row; the EXISTS over assignments
-- becomes one hash of the department's cases for a long scan, an index
-- probe for a short one. Those subqueries go through assignments' own
-- policy, whose first test lets a department see its own assignments
-- without a function call.

-- Cases. An UPDATE (and SELECT … FOR UPDATE) reaches the cases a
-- department reads, so that the worker can lock one and answer why it may
-- not act on it (403); what an UPDATE leaves must pass WITH CHECK.
CREATE POLICY fenbo_app_read ON cases FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = cases.id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_update ON cases FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = cases.id
                        AND a.department_code = (SELECT fenbo_rls_department())))
    WITH CHECK ((SELECT fenbo_rls_writes_all())
                OR EXISTS (SELECT 1 FROM assignments a
                           WHERE a.case_id = cases.id
                             AND a.department_code = (SELECT fenbo_rls_department())
                             AND a.withdrawn_at IS NULL));

-- Assignments: a department sees its own and the others of its cases (who
-- leads, who assists); it adds assists to, and stamps, a case it works on.
CREATE POLICY fenbo_app_read ON assignments FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR department_code = (SELECT fenbo_rls_department())
           OR fenbo_case_visible(case_id));
CREATE POLICY fenbo_app_insert ON assignments FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()) OR fenbo_case_writable(case_id));
CREATE POLICY fenbo_app_update ON assignments FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()) OR fenbo_case_visible(case_id))
    WITH CHECK ((SELECT fenbo_rls_writes_all()) OR fenbo_case_writable(case_id));

-- Events: a department appends to the history of a case it works on.
CREATE POLICY fenbo_app_read ON case_events FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = case_events.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_insert ON case_events FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all())
                OR EXISTS (SELECT 1 FROM assignments a
                           WHERE a.case_id = case_events.case_id
                             AND a.department_code = (SELECT fenbo_rls_department())
                             AND a.withdrawn_at IS NULL));

-- Petitions: only the desk and the worker's jobs change them (retention).
CREATE POLICY fenbo_app_read ON petitions FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = petitions.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_update ON petitions FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()));

-- Returns and extensions: the lead asks, the desk decides; the lead's
-- reply withdraws its pending extension. A request names an assignment of
-- its own case, or none: checked before the foreign key, which would tell
-- whether someone else's assignment exists.
CREATE POLICY fenbo_app_read ON case_returns FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = case_returns.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_insert ON case_returns FOR INSERT TO fenbo_app
    WITH CHECK (((SELECT fenbo_rls_writes_all())
                 OR EXISTS (SELECT 1 FROM assignments a
                            WHERE a.case_id = case_returns.case_id
                              AND a.department_code = (SELECT fenbo_rls_department())
                              AND a.withdrawn_at IS NULL))
                AND (assignment_id IS NULL
                     OR EXISTS (SELECT 1 FROM assignments a
                                WHERE a.id = case_returns.assignment_id
                                  AND a.case_id = case_returns.case_id)));
CREATE POLICY fenbo_app_update ON case_returns FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()));

CREATE POLICY fenbo_app_read ON extensions FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = extensions.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_insert ON extensions FOR INSERT TO fenbo_app
    WITH CHECK (((SELECT fenbo_rls_writes_all())
                 OR EXISTS (SELECT 1 FROM assignments a
                            WHERE a.case_id = extensions.case_id
                              AND a.department_code = (SELECT fenbo_rls_department())
                              AND a.withdrawn_at IS NULL))
                AND (assignment_id IS NULL
                     OR EXISTS (SELECT 1 FROM assignments a
                                WHERE a.id = extensions.assignment_id
                                  AND a.case_id = extensions.case_id)));
CREATE POLICY fenbo_app_update ON extensions FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = extensions.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())))
    WITH CHECK ((SELECT fenbo_rls_writes_all())
                OR EXISTS (SELECT 1 FROM assignments a
                           WHERE a.case_id = extensions.case_id
                             AND a.department_code = (SELECT fenbo_rls_department())
                             AND a.withdrawn_at IS NULL));

-- Ratings, timer actions and callback tasks: a department reads those of
-- its cases (its rates, its overdue list); only the desk and the worker's
-- jobs write them, so a department's INSERT is refused before the unique
-- keys (one rating per petition, one task per petition and reply, one
-- action per deadline) are looked at.
CREATE POLICY fenbo_app_read ON ratings FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = ratings.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_insert ON ratings FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()));
CREATE POLICY fenbo_app_update ON ratings FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()));

CREATE POLICY fenbo_app_read ON timer_actions FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = timer_actions.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_insert ON timer_actions FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()));

CREATE POLICY fenbo_app_read ON callback_tasks FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM assignments a
                      WHERE a.case_id = callback_tasks.case_id
                        AND a.department_code = (SELECT fenbo_rls_department())));
CREATE POLICY fenbo_app_insert ON callback_tasks FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()));
CREATE POLICY fenbo_app_update ON callback_tasks FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()));

-- A hotspot alert is its street office's; of its petitions, the office sees
-- those of its own cases (the alert's count says how many there are).
CREATE POLICY fenbo_app_read ON hotspot_alerts FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR department_code = (SELECT fenbo_rls_department()));
CREATE POLICY fenbo_app_insert ON hotspot_alerts FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()));
CREATE POLICY fenbo_app_update ON hotspot_alerts FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()));

CREATE POLICY fenbo_app_read ON hotspot_petitions FOR SELECT TO fenbo_app
    USING ((SELECT fenbo_rls_reads_all())
           OR EXISTS (SELECT 1 FROM petitions p WHERE p.id = hotspot_petitions.petition_id));
CREATE POLICY fenbo_app_insert ON hotspot_petitions FOR INSERT TO fenbo_app
    WITH CHECK ((SELECT fenbo_rls_writes_all()));
