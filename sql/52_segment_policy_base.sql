-- Step (policy segment): the links the replay decides on, none refused before it.
-- Inputs: checked_edges (50_check_edges.sql)
-- Output: policy_base(checked_edges' columns, base_refusal), read by 52_policy_replayed.sql.
-- Invariants: one row per checked link; base_refusal is NULL on every row.
SELECT *, CAST(NULL AS VARCHAR) AS base_refusal FROM checked_edges
