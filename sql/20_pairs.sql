-- Step: the one scan of the events. Every later step reads this aggregate, never the events.
-- Inputs: {{events}} (source_table, message_id, anonymous_id, user_id, previous_id, ts)
-- Output: pairs, one row per distinct (source_table, anonymous_id, user_id, previous_id):
--         event_count, events_without_ts, first_ts, last_ts and, for rows that link ids,
--         first_evidence = the earliest (ts, message_id) of those events.
-- Invariants: sum(event_count) = number of events; each event is counted in exactly one row.
SELECT
    source_table,
    anonymous_id,
    user_id,
    previous_id,
    count(*) AS event_count,
    CAST(sum(CASE WHEN ts IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS events_without_ts,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    -- NULL ts sorts after every time, so an event with a time is always the better evidence.
    min(struct_pack(ts := ts, message_id := message_id)) FILTER (
        WHERE (anonymous_id IS NOT NULL AND user_id IS NOT NULL)
           OR (previous_id IS NOT NULL AND user_id IS NOT NULL)
    ) AS first_evidence
FROM {{events}}
GROUP BY source_table, anonymous_id, user_id, previous_id
