-- Step: normalize one part of a Mixpanel export (raw JSON records, or the same fields
--       flattened into Parquet/CSV columns) into one Mixpanel schema.
-- Inputs: {{raw}}; the loader fills each expression from the JSON keys or the columns it found
--         (quoted names and constant JSON paths only, never data).
-- Output: one row per exported event: (event, message_id = $insert_id, distinct_id,
--         device_id = $device_id, user_id = $user_id, anon_id = $anon_id, identified_id =
--         $identified_id, alias, distinct_ids = $distinct_ids as VARCHAR[], ts)
-- Invariants: ids are VARCHAR exactly as sent (a JSON number as its text); ts is a UTC
--             TIMESTAMP from epoch seconds or milliseconds (or ISO-8601 text), NULL when
--             missing or unparseable.
SELECT
    {{event}} AS event,
    {{message_id}} AS message_id,
    {{distinct_id}} AS distinct_id,
    {{device_id}} AS device_id,
    {{user_id}} AS user_id,
    {{anon_id}} AS anon_id,
    {{identified_id}} AS identified_id,
    {{alias}} AS alias,
    {{distinct_ids}} AS distinct_ids,
    {{ts}} AS ts
FROM {{raw}}
