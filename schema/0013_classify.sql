-- The classifier (lib/fb_classify.h): its training data, its models, and
-- where each case's category came from.

-- Each leaf of the catalogue carries the words residents use for it; an
-- emergency category flags a manual-queue case whose suggestions hold it.
ALTER TABLE categories
    ADD COLUMN terms     text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN emergency boolean NOT NULL DEFAULT false;

-- Labelled examples: the catalogue's sentences (fenboctl data import), a
-- city's past work orders (fenboctl history import) and every operator's
-- decision (assign from the manual queue, change of category, re-dispatch of
-- an approved return).
CREATE TABLE training_examples (
    id         bigserial PRIMARY KEY,
    text       text NOT NULL,
    category   text NOT NULL REFERENCES categories (code),
    source     text NOT NULL CHECK (source IN ('catalogue', 'import', 'operator')),
    who        text,
    case_id    bigint REFERENCES cases (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_examples_source_idx ON training_examples (source, created_at);

-- Trained models, newest last; every dispatcher loads the newest on
-- NOTIFY fenbo_model.
CREATE TABLE classifier_models (
    version    serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    examples   integer NOT NULL,
    params     jsonb NOT NULL,
    metrics    jsonb NOT NULL DEFAULT '{}',
    model      bytea NOT NULL
);

CREATE FUNCTION fenbo_model_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fenbo_model', NEW.version::text);
    RETURN NULL;
END $$;
CREATE TRIGGER classifier_models_notify AFTER INSERT ON classifier_models
    FOR EACH ROW EXECUTE FUNCTION fenbo_model_changed();

-- Where a case's category came from: given by the channel, chosen by the
-- model (with its version and confidence), or set by an operator. In the
-- manual queue, suggestions holds the model's top 3:
-- [{"category", "department", "confidence"}].
ALTER TABLE cases
    ADD COLUMN category_source     text CHECK (category_source IN ('given', 'model', 'operator')),
    ADD COLUMN model_version       integer,
    ADD COLUMN category_confidence real,
    ADD COLUMN suggestions         jsonb;

-- fenbo-worker records operators' decisions as examples, retrains on its
-- schedule and changes a case's category on an operator's word.
GRANT SELECT, INSERT ON training_examples, classifier_models TO fenbo_app;
GRANT USAGE ON SEQUENCE training_examples_id_seq, classifier_models_version_seq TO fenbo_app;
GRANT UPDATE (category, category_source, model_version, category_confidence, suggestions)
    ON cases TO fenbo_app;
