-- Step: refuse every link that touches a quarantined identifier, whatever the policy.
-- Inputs: candidate_edges; identifiers_checked (quarantine_reason)
-- Output: checked_edges = candidate_edges + junk_refusal ('junk_<type>', 'hub_<type>' or
--         NULL) + from_node, to_node (the ends' node ids, NULL for a quarantined end).
-- Invariants: one row per candidate edge; junk_refusal names the quarantined end (the from end
--             first) and why it is quarantined. Every later step finds an edge's ends by these
--             integers, never by joining the id strings again.
SELECT
    e.*,
    CASE
        WHEN f.quarantine_reason = 'hub' THEN 'hub_' || e.from_type
        WHEN f.quarantine_reason IS NOT NULL THEN 'junk_' || e.from_type
        WHEN t.quarantine_reason = 'hub' THEN 'hub_' || e.to_type
        WHEN t.quarantine_reason IS NOT NULL THEN 'junk_' || e.to_type
    END AS junk_refusal,
    f.node_id AS from_node,
    t.node_id AS to_node
FROM candidate_edges AS e
JOIN identifiers_checked AS f ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN identifiers_checked AS t ON t.identifier_type = e.to_type AND t.identifier = e.to_id
