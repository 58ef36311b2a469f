-- Step: Mixpanel events in the common events schema, as Original ID Merge reads them.
-- Inputs: mixpanel_events
-- Output: events(source_table, message_id, anonymous_id, user_id, previous_id{{extra_columns}},
--         ts), one row per exported event.
-- Invariants:
--   * every Mixpanel distinct id is typed user_id: Original has one namespace, and the
--     schema's user_id / previous_id pair already carries two ids of one type per event;
--   * an ordinary event contributes its distinct_id only ($device_id and $user_id play no part
--     in Original);
--   * a special event carries the two ids it asks to merge (user_id = merge_to, previous_id =
--     merge_from), so both are identifiers even when no other event names them; whether they
--     merge is decided by the replay of the special events, not by this row.
SELECT
    'mixpanel' AS source_table,
    message_id,
    CAST(NULL AS VARCHAR) AS anonymous_id,
    CASE
        WHEN event IN ('$identify', '$create_alias', '$merge')
            THEN coalesce(merge_to, distinct_id)
        ELSE distinct_id
    END AS user_id,
    CASE WHEN event IN ('$identify', '$create_alias', '$merge') THEN merge_from END
        AS previous_id{{extra_columns}},
    ts
FROM mixpanel_events
