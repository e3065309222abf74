-- 0012_hotspot_notes: a hotspot's case events are written after the sweep,
-- a thousand petitions per transaction.
--
-- The sweep wrote one 'hotspot' event on every case it linked, in its own
-- transaction. Each event locks its case until COMMIT (the audit chain,
-- 0009), and a flood links tens of thousands of petitions in one sweep: the
-- cases stayed locked for seconds, and the dispatcher, merging new petitions
-- into those very cases, waited for them. The sweep now only links; a
-- petition linked and not yet noted on its case has noted_at NULL, and the
-- worker writes the events for such petitions in short transactions, in case
-- order, marking them noted in the same statement.
ALTER TABLE hotspot_petitions ADD COLUMN noted_at timestamptz;
-- Those linked before this migration got their events with the link.
UPDATE hotspot_petitions SET noted_at = added_at;
CREATE INDEX hotspot_petitions_unnoted_idx ON hotspot_petitions (petition_id)
    WHERE noted_at IS NULL;

GRANT UPDATE (noted_at) ON hotspot_petitions TO fenbo_app;
CREATE POLICY fenbo_app_update ON hotspot_petitions FOR UPDATE TO fenbo_app
    USING ((SELECT fenbo_rls_writes_all()))
    WITH CHECK ((SELECT fenbo_rls_writes_all()));
