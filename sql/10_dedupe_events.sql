-- Step: drop duplicate deliveries (only with --dedupe).
-- Inputs: events (source_table, message_id, anonymous_id, user_id, previous_id, extra
--         identifier columns, ts)
-- Output: events_deduped, same columns, at most one row per non-null message_id.
-- Invariants: the row kept for a message id is its earliest delivery, ties broken by every
--             other column, so the choice never depends on file order or threads; rows without
--             a message id cannot be matched and are all kept.
SELECT source_table, message_id, anonymous_id, user_id, previous_id{{extra_columns}}, ts
FROM (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY message_id
            ORDER BY ts NULLS LAST, source_table, anonymous_id NULLS LAST,
                     user_id NULLS LAST, previous_id NULLS LAST{{extra_order}}
        ) AS delivery
    FROM events
) AS numbered
WHERE message_id IS NULL OR delivery = 1
