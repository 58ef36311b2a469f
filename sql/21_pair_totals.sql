-- Step: what the run record needs of the one scan, kept when `pairs` is freed.
-- Inputs: pairs (20_pairs.sql)
-- Output: pair_totals(source_table, event_count, events_without_ts, first_ts, last_ts), one row
--         per input table.
-- Invariants: sum(event_count) is the events read (after --dedupe).
SELECT source_table, CAST(sum(event_count) AS BIGINT) AS event_count, CAST(sum(events_without_ts) AS BIGINT) AS events_without_ts, min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM pairs GROUP BY source_table
