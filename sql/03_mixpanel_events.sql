-- Step: every Mixpanel event, with the merge its special event asks for.
-- Inputs: mixpanel_raw_events (the normalized parts of the export, unioned)
-- Output: mixpanel_events = mixpanel_raw_events + (merge_from, merge_to): for `$identify`
--         ($anon_id, $identified_id), for `$create_alias` (alias, distinct_id), for `$merge`
--         the two ids of $distinct_ids; NULL for every other event.
-- Invariants: one row per exported event; merge_to is the id merged into (the identified id,
--             the aliased distinct_id); a `$merge` names exactly two ids or asks for nothing
--             (Mixpanel's API takes exactly two). array_length, not len: sqlglot makes it
--             Spark's size (len would become a string length there).
SELECT
    *,
    CASE event
        WHEN '$identify' THEN anon_id
        WHEN '$create_alias' THEN alias
        WHEN '$merge' THEN CASE WHEN array_length(distinct_ids) = 2 THEN distinct_ids[1] END
    END AS merge_from,
    CASE event
        WHEN '$identify' THEN identified_id
        WHEN '$create_alias' THEN distinct_id
        WHEN '$merge' THEN CASE WHEN array_length(distinct_ids) = 2 THEN distinct_ids[2] END
    END AS merge_to
FROM mixpanel_raw_events
