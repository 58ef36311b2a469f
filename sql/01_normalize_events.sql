-- Step: normalize one input table into the common event schema.
-- Inputs: {{raw}}, one table's files (any column spelling), identifier columns already read
--         as text by the loader (load.py, Engine.id_text: 1001.0 is '1001'); the loader fills
--         each column expression from the columns it found (quoted names only, never data).
-- Output: one row per input row:
--         (source_table, message_id, anonymous_id, user_id, previous_id, one column per
--         configured extra identifier type (normalized as configured), ts)
-- Invariants: ids are VARCHAR as the loader read them (no trimming, so "abc" and "abc " stay
--             two ids);
--             ts is a UTC TIMESTAMP, NULL when the input time is missing or unparseable.
SELECT
    {{source_table}} AS source_table,
    {{message_id}} AS message_id,
    {{anonymous_id}} AS anonymous_id,
    {{user_id}} AS user_id,
    {{previous_id}} AS previous_id{{extra_columns}},
    {{ts}} AS ts
FROM {{raw}}
