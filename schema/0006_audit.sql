-- 0006_audit: case_events become a tamper-evident, append-only history.
--
-- Each event carries the SHA-256 of its predecessor in the same case and of
-- itself, so an edit or removal made by someone who can bypass the triggers
-- (a superuser) breaks the chain, and `fenboctl audit verify` names where.

-- seq numbers a case's events in the order they were chained: ids are drawn
-- before the chain's lock is taken, so two writers of one case may chain
-- them out of id order.
ALTER TABLE case_events ADD COLUMN seq integer, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

-- The one definition of an event's hash, used by the trigger and by verify.
CREATE FUNCTION fenbo_event_hash(prev bytea, case_id bigint, id bigint, at timestamptz,
                                 actor text, type text, data jsonb) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN sha256(coalesce(prev, '\x'::bytea) ||
                  convert_to(case_id::text || '|' || id::text || '|' ||
                             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '|' ||
                             actor || '|' || type || '|' || data::text, 'UTF8'));

-- Existing history is chained once, in order.
DO $$
DECLARE
    e record;
    prev bytea;
    last_case bigint := NULL;
    n integer := 0;
BEGIN
    FOR e IN SELECT * FROM case_events ORDER BY case_id, id LOOP
        IF last_case IS DISTINCT FROM e.case_id THEN
            prev := NULL;
            n := 0;
            last_case := e.case_id;
        END IF;
        n := n + 1;
        UPDATE case_events
           SET seq = n, prev_hash = prev,
               hash = fenbo_event_hash(prev, e.case_id, e.id, e.at, e.actor, e.type, e.data)
         WHERE id = e.id
        RETURNING hash INTO prev;
    END LOOP;
END $$;

CREATE UNIQUE INDEX case_events_chain_idx ON case_events (case_id, seq);

CREATE FUNCTION fenbo_case_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
    prev_seq integer;
BEGIN
    -- Events of one case are chained one at a time, whoever writes them; the
    -- query below runs after the lock, so it sees the last committed link.
    PERFORM pg_advisory_xact_lock(1178686010, hashint8(NEW.case_id));
    SELECT hash, seq INTO prev, prev_seq FROM case_events
     WHERE case_id = NEW.case_id ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(prev_seq, 0) + 1;
    NEW.prev_hash := prev;
    NEW.hash := fenbo_event_hash(prev, NEW.case_id, NEW.id, NEW.at, NEW.actor, NEW.type, NEW.data);
    RETURN NEW;
END $$;

CREATE TRIGGER case_events_chain BEFORE INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION fenbo_case_events_chain();

CREATE FUNCTION fenbo_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER case_events_no_update BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION fenbo_append_only();
CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
    FOR EACH STATEMENT EXECUTE FUNCTION fenbo_append_only();

-- Events whose chain does not hold: a changed event (its hash), a removed or
-- inserted one (its successor's prev_hash).
CREATE VIEW fenbo_audit_breaks AS
SELECT case_id, id, type,
       CASE WHEN prev_hash IS DISTINCT FROM lag_hash THEN 'chain broken before this event'
            ELSE 'event changed after it was written' END AS problem
  FROM (SELECT e.*, lag(hash) OVER (PARTITION BY case_id ORDER BY seq) AS lag_hash
          FROM case_events e) x
 WHERE prev_hash IS DISTINCT FROM lag_hash
    OR hash IS DISTINCT FROM fenbo_event_hash(prev_hash, case_id, id, at, actor, type, data);
