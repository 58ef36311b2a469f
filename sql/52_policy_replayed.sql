-- Step: classify links after an order-dependent replay (segment; guarded where needed).
-- Inputs: policy_base = checked_edges + base_refusal (the policy's order-free decision, NULL
--         for policies that have none); replayed(identifier_type, identifier, profile,
--         dropped_for) for every identifier of the components that were replayed.
-- Output: classified_edges = candidate_edges columns + (from_node, to_node, kept BOOLEAN,
--         reason VARCHAR).
-- Invariants: junk and hub links are refused as always; a link inside a replayed component is
--             kept iff the replay put both ends in one profile, else refused as
--             limit_<type>, naming the identifier type whose limit forced the split; links
--             outside replayed components keep the base decision.
WITH decided AS (
    SELECT
        e.*,
        CASE
            WHEN e.junk_refusal IS NOT NULL THEN e.junk_refusal
            WHEN f.profile IS NULL AND t.profile IS NULL THEN e.base_refusal
            WHEN f.profile = t.profile THEN NULL
            ELSE 'limit_' || coalesce(f.dropped_for, t.dropped_for, e.to_type)
        END AS refusal
    FROM policy_base AS e
    LEFT JOIN replayed AS f ON f.identifier_type = e.from_type AND f.identifier = e.from_id
    LEFT JOIN replayed AS t ON t.identifier_type = e.to_type AND t.identifier = e.to_id
)
SELECT
    from_type, from_id, to_type, to_id, rule, event_count, first_ts, last_ts,
    evidence_ts, evidence_message_id, evidence_table, from_node, to_node,
    refusal IS NULL AS kept,
    coalesce(refusal, rule) AS reason
FROM decided
