-- Step: the kept links as pairs of node ids, the only input the components solver needs.
-- Inputs: classified_edges (from_node, to_node)
-- Output: node_edges(src, dst) BIGINT node ids.
-- Invariants: only kept links; both ends are nodes (kept links never touch junk).
SELECT from_node AS src, to_node AS dst
FROM classified_edges
WHERE kept
