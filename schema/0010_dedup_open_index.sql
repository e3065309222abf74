-- 0010_dedup_open_index: the duplicate search probes open cases only.
--
-- Its probe (0002) intersected the location index with (category,
-- created_at): every case of the category opened within the window, a few
-- hundred rows per probe on a quiet day and thousands under a burst, read for
-- each new petition to keep the few that lie nearby. The open cases' own
-- spatial index answers the probe from the handful of cases near the point;
-- category and age are then checked on those rows. Closed cases, the great
-- majority of a year's, are not in it at all.
CREATE INDEX cases_open_location_idx ON cases USING gist (location)
    WHERE status IN ('manual', 'dispatched', 'accepted', 'returned', 'reopened');
DROP INDEX cases_category_created_idx;
