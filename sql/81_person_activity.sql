-- Step: total each person's activity.
-- Inputs: nodes (attributed_* from 30_identifiers.sql), node_components, reattributed_events,
--         id_map
-- Output: person_activity(component, event_count, first_seen_at, last_seen_at); component is
--         NULL for the events whose every id is quarantined.
-- Invariants: each event counts once, for the person of the identifier it is attributed to:
--             a usable identifier's attributed_* columns, plus the events moved to it from a
--             quarantined id (35_reattributed_events.sql, a handful of rows looked up by
--             string). Grouped by the integer component, not the 32-character person id.
WITH attributed AS (
    SELECT c.component, n.attributed_event_count AS event_count,
           n.attributed_first_ts AS first_ts, n.attributed_last_ts AS last_ts
    FROM nodes AS n
    JOIN node_components AS c ON c.node_id = n.node_id
    WHERE n.attributed_event_count > 0
    UNION ALL
    SELECT m.component, r.event_count, r.first_ts, r.last_ts
    FROM reattributed_events AS r
    LEFT JOIN id_map AS m ON m.identifier_type = r.identifier_type AND m.identifier = r.identifier
)
SELECT
    component,
    CAST(sum(event_count) AS BIGINT) AS event_count,
    min(first_ts) AS first_seen_at,
    max(last_ts) AS last_seen_at
FROM attributed
GROUP BY component
