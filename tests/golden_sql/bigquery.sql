-- The stitcher 0.1.0 identity pipeline as bigquery SQL (`stitcher sql`).
-- Inputs: tracks = analytics.tracks, pages = analytics.pages, identifies = analytics.identifies, aliases = analytics.aliases.
-- Outputs: tables id_map, users, edges, rejected_edges, quarantine in schema identity; times are read as UTC.
-- The script works in tables named stitcher__* there and drops them at the end. It
-- replaces an output table only if an earlier `stitcher sql` script made it (the table's
-- comment says so): it stops, before changing anything, on any other table of that name.
-- Run the statements in order. The block between `stitcher:loop` and `stitcher:end-loop`
-- repeats until the query after `stitcher:until-zero` returns 0 (at most max_rounds times);
-- stitcher.warehouse.run_script(path, connection) does this over a DB-API connection.
-- BigQuery: the tables are created in the default dataset: run the script as one
-- multi-statement query after SET @@dataset_id = '<dataset>'; (or give each job a
-- default dataset). Checked as text only: never run against BigQuery by the tests.

SELECT ERROR(CONCAT('stitcher: table ', t.table_schema, '.', t.table_name, ' exists and was not made by stitcher sql, so the script stops without touching it: rename or drop it yourself, or write the outputs elsewhere with stitcher sql --output-schema or --output-table'))
FROM `identity`.INFORMATION_SCHEMA.TABLES AS t
LEFT JOIN `identity`.INFORMATION_SCHEMA.TABLE_OPTIONS AS o
  ON o.table_name = t.table_name AND o.option_name = 'description'
WHERE t.table_name IN ('id_map', 'users', 'edges', 'rejected_edges', 'quarantine')
  AND COALESCE(o.option_value, '') NOT LIKE '"stitcher sql output%';

CREATE OR REPLACE VIEW identity.stitcher__raw_tracks_table AS
SELECT
  *
FROM `analytics`.`tracks`;

