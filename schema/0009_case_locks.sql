-- 0009_case_locks: the audit chain serialises a case's events on the case's
-- row, and the dispatcher links a petition to its case when storing it.
--
-- The chain's advisory lock (0006) took one entry of the shared lock table
-- per case until COMMIT: a dispatcher batch of a thousand new cases took a
-- thousand, and a hotspot sweep over a flood of cases could exhaust the
-- table ("out of shared memory"). A row lock (FOR NO KEY UPDATE on the
-- case) lives in the row itself, is what every writer that changes the case
-- takes anyway, and does not block the foreign-key checks of rows that
-- point at the case (FOR KEY SHARE). Statements that append events to many
-- cases do so in case id order, so that two of them cannot deadlock.
--
-- The function runs as its owner (SECURITY DEFINER), so that it locks and
-- reads the case and its last event whatever the writer's row security lets
-- it see; search_path is the one it was created with.
CREATE OR REPLACE FUNCTION fenbo_case_events_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    prev bytea;
    prev_seq integer;
BEGIN
    -- Events of one case are chained one at a time, whoever writes them; the
    -- query below runs after the lock, so it sees the last committed link.
    PERFORM 1 FROM cases WHERE id = NEW.case_id FOR NO KEY UPDATE;
    SELECT hash, seq INTO prev, prev_seq FROM case_events
     WHERE case_id = NEW.case_id ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(prev_seq, 0) + 1;
    NEW.prev_hash := prev;
    NEW.hash := fenbo_event_hash(prev, NEW.case_id, NEW.id, NEW.at, NEW.actor, NEW.type, NEW.data);
    RETURN NEW;
END $$;

-- The dispatcher draws a new case's id before the case exists and stores its
-- petitions with it, in the transaction that then inserts the case: checked
-- at COMMIT, the reference holds as before, and the petition is written once
-- instead of inserted and then updated (a second version of a wide row and
-- of every one of its index entries).
ALTER TABLE petitions ALTER CONSTRAINT petitions_case_id_fkey DEFERRABLE INITIALLY DEFERRED;

-- Undelivered assignments are found by case: the worker delivers the cases
-- the bus names, and catch-up takes the oldest cases first, in the order
-- cases are locked. Every assignment enters this index undelivered and
-- leaves it on delivery, so between vacuums it is mostly dead entries; an
-- index on id made the planner scan all of them to find one case's.
DROP INDEX assignments_undelivered_idx;
CREATE INDEX assignments_undelivered_idx ON assignments (case_id, id) WHERE delivered_at IS NULL;
