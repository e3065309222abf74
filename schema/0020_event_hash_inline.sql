-- 0020_event_hash_inline: the audit chain's hash (0006) computed in place.
--
-- fenbo_event_hash was declared IMMUTABLE, but its body calls to_char(),
-- which PostgreSQL declares STABLE; it refuses to inline an immutable SQL
-- function whose body is not, and ran it through the SQL-function executor
-- for every event written: 3.5 µs of the chain trigger's 17 µs an event,
-- and every petition writes two events (dispatched, delivered). STABLE is
-- what the body is; the definition, and so every hash, stays the same.
ALTER FUNCTION fenbo_event_hash(bytea, bigint, bigint, timestamptz, text, text, jsonb) STABLE;
