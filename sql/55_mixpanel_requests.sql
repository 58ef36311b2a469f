-- Step (policy mixpanel-original): every special event with its place in the replay order.
-- Inputs: the fragment `requests`, the merge requests' query (55_mixpanel_merge_requests.sql)
-- Output: mixpanel_requests(seq, rule, from_id, to_id, ts, message_id, junk_refusal)
-- Invariants: seq numbers 55_mixpanel_merge_requests.sql's order (time, $insert_id, event,
--             ids; unknown times last), which is total up to identical requests.
SELECT
    CAST(row_number() OVER (
        ORDER BY ts NULLS LAST, message_id NULLS LAST, rule, from_id NULLS LAST,
                 to_id NULLS LAST
    ) - 1 AS BIGINT) AS seq,
    rule, from_id, to_id, ts, message_id, junk_refusal
FROM ({{requests}}) AS r
