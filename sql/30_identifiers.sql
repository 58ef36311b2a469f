-- Step: every typed identifier seen, with its activity and whether it is junk.
-- Inputs: pairs; junk_values(identifier_type, value), value already normalized, NULL type
--         meaning every type; the junk patterns as the placeholder junk_pattern_match, a
--         condition on junk_key and identifier_type with one anchored regex per pattern, each
--         bound as a parameter (stitcher/graph.py): a regex read from a table column is
--         compiled once per row on DuckDB (~15 us x 1.6M identifiers at 10M events), a bound
--         one once per query.
-- Output: identifiers(identifier_type, identifier, first_seen, last_seen, event_count,
--         attributed_event_count, attributed_first_ts, attributed_last_ts, quarantine_reason),
--         one row per (identifier_type, identifier); quarantine_reason is 'junk_value',
--         'junk_pattern' or NULL here (hubs are added by the next step).
-- Invariants: ('anonymous_id', X) and ('user_id', X) are different identifiers; an alias's
--             previous_id is a user_id; an event counts once per identifier it carries
--             (event_count), and once in all for the identifier it is attributed to
--             (attributed_*: its user_id, else its anonymous_id, else its previous_id). That
--             attribution assumes no id is quarantined; the events of a quarantined one are
--             attributed again in 35_reattributed_events.sql.
-- Anonymous ids are grouped on their own, the other types together: two smaller hash tables
-- one after the other instead of one over every identifier. Anonymous ids are most of them
-- (1.2M of 1.6M at 10M events); under --memory-limit the single aggregate spilled (identifiers
-- 1.85 s against 1.60 s at 10M events under 600MB, 1.06 against 1.00 s without a limit).
WITH anonymous_ids AS (
    SELECT 'anonymous_id' AS identifier_type, anonymous_id AS identifier,
           min(first_ts) AS first_seen, max(last_ts) AS last_seen,
           CAST(sum(event_count) AS BIGINT) AS event_count,
           CAST(coalesce(sum(event_count) FILTER (WHERE user_id IS NULL), 0) AS BIGINT)
               AS attributed_event_count,
           min(first_ts) FILTER (WHERE user_id IS NULL) AS attributed_first_ts,
           max(last_ts) FILTER (WHERE user_id IS NULL) AS attributed_last_ts
    FROM pairs
    WHERE anonymous_id IS NOT NULL
    GROUP BY anonymous_id
),
other_occurrences AS (
    SELECT 'user_id' AS identifier_type, user_id AS identifier,
           first_ts, last_ts, event_count, true AS attributed
    FROM pairs WHERE user_id IS NOT NULL
    UNION ALL
    SELECT 'user_id', previous_id, first_ts, last_ts, event_count,
           user_id IS NULL AND anonymous_id IS NULL
    FROM pairs WHERE previous_id IS NOT NULL AND (user_id IS NULL OR previous_id <> user_id)
    {{extra_occurrences}}
),
other_ids AS (
    SELECT identifier_type, identifier,
           min(first_ts) AS first_seen, max(last_ts) AS last_seen,
           CAST(sum(event_count) AS BIGINT) AS event_count,
           -- The attribution rides on this grouping instead of grouping the pairs again by
           -- their attributed id (a second 1.3M-group aggregate over strings at 10M events).
           CAST(coalesce(sum(event_count) FILTER (WHERE attributed), 0) AS BIGINT)
               AS attributed_event_count,
           min(first_ts) FILTER (WHERE attributed) AS attributed_first_ts,
           max(last_ts) FILTER (WHERE attributed) AS attributed_last_ts
    FROM other_occurrences
    GROUP BY identifier_type, identifier
),
grouped AS (
    SELECT * FROM anonymous_ids
    UNION ALL
    SELECT * FROM other_ids
),
normalized AS (
    -- Junk is recognized through whitespace, quotes and case: ' "NULL" ' is null. The
    -- whitespace class is spelled out because \s differs between regex engines (RE2, Java).
    SELECT *, lower(regexp_replace(identifier, '^[\t\n\f\r "'']+|[\t\n\f\r "'']+$', '', 'g'))
        AS junk_key
    FROM grouped
),
-- junk_key is computed once and every identifier is looked up in the two small lists by hash
-- join: no DISTINCT or self-join over the 1.6M identifiers.
junk_any_type AS (
    SELECT DISTINCT value FROM junk_values WHERE identifier_type IS NULL
),
junk_one_type AS (
    SELECT DISTINCT identifier_type, value FROM junk_values WHERE identifier_type IS NOT NULL
)
SELECT
    n.identifier_type,
    n.identifier,
    n.first_seen,
    n.last_seen,
    n.event_count,
    n.attributed_event_count,
    n.attributed_first_ts,
    n.attributed_last_ts,
    CASE
        WHEN a.value IS NOT NULL OR t.value IS NOT NULL THEN 'junk_value'
        WHEN {{junk_pattern_match}} THEN 'junk_pattern'
    END AS quarantine_reason
FROM normalized AS n
LEFT JOIN junk_any_type AS a ON a.value = n.junk_key
LEFT JOIN junk_one_type AS t
  ON t.identifier_type = n.identifier_type AND t.value = n.junk_key
