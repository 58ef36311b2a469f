-- Step: policy 'connected': plain connected components over every non-junk link.
-- Inputs: checked_edges
-- Output: classified_edges = candidate_edges columns + (from_node, to_node, kept BOOLEAN,
--         reason VARCHAR); reason
--         is the rule for kept links and the refusal for the others.
-- Invariants: kept <=> the link touches no junk identifier.
SELECT
    from_type, from_id, to_type, to_id, rule, event_count, first_ts, last_ts,
    evidence_ts, evidence_message_id, evidence_table, from_node, to_node,
    junk_refusal IS NULL AS kept,
    coalesce(junk_refusal, rule) AS reason
FROM checked_edges
