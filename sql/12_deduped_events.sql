-- Step: drop duplicate deliveries (only with --dedupe); a view the one scan (20_pairs) reads.
-- Inputs: events (source_table, message_id, anonymous_id, user_id, previous_id, extra
--         identifier columns, ts); duplicate_hashes (10_duplicate_hashes.sql)
-- Output: events_deduped, same columns, at most one row per non-null message id.
-- Invariants: the row kept for a message id is its earliest delivery, ties broken by every
--             other column, so the choice never depends on file order or threads; rows without
--             a message id cannot be matched and are all kept. Rows whose id hash is not in
--             duplicate_hashes are unique by construction and pass through unranked.
SELECT source_table, message_id, anonymous_id, user_id, previous_id{{extra_columns}}, ts
FROM events
WHERE message_id IS NULL
   OR hash(message_id) NOT IN (SELECT message_hash FROM duplicate_hashes)
UNION ALL
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
