-- Step: every link that no quarantine refused, as node ids (the graph a replay policy checks
--       for limit violations before deciding anything).
-- Inputs: checked_edges (from_node, to_node)
-- Output: (src, dst) BIGINT node ids.
-- Invariants: both ends are nodes; links touching junk or hubs are absent.
SELECT from_node AS src, to_node AS dst
FROM checked_edges
WHERE junk_refusal IS NULL
