-- Step: policy 'guarded' (default): an anonymous_id joins at most one user_id.
-- Inputs: checked_edges (from_node: the from end's node id, NULL when quarantined)
-- Output: classified_edges = candidate_edges columns + (from_node, to_node, kept BOOLEAN,
--         reason VARCHAR).
-- Invariants:
--   * junk links are refused, as under every policy;
--   * per anonymous_id (and per identifier of any other non-user type), only the usable
--     same_event link to a user_id with the earliest evidence (evidence_ts, then
--     evidence_message_id, then user id) is kept; the others are refused as
--     <type>_has_earlier_user_id. This is what protects a shared device: the second
--     person to log in on it does not absorb the first.
--   * alias links are explicit merges of user ids and are kept.
-- So a person holds two user_ids only when an alias joined them.
WITH ranked AS (
    SELECT
        *,
        row_number() OVER (
            -- from_node stands for (from_type, from_id): integers partition faster than
            -- strings. It is NULL only for a quarantined from end, whose links are refused
            -- whatever their rank.
            PARTITION BY from_node, rule, to_type, junk_refusal IS NULL
            ORDER BY evidence_ts NULLS LAST, evidence_message_id NULLS LAST, to_id
        ) AS user_rank
    FROM checked_edges
),
decided AS (
    SELECT
        *,
        CASE
            WHEN junk_refusal IS NOT NULL THEN junk_refusal
            WHEN rule = 'same_event' AND to_type = 'user_id' AND user_rank > 1
                THEN from_type || '_has_earlier_user_id'
        END AS refusal
    FROM ranked
)
SELECT
    from_type, from_id, to_type, to_id, rule, event_count, first_ts, last_ts,
    evidence_ts, evidence_message_id, evidence_table, from_node, to_node,
    refusal IS NULL AS kept,
    coalesce(refusal, rule) AS reason
FROM decided
