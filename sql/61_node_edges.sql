-- Step: the kept links as pairs of node ids, the only input the components solver needs.
-- Inputs: classified_edges, nodes
-- Output: node_edges(src, dst) BIGINT node ids.
-- Invariants: only kept links; both ends are nodes (kept links never touch junk).
SELECT f.node_id AS src, t.node_id AS dst
FROM classified_edges AS e
JOIN nodes AS f ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN nodes AS t ON t.identifier_type = e.to_type AND t.identifier = e.to_id
WHERE e.kept
