-- 0005_stats: the rates supervisors watch, defined once.
--
-- fenbo-worker (GET /api/v1/stats, GET /api/v1/stats/daily, the /dashboard
-- page) and `fenboctl stats` both call the functions below, so a rate means
-- the same thing wherever it is read. The definitions are the README's:
--
--   population      the cases whose FIRST dispatch event ('dispatched',
--                   'assigned' or 'redispatched') lies in [from, to); from and
--                   to are days in the city's zone, to exclusive
--   key             department: the case's lead department (cases.department_code,
--                   or the latest lead assignment while the case waits in the
--                   manual queue); district: the first 6 characters of
--                   region_code; street: the first 9; NULL when unknown
--   response rate   cases whose first 'accepted' event is at or before
--                   accept_due / dispatched
--   on-time closure cases whose first 'replied' event is at or before
--                   reply_due / dispatched
--   return rate     cases with a 'returned' event / dispatched
--   rated           cases with a rating (the LATEST one counts, whatever its
--                   source: a channel or 'callback'), less the 'not rated'
--                   closures
--   resolution rate latest rating resolved / rated
--   satisfaction    latest rating 'satisfied' or 'basically_satisfied' / rated
--   reopen rate     cases with a 'reopened' event / rated
--   not_rated       cases closed with an event 'closed' whose data->>'reason'
--                   is 'not_rated' (counted apart, never in the rated count)
--   overdue now     a snapshot, whatever the period: the open cases whose
--                   accept_due has passed while they wait to be signed for
--                   (status dispatched or reopened), or whose reply_due has
--                   passed while they wait for the reply (dispatched,
--                   accepted or reopened); each case once
--
-- A case without a deadline (accept_due or reply_due NULL) cannot be late:
-- accepted or replied at all counts as on time. A rate whose denominator is
-- 0 is NULL, not 0. Rates are fractions rounded to 4 decimals.

-- The population of a period is found through its dispatch events, its
-- facts through the events and ratings since the period began, the daily
-- chart through replies and petitions' arrival.
CREATE INDEX IF NOT EXISTS case_events_type_at_idx ON case_events (type, at);
CREATE INDEX IF NOT EXISTS petitions_received_idx ON petitions (received_at);
CREATE INDEX IF NOT EXISTS ratings_rated_at_idx ON ratings (rated_at);

