-- Step: the delivery kept for each message id that may repeat (only with --dedupe).
-- Inputs: events (source_table, message_id, anonymous_id, user_id, previous_id, extra
--         identifier columns, ts), every input table; duplicate_hashes (10_duplicate_hashes.sql)
-- Output: first_deliveries, the same columns, one row per message id whose hash is in
--         duplicate_hashes. Small: only the rows those hashes point at are ranked.
-- Invariants: the row kept for a message id is its earliest delivery, ties broken by every
--             other column, so the choice never depends on file order or threads. A message id
--             is matched across tables (a redelivery may land in another table's files).
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
    WHERE message_id IS NOT NULL
      AND hash(message_id) IN (SELECT message_hash FROM duplicate_hashes)
) AS numbered
WHERE delivery = 1
