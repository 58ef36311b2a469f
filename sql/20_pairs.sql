-- Step: the one scan of the events. Every later step reads this aggregate, never the events.
-- Inputs: one input table's events (the view events_<table>), or with --dedupe that table's
--         events_deduped subquery (12_deduped_events.sql): source_table, message_id,
--         anonymous_id, user_id, previous_id, one column per configured extra identifier type,
--         ts. The pipeline runs this step once per input table, joined by UNION ALL into one
--         statement: source_table is part of the key, so the union is the aggregate of all the
--         events, while each hash table holds one table's groups. At 100M events under
--         --memory-limit 6GB the single aggregate spilled its hash tables and sometimes ran
--         out of memory (39-45 s; 2 of 6 runs failed); per table, nothing of it spills (31-34 s).
-- Output: pairs, one row per distinct (source_table, anonymous_id, user_id, previous_id
--         {{extra_columns_doc}}): event_count, events_without_ts, first_ts, last_ts and, for rows
--         carrying at least two identifiers, first_evidence = the earliest (ts, message_id).
-- Invariants: sum(event_count) = number of events; each event is counted in exactly one row.
SELECT
    source_table,
    anonymous_id,
    user_id,
    previous_id{{extra_columns}},
    count(*) AS event_count,
    CAST(sum(CASE WHEN ts IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS events_without_ts,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    -- NULL ts sorts after every time, so an event with a time is always the better evidence.
    -- The *_unknown flags spell that order out: engines disagree on where a NULL field sorts
    -- inside a struct (DuckDB: last, Spark: first), but all agree that false < true.
    min(struct_pack(
        ts_unknown := ts IS NULL, ts := ts,
        message_id_unknown := message_id IS NULL, message_id := message_id
    )) FILTER (
        WHERE {{links_condition}}
    ) AS first_evidence
FROM {{events}}
GROUP BY source_table, anonymous_id, user_id, previous_id{{extra_columns}}
