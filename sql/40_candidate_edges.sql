-- Step: every distinct link the events assert, with its first evidence.
-- Inputs: pairs
-- Output: candidate_edges(from_type, from_id, to_type, to_id, rule, event_count, first_ts,
--         last_ts, evidence_ts, evidence_message_id, evidence_table), one row per
--         (from_type, from_id, to_type, to_id, rule).
-- Invariants: rule 'same_event' links every two identifiers carried by one event (from = the
--             less trusted type, e.g. anonymous_id -> user_id); rule 'alias' links an alias's
--             previous_id to its user_id. Self links (previous_id = user_id) are not edges. The
--             evidence is the earliest event asserting the link: least (ts, message_id,
--             table), NULL times last.
WITH links AS (
    SELECT 'anonymous_id' AS from_type, anonymous_id AS from_id,
           'user_id' AS to_type, user_id AS to_id, 'same_event' AS rule,
           source_table, event_count, first_ts, last_ts, first_evidence
    FROM pairs
    WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL
    UNION ALL
    SELECT 'user_id', previous_id, 'user_id', user_id, 'alias',
           source_table, event_count, first_ts, last_ts, first_evidence
    FROM pairs
    WHERE previous_id IS NOT NULL AND user_id IS NOT NULL AND previous_id <> user_id
    {{extra_links}}
),
grouped AS (
    SELECT
        from_type, from_id, to_type, to_id, rule,
        CAST(sum(event_count) AS BIGINT) AS event_count,
        min(first_ts) AS first_ts,
        max(last_ts) AS last_ts,
        -- NULLs last through explicit flags (see 20_pairs.sql: engines differ otherwise).
        min(struct_pack(
            ts_unknown := first_evidence.ts IS NULL,
            ts := first_evidence.ts,
            message_id_unknown := first_evidence.message_id IS NULL,
            message_id := first_evidence.message_id,
            source_table := source_table
        )) AS evidence
    FROM links
    GROUP BY from_type, from_id, to_type, to_id, rule
)
SELECT
    from_type, from_id, to_type, to_id, rule, event_count, first_ts, last_ts,
    evidence.ts AS evidence_ts,
    evidence.message_id AS evidence_message_id,
    evidence.source_table AS evidence_table
FROM grouped
