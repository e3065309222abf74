-- Tokens may expire (fenboctl token create --expires), and every change to
-- the token table wakes intakes (LISTEN fenbo_tokens), so that a revoked or
-- expired token stops working within a second, not at the next refresh.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;

CREATE FUNCTION fenbo_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fenbo_tokens', TG_OP);
    RETURN NULL;
END $$;

CREATE TRIGGER api_tokens_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION fenbo_tokens_changed();
