-- 0008_retention: residents' personal data is kept only as long as a case
-- needs it. fenbo-worker's retention job (workers/retention.c) anonymises
-- the petitions of cases closed more than [worker] retention_days ago: the
-- caller's name and phone keep only their masked form (张*, 138****5678 —
-- what every role without a need for them sees anyway, and the last four
-- digits still let the resident prove the petition on the status page), and
-- the identifying fields of what arrived (raw) are removed.
--
-- case_events are append-only and hash-chained (0006): they cannot be
-- anonymised later, so no event may carry a name, phone, e-mail, openid or
-- device in the first place; the 'anonymised' and 'pii_read' events name
-- petitions by id and fields by name only.

-- When the petition's, resp. every petition of the case's, personal data
-- was removed; NULL while it is kept.
ALTER TABLE petitions ADD COLUMN anonymised_at timestamptz;
ALTER TABLE cases ADD COLUMN anonymised_at timestamptz;
-- The worker's database role (0007_rls) marks the cases it anonymised; it
-- may update petitions as a whole already.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fenbo_app') THEN
        GRANT UPDATE (anonymised_at) ON cases TO fenbo_app;
    END IF;
END $$;

-- The retention job's candidates, oldest first: closed cases not yet
-- anonymised. A closed case changes no more (closed is final in the
-- lifecycle, and only open cases are joined by duplicates), so its
-- updated_at is the time it closed. Anonymised cases leave the index, so a
-- pass reads only what it has to do, however long the history.
CREATE INDEX cases_retention_idx ON cases (updated_at, id)
    WHERE status = 'closed' AND anonymised_at IS NULL;

-- The masked forms, the same as the worker's API and the logs show
-- (fb_mask_phone, fb_api_mask_name): the first three and last four digits
-- of a phone of 7 to 15 characters, else only stars; a name's first
-- character.
CREATE FUNCTION fenbo_mask_phone(phone text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN phone IS NULL OR phone = '' THEN phone
                WHEN length(phone) BETWEEN 7 AND 15
                THEN left(phone, 3) || '****' || right(phone, 4)
                ELSE '****' END;

CREATE FUNCTION fenbo_mask_name(name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN name IS NULL OR name = '' THEN name ELSE left(name, 1) || '*' END;

-- raw without what identifies the resident, whichever channel it came by:
-- the hotline's caller {name, phone}; the mini-program's openid (also inside
-- report); Open311's email, phone, device_id, account_id, first_name,
-- last_name; the mail's sender (from {name, address}) and Message-ID (which
-- often names the sender's host or address). A note says when.
CREATE FUNCTION fenbo_anonymise_raw(raw jsonb, at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (raw - ARRAY['caller', 'openid', 'email', 'phone', 'device_id', 'account_id',
                        'first_name', 'last_name', 'name', 'contact', 'from', 'message_id']
                #- '{report,openid}' #- '{report,caller}' #- '{report,phone}'
                #- '{report,name}' #- '{report,contact}')
           || jsonb_build_object('anonymised_at', at);

-- Every read of residents' full phone numbers and names is itself an event
-- of the case: the worker's case detail for the roles that see callers
-- unmasked, and `fenboctl case show --unmask`, call this in the statement
-- (resp. the transaction) of the read; a view that shows only some of a
-- case's petitions names them (p_petitions; NULL: all of the case's). The
-- event names the petitions and the fields read, never their values.
-- Nothing is recorded when they hold no such data (no caller given, or
-- anonymised already: the masked forms are what everyone sees). Returns
-- whether an event was written.
CREATE FUNCTION fenbo_pii_read(p_case bigint, p_actor text, p_petitions bigint[] DEFAULT NULL)
    RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO case_events (case_id, actor, type, data)
    SELECT p_case, p_actor, 'pii_read', jsonb_build_object(
               'petitions', jsonb_agg(p.id ORDER BY p.id),
               'fields', to_jsonb(array_remove(ARRAY[
                   CASE WHEN bool_or(p.caller_phone <> '') THEN 'caller_phone' END,
                   CASE WHEN bool_or(p.caller_name <> '') THEN 'caller_name' END], NULL)))
      FROM petitions p
     WHERE p.case_id = p_case AND (p_petitions IS NULL OR p.id = ANY (p_petitions))
       AND p.anonymised_at IS NULL AND (p.caller_phone <> '' OR p.caller_name <> '')
    HAVING count(*) > 0;
    RETURN FOUND;
END $$;
