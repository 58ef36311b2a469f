-- Step: the links that were refused, why, and where each end ended up (output
--       `rejected_edges`).
-- Inputs: classified_edges (from_node, to_node), id_map (node_id)
-- Output: rejected_edges(from_type, from_id, to_type, to_id, rule, reason, from_person_id,
--         to_person_id, event_count, first_seen_at, last_seen_at, evidence_at,
--         evidence_message_id, evidence_table)
-- Invariants: one row per refused link; a junk end has a NULL person_id (it is in quarantine).
SELECT
    e.from_type, e.from_id, e.to_type, e.to_id, e.rule, e.reason,
    f.person_id AS from_person_id,
    t.person_id AS to_person_id,
    e.event_count,
    e.first_ts AS first_seen_at, e.last_ts AS last_seen_at,
    e.evidence_ts AS evidence_at, e.evidence_message_id, e.evidence_table
FROM classified_edges AS e
LEFT JOIN id_map AS f ON f.node_id = e.from_node
LEFT JOIN id_map AS t ON t.node_id = e.to_node
WHERE NOT e.kept
