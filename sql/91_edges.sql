-- Step: the links that hold persons together, with their evidence (output `edges`).
-- Inputs: classified_edges (from_node), id_map (node_id)
-- Output: edges(person_id, from_type, from_id, to_type, to_id, rule, event_count,
--         first_seen_at, last_seen_at, evidence_at, evidence_message_id, evidence_table)
-- Invariants: kept links only; both ends belong to person_id.
SELECT
    f.person_id,
    e.from_type, e.from_id, e.to_type, e.to_id, e.rule, e.event_count,
    e.first_ts AS first_seen_at, e.last_ts AS last_seen_at,
    e.evidence_ts AS evidence_at, e.evidence_message_id, e.evidence_table
FROM classified_edges AS e
JOIN id_map AS f ON f.node_id = e.from_node
WHERE e.kept
