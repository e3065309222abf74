-- 0002_dedup_ratings: what finding duplicates (并案) and taking ratings need.

-- Open cases near a new petition, of its category, recent: the dispatcher's
-- duplicate search, one probe per new petition.
CREATE INDEX cases_location_idx ON cases USING gist (location);
CREATE INDEX cases_category_created_idx ON cases (category, created_at);
-- pg_trgm reads a run of Chinese characters as one word, so two phrasings of
-- one complaint share few trigrams. Spaced out, every character is a word of
-- its own and similarity() measures how many characters the texts share.
CREATE FUNCTION fenbo_dedup_text(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN regexp_replace(t, '(.)', '\1 ', 'g');

-- Each petitioner rates once; a retry or a race cannot rate twice.
CREATE UNIQUE INDEX ratings_petition_idx ON ratings (petition_id);
