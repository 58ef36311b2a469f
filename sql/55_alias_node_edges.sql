-- Step: the kept alias links as node ids: which user ids an alias made one person on purpose.
-- Inputs: classified_edges (from_node, to_node)
-- Output: (src, dst) BIGINT node ids.
-- Invariants: only kept links with rule 'alias' (user_id -> user_id).
SELECT from_node AS src, to_node AS dst
FROM classified_edges
WHERE kept AND rule = 'alias'
