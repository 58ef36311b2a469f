-- Step: what the run record needs of the policy's decisions, kept when they are freed.
-- Inputs: classified_edges (the policy, 51_policy_*.sql or 52_policy_*.sql)
-- Output: edge_totals(kept, reason, edges), one row per decision and reason.
-- Invariants: sum(edges) is the distinct links the policy classified.
SELECT kept, reason, count(*) AS edges FROM classified_edges GROUP BY kept, reason
