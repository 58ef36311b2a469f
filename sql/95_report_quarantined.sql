-- Step: the report's quarantined identifiers (report.html, "Quarantined ids").
-- Inputs: quarantine (93_quarantine.sql); classified_edges
-- Output: at most {{top}} rows: identifier_type, identifier, reason, event_count, hub_rule,
--         hub_degree, hub_contention, refused, quarantined; the most events first, ties by
--         type and identifier. quarantined = all the quarantined identifiers, on every row.
-- Invariants: refused = the identifier's ends among the refused links (`rejected_edges`);
--             only these few identifiers are looked up among the links.
WITH shown AS (
    SELECT identifier_type, identifier, reason, event_count, hub_rule, hub_degree,
           hub_contention
    FROM quarantine
    ORDER BY event_count DESC, identifier_type, identifier
    LIMIT {{top}}
),
refused_ends AS (
    SELECT from_type AS identifier_type, from_id AS identifier FROM classified_edges
    WHERE NOT kept
    UNION ALL
    SELECT to_type, to_id FROM classified_edges WHERE NOT kept
),
refused AS (
    SELECT r.identifier_type, r.identifier, count(*) AS refused
    FROM refused_ends AS r
    JOIN shown AS s ON s.identifier_type = r.identifier_type AND s.identifier = r.identifier
    GROUP BY r.identifier_type, r.identifier
)
SELECT s.identifier_type, s.identifier, s.reason, s.event_count, s.hub_rule, s.hub_degree,
       s.hub_contention, coalesce(f.refused, 0) AS refused,
       (SELECT count(*) FROM quarantine) AS quarantined
FROM shown AS s
LEFT JOIN refused AS f ON f.identifier_type = s.identifier_type AND f.identifier = s.identifier
ORDER BY s.event_count DESC, s.identifier_type, s.identifier
