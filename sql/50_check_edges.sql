-- Step: refuse every link that touches a junk identifier, whatever the policy.
-- Inputs: candidate_edges; identifiers (junk_reason)
-- Output: checked_edges = candidate_edges + junk_refusal ('junk_anonymous_id', 'junk_user_id'
--         or NULL).
-- Invariants: one row per candidate edge; junk_refusal names the junk end (the from end first).
SELECT
    e.*,
    CASE
        WHEN f.junk_reason IS NOT NULL THEN 'junk_' || e.from_type
        WHEN t.junk_reason IS NOT NULL THEN 'junk_' || e.to_type
    END AS junk_refusal
FROM candidate_edges AS e
JOIN identifiers AS f ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN identifiers AS t ON t.identifier_type = e.to_type AND t.identifier = e.to_id
