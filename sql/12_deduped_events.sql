-- Step: one input table's events without duplicate deliveries (only with --dedupe); a
--       subquery the one scan (20_pairs.sql) reads for that table, never materialized.
-- Inputs: {{events}}, the table's view (events_<table>); duplicate_hashes
--         (10_duplicate_hashes.sql); first_deliveries (11_first_deliveries.sql)
-- Output: the table's rows (source_table = {{source_table}}), same columns, at most one row per
--         non-null message id over all tables.
-- Invariants: rows without a message id cannot be matched and are all kept; rows whose id hash
--             is not in duplicate_hashes are unique by construction and pass through unranked;
--             of the others, only the delivery first_deliveries kept, in its own table.
SELECT source_table, message_id, anonymous_id, user_id, previous_id{{extra_columns}}, ts
FROM {{events}}
WHERE message_id IS NULL
   OR hash(message_id) NOT IN (SELECT message_hash FROM duplicate_hashes)
UNION ALL
SELECT source_table, message_id, anonymous_id, user_id, previous_id{{extra_columns}}, ts
FROM first_deliveries
WHERE source_table = {{source_table}}
