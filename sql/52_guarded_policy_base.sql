-- Step (policy guarded, with extra identifier types): the links the replay decides on, with
--       the per-identifier rule's refusals kept (junk refusals are the check's own).
-- Inputs: checked_edges (50_check_edges.sql), classified_edges (51_policy_guarded.sql)
-- Output: policy_base(checked_edges' columns, base_refusal), read by 52_policy_replayed.sql.
-- Invariants: one row per checked link (classified_edges has one per link and rule).
SELECT e.*, CASE WHEN NOT s.kept AND e.junk_refusal IS NULL THEN s.reason END AS base_refusal FROM checked_edges AS e JOIN classified_edges AS s ON s.from_type = e.from_type AND s.from_id = e.from_id AND s.to_type = e.to_type AND s.to_id = e.to_id AND s.rule = e.rule
