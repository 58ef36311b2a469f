-- Step: every typed identifier seen, with its activity and whether it is junk.
-- Inputs: pairs; junk_values(identifier_type, value), value already normalized, NULL type
--         meaning every type; junk_patterns(identifier_type, pattern), full-match regexes.
-- Output: identifiers(identifier_type, identifier, first_seen, last_seen, event_count,
--         quarantine_reason), one row per (identifier_type, identifier); quarantine_reason is
--         'junk_value', 'junk_pattern' or NULL here (hubs are added by the next step).
-- Invariants: ('anonymous_id', X) and ('user_id', X) are different identifiers; an alias's
--             previous_id is a user_id; an event counts once per identifier it carries.
WITH occurrences AS (
    SELECT 'anonymous_id' AS identifier_type, anonymous_id AS identifier,
           first_ts, last_ts, event_count
    FROM pairs WHERE anonymous_id IS NOT NULL
    UNION ALL
    SELECT 'user_id', user_id, first_ts, last_ts, event_count
    FROM pairs WHERE user_id IS NOT NULL
    UNION ALL
    SELECT 'user_id', previous_id, first_ts, last_ts, event_count
    FROM pairs WHERE previous_id IS NOT NULL AND (user_id IS NULL OR previous_id <> user_id)
    {{extra_occurrences}}
),
grouped AS (
    SELECT identifier_type, identifier,
           min(first_ts) AS first_seen, max(last_ts) AS last_seen,
           CAST(sum(event_count) AS BIGINT) AS event_count
    FROM occurrences
    GROUP BY identifier_type, identifier
),
normalized AS (
    -- Junk is recognized through whitespace, quotes and case: ' "NULL" ' is null. The
    -- whitespace class is spelled out because \s differs between regex engines (RE2, Java).
    SELECT *, lower(regexp_replace(identifier, '^[\t\n\f\r "'']+|[\t\n\f\r "'']+$', '', 'g'))
        AS junk_key
    FROM grouped
),
value_hits AS (
    SELECT DISTINCT n.identifier_type, n.identifier
    FROM normalized AS n
    JOIN junk_values AS j
      ON n.junk_key = j.value
     AND (j.identifier_type IS NULL OR j.identifier_type = n.identifier_type)
),
pattern_hits AS (
    SELECT DISTINCT n.identifier_type, n.identifier
    FROM normalized AS n
    JOIN junk_patterns AS j
      ON (j.identifier_type IS NULL OR j.identifier_type = n.identifier_type)
     -- An anchored partial match is a full match on every engine (junk_key has no trailing
     -- newline for Java's $ to stop before); regexp_full_match is DuckDB-only.
     AND regexp_matches(n.junk_key, '^(' || j.pattern || ')$')
)
SELECT
    n.identifier_type,
    n.identifier,
    n.first_seen,
    n.last_seen,
    n.event_count,
    CASE
        WHEN v.identifier IS NOT NULL THEN 'junk_value'
        WHEN p.identifier IS NOT NULL THEN 'junk_pattern'
    END AS quarantine_reason
FROM normalized AS n
LEFT JOIN value_hits AS v
  ON v.identifier_type = n.identifier_type AND v.identifier = n.identifier
LEFT JOIN pattern_hits AS p
  ON p.identifier_type = n.identifier_type AND p.identifier = n.identifier