-- Each case with the rows it counts in: its lead department (the case's, or
-- while it waits in the manual queue the latest lead assignment's), its
-- district and its street. A view, not a function, so that the planner
-- folds it into the queries below and looks up the assignment only for the
-- cases that have no department.
CREATE VIEW fenbo_stats_cases AS
SELECT c.id, c.status, c.accept_due, c.reply_due, c.created_at,
       coalesce(c.department_code,
                (SELECT a.department_code FROM assignments a
                 WHERE a.case_id = c.id AND a.role = 'lead'
                 ORDER BY a.id DESC LIMIT 1)) AS department,
       CASE WHEN length(c.region_code) >= 6 THEN left(c.region_code, 6) END AS district,
       CASE WHEN length(c.region_code) >= 9 THEN left(c.region_code, 9) END AS street
FROM cases c;

-- num / den, or NULL when there is nothing to divide by.
CREATE FUNCTION fenbo_stats_rate(num bigint, den bigint) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN den > 0 THEN round(num::numeric / den, 4) END;

-- The counts and rates of the cases first dispatched in [p_from, p_to), one
-- row per key of p_by ('department', 'district', 'street'; 'total' makes
-- the one key 'all'), the keys that only have overdue cases now included,
-- plus the city total (is_total, key 'all') — all in one pass.
CREATE FUNCTION fenbo_stats_grouped(p_by text, p_from timestamptz, p_to timestamptz)
    RETURNS TABLE (
        is_total             boolean,
        key                  text,
        name                 text,
        dispatched           bigint,
        accepted_on_time     bigint,
        response_rate        numeric,
        rated                bigint,
        resolved             bigint,
        resolution_rate      numeric,
        satisfied            bigint,
        satisfaction_rate    numeric,
        replied_on_time      bigint,
        on_time_closure_rate numeric,
        returned             bigint,
        return_rate          numeric,
        reopened             bigint,
        reopen_rate          numeric,
        not_rated            bigint,
        overdue_now          bigint)
    LANGUAGE plpgsql STABLE
    -- A month of a big city is a few hundred thousand cases: planned for the
    -- period at hand (a generic plan guesses its size badly), hash joins in
    -- memory, and no JIT (its compile time exceeded the query's own).
    SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' SET jit = off
    AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH population AS (
    SELECT v.id, v.accept_due, v.reply_due,
           -- '' stands for "no key" until the end: NULLs would not group apart
           -- from the total's NULL, nor join.
           coalesce(CASE p_by WHEN 'department' THEN v.department
                              WHEN 'district' THEN v.district
                              WHEN 'street' THEN v.street
                              ELSE 'all' END, '') AS k
    FROM fenbo_stats_cases v
    WHERE v.id IN (SELECT e.case_id FROM case_events e
                   WHERE e.type IN ('dispatched', 'assigned', 'redispatched')
                     AND e.at >= p_from AND e.at < p_to)
      -- First dispatched in the period, not merely dispatched again in it.
      -- A case's events come after its creation, so only the cases created
      -- before the period need looking at.
      AND (v.created_at >= p_from
           OR NOT EXISTS (SELECT 1 FROM case_events e
                          WHERE e.case_id = v.id AND e.at < p_from
                            AND e.type IN ('dispatched', 'assigned', 'redispatched')))
), ev AS (
    -- None of these can precede a case's first dispatch, which is in the
    -- period: the index on (type, at) finds them from p_from on.
    SELECT e.case_id,
           min(e.at) FILTER (WHERE e.type = 'accepted') AS accepted_at,
           min(e.at) FILTER (WHERE e.type = 'replied') AS replied_at,
           bool_or(e.type = 'returned') AS returned,
           bool_or(e.type = 'reopened') AS reopened,
           bool_or(e.type = 'closed' AND e.data->>'reason' = 'not_rated') AS not_rated
    FROM population p
    JOIN case_events e ON e.case_id = p.id
    WHERE e.type IN ('accepted', 'replied', 'returned', 'reopened', 'closed')
      AND e.at >= p_from
    GROUP BY e.case_id
), latest_rating AS (
    SELECT DISTINCT ON (r.case_id) r.case_id, r.resolved, r.satisfaction
    FROM population p
    JOIN ratings r ON r.case_id = p.id
    WHERE r.rated_at >= p_from
    ORDER BY r.case_id, r.rated_at DESC, r.id DESC
), facts AS (
    SELECT p.k,
           ev.accepted_at IS NOT NULL
               AND (p.accept_due IS NULL OR ev.accepted_at <= p.accept_due) AS accepted_on_time,
           ev.replied_at IS NOT NULL
               AND (p.reply_due IS NULL OR ev.replied_at <= p.reply_due) AS replied_on_time,
           coalesce(ev.returned, false) AS returned,
           coalesce(ev.reopened, false) AS reopened,
           coalesce(ev.not_rated, false) AS not_rated,
           lr.satisfaction IS NOT NULL AND NOT coalesce(ev.not_rated, false) AS rated,
           lr.resolved,
           lr.satisfaction
    FROM population p
    LEFT JOIN ev ON ev.case_id = p.id
    LEFT JOIN latest_rating lr ON lr.case_id = p.id
), agg AS (
    SELECT grouping(f.k) = 1 AS is_total, f.k,
           count(*) AS dispatched,
           count(*) FILTER (WHERE f.accepted_on_time) AS accepted_on_time,
           count(*) FILTER (WHERE f.rated) AS rated,
           count(*) FILTER (WHERE f.rated AND f.resolved) AS resolved,
           count(*) FILTER (WHERE f.rated
                            AND f.satisfaction IN ('satisfied', 'basically_satisfied')) AS satisfied,
           count(*) FILTER (WHERE f.replied_on_time) AS replied_on_time,
           count(*) FILTER (WHERE f.returned) AS returned,
           count(*) FILTER (WHERE f.reopened) AS reopened,
           count(*) FILTER (WHERE f.not_rated) AS not_rated
    FROM facts f GROUP BY GROUPING SETS ((f.k), ())
), overdue AS (
    SELECT grouping(o.k) = 1 AS is_total, o.k, count(*) AS n
    FROM (SELECT coalesce(CASE p_by WHEN 'department' THEN v.department
                                    WHEN 'district' THEN v.district
                                    WHEN 'street' THEN v.street
                                    ELSE 'all' END, '') AS k
          FROM fenbo_stats_cases v
          -- The statuses from which the lifecycle table (workers/lifecycle.c)
          -- allows signing for, resp. replying: the same test as the SLA
          -- timers' and GET /api/v1/overdue's. A case waiting for an
          -- operator ('returned', 'manual') waits for no department.
          WHERE (v.accept_due < now() AND v.status IN ('dispatched', 'reopened'))
             OR (v.reply_due < now() AND v.status IN ('dispatched', 'accepted', 'reopened'))) o
    GROUP BY GROUPING SETS ((o.k), ())
), keys AS (
    SELECT agg.is_total, agg.k FROM agg
    UNION SELECT overdue.is_total, overdue.k FROM overdue
    UNION SELECT true, NULL
)
SELECT keys.is_total,
       CASE WHEN keys.is_total THEN 'all' ELSE nullif(keys.k, '') END,
       CASE WHEN keys.is_total OR p_by = 'total' THEN 'total'
            WHEN p_by = 'department' THEN (SELECT d.name FROM departments d WHERE d.code = keys.k)
            ELSE (SELECT r.name FROM regions r WHERE r.code = keys.k)
       END,
       coalesce(a.dispatched, 0),
       coalesce(a.accepted_on_time, 0),
       fenbo_stats_rate(a.accepted_on_time, a.dispatched),
       coalesce(a.rated, 0),
       coalesce(a.resolved, 0),
       fenbo_stats_rate(a.resolved, a.rated),
       coalesce(a.satisfied, 0),
       fenbo_stats_rate(a.satisfied, a.rated),
       coalesce(a.replied_on_time, 0),
       fenbo_stats_rate(a.replied_on_time, a.dispatched),
       coalesce(a.returned, 0),
       fenbo_stats_rate(a.returned, a.dispatched),
       coalesce(a.reopened, 0),
       fenbo_stats_rate(a.reopened, a.rated),
       coalesce(a.not_rated, 0),
       coalesce(o.n, 0)
FROM keys
LEFT JOIN agg a ON a.is_total = keys.is_total AND a.k IS NOT DISTINCT FROM keys.k
LEFT JOIN overdue o ON o.is_total = keys.is_total AND o.k IS NOT DISTINCT FROM keys.k
ORDER BY keys.is_total, keys.k;
END $$;

-- The rows of fenbo_stats_grouped without the city total: for psql and
-- reports, e.g. SELECT * FROM fenbo_stats_rows('street', '2026-01-01', '2026-02-01').
CREATE FUNCTION fenbo_stats_rows(p_by text, p_from timestamptz, p_to timestamptz)
    RETURNS TABLE (
        key                  text,
        name                 text,
        dispatched           bigint,
        accepted_on_time     bigint,
        response_rate        numeric,
        rated                bigint,
        resolved             bigint,
        resolution_rate      numeric,
        satisfied            bigint,
        satisfaction_rate    numeric,
        replied_on_time      bigint,
        on_time_closure_rate numeric,
        returned             bigint,
        return_rate          numeric,
        reopened             bigint,
        reopen_rate          numeric,
        not_rated            bigint,
        overdue_now          bigint)
    LANGUAGE sql STABLE AS $$
SELECT g.key, g.name, g.dispatched, g.accepted_on_time, g.response_rate, g.rated, g.resolved,
       g.resolution_rate, g.satisfied, g.satisfaction_rate, g.replied_on_time,
       g.on_time_closure_rate, g.returned, g.return_rate, g.reopened, g.reopen_rate,
       g.not_rated, g.overdue_now
FROM fenbo_stats_grouped(p_by, p_from, p_to) g
WHERE NOT g.is_total
$$;

-- 'YYYY-MM-DD' → date; NULL or '' → NULL. Anything else raises
-- invalid_parameter_value with the field named in the error's COLUMN, which
-- the worker answers as 400 {"field": …} and fenboctl as a usage error.
CREATE FUNCTION fenbo_stats_day(p_text text, p_field text) RETURNS date
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_text IS NULL OR p_text = '' THEN
        RETURN NULL;
    END IF;
    IF p_text ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        BEGIN
            RETURN p_text::date;
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
            NULL; -- a well-formed string that is no day: the error below
        END;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', COLUMN = p_field,
        MESSAGE = format('%s must be a date YYYY-MM-DD, got ''%s''', p_field, left(p_text, 40));
END $$;

-- The period [from_day, to_day) a request names, with the defaults: to is
-- tomorrow in the city's zone (so today is included), from is 30 days before
-- to. p_max_days bounds its length (NULL: unbounded).
CREATE FUNCTION fenbo_stats_period(p_from text, p_to text, p_tz text, p_max_days integer,
                                   OUT from_day date, OUT to_day date)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    to_day := coalesce(fenbo_stats_day(p_to, 'to'), (now() AT TIME ZONE p_tz)::date + 1);
    from_day := coalesce(fenbo_stats_day(p_from, 'from'), to_day - 30);
    IF from_day >= to_day THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', COLUMN = 'to',
            MESSAGE = format('to (%s) must be after from (%s): the period is [from, to)',
                             to_day, from_day);
    END IF;
    IF p_max_days IS NOT NULL AND to_day - from_day > p_max_days THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', COLUMN = 'from',
            MESSAGE = format('the period may span at most %s days', p_max_days);
    END IF;
END $$;

-- GET /api/v1/stats and `fenboctl stats --json`:
--   {"by", "from", "to", "timezone", "rows": [fenbo_stats_rows…], "total": {…}}
-- p_by: 'department' | 'district' | 'street'; p_from, p_to: 'YYYY-MM-DD' in
-- p_tz, or NULL/'' for the defaults. p_department (a department token's
-- own department) keeps only that department's row and leaves out the
-- city total; it allows only by=department.
CREATE FUNCTION fenbo_stats_json(p_by text, p_from text, p_to text, p_tz text,
                                 p_department text DEFAULT NULL) RETURNS json
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    per record;
    t0 timestamptz;
    t1 timestamptz;
    v_rows json;
    v_total json;
BEGIN
    IF p_by IS NULL OR p_by = '' THEN
        p_by := 'department';
    END IF;
    IF p_by NOT IN ('department', 'district', 'street') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', COLUMN = 'by',
            MESSAGE = format('by must be department, district or street, got ''%s''',
                             left(p_by, 40));
    END IF;
    IF p_department IS NOT NULL AND p_by <> 'department' THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'a department sees its own row only: use by=department';
    END IF;
    per := fenbo_stats_period(p_from, p_to, p_tz, NULL);
    t0 := per.from_day::timestamp AT TIME ZONE p_tz;
    t1 := per.to_day::timestamp AT TIME ZONE p_tz;
    -- One pass for the rows and the total: the CTE is computed once.
    WITH g AS (
        SELECT * FROM fenbo_stats_grouped(p_by, t0, t1)
    )
    SELECT (SELECT coalesce(json_agg(row_to_json(r) ORDER BY r.key), '[]'::json)
            FROM (SELECT g.key, g.name, g.dispatched, g.accepted_on_time, g.response_rate,
                     g.rated, g.resolved, g.resolution_rate, g.satisfied, g.satisfaction_rate,
                     g.replied_on_time, g.on_time_closure_rate, g.returned, g.return_rate,
                     g.reopened, g.reopen_rate, g.not_rated, g.overdue_now
                  FROM g
                  WHERE NOT g.is_total AND (p_department IS NULL OR g.key = p_department)) r),
           (SELECT row_to_json(r)
            FROM (SELECT g.key, g.name, g.dispatched, g.accepted_on_time, g.response_rate,
                     g.rated, g.resolved, g.resolution_rate, g.satisfied, g.satisfaction_rate,
                     g.replied_on_time, g.on_time_closure_rate, g.returned, g.return_rate,
                     g.reopened, g.reopen_rate, g.not_rated, g.overdue_now
                  FROM g
                  WHERE g.is_total AND p_department IS NULL) r)
      INTO v_rows, v_total;
    RETURN json_build_object('by', p_by, 'from', per.from_day, 'to', per.to_day,
                             'timezone', p_tz, 'rows', v_rows, 'total', v_total);
END $$;

-- GET /api/v1/stats/daily, for the dashboard's chart: per day of
-- [from, to) in the city's zone (at most 366 days), the petitions received,
-- the cases first dispatched, and the closures (cases whose first 'replied'
-- event, 办结, falls on that day).
--   {"from", "to", "timezone", "days": [{"day", "petitions", "dispatched", "closures"}]}
CREATE FUNCTION fenbo_stats_daily_json(p_from text, p_to text, p_tz text) RETURNS json
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' SET jit = off
    AS $$
DECLARE
    per record;
    t0 timestamptz;
    t1 timestamptz;
    v_days json;
BEGIN
    per := fenbo_stats_period(p_from, p_to, p_tz, 366);
    t0 := per.from_day::timestamp AT TIME ZONE p_tz;
    t1 := per.to_day::timestamp AT TIME ZONE p_tz;
    WITH petitions_by_day AS (
        SELECT (p.received_at AT TIME ZONE p_tz)::date AS day, count(*) AS n
        FROM petitions p WHERE p.received_at >= t0 AND p.received_at < t1
        GROUP BY 1
    ), firsts AS (
        -- Each case's first dispatch and first reply within the period …
        SELECT f.kind, (f.at AT TIME ZONE p_tz)::date AS day, count(*) AS n
        FROM (SELECT e.case_id,
                     CASE WHEN e.type = 'replied' THEN 'closure' ELSE 'dispatch' END AS kind,
                     min(e.at) AS at
              FROM case_events e
              WHERE e.at >= t0 AND e.at < t1
                AND e.type IN ('dispatched', 'assigned', 'redispatched', 'replied')
              GROUP BY 1, 2) f
        JOIN cases c ON c.id = f.case_id
        -- … that is its first ever: nothing of the kind before the period
        -- (only a case created before the period can have had one).
        WHERE c.created_at >= t0
           OR NOT EXISTS (SELECT 1 FROM case_events x
                          WHERE x.case_id = f.case_id AND x.at < t0
                            AND CASE WHEN f.kind = 'closure' THEN x.type = 'replied'
                                     ELSE x.type IN ('dispatched', 'assigned', 'redispatched')
                                END)
        GROUP BY 1, 2
    )
    SELECT json_agg(json_build_object(
               'day', d.day,
               'petitions', coalesce((SELECT n FROM petitions_by_day p WHERE p.day = d.day), 0),
               'dispatched', coalesce((SELECT n FROM firsts f
                                        WHERE f.day = d.day AND f.kind = 'dispatch'), 0),
               'closures', coalesce((SELECT n FROM firsts f
                                      WHERE f.day = d.day AND f.kind = 'closure'), 0))
           ORDER BY d.day) INTO v_days
    FROM (SELECT g::date AS day
          FROM generate_series(per.from_day, per.to_day - 1, interval '1 day') g) d;
    RETURN json_build_object('from', per.from_day, 'to', per.to_day, 'timezone', p_tz,
                             'days', coalesce(v_days, '[]'::json));
END $$;
