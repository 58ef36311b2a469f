-- Step: total each person's activity.
-- Inputs: attributed_events, id_map
-- Output: person_activity(component, event_count, first_seen_at, last_seen_at); component is
--         NULL for the events whose every id is junk.
-- Invariants: each event counts once, for the person of the identifier it is attributed to
--             (35_attributed_events.sql); grouped by the integer component, not the
--             32-character person id.
SELECT
    m.component,
    CAST(sum(a.event_count) AS BIGINT) AS event_count,
    min(a.first_ts) AS first_seen_at,
    max(a.last_ts) AS last_seen_at
FROM attributed_events AS a
LEFT JOIN id_map AS m ON m.identifier_type = a.identifier_type AND m.identifier = a.identifier
GROUP BY m.component
