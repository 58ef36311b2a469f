-- Step: Mixpanel events in the common events schema, as Simplified ID Merge reads them (also
--       used by the non-Mixpanel policies).
-- Inputs: mixpanel_events
-- Output: events(source_table, message_id, anonymous_id, user_id, previous_id{{extra_columns}},
--         ts), one row per event that is not `$identify`, `$create_alias` or `$merge`.
-- Invariants:
--   * anonymous_id is the device: $device_id, else distinct_id without its `$device:` prefix
--     when it has one;
--   * user_id is $user_id, else distinct_id when it has no `$device:` prefix and the event has
--     neither $device_id nor $user_id (an old, distinct_id-only event);
--   * empty strings count as absent when choosing, so {"$user_id": ""} falls back as if unset;
--   * the special events are not graph input: Simplified ID Merge ignores them.
SELECT
    'mixpanel' AS source_table,
    message_id,
    CASE
        WHEN nullif(device_id, '') IS NOT NULL THEN device_id
        WHEN starts_with(distinct_id, '$device:') THEN substr(distinct_id, 9)
    END AS anonymous_id,
    CASE
        WHEN nullif(user_id, '') IS NOT NULL THEN user_id
        WHEN nullif(device_id, '') IS NULL AND nullif(distinct_id, '') IS NOT NULL
             AND NOT starts_with(distinct_id, '$device:') THEN distinct_id
    END AS user_id,
    CAST(NULL AS VARCHAR) AS previous_id{{extra_columns}},
    ts
FROM mixpanel_events
WHERE event IS NULL OR event NOT IN ('$identify', '$create_alias', '$merge')