CREATE OR REPLACE VIEW identity.stitcher__raw_tracks_table_ids AS
SELECT
  CASE
    WHEN CAST(raw_tracks_table.`id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_tracks_table.`id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_tracks_table.`id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_tracks_table.`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(raw_tracks_table.`anonymous_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_tracks_table.`anonymous_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_tracks_table.`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_tracks_table.`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  CASE
    WHEN CAST(raw_tracks_table.`user_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_tracks_table.`user_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_tracks_table.`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_tracks_table.`user_id` AS STRING)
  END AS `user_id`,
  raw_tracks_table.`timestamp` AS `timestamp`
FROM identity.stitcher__raw_tracks_table AS raw_tracks_table;

CREATE OR REPLACE VIEW identity.stitcher__events_tracks AS
SELECT
  'tracks' AS source_table,
  CAST(raw_tracks_table_ids.`id` AS STRING) AS message_id,
  CAST(raw_tracks_table_ids.`anonymous_id` AS STRING) AS anonymous_id,
  CAST(raw_tracks_table_ids.`user_id` AS STRING) AS user_id,
  CAST(NULL AS STRING) AS previous_id,
  CAST(raw_tracks_table_ids.`timestamp` AS DATETIME) AS ts
FROM identity.stitcher__raw_tracks_table_ids AS raw_tracks_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__raw_pages_table AS
SELECT
  *
FROM `analytics`.`pages`;

CREATE OR REPLACE VIEW identity.stitcher__raw_pages_table_ids AS
SELECT
  CASE
    WHEN CAST(raw_pages_table.`id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_pages_table.`id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_pages_table.`id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_pages_table.`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(raw_pages_table.`anonymous_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_pages_table.`anonymous_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_pages_table.`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_pages_table.`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  CASE
    WHEN CAST(raw_pages_table.`user_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_pages_table.`user_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_pages_table.`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_pages_table.`user_id` AS STRING)
  END AS `user_id`,
  raw_pages_table.`timestamp` AS `timestamp`
FROM identity.stitcher__raw_pages_table AS raw_pages_table;

CREATE OR REPLACE VIEW identity.stitcher__events_pages AS
SELECT
  'pages' AS source_table,
  CAST(raw_pages_table_ids.`id` AS STRING) AS message_id,
  CAST(raw_pages_table_ids.`anonymous_id` AS STRING) AS anonymous_id,
  CAST(raw_pages_table_ids.`user_id` AS STRING) AS user_id,
  CAST(NULL AS STRING) AS previous_id,
  CAST(raw_pages_table_ids.`timestamp` AS DATETIME) AS ts
FROM identity.stitcher__raw_pages_table_ids AS raw_pages_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__raw_identifies_table AS
SELECT
  *
FROM `analytics`.`identifies`;

CREATE OR REPLACE VIEW identity.stitcher__raw_identifies_table_ids AS
SELECT
  CASE
    WHEN CAST(raw_identifies_table.`id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_identifies_table.`id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_identifies_table.`id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_identifies_table.`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(raw_identifies_table.`anonymous_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_identifies_table.`anonymous_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_identifies_table.`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_identifies_table.`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  CASE
    WHEN CAST(raw_identifies_table.`user_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_identifies_table.`user_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_identifies_table.`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_identifies_table.`user_id` AS STRING)
  END AS `user_id`,
  raw_identifies_table.`timestamp` AS `timestamp`,
  raw_identifies_table.`plan` AS `plan`
FROM identity.stitcher__raw_identifies_table AS raw_identifies_table;

CREATE OR REPLACE VIEW identity.stitcher__events_identifies AS
SELECT
  'identifies' AS source_table,
  CAST(raw_identifies_table_ids.`id` AS STRING) AS message_id,
  CAST(raw_identifies_table_ids.`anonymous_id` AS STRING) AS anonymous_id,
  CAST(raw_identifies_table_ids.`user_id` AS STRING) AS user_id,
  CAST(NULL AS STRING) AS previous_id,
  CAST(raw_identifies_table_ids.`timestamp` AS DATETIME) AS ts
FROM identity.stitcher__raw_identifies_table_ids AS raw_identifies_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__identify_traits AS
SELECT
  CAST(raw_identifies_table_ids.`anonymous_id` AS STRING) AS anonymous_id,
  CAST(raw_identifies_table_ids.`user_id` AS STRING) AS user_id,
  CAST(raw_identifies_table_ids.`timestamp` AS DATETIME) AS ts,
  raw_identifies_table_ids.`plan` AS `__trait_0`
FROM identity.stitcher__raw_identifies_table_ids AS raw_identifies_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__raw_aliases_table AS
SELECT
  *
FROM `analytics`.`aliases`;

CREATE OR REPLACE VIEW identity.stitcher__raw_aliases_table_ids AS
SELECT
  CASE
    WHEN CAST(raw_aliases_table.`id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_aliases_table.`id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_aliases_table.`id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_aliases_table.`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(raw_aliases_table.`previous_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_aliases_table.`previous_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_aliases_table.`previous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_aliases_table.`previous_id` AS STRING)
  END AS `previous_id`,
  CASE
    WHEN CAST(raw_aliases_table.`user_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_aliases_table.`user_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_aliases_table.`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_aliases_table.`user_id` AS STRING)
  END AS `user_id`,
  CASE
    WHEN CAST(raw_aliases_table.`anonymous_id` AS STRING) LIKE '%.%0'
    AND REGEXP_CONTAINS(CAST(raw_aliases_table.`anonymous_id` AS STRING), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST(raw_aliases_table.`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(raw_aliases_table.`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  raw_aliases_table.`timestamp` AS `timestamp`
FROM identity.stitcher__raw_aliases_table AS raw_aliases_table;

CREATE OR REPLACE VIEW identity.stitcher__events_aliases AS
SELECT
  'aliases' AS source_table,
  CAST(raw_aliases_table_ids.`id` AS STRING) AS message_id,
  CAST(raw_aliases_table_ids.`anonymous_id` AS STRING) AS anonymous_id,
  CAST(raw_aliases_table_ids.`user_id` AS STRING) AS user_id,
  CAST(raw_aliases_table_ids.`previous_id` AS STRING) AS previous_id,
  CAST(raw_aliases_table_ids.`timestamp` AS DATETIME) AS ts
FROM identity.stitcher__raw_aliases_table_ids AS raw_aliases_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__events AS
SELECT
  events_tracks.source_table AS source_table,
  events_tracks.message_id AS message_id,
  events_tracks.anonymous_id AS anonymous_id,
  events_tracks.user_id AS user_id,
  events_tracks.previous_id AS previous_id,
  events_tracks.ts AS ts
FROM identity.stitcher__events_tracks AS events_tracks
UNION ALL
SELECT
  events_pages.source_table AS source_table,
  events_pages.message_id AS message_id,
  events_pages.anonymous_id AS anonymous_id,
  events_pages.user_id AS user_id,
  events_pages.previous_id AS previous_id,
  events_pages.ts AS ts
FROM identity.stitcher__events_pages AS events_pages
UNION ALL
SELECT
  events_identifies.source_table AS source_table,
  events_identifies.message_id AS message_id,
  events_identifies.anonymous_id AS anonymous_id,
  events_identifies.user_id AS user_id,
  events_identifies.previous_id AS previous_id,
  events_identifies.ts AS ts
FROM identity.stitcher__events_identifies AS events_identifies
UNION ALL
SELECT
  events_aliases.source_table AS source_table,
  events_aliases.message_id AS message_id,
  events_aliases.anonymous_id AS anonymous_id,
  events_aliases.user_id AS user_id,
  events_aliases.previous_id AS previous_id,
  events_aliases.ts AS ts
FROM identity.stitcher__events_aliases AS events_aliases;

DROP TABLE IF EXISTS identity.stitcher__junk_values;

CREATE TABLE identity.stitcher__junk_values AS
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('null' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('undefined' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('none' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('nil' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('nan' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('inf' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('-inf' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('infinity' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('-infinity' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('0' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('-1' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('anonymous' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('guest' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('unknown' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('n/a' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('[object object]' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('true' AS STRING) AS `value`
UNION ALL
SELECT
  CAST(NULL AS STRING) AS `identifier_type`,
  CAST('false' AS STRING) AS `value`;

DROP TABLE IF EXISTS identity.stitcher__pairs;

CREATE TABLE identity.stitcher__pairs AS
SELECT
  events_tracks.source_table AS source_table,
  events_tracks.anonymous_id AS anonymous_id,
  events_tracks.user_id AS user_id,
  events_tracks.previous_id AS previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN events_tracks.ts IS NULL THEN 1 ELSE 0 END) AS INT64) AS events_without_ts,
  MIN(events_tracks.ts) AS first_ts,
  MAX(events_tracks.ts) AS last_ts,
  ARRAY_AGG(
    IF(
      (
        NOT events_tracks.anonymous_id IS NULL AND NOT events_tracks.user_id IS NULL
      )
      OR (
        NOT events_tracks.previous_id IS NULL AND NOT events_tracks.user_id IS NULL
      ),
      STRUCT(
        events_tracks.ts IS NULL AS ts_unknown,
        events_tracks.ts AS ts,
        events_tracks.message_id IS NULL AS message_id_unknown,
        events_tracks.message_id AS message_id
      ),
      NULL
    ) IGNORE NULLS ORDER BY events_tracks.ts IS NULL ASC, events_tracks.ts ASC, events_tracks.message_id IS NULL ASC, events_tracks.message_id ASC
    LIMIT 1
  )[SAFE_OFFSET(0)] AS first_evidence
FROM identity.stitcher__events_tracks AS events_tracks
GROUP BY
  events_tracks.source_table,
  events_tracks.anonymous_id,
  events_tracks.user_id,
  events_tracks.previous_id
UNION ALL
SELECT
  events_pages.source_table AS source_table,
  events_pages.anonymous_id AS anonymous_id,
  events_pages.user_id AS user_id,
  events_pages.previous_id AS previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN events_pages.ts IS NULL THEN 1 ELSE 0 END) AS INT64) AS events_without_ts,
  MIN(events_pages.ts) AS first_ts,
  MAX(events_pages.ts) AS last_ts,
  ARRAY_AGG(
    IF(
      (
        NOT events_pages.anonymous_id IS NULL AND NOT events_pages.user_id IS NULL
      )
      OR (
        NOT events_pages.previous_id IS NULL AND NOT events_pages.user_id IS NULL
      ),
      STRUCT(
        events_pages.ts IS NULL AS ts_unknown,
        events_pages.ts AS ts,
        events_pages.message_id IS NULL AS message_id_unknown,
        events_pages.message_id AS message_id
      ),
      NULL
    ) IGNORE NULLS ORDER BY events_pages.ts IS NULL ASC, events_pages.ts ASC, events_pages.message_id IS NULL ASC, events_pages.message_id ASC
    LIMIT 1
  )[SAFE_OFFSET(0)] AS first_evidence
FROM identity.stitcher__events_pages AS events_pages
GROUP BY
  events_pages.source_table,
  events_pages.anonymous_id,
  events_pages.user_id,
  events_pages.previous_id
UNION ALL
SELECT
  events_identifies.source_table AS source_table,
  events_identifies.anonymous_id AS anonymous_id,
  events_identifies.user_id AS user_id,
  events_identifies.previous_id AS previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN events_identifies.ts IS NULL THEN 1 ELSE 0 END) AS INT64) AS events_without_ts,
  MIN(events_identifies.ts) AS first_ts,
  MAX(events_identifies.ts) AS last_ts,
  ARRAY_AGG(
    IF(
      (
        NOT events_identifies.anonymous_id IS NULL
        AND NOT events_identifies.user_id IS NULL
      )
      OR (
        NOT events_identifies.previous_id IS NULL
        AND NOT events_identifies.user_id IS NULL
      ),
      STRUCT(
        events_identifies.ts IS NULL AS ts_unknown,
        events_identifies.ts AS ts,
        events_identifies.message_id IS NULL AS message_id_unknown,
        events_identifies.message_id AS message_id
      ),
      NULL
    ) IGNORE NULLS ORDER BY events_identifies.ts IS NULL ASC, events_identifies.ts ASC, events_identifies.message_id IS NULL ASC, events_identifies.message_id ASC
    LIMIT 1
  )[SAFE_OFFSET(0)] AS first_evidence
FROM identity.stitcher__events_identifies AS events_identifies
GROUP BY
  events_identifies.source_table,
  events_identifies.anonymous_id,
  events_identifies.user_id,
  events_identifies.previous_id
UNION ALL
SELECT
  events_aliases.source_table AS source_table,
  events_aliases.anonymous_id AS anonymous_id,
  events_aliases.user_id AS user_id,
  events_aliases.previous_id AS previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN events_aliases.ts IS NULL THEN 1 ELSE 0 END) AS INT64) AS events_without_ts,
  MIN(events_aliases.ts) AS first_ts,
  MAX(events_aliases.ts) AS last_ts,
  ARRAY_AGG(
    IF(
      (
        NOT events_aliases.anonymous_id IS NULL AND NOT events_aliases.user_id IS NULL
      )
      OR (
        NOT events_aliases.previous_id IS NULL AND NOT events_aliases.user_id IS NULL
      ),
      STRUCT(
        events_aliases.ts IS NULL AS ts_unknown,
        events_aliases.ts AS ts,
        events_aliases.message_id IS NULL AS message_id_unknown,
        events_aliases.message_id AS message_id
      ),
      NULL
    ) IGNORE NULLS ORDER BY events_aliases.ts IS NULL ASC, events_aliases.ts ASC, events_aliases.message_id IS NULL ASC, events_aliases.message_id ASC
    LIMIT 1
  )[SAFE_OFFSET(0)] AS first_evidence
FROM identity.stitcher__events_aliases AS events_aliases
GROUP BY
  events_aliases.source_table,
  events_aliases.anonymous_id,
  events_aliases.user_id,
  events_aliases.previous_id;

DROP TABLE IF EXISTS identity.stitcher__duplicate_hashes;

DROP TABLE IF EXISTS identity.stitcher__first_deliveries;

DROP TABLE IF EXISTS identity.stitcher__pair_totals;

CREATE TABLE identity.stitcher__pair_totals AS
SELECT
  pairs.source_table AS source_table,
  CAST(SUM(pairs.event_count) AS INT64) AS event_count,
  CAST(SUM(pairs.events_without_ts) AS INT64) AS events_without_ts,
  MIN(pairs.first_ts) AS first_ts,
  MAX(pairs.last_ts) AS last_ts
FROM identity.stitcher__pairs AS pairs
GROUP BY
  pairs.source_table;

DROP TABLE IF EXISTS identity.stitcher__identifiers;

DROP TABLE IF EXISTS identity.stitcher__identifiers;

CREATE TABLE identity.stitcher__identifiers AS
WITH anonymous_ids AS (
  SELECT
    'anonymous_id' AS identifier_type,
    pairs.anonymous_id AS identifier,
    MIN(pairs.first_ts) AS first_seen,
    MAX(pairs.last_ts) AS last_seen,
    CAST(SUM(pairs.event_count) AS INT64) AS event_count,
    CAST(COALESCE(SUM(IF(pairs.user_id IS NULL, pairs.event_count, NULL)), 0) AS INT64) AS attributed_event_count,
    MIN(IF(pairs.user_id IS NULL, pairs.first_ts, NULL)) AS attributed_first_ts,
    MAX(IF(pairs.user_id IS NULL, pairs.last_ts, NULL)) AS attributed_last_ts
  FROM identity.stitcher__pairs AS pairs
  WHERE
    NOT pairs.anonymous_id IS NULL
  GROUP BY
    pairs.anonymous_id
), other_occurrences AS (
  SELECT
    'user_id' AS identifier_type,
    pairs.user_id AS identifier,
    pairs.first_ts AS first_ts,
    pairs.last_ts AS last_ts,
    pairs.event_count AS event_count,
    TRUE AS attributed
  FROM identity.stitcher__pairs AS pairs
  WHERE
    NOT pairs.user_id IS NULL
  UNION ALL
  SELECT
    'user_id' AS user_id,
    pairs.previous_id AS previous_id,
    pairs.first_ts AS first_ts,
    pairs.last_ts AS last_ts,
    pairs.event_count AS event_count,
    pairs.user_id IS NULL AND pairs.anonymous_id IS NULL AS _col_5
  FROM identity.stitcher__pairs AS pairs
  WHERE
    NOT pairs.previous_id IS NULL
    AND (
      pairs.user_id IS NULL OR pairs.previous_id <> pairs.user_id
    )
), other_ids AS (
  SELECT
    other_occurrences.identifier_type AS identifier_type,
    other_occurrences.identifier AS identifier,
    MIN(other_occurrences.first_ts) AS first_seen,
    MAX(other_occurrences.last_ts) AS last_seen,
    CAST(SUM(other_occurrences.event_count) AS INT64) AS event_count,
    CAST(COALESCE(SUM(IF(other_occurrences.attributed, other_occurrences.event_count, NULL)), 0) AS INT64) AS attributed_event_count, /* The attribution rides on this grouping instead of grouping the pairs again by */ /* their attributed id (a second 1.3M-group aggregate over strings at 10M events). */
    MIN(IF(other_occurrences.attributed, other_occurrences.first_ts, NULL)) AS attributed_first_ts,
    MAX(IF(other_occurrences.attributed, other_occurrences.last_ts, NULL)) AS attributed_last_ts
  FROM other_occurrences AS other_occurrences
  GROUP BY
    other_occurrences.identifier_type,
    other_occurrences.identifier
), grouped AS (
  SELECT
    anonymous_ids.identifier_type AS identifier_type,
    anonymous_ids.identifier AS identifier,
    anonymous_ids.first_seen AS first_seen,
    anonymous_ids.last_seen AS last_seen,
    anonymous_ids.event_count AS event_count,
    anonymous_ids.attributed_event_count AS attributed_event_count,
    anonymous_ids.attributed_first_ts AS attributed_first_ts,
    anonymous_ids.attributed_last_ts AS attributed_last_ts
  FROM anonymous_ids AS anonymous_ids
  UNION ALL
  SELECT
    other_ids.identifier_type AS identifier_type,
    other_ids.identifier AS identifier,
    other_ids.first_seen AS first_seen,
    other_ids.last_seen AS last_seen,
    other_ids.event_count AS event_count,
    other_ids.attributed_event_count AS attributed_event_count,
    other_ids.attributed_first_ts AS attributed_first_ts,
    other_ids.attributed_last_ts AS attributed_last_ts
  FROM other_ids AS other_ids
), normalized AS (
  SELECT
    grouped.identifier_type AS identifier_type,
    grouped.identifier AS identifier,
    grouped.first_seen AS first_seen,
    grouped.last_seen AS last_seen,
    grouped.event_count AS event_count,
    grouped.attributed_event_count AS attributed_event_count,
    grouped.attributed_first_ts AS attributed_first_ts,
    grouped.attributed_last_ts AS attributed_last_ts,
    LOWER(
      REGEXP_REPLACE(grouped.identifier, '^[\\t\\n\\f\\r "\']+|[\\t\\n\\f\\r "\']+$', '')
    ) AS junk_key
  FROM grouped AS grouped
), junk_any_type /* junk_key is computed once and every identifier is looked up in the two small lists by hash */ /* join: no DISTINCT or self-join over the 1.6M identifiers. */ AS (
  SELECT DISTINCT
    junk_values.value AS value
  FROM identity.stitcher__junk_values AS junk_values
  WHERE
    junk_values.identifier_type IS NULL
), junk_one_type AS (
  SELECT DISTINCT
    junk_values.identifier_type AS identifier_type,
    junk_values.value AS value
  FROM identity.stitcher__junk_values AS junk_values
  WHERE
    NOT junk_values.identifier_type IS NULL
)
SELECT
  n.identifier_type AS identifier_type,
  n.identifier AS identifier,
  n.first_seen AS first_seen,
  n.last_seen AS last_seen,
  n.event_count AS event_count,
  n.attributed_event_count AS attributed_event_count,
  n.attributed_first_ts AS attributed_first_ts,
  n.attributed_last_ts AS attributed_last_ts,
  CASE
    WHEN NOT a.value IS NULL OR NOT t.value IS NULL
    THEN 'junk_value'
    WHEN REGEXP_CONTAINS(n.junk_key, '^([0-]*)$')
    THEN 'junk_pattern'
  END AS quarantine_reason
FROM normalized AS n
LEFT JOIN junk_any_type AS a
  ON a.value = n.junk_key
LEFT JOIN junk_one_type AS t
  ON t.identifier_type = n.identifier_type AND t.value = n.junk_key;

DROP TABLE IF EXISTS identity.stitcher__junk_values;

DROP TABLE IF EXISTS identity.stitcher__hub_degrees;

CREATE TABLE identity.stitcher__hub_degrees AS
WITH identifiers_junk AS (
  SELECT
    identifiers.identifier_type AS identifier_type,
    identifiers.identifier AS identifier
  FROM identity.stitcher__identifiers AS identifiers
  WHERE
    NOT identifiers.quarantine_reason IS NULL
), type_pairs AS (
  SELECT
    0 AS pair_no,
    'anonymous_id' AS a_type,
    'user_id' AS b_type
), hub_rules AS (
  SELECT
    0 AS rule_no,
    0 AS pair_no,
    'a' AS side,
    'anonymous_id' AS identifier_type,
    'user_id' AS linked_type,
    50 AS max_linked
  UNION ALL
  SELECT
    1 AS rule_no,
    0 AS pair_no,
    'b' AS side,
    'user_id' AS identifier_type,
    'anonymous_id' AS linked_type,
    1000 AS max_linked
), distinct_edges AS (
  SELECT DISTINCT
    l.pair_no AS pair_no,
    l.a AS a,
    l.b AS b
  FROM (
    SELECT
      0 AS pair_no,
      pairs.`anonymous_id` AS a,
      pairs.`user_id` AS b
    FROM identity.stitcher__pairs AS pairs
    WHERE
      NOT pairs.`anonymous_id` IS NULL AND NOT pairs.`user_id` IS NULL
  ) AS l
), edges AS (
  SELECT
    e.pair_no AS pair_no,
    e.a AS a,
    e.b AS b
  FROM distinct_edges AS e
  JOIN type_pairs AS t
    ON t.pair_no = e.pair_no /* Anti-joins with the junk identifiers only (a few rows), after the DISTINCT: half the */ /* probes of joining every pairs row. */
  LEFT JOIN identifiers_junk AS ja
    ON ja.identifier_type = t.a_type AND ja.identifier = e.a
  LEFT JOIN identifiers_junk AS jb
    ON jb.identifier_type = t.b_type AND jb.identifier = e.b
  WHERE
    ja.identifier IS NULL AND jb.identifier IS NULL
), ends /* Each end of each edge set: its degree, and the first and last identifier on the other end */ /* (for a partner shared by two or more owners, the one it leads to). The two ends (here and in */ /* leads) are spelled out as mirror halves: one UNION ALL of both orientations first, read by */ /* both, held every edge twice and took 0.75-0.92 s at 10M events against 0.62-0.75 s. */ AS (
  SELECT
    edges.pair_no AS pair_no,
    'a' AS side,
    edges.a AS identifier,
    COUNT(*) AS degree,
    MIN(edges.b) AS first_other,
    MAX(edges.b) AS last_other
  FROM edges AS edges
  GROUP BY
    edges.pair_no,
    edges.a
  UNION ALL
  SELECT
    edges.pair_no AS pair_no,
    'b' AS side,
    edges.b AS identifier,
    COUNT(*) AS degree,
    MIN(edges.a) AS first_other,
    MAX(edges.a) AS last_other
  FROM edges AS edges
  GROUP BY
    edges.pair_no,
    edges.b
), shared_partners /* Only partners with two or more owners add contention: a few percent of them. */ AS (
  SELECT
    ends.pair_no AS pair_no,
    ends.side AS side,
    ends.identifier AS partner,
    ends.first_other AS first_other,
    ends.last_other AS last_other
  FROM ends AS ends
  WHERE
    ends.degree > 1
), leads AS (
  SELECT
    r.rule_no AS rule_no,
    e.a AS identifier,
    CASE WHEN p.first_other <> e.a THEN p.first_other ELSE p.last_other END AS other
  FROM hub_rules AS r
  JOIN edges AS e
    ON e.pair_no = r.pair_no
  JOIN shared_partners AS p
    ON p.pair_no = e.pair_no AND p.side = 'b' AND p.partner = e.b
  WHERE
    r.side = 'a'
  UNION ALL
  SELECT
    r.rule_no AS rule_no,
    e.b AS identifier,
    CASE WHEN p.first_other <> e.b THEN p.first_other ELSE p.last_other END AS other
  FROM hub_rules AS r
  JOIN edges AS e
    ON e.pair_no = r.pair_no
  JOIN shared_partners AS p
    ON p.pair_no = e.pair_no AND p.side = 'a' AND p.partner = e.a
  WHERE
    r.side = 'b'
), contentions AS (
  SELECT
    leads.rule_no AS rule_no,
    leads.identifier AS identifier,
    COUNT(DISTINCT leads.other) AS contention
  FROM leads AS leads
  GROUP BY
    leads.rule_no,
    leads.identifier
), scored AS (
  SELECT
    r.rule_no AS rule_no,
    x.identifier AS identifier,
    x.degree AS degree,
    COALESCE(c.contention, 0) AS contention
  FROM hub_rules AS r
  JOIN ends AS x
    ON x.pair_no = r.pair_no AND x.side = r.side
  LEFT JOIN contentions AS c
    ON c.rule_no = r.rule_no AND c.identifier = x.identifier
), histogram /* The percentile from a histogram of degrees (a few hundred rows), not a sort of every */ /* identifier; integer arithmetic, so every engine picks the same degree. Only identifiers that */ /* tie no one together (contention 0 or 1) say what is typical: on small data a hub would */ /* otherwise be its own 99th percentile. */ AS (
  SELECT
    scored.rule_no AS rule_no,
    scored.degree AS degree,
    COUNT(*) AS identifiers
  FROM scored AS scored
  WHERE
    scored.contention < 2
  GROUP BY
    scored.rule_no,
    scored.degree
), cumulative AS (
  SELECT
    histogram.rule_no AS rule_no,
    histogram.degree AS degree,
    SUM(histogram.identifiers) OVER (
      PARTITION BY histogram.rule_no
      ORDER BY histogram.degree IS NULL ASC, histogram.degree ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS at_most,
    SUM(histogram.identifiers) OVER (PARTITION BY histogram.rule_no) AS total
  FROM histogram AS histogram
), typical AS (
  SELECT
    cumulative.rule_no AS rule_no,
    MIN(cumulative.degree) AS typical_degree
  FROM cumulative AS cumulative
  WHERE
    100 * cumulative.at_most >= 99 * cumulative.total
  GROUP BY
    cumulative.rule_no
), judged AS (
  SELECT
    r.identifier_type AS identifier_type,
    s.identifier AS identifier,
    r.linked_type AS linked_type,
    s.degree AS degree,
    s.contention AS contention,
    COALESCE(t.typical_degree, 0) AS typical_degree,
    r.max_linked AS max_linked
  FROM scored AS s
  JOIN hub_rules AS r
    ON r.rule_no = s.rule_no
  LEFT JOIN typical AS t
    ON t.rule_no = s.rule_no
)
SELECT
  judged.identifier_type AS identifier_type,
  judged.identifier AS identifier,
  judged.linked_type AS linked_type,
  judged.degree AS degree,
  judged.contention AS contention,
  judged.typical_degree AS typical_degree,
  CASE
    WHEN judged.degree > judged.max_linked
    THEN 'max_linked'
    WHEN judged.contention >= 4
    THEN 'contention'
    ELSE 'outlier'
  END AS hub_rule
FROM judged AS judged
WHERE
  judged.degree > judged.max_linked
  OR judged.contention >= 4
  OR /* The bar, multiplied out so that integers compare exactly where they can: */ /* degree > outlier_factor * greatest(typical_degree, 3) */ /*          * (min_contention - contention) / (min_contention - 2) */ (
    judged.contention >= 2
    AND judged.degree * (
      4 - 2
    ) > 2.0 * (
      CASE WHEN judged.typical_degree > 3 THEN judged.typical_degree ELSE 3 END
    ) * (
      4 - judged.contention
    )
  );

DROP TABLE IF EXISTS identity.stitcher__identifiers_quarantined;

CREATE TABLE identity.stitcher__identifiers_quarantined AS
WITH hub AS (
  SELECT
    hub_degrees.identifier_type AS identifier_type,
    hub_degrees.identifier AS identifier,
    ARRAY_AGG(
      STRUCT(
        hub_degrees.degree AS degree,
        hub_degrees.linked_type AS linked_type,
        hub_degrees.contention AS contention,
        hub_degrees.typical_degree AS typical_degree,
        hub_degrees.hub_rule AS hub_rule
      ) IGNORE NULLS ORDER BY hub_degrees.degree IS NULL DESC, hub_degrees.degree DESC, hub_degrees.linked_type IS NULL DESC, hub_degrees.linked_type DESC, hub_degrees.contention IS NULL DESC, hub_degrees.contention DESC, hub_degrees.typical_degree IS NULL DESC, hub_degrees.typical_degree DESC, hub_degrees.hub_rule IS NULL DESC, hub_degrees.hub_rule DESC
      LIMIT 1
    )[SAFE_OFFSET(0)] AS worst
  FROM identity.stitcher__hub_degrees AS hub_degrees
  GROUP BY
    hub_degrees.identifier_type,
    hub_degrees.identifier
)
SELECT
  i.identifier_type AS identifier_type,
  i.identifier AS identifier,
  i.first_seen AS first_seen,
  i.last_seen AS last_seen,
  i.event_count AS event_count,
  i.attributed_event_count AS attributed_event_count,
  i.attributed_first_ts AS attributed_first_ts,
  i.attributed_last_ts AS attributed_last_ts,
  CASE
    WHEN NOT i.quarantine_reason IS NULL
    THEN i.quarantine_reason
    WHEN NOT h.identifier IS NULL
    THEN 'hub'
  END AS quarantine_reason,
  h.worst.linked_type AS hub_linked_type,
  h.worst.degree AS hub_degree,
  h.worst.contention AS hub_contention,
  h.worst.typical_degree AS hub_typical_degree,
  h.worst.hub_rule AS hub_rule
FROM identity.stitcher__identifiers AS i
LEFT JOIN hub AS h
  ON h.identifier_type = i.identifier_type AND h.identifier = i.identifier;

DROP TABLE IF EXISTS identity.stitcher__identifiers;

DROP TABLE IF EXISTS identity.stitcher__hub_degrees;

DROP TABLE IF EXISTS identity.stitcher__identifier_totals;

CREATE TABLE identity.stitcher__identifier_totals AS
SELECT
  identifiers_quarantined.identifier_type AS identifier_type,
  NOT identifiers_quarantined.quarantine_reason IS NULL AS quarantined,
  COUNT(*) AS identifiers
FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
GROUP BY
  identifiers_quarantined.identifier_type,
  NOT identifiers_quarantined.quarantine_reason IS NULL;

DROP TABLE IF EXISTS identity.stitcher__quarantine;

CREATE TABLE identity.stitcher__quarantine AS
SELECT
  identifiers_quarantined.identifier_type AS identifier_type,
  identifiers_quarantined.identifier AS identifier,
  identifiers_quarantined.quarantine_reason AS reason,
  identifiers_quarantined.event_count AS event_count,
  identifiers_quarantined.first_seen AS first_seen_at,
  identifiers_quarantined.last_seen AS last_seen_at,
  identifiers_quarantined.hub_linked_type AS hub_linked_type,
  identifiers_quarantined.hub_degree AS hub_degree,
  identifiers_quarantined.hub_contention AS hub_contention,
  identifiers_quarantined.hub_typical_degree AS hub_typical_degree,
  identifiers_quarantined.hub_rule AS hub_rule
FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
WHERE
  NOT identifiers_quarantined.quarantine_reason IS NULL;

DROP TABLE IF EXISTS identity.stitcher__reattributed_events;

CREATE TABLE identity.stitcher__reattributed_events AS
SELECT
  CASE
    WHEN NOT pr.user_id IS NULL AND qu.identifier IS NULL
    THEN 'user_id'
    WHEN NOT pr.anonymous_id IS NULL AND qa.identifier IS NULL
    THEN 'anonymous_id'
    WHEN NOT pr.previous_id IS NULL AND qp.identifier IS NULL
    THEN 'user_id'
  END AS identifier_type,
  CASE
    WHEN NOT pr.user_id IS NULL AND qu.identifier IS NULL
    THEN pr.user_id
    WHEN NOT pr.anonymous_id IS NULL AND qa.identifier IS NULL
    THEN pr.anonymous_id
    WHEN NOT pr.previous_id IS NULL AND qp.identifier IS NULL
    THEN pr.previous_id
  END AS identifier,
  CAST(SUM(pr.event_count) AS INT64) AS event_count,
  MIN(pr.first_ts) AS first_ts,
  MAX(pr.last_ts) AS last_ts
FROM identity.stitcher__pairs AS pr
LEFT JOIN identity.stitcher__quarantine AS qu
  ON qu.identifier_type = 'user_id' AND qu.identifier = pr.user_id
LEFT JOIN identity.stitcher__quarantine AS qa
  ON qa.identifier_type = 'anonymous_id' AND qa.identifier = pr.anonymous_id
LEFT JOIN identity.stitcher__quarantine AS qp
  ON qp.identifier_type = 'user_id' AND qp.identifier = pr.previous_id
WHERE
  (
    NOT pr.user_id IS NULL AND NOT qu.identifier IS NULL
  )
  OR (
    pr.user_id IS NULL AND NOT pr.anonymous_id IS NULL AND NOT qa.identifier IS NULL
  )
  OR (
    pr.user_id IS NULL
    AND pr.anonymous_id IS NULL
    AND (
      pr.previous_id IS NULL OR NOT qp.identifier IS NULL
    )
  )
GROUP BY
  CASE
    WHEN NOT pr.user_id IS NULL AND qu.identifier IS NULL
    THEN 'user_id'
    WHEN NOT pr.anonymous_id IS NULL AND qa.identifier IS NULL
    THEN 'anonymous_id'
    WHEN NOT pr.previous_id IS NULL AND qp.identifier IS NULL
    THEN 'user_id'
  END,
  CASE
    WHEN NOT pr.user_id IS NULL AND qu.identifier IS NULL
    THEN pr.user_id
    WHEN NOT pr.anonymous_id IS NULL AND qa.identifier IS NULL
    THEN pr.anonymous_id
    WHEN NOT pr.previous_id IS NULL AND qp.identifier IS NULL
    THEN pr.previous_id
  END;

DROP TABLE IF EXISTS identity.stitcher__candidate_edges;

CREATE TABLE identity.stitcher__candidate_edges AS
WITH links AS (
  SELECT
    'anonymous_id' AS from_type,
    pairs.anonymous_id AS from_id,
    'user_id' AS to_type,
    pairs.user_id AS to_id,
    'same_event' AS rule,
    pairs.source_table AS source_table,
    pairs.event_count AS event_count,
    pairs.first_ts AS first_ts,
    pairs.last_ts AS last_ts,
    pairs.first_evidence AS first_evidence
  FROM identity.stitcher__pairs AS pairs
  WHERE
    NOT pairs.anonymous_id IS NULL AND NOT pairs.user_id IS NULL
  UNION ALL
  SELECT
    'user_id' AS user_id,
    pairs.previous_id AS previous_id,
    'user_id' AS user_id,
    pairs.user_id AS user_id,
    'alias' AS alias,
    pairs.source_table AS source_table,
    pairs.event_count AS event_count,
    pairs.first_ts AS first_ts,
    pairs.last_ts AS last_ts,
    pairs.first_evidence AS first_evidence
  FROM identity.stitcher__pairs AS pairs
  WHERE
    NOT pairs.previous_id IS NULL
    AND NOT pairs.user_id IS NULL
    AND pairs.previous_id <> pairs.user_id
), grouped AS (
  SELECT
    links.from_type AS from_type,
    links.from_id AS from_id,
    links.to_type AS to_type,
    links.to_id AS to_id,
    links.rule AS rule,
    CAST(SUM(links.event_count) AS INT64) AS event_count,
    MIN(links.first_ts) AS first_ts,
    MAX(links.last_ts) AS last_ts,
    ARRAY_AGG(
      STRUCT(
        links.first_evidence.ts IS NULL AS ts_unknown,
        links.first_evidence.ts AS ts,
        links.first_evidence.message_id IS NULL AS message_id_unknown,
        links.first_evidence.message_id AS message_id,
        links.source_table AS source_table
      ) IGNORE NULLS ORDER BY links.first_evidence.ts IS NULL ASC, links.first_evidence.ts ASC, links.first_evidence.message_id IS NULL ASC, links.first_evidence.message_id ASC, links.source_table IS NULL ASC, links.source_table ASC
      LIMIT 1
    )[SAFE_OFFSET(0)] AS evidence /* NULLs last through explicit flags (see 20_pairs.sql: engines differ otherwise). */
  FROM links AS links
  GROUP BY
    links.from_type,
    links.from_id,
    links.to_type,
    links.to_id,
    links.rule
)
SELECT
  grouped.from_type AS from_type,
  grouped.from_id AS from_id,
  grouped.to_type AS to_type,
  grouped.to_id AS to_id,
  grouped.rule AS rule,
  grouped.event_count AS event_count,
  grouped.first_ts AS first_ts,
  grouped.last_ts AS last_ts,
  grouped.evidence.ts AS evidence_ts,
  grouped.evidence.message_id AS evidence_message_id,
  grouped.evidence.source_table AS evidence_table
FROM grouped AS grouped;

DROP TABLE IF EXISTS identity.stitcher__pairs;

DROP TABLE IF EXISTS identity.stitcher__identifiers_checked;

CREATE TABLE identity.stitcher__identifiers_checked AS
WITH keyed AS (
  SELECT
    identifiers_quarantined.identifier_type AS identifier_type,
    identifiers_quarantined.identifier AS identifier,
    identifiers_quarantined.first_seen AS first_seen,
    identifiers_quarantined.last_seen AS last_seen,
    identifiers_quarantined.event_count AS event_count,
    identifiers_quarantined.attributed_event_count AS attributed_event_count,
    identifiers_quarantined.attributed_first_ts AS attributed_first_ts,
    identifiers_quarantined.attributed_last_ts AS attributed_last_ts,
    identifiers_quarantined.quarantine_reason AS quarantine_reason,
    identifiers_quarantined.hub_linked_type AS hub_linked_type,
    identifiers_quarantined.hub_degree AS hub_degree,
    identifiers_quarantined.hub_contention AS hub_contention,
    identifiers_quarantined.hub_typical_degree AS hub_typical_degree,
    identifiers_quarantined.hub_rule AS hub_rule,
    identifiers_quarantined.identifier_type <> 'user_id' AS bucket_later_type,
    identifiers_quarantined.first_seen IS NULL AS bucket_unknown_time,
    COALESCE(
      DATETIME_TRUNC(identifiers_quarantined.first_seen, MINUTE),
      CAST('1970-01-01 00:00:00' AS DATETIME)
    ) AS bucket_minute,
    CASE
      WHEN identifiers_quarantined.first_seen IS NULL
      THEN SUBSTRING(identifiers_quarantined.identifier, 1, 4)
      ELSE ''
    END AS bucket_prefix
  FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
), bucket_sizes AS (
  SELECT
    keyed.bucket_later_type AS bucket_later_type,
    keyed.bucket_unknown_time AS bucket_unknown_time,
    keyed.bucket_minute AS bucket_minute,
    keyed.bucket_prefix AS bucket_prefix,
    COUNT(*) AS identifiers
  FROM keyed AS keyed
  WHERE
    keyed.quarantine_reason IS NULL
  GROUP BY
    keyed.bucket_later_type,
    keyed.bucket_unknown_time,
    keyed.bucket_minute,
    keyed.bucket_prefix
), bucket_offsets /* offset = usable identifiers in every earlier bucket (the running sum, less this bucket). */ AS (
  SELECT
    bucket_sizes.bucket_later_type AS bucket_later_type,
    bucket_sizes.bucket_unknown_time AS bucket_unknown_time,
    bucket_sizes.bucket_minute AS bucket_minute,
    bucket_sizes.bucket_prefix AS bucket_prefix,
    CAST(SUM(bucket_sizes.identifiers) OVER (
      ORDER BY bucket_sizes.bucket_later_type IS NULL ASC, bucket_sizes.bucket_later_type ASC, bucket_sizes.bucket_unknown_time IS NULL ASC, bucket_sizes.bucket_unknown_time ASC, bucket_sizes.bucket_minute IS NULL ASC, bucket_sizes.bucket_minute ASC, bucket_sizes.bucket_prefix IS NULL ASC, bucket_sizes.bucket_prefix ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) - bucket_sizes.identifiers AS INT64) AS bucket_offset
  FROM bucket_sizes AS bucket_sizes
), ranked /* rank within the bucket, 0-based; quarantined identifiers are left out (their node_id is NULL). */ AS (
  SELECT
    keyed.identifier_type AS identifier_type,
    keyed.identifier AS identifier,
    keyed.first_seen AS first_seen,
    keyed.last_seen AS last_seen,
    keyed.event_count AS event_count,
    keyed.attributed_event_count AS attributed_event_count,
    keyed.attributed_first_ts AS attributed_first_ts,
    keyed.attributed_last_ts AS attributed_last_ts,
    keyed.quarantine_reason AS quarantine_reason,
    keyed.hub_linked_type AS hub_linked_type,
    keyed.hub_degree AS hub_degree,
    keyed.hub_contention AS hub_contention,
    keyed.hub_typical_degree AS hub_typical_degree,
    keyed.hub_rule AS hub_rule,
    keyed.bucket_later_type AS bucket_later_type,
    keyed.bucket_unknown_time AS bucket_unknown_time,
    keyed.bucket_minute AS bucket_minute,
    keyed.bucket_prefix AS bucket_prefix,
    CAST(ROW_NUMBER() OVER (
      PARTITION BY keyed.bucket_later_type, keyed.bucket_unknown_time, keyed.bucket_minute, keyed.bucket_prefix
      ORDER BY keyed.first_seen IS NULL ASC, keyed.first_seen ASC, keyed.identifier IS NULL ASC, keyed.identifier ASC, keyed.identifier_type IS NULL ASC, keyed.identifier_type ASC
    ) - 1 AS INT64) AS rank_in_bucket
  FROM keyed AS keyed
  WHERE
    keyed.quarantine_reason IS NULL
)
SELECT
  r.identifier_type AS identifier_type,
  r.identifier AS identifier,
  r.first_seen AS first_seen,
  r.last_seen AS last_seen,
  r.event_count AS event_count,
  r.attributed_event_count AS attributed_event_count,
  r.attributed_first_ts AS attributed_first_ts,
  r.attributed_last_ts AS attributed_last_ts,
  r.quarantine_reason AS quarantine_reason,
  r.hub_linked_type AS hub_linked_type,
  r.hub_degree AS hub_degree,
  r.hub_contention AS hub_contention,
  r.hub_typical_degree AS hub_typical_degree,
  r.hub_rule AS hub_rule,
  CAST(o.bucket_offset + r.rank_in_bucket AS INT64) AS node_id
FROM ranked AS r
JOIN bucket_offsets AS o
  ON o.bucket_later_type = r.bucket_later_type
  AND o.bucket_unknown_time = r.bucket_unknown_time
  AND o.bucket_minute = r.bucket_minute
  AND o.bucket_prefix = r.bucket_prefix
UNION ALL
SELECT
  identifiers_quarantined.identifier_type AS identifier_type,
  identifiers_quarantined.identifier AS identifier,
  identifiers_quarantined.first_seen AS first_seen,
  identifiers_quarantined.last_seen AS last_seen,
  identifiers_quarantined.event_count AS event_count,
  identifiers_quarantined.attributed_event_count AS attributed_event_count,
  identifiers_quarantined.attributed_first_ts AS attributed_first_ts,
  identifiers_quarantined.attributed_last_ts AS attributed_last_ts,
  identifiers_quarantined.quarantine_reason AS quarantine_reason,
  identifiers_quarantined.hub_linked_type AS hub_linked_type,
  identifiers_quarantined.hub_degree AS hub_degree,
  identifiers_quarantined.hub_contention AS hub_contention,
  identifiers_quarantined.hub_typical_degree AS hub_typical_degree,
  identifiers_quarantined.hub_rule AS hub_rule,
  CAST(NULL AS INT64) AS node_id
FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
WHERE
  NOT identifiers_quarantined.quarantine_reason IS NULL;

DROP TABLE IF EXISTS identity.stitcher__identifiers_quarantined;

DROP TABLE IF EXISTS identity.stitcher__checked_edges;

CREATE TABLE identity.stitcher__checked_edges AS
SELECT
  e.from_type AS from_type,
  e.from_id AS from_id,
  e.to_type AS to_type,
  e.to_id AS to_id,
  e.rule AS rule,
  e.event_count AS event_count,
  e.first_ts AS first_ts,
  e.last_ts AS last_ts,
  e.evidence_ts AS evidence_ts,
  e.evidence_message_id AS evidence_message_id,
  e.evidence_table AS evidence_table,
  CASE
    WHEN f.quarantine_reason = 'hub'
    THEN 'hub_' || e.from_type
    WHEN NOT f.quarantine_reason IS NULL
    THEN 'junk_' || e.from_type
    WHEN t.quarantine_reason = 'hub'
    THEN 'hub_' || e.to_type
    WHEN NOT t.quarantine_reason IS NULL
    THEN 'junk_' || e.to_type
  END AS junk_refusal,
  f.node_id AS from_node,
  t.node_id AS to_node
FROM identity.stitcher__candidate_edges AS e
JOIN identity.stitcher__identifiers_checked AS f
  ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN identity.stitcher__identifiers_checked AS t
  ON t.identifier_type = e.to_type AND t.identifier = e.to_id;

DROP TABLE IF EXISTS identity.stitcher__candidate_edges;

DROP TABLE IF EXISTS identity.stitcher__classified_edges;

CREATE TABLE identity.stitcher__classified_edges AS
WITH ranked AS (
  SELECT
    checked_edges.from_type AS from_type,
    checked_edges.from_id AS from_id,
    checked_edges.to_type AS to_type,
    checked_edges.to_id AS to_id,
    checked_edges.rule AS rule,
    checked_edges.event_count AS event_count,
    checked_edges.first_ts AS first_ts,
    checked_edges.last_ts AS last_ts,
    checked_edges.evidence_ts AS evidence_ts,
    checked_edges.evidence_message_id AS evidence_message_id,
    checked_edges.evidence_table AS evidence_table,
    checked_edges.junk_refusal AS junk_refusal,
    checked_edges.from_node AS from_node,
    checked_edges.to_node AS to_node,
    ROW_NUMBER() OVER (
      PARTITION BY checked_edges.from_node, checked_edges.rule, checked_edges.to_type, checked_edges.junk_refusal IS NULL
      ORDER BY checked_edges.evidence_ts IS NULL ASC, checked_edges.evidence_ts ASC, checked_edges.evidence_message_id IS NULL ASC, checked_edges.evidence_message_id ASC, checked_edges.to_id IS NULL ASC, checked_edges.to_id ASC
    ) AS user_rank
  FROM identity.stitcher__checked_edges AS checked_edges
), decided AS (
  SELECT
    ranked.from_type AS from_type,
    ranked.from_id AS from_id,
    ranked.to_type AS to_type,
    ranked.to_id AS to_id,
    ranked.rule AS rule,
    ranked.event_count AS event_count,
    ranked.first_ts AS first_ts,
    ranked.last_ts AS last_ts,
    ranked.evidence_ts AS evidence_ts,
    ranked.evidence_message_id AS evidence_message_id,
    ranked.evidence_table AS evidence_table,
    ranked.junk_refusal AS junk_refusal,
    ranked.from_node AS from_node,
    ranked.to_node AS to_node,
    ranked.user_rank AS user_rank,
    CASE
      WHEN NOT ranked.junk_refusal IS NULL
      THEN ranked.junk_refusal
      WHEN ranked.rule = 'same_event' AND ranked.to_type = 'user_id' AND ranked.user_rank > 1
      THEN ranked.from_type || '_has_earlier_user_id'
    END AS refusal
  FROM ranked AS ranked
)
SELECT
  decided.from_type AS from_type,
  decided.from_id AS from_id,
  decided.to_type AS to_type,
  decided.to_id AS to_id,
  decided.rule AS rule,
  decided.event_count AS event_count,
  decided.first_ts AS first_ts,
  decided.last_ts AS last_ts,
  decided.evidence_ts AS evidence_ts,
  decided.evidence_message_id AS evidence_message_id,
  decided.evidence_table AS evidence_table,
  decided.from_node AS from_node,
  decided.to_node AS to_node,
  decided.refusal IS NULL AS kept,
  COALESCE(decided.refusal, decided.rule) AS reason
FROM decided AS decided;

DROP TABLE IF EXISTS identity.stitcher__checked_edges;

DROP TABLE IF EXISTS identity.stitcher__policy_base;

DROP TABLE IF EXISTS identity.stitcher__nodes;

CREATE TABLE identity.stitcher__nodes AS
SELECT
  identifiers_checked.node_id AS node_id,
  identifiers_checked.identifier_type AS identifier_type,
  identifiers_checked.identifier AS identifier,
  identifiers_checked.first_seen AS first_seen,
  identifiers_checked.last_seen AS last_seen,
  identifiers_checked.event_count AS event_count,
  identifiers_checked.attributed_event_count AS attributed_event_count,
  identifiers_checked.attributed_first_ts AS attributed_first_ts,
  identifiers_checked.attributed_last_ts AS attributed_last_ts
FROM identity.stitcher__identifiers_checked AS identifiers_checked
WHERE
  NOT identifiers_checked.node_id IS NULL;

DROP TABLE IF EXISTS identity.stitcher__identifiers_checked;

DROP TABLE IF EXISTS identity.stitcher__node_edges;

CREATE TABLE identity.stitcher__node_edges AS
SELECT
  classified_edges.from_node AS src,
  classified_edges.to_node AS dst
FROM identity.stitcher__classified_edges AS classified_edges
WHERE
  classified_edges.kept;

DROP TABLE IF EXISTS identity.stitcher__cc_edges;

CREATE TABLE identity.stitcher__cc_edges AS
SELECT
  node_edges.src AS src,
  node_edges.dst AS dst
FROM identity.stitcher__node_edges AS node_edges;

-- stitcher:loop max_rounds=100
DROP TABLE IF EXISTS identity.stitcher__cc_large;

CREATE TABLE identity.stitcher__cc_large AS
WITH neighbours AS (
  SELECT
    cc_edges.src AS u,
    cc_edges.dst AS v
  FROM identity.stitcher__cc_edges AS cc_edges
  WHERE
    cc_edges.src <> cc_edges.dst
  UNION ALL
  SELECT
    cc_edges.dst AS u,
    cc_edges.src AS v
  FROM identity.stitcher__cc_edges AS cc_edges
  WHERE
    cc_edges.src <> cc_edges.dst
), least_around AS (
  SELECT
    neighbours.u AS u,
    LEAST(neighbours.u, MIN(neighbours.v)) AS m
  FROM neighbours AS neighbours
  GROUP BY
    neighbours.u
)
SELECT DISTINCT
  n.v AS src,
  l.m AS dst
FROM neighbours AS n
JOIN least_around AS l
  ON l.u = n.u
WHERE
  n.v > n.u;

DROP TABLE IF EXISTS identity.stitcher__cc_edges;

CREATE TABLE identity.stitcher__cc_edges AS
WITH down AS (
  SELECT DISTINCT
    GREATEST(cc_large.src, cc_large.dst) AS u,
    LEAST(cc_large.src, cc_large.dst) AS v
  FROM identity.stitcher__cc_large AS cc_large
  WHERE
    cc_large.src <> cc_large.dst
), least_below AS (
  SELECT
    down.u AS u,
    MIN(down.v) AS m
  FROM down AS down
  GROUP BY
    down.u
)
SELECT DISTINCT
  relinked.src AS src,
  relinked.dst AS dst
FROM (
  SELECT
    d.v AS src,
    l.m AS dst
  FROM down AS d
  JOIN least_below AS l
    ON l.u = d.u
  WHERE
    d.v <> l.m
  UNION ALL
  SELECT
    least_below.u AS src,
    least_below.m AS dst
  FROM least_below AS least_below
) AS relinked;

-- stitcher:until-zero
/* Step: has the components loop converged? Checked after every large-star/small-star round. */
/* Inputs: "cc_edges"(src, dst), distinct, src > dst (the output of cc_small_star.sql). */
/* Output: one row (unsettled, edges): unsettled = nodes with two parents plus parents that */
/*         have a parent themselves; edges = the edge count, for the log. */
/* Invariants: unsettled = 0 <=> the edges form a star forest: every node points to one node */
/*   that points nowhere. As src > dst and the rounds never change a component, each star is */
/*   a whole component and its centre is the component's least node id. */
WITH parents AS (
  SELECT
    cc_edges.src AS src,
    COUNT(*) AS n
  FROM identity.stitcher__cc_edges AS cc_edges
  GROUP BY
    cc_edges.src
), unsettled AS (
  SELECT
    parents.src AS src
  FROM parents AS parents
  WHERE
    parents.n > 1
  UNION ALL
  SELECT DISTINCT
    e.dst AS dst
  FROM identity.stitcher__cc_edges AS e
  JOIN parents AS p
    ON p.src = e.dst
)
SELECT
  (
    SELECT
      COUNT(*) AS _col_0
    FROM unsettled AS unsettled
  ) AS unsettled,
  (
    SELECT
      COUNT(*) AS _col_0
    FROM identity.stitcher__cc_edges AS cc_edges
  ) AS edges;
-- stitcher:end-loop

DROP TABLE IF EXISTS identity.stitcher__node_components;

CREATE TABLE identity.stitcher__node_components AS
SELECT
  n.node_id AS node_id,
  COALESCE(e.dst, n.node_id) AS component
FROM identity.stitcher__nodes AS n
LEFT JOIN identity.stitcher__cc_edges AS e
  ON e.src = n.node_id;

DROP TABLE IF EXISTS identity.stitcher__cc_large;

DROP TABLE IF EXISTS identity.stitcher__cc_edges;

DROP TABLE IF EXISTS identity.stitcher__node_edges;

DROP TABLE IF EXISTS identity.stitcher__persons;

CREATE TABLE identity.stitcher__persons AS
WITH sizes AS (
  SELECT
    node_components.component AS component,
    COUNT(*) AS identifier_count
  FROM identity.stitcher__node_components AS node_components
  GROUP BY
    node_components.component
)
SELECT
  s.component AS component,
  TO_HEX(MD5(n.identifier_type || ':' || n.identifier)) AS person_id,
  n.identifier_type AS anchor_type,
  n.identifier AS anchor_id,
  s.identifier_count AS identifier_count
FROM sizes AS s
JOIN identity.stitcher__nodes AS n
  ON n.node_id = s.component;

DROP TABLE IF EXISTS identity.stitcher__id_map;

CREATE TABLE identity.stitcher__id_map AS
SELECT
  n.identifier_type AS identifier_type,
  n.identifier AS identifier,
  p.person_id AS person_id,
  n.first_seen AS first_seen_at,
  n.last_seen AS last_seen_at,
  n.event_count AS event_count,
  n.node_id AS node_id,
  c.component AS component
FROM identity.stitcher__nodes AS n
JOIN identity.stitcher__node_components AS c
  ON c.node_id = n.node_id
JOIN identity.stitcher__persons AS p
  ON p.component = c.component;

DROP TABLE IF EXISTS identity.stitcher__person_activity;

CREATE TABLE identity.stitcher__person_activity AS
WITH attributed AS (
  SELECT
    c.component AS component,
    n.attributed_event_count AS event_count,
    n.attributed_first_ts AS first_ts,
    n.attributed_last_ts AS last_ts
  FROM identity.stitcher__nodes AS n
  JOIN identity.stitcher__node_components AS c
    ON c.node_id = n.node_id
  WHERE
    n.attributed_event_count > 0
  UNION ALL
  SELECT
    m.component AS component,
    r.event_count AS event_count,
    r.first_ts AS first_ts,
    r.last_ts AS last_ts
  FROM identity.stitcher__reattributed_events AS r
  LEFT JOIN identity.stitcher__id_map AS m
    ON m.identifier_type = r.identifier_type AND m.identifier = r.identifier
)
SELECT
  attributed.component AS component,
  CAST(SUM(attributed.event_count) AS INT64) AS event_count,
  MIN(attributed.first_ts) AS first_seen_at,
  MAX(attributed.last_ts) AS last_seen_at
FROM attributed AS attributed
GROUP BY
  attributed.component;

DROP TABLE IF EXISTS identity.stitcher__reattributed_events;

DROP TABLE IF EXISTS identity.stitcher__nodes;

DROP TABLE IF EXISTS identity.stitcher__node_components;

DROP TABLE IF EXISTS identity.stitcher__edges;

CREATE TABLE identity.stitcher__edges AS
SELECT
  f.person_id AS person_id,
  e.from_type AS from_type,
  e.from_id AS from_id,
  e.to_type AS to_type,
  e.to_id AS to_id,
  e.rule AS rule,
  e.event_count AS event_count,
  e.first_ts AS first_seen_at,
  e.last_ts AS last_seen_at,
  e.evidence_ts AS evidence_at,
  e.evidence_message_id AS evidence_message_id,
  e.evidence_table AS evidence_table
FROM identity.stitcher__classified_edges AS e
JOIN identity.stitcher__id_map AS f
  ON f.node_id = e.from_node
WHERE
  e.kept;

DROP TABLE IF EXISTS identity.stitcher__rejected_edges;

CREATE TABLE identity.stitcher__rejected_edges AS
SELECT
  e.from_type AS from_type,
  e.from_id AS from_id,
  e.to_type AS to_type,
  e.to_id AS to_id,
  e.rule AS rule,
  e.reason AS reason,
  f.person_id AS from_person_id,
  t.person_id AS to_person_id,
  e.event_count AS event_count,
  e.first_ts AS first_seen_at,
  e.last_ts AS last_seen_at,
  e.evidence_ts AS evidence_at,
  e.evidence_message_id AS evidence_message_id,
  e.evidence_table AS evidence_table
FROM identity.stitcher__classified_edges AS e
LEFT JOIN identity.stitcher__id_map AS f
  ON f.node_id = e.from_node
LEFT JOIN identity.stitcher__id_map AS t
  ON t.node_id = e.to_node
WHERE
  NOT e.kept;

DROP TABLE IF EXISTS identity.stitcher__edge_totals;

CREATE TABLE identity.stitcher__edge_totals AS
SELECT
  classified_edges.kept AS kept,
  classified_edges.reason AS reason,
  COUNT(*) AS edges
FROM identity.stitcher__classified_edges AS classified_edges
GROUP BY
  classified_edges.kept,
  classified_edges.reason;

DROP TABLE IF EXISTS identity.stitcher__classified_edges;

DROP TABLE IF EXISTS identity.stitcher__person_traits;

CREATE TABLE identity.stitcher__person_traits AS
WITH attributed AS (
  SELECT
    t.anonymous_id AS anonymous_id,
    t.user_id AS user_id,
    t.ts AS ts,
    t.__trait_0 AS __trait_0,
    CASE
      WHEN NOT t.user_id IS NULL AND qu.identifier IS NULL
      THEN 'user_id'
      WHEN NOT t.anonymous_id IS NULL AND qa.identifier IS NULL
      THEN 'anonymous_id'
    END AS _attributed_type,
    CASE
      WHEN NOT t.user_id IS NULL AND qu.identifier IS NULL
      THEN t.user_id
      WHEN NOT t.anonymous_id IS NULL AND qa.identifier IS NULL
      THEN t.anonymous_id
    END AS _attributed_id
  FROM identity.stitcher__identify_traits AS t
  LEFT JOIN identity.stitcher__quarantine AS qu
    ON qu.identifier_type = 'user_id' AND qu.identifier = t.user_id
  LEFT JOIN identity.stitcher__quarantine AS qa
    ON qa.identifier_type = 'anonymous_id' AND qa.identifier = t.anonymous_id
)
SELECT
  m.component AS component,
  (
    ARRAY_AGG(
      IF(
        NOT t.`__trait_0` IS NULL,
        STRUCT(COALESCE(t.ts, CAST('0001-01-01 00:00:00' AS DATETIME)) AS ts, t.`__trait_0` AS v),
        NULL
      ) IGNORE NULLS ORDER BY COALESCE(t.ts, CAST('0001-01-01 00:00:00' AS DATETIME)) DESC, t.`__trait_0` IS NULL DESC, t.`__trait_0` DESC
      LIMIT 1
    )[SAFE_OFFSET(0)]
  ).v AS `__trait_0`
FROM attributed AS t
JOIN identity.stitcher__id_map AS m
  ON m.identifier_type = t._attributed_type AND m.identifier = t._attributed_id
GROUP BY
  m.component;

DROP TABLE IF EXISTS identity.stitcher__users;

CREATE TABLE identity.stitcher__users AS
WITH id_lists AS (
  SELECT
    id_map.component AS component,
    ARRAY_AGG(
      IF(id_map.identifier_type = 'user_id', id_map.identifier, NULL) IGNORE NULLS ORDER BY id_map.identifier ASC
    ) AS user_ids,
    ARRAY_AGG(
      IF(id_map.identifier_type = 'anonymous_id', id_map.identifier, NULL) IGNORE NULLS ORDER BY id_map.identifier ASC
    ) AS anonymous_ids
  FROM identity.stitcher__id_map AS id_map
  GROUP BY
    id_map.component
)
SELECT
  p.person_id AS person_id,
  CASE WHEN p.anchor_type = 'user_id' THEN p.anchor_id END AS user_id,
  COALESCE(l.user_ids, ARRAY<STRING>[]) AS user_ids,
  COALESCE(l.anonymous_ids, ARRAY<STRING>[]) AS anonymous_ids,
  p.identifier_count AS identifier_count,
  a.first_seen_at AS first_seen_at,
  a.last_seen_at AS last_seen_at,
  COALESCE(a.event_count, 0) AS event_count,
  t.`__trait_0` AS `plan`
FROM identity.stitcher__persons AS p
JOIN id_lists AS l
  ON l.component = p.component
LEFT JOIN identity.stitcher__person_activity AS a
  ON a.component = p.component
LEFT JOIN identity.stitcher__person_traits AS t
  ON t.component = p.component;

DROP TABLE IF EXISTS identity.stitcher__persons;

DROP TABLE IF EXISTS identity.stitcher__person_traits;

DROP TABLE IF EXISTS identity.stitcher__id_map_with_keys;

CREATE TABLE identity.stitcher__id_map_with_keys AS
SELECT
  id_map.identifier_type AS identifier_type,
  id_map.identifier AS identifier,
  id_map.person_id AS person_id,
  id_map.first_seen_at AS first_seen_at,
  id_map.last_seen_at AS last_seen_at,
  id_map.event_count AS event_count,
  id_map.node_id AS node_id,
  id_map.component AS component
FROM identity.stitcher__id_map AS id_map;

DROP TABLE IF EXISTS identity.stitcher__id_map;

CREATE TABLE identity.stitcher__id_map AS
SELECT
  id_map_with_keys.identifier_type AS identifier_type,
  id_map_with_keys.identifier AS identifier,
  id_map_with_keys.person_id AS person_id,
  id_map_with_keys.first_seen_at AS first_seen_at,
  id_map_with_keys.last_seen_at AS last_seen_at,
  id_map_with_keys.event_count AS event_count
FROM identity.stitcher__id_map_with_keys AS id_map_with_keys;

DROP TABLE IF EXISTS identity.stitcher__id_map_with_keys;

SELECT ERROR(CONCAT('stitcher: table ', t.table_schema, '.', t.table_name, ' exists and was not made by stitcher sql, so the script stops without touching it: rename or drop it yourself, or write the outputs elsewhere with stitcher sql --output-schema or --output-table'))
FROM `identity`.INFORMATION_SCHEMA.TABLES AS t
LEFT JOIN `identity`.INFORMATION_SCHEMA.TABLE_OPTIONS AS o
  ON o.table_name = t.table_name AND o.option_name = 'description'
WHERE t.table_name IN ('id_map', 'users', 'edges', 'rejected_edges', 'quarantine')
  AND COALESCE(o.option_value, '') NOT LIKE '"stitcher sql output%';

DROP TABLE IF EXISTS identity.id_map;

ALTER TABLE identity.stitcher__id_map RENAME TO id_map;

ALTER TABLE identity.id_map SET OPTIONS (description = 'stitcher sql output: id_map (stitcher 0.1.0)');

DROP TABLE IF EXISTS identity.users;

ALTER TABLE identity.stitcher__users RENAME TO users;

ALTER TABLE identity.users SET OPTIONS (description = 'stitcher sql output: users (stitcher 0.1.0)');

DROP TABLE IF EXISTS identity.edges;

ALTER TABLE identity.stitcher__edges RENAME TO edges;

ALTER TABLE identity.edges SET OPTIONS (description = 'stitcher sql output: edges (stitcher 0.1.0)');

DROP TABLE IF EXISTS identity.rejected_edges;

ALTER TABLE identity.stitcher__rejected_edges RENAME TO rejected_edges;

ALTER TABLE identity.rejected_edges SET OPTIONS (description = 'stitcher sql output: rejected_edges (stitcher 0.1.0)');

DROP TABLE IF EXISTS identity.quarantine;

ALTER TABLE identity.stitcher__quarantine RENAME TO quarantine;

ALTER TABLE identity.quarantine SET OPTIONS (description = 'stitcher sql output: quarantine (stitcher 0.1.0)');

DROP TABLE IF EXISTS identity.stitcher__edge_totals;

DROP TABLE IF EXISTS identity.stitcher__person_activity;

DROP TABLE IF EXISTS identity.stitcher__identifier_totals;

DROP TABLE IF EXISTS identity.stitcher__pair_totals;

DROP VIEW IF EXISTS identity.stitcher__events;

DROP VIEW IF EXISTS identity.stitcher__events_aliases;

DROP VIEW IF EXISTS identity.stitcher__raw_aliases_table_ids;

DROP VIEW IF EXISTS identity.stitcher__raw_aliases_table;

DROP VIEW IF EXISTS identity.stitcher__identify_traits;

DROP VIEW IF EXISTS identity.stitcher__events_identifies;

DROP VIEW IF EXISTS identity.stitcher__raw_identifies_table_ids;

DROP VIEW IF EXISTS identity.stitcher__raw_identifies_table;

DROP VIEW IF EXISTS identity.stitcher__events_pages;

DROP VIEW IF EXISTS identity.stitcher__raw_pages_table_ids;

DROP VIEW IF EXISTS identity.stitcher__raw_pages_table;

DROP VIEW IF EXISTS identity.stitcher__events_tracks;

DROP VIEW IF EXISTS identity.stitcher__raw_tracks_table_ids;

DROP VIEW IF EXISTS identity.stitcher__raw_tracks_table;

