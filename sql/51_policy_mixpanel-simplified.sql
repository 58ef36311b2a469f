-- Step: policy 'mixpanel-simplified': Mixpanel's Simplified ID Merge.
-- Inputs: checked_edges (from_node: the from end's node id, NULL when quarantined)
-- Output: classified_edges = candidate_edges columns + (from_node, to_node, kept BOOLEAN,
--         reason VARCHAR).
-- Invariants:
--   * junk and hub links are refused, as under every policy;
--   * Simplified knows two ids only, the device ($device_id, typed anonymous_id) and the
--     $user_id, and merges only a device with a user: every other link (an alias from Segment
--     input, links of extra identifier types) is refused as 'ignored_by_simplified';
--   * "the first event carrying both links them": per device, only the usable link to the
--     user_id with the earliest evidence (evidence_ts, then evidence_message_id, then user id)
--     is kept; the others are refused as 'device_has_earlier_user_id'.
-- So a cluster holds at most one user_id and any number of devices, and unlike 'guarded' no
-- link ever joins two user ids. The special events ($identify, $create_alias, $merge) never
-- reach this step: the Mixpanel loader leaves them out of the events.
WITH ranked AS (
    SELECT
        *,
        rule = 'same_event' AND from_type = 'anonymous_id' AND to_type = 'user_id'
            AS device_to_user,
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
            WHEN NOT device_to_user THEN 'ignored_by_simplified'
            WHEN user_rank > 1 THEN 'device_has_earlier_user_id'
        END AS refusal
    FROM ranked
)
SELECT
    from_type, from_id, to_type, to_id, rule, event_count, first_ts, last_ts,
    evidence_ts, evidence_message_id, evidence_table, from_node, to_node,
    refusal IS NULL AS kept,
    coalesce(refusal, rule) AS reason
FROM decided
