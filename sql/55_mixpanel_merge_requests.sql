-- Step: the merges Original ID Merge is asked for, in the order Mixpanel would apply them.
-- Inputs: mixpanel_special; identifiers_checked (quarantine_reason)
-- Output: rows (rule, from_id, to_id, ts, message_id, junk_refusal), one per special event;
--         rule is the event name; from_id / to_id are NULL when the event does not name both
--         ids (the replay counts and skips those).
-- Invariants: every Mixpanel distinct id is typed user_id; junk_refusal names a quarantined
--             end as sql/50_check_edges.sql does (from end first); the order is total (time,
--             $insert_id, then the event and its ids), unknown times last, so the replay never
--             depends on how rows were stored.
SELECT
    s.event AS rule,
    s.merge_from AS from_id,
    s.merge_to AS to_id,
    s.ts,
    s.message_id,
    CASE
        WHEN f.quarantine_reason = 'hub' THEN 'hub_user_id'
        WHEN f.quarantine_reason IS NOT NULL THEN 'junk_user_id'
        WHEN t.quarantine_reason = 'hub' THEN 'hub_user_id'
        WHEN t.quarantine_reason IS NOT NULL THEN 'junk_user_id'
    END AS junk_refusal
FROM mixpanel_special AS s
LEFT JOIN identifiers_checked AS f
  ON f.identifier_type = 'user_id' AND f.identifier = s.merge_from
LEFT JOIN identifiers_checked AS t
  ON t.identifier_type = 'user_id' AND t.identifier = s.merge_to
ORDER BY s.ts NULLS LAST, s.message_id NULLS LAST, s.event, s.merge_from NULLS LAST,
         s.merge_to NULLS LAST
