-- Step: the kept alias links as node ids: which user ids an alias made one person on purpose.
-- Inputs: classified_edges, nodes
-- Output: (src, dst) BIGINT node ids.
-- Invariants: only kept links with rule 'alias' (user_id -> user_id).
SELECT f.node_id AS src, t.node_id AS dst
FROM classified_edges AS e
JOIN nodes AS f ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN nodes AS t ON t.identifier_type = e.to_type AND t.identifier = e.to_id
WHERE e.kept AND e.rule = 'alias'
