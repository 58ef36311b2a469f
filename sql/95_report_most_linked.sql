-- Step: the report's most-linked identifiers (report.html, "Most-linked identifiers").
-- Inputs: classified_edges (from_node, to_node, kept); id_map (node_id, event_count)
-- Output: at most {{top}} rows: identifier_type, identifier, kept, refused, event_count; the
--         most links first, ties by type and identifier.
-- Invariants: only identifiers of id_map (quarantined ones have their own list); a link
--             counts once for each of its ends: kept in `edges`, refused in `rejected_edges`.
--             Grouped on the integer node ids, which quarantined ends lack.
WITH ends AS (
    SELECT from_node AS node_id, kept FROM classified_edges WHERE from_node IS NOT NULL
    UNION ALL
    SELECT to_node, kept FROM classified_edges WHERE to_node IS NOT NULL
),
degrees AS (
    SELECT node_id, count(*) AS degree,
           CAST(sum(CASE WHEN kept THEN 1 ELSE 0 END) AS BIGINT) AS kept_links
    FROM ends
    GROUP BY node_id
)
SELECT m.identifier_type, m.identifier, d.kept_links AS kept,
       d.degree - d.kept_links AS refused, m.event_count
FROM degrees AS d
JOIN id_map AS m ON m.node_id = d.node_id
ORDER BY d.degree DESC, m.identifier_type, m.identifier
LIMIT {{top}}
