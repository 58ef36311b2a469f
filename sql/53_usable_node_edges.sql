-- Step: every link that no quarantine refused, as node ids (the graph a replay policy checks
--       for limit violations before deciding anything).
-- Inputs: checked_edges, nodes
-- Output: (src, dst) BIGINT node ids.
-- Invariants: both ends are nodes; links touching junk or hubs are absent.
SELECT f.node_id AS src, t.node_id AS dst
FROM checked_edges AS e
JOIN nodes AS f ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN nodes AS t ON t.identifier_type = e.to_type AND t.identifier = e.to_id
WHERE e.junk_refusal IS NULL
