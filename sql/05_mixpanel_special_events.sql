-- Step: the events through which Original ID Merge merges distinct ids (few: one per login or
--       explicit merge), with the Mixpanel fields the replay needs.
-- Inputs: mixpanel_events
-- Output: mixpanel_special(event, message_id, ts, distinct_id, anon_id, identified_id, alias,
--         distinct_ids, merge_from, merge_to)
-- Invariants: exactly the `$identify`, `$create_alias` and `$merge` events, one row each.
SELECT
    event, message_id, ts, distinct_id, anon_id, identified_id, alias, distinct_ids,
    merge_from, merge_to
FROM mixpanel_events
WHERE event IN ('$identify', '$create_alias', '$merge')
