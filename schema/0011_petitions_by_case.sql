-- 0011_petitions_by_case: a case's petitions, in order, from one index.
--
-- The duplicate search reads the first petitions of each candidate case
-- (ORDER BY id LIMIT 8). With an index on case_id alone, a plan made while
-- the statistics still counted hundreds of petitions per case (taken when
-- most were not yet linked to one) walked the primary key instead, petition
-- by petition, until eight of the case turned up: all of them, for a case
-- with one. A dispatcher batch then took seconds instead of a tenth. On
-- (case_id, id) the case's petitions come in order from the index, and no
-- estimate makes the walk cheaper.
CREATE INDEX petitions_case_id_idx ON petitions (case_id, id);
DROP INDEX petitions_case_idx;
