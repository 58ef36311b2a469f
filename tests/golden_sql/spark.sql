-- The stitcher 0.1.0 identity pipeline as spark SQL (`stitcher sql`).
-- Inputs: tracks = analytics.tracks, pages = analytics.pages, identifies = analytics.identifies, aliases = analytics.aliases.
-- Outputs: tables id_map, users, edges, rejected_edges, quarantine (and scratch tables) in the current schema; times are read as UTC.
-- Run the statements in order. The block between `stitcher:loop` and `stitcher:end-loop`
-- repeats until the query after `stitcher:until-zero` returns 0 (at most max_rounds times);
-- stitcher.warehouse.run_script(path, connection) does this over a DB-API connection.

CREATE OR REPLACE VIEW `raw_tracks_table` AS
SELECT
  *
FROM `analytics`.`tracks`;

CREATE OR REPLACE VIEW `raw_tracks_table_ids` AS
SELECT
  CASE
    WHEN CAST(`id` AS STRING) LIKE '%.%0' AND CAST(`id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`id` AS STRING), '[.]0+$', '')
    ELSE CAST(`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(`anonymous_id` AS STRING) LIKE '%.%0'
    AND CAST(`anonymous_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  CASE
    WHEN CAST(`user_id` AS STRING) LIKE '%.%0'
    AND CAST(`user_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`user_id` AS STRING)
  END AS `user_id`,
  `timestamp`
FROM `raw_tracks_table`;

CREATE OR REPLACE VIEW `events_tracks` AS
/* Inputs: "raw_tracks_table_ids", one table's files (any column spelling), identifier columns already read */
/*         as text by the loader (load.py, Engine.id_text: 1001.0 is '1001'); the loader fills */
/*         each column expression from the columns it found (quoted names only, never data). */
/* Output: one row per input row: */
/*         (source_table, message_id, anonymous_id, user_id, previous_id, one column per */
/*         configured extra identifier type (normalized as configured), ts) */
/* Invariants: ids are VARCHAR as the loader read them (no trimming, so "abc" and "abc " stay */
/*             two ids); */
/*             ts is a UTC TIMESTAMP, NULL when the input time is missing or unparseable. */
SELECT
  'tracks' AS source_table,
  CAST(`id` AS STRING) AS message_id,
  CAST(`anonymous_id` AS STRING) AS anonymous_id,
  CAST(`user_id` AS STRING) AS user_id,
  CAST(NULL AS STRING) AS previous_id,
  CAST(`timestamp` AS TIMESTAMP_NTZ) AS ts
FROM `raw_tracks_table_ids`;

CREATE OR REPLACE VIEW `raw_pages_table` AS
SELECT
  *
FROM `analytics`.`pages`;

CREATE OR REPLACE VIEW `raw_pages_table_ids` AS
SELECT
  CASE
    WHEN CAST(`id` AS STRING) LIKE '%.%0' AND CAST(`id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`id` AS STRING), '[.]0+$', '')
    ELSE CAST(`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(`anonymous_id` AS STRING) LIKE '%.%0'
    AND CAST(`anonymous_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  CASE
    WHEN CAST(`user_id` AS STRING) LIKE '%.%0'
    AND CAST(`user_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`user_id` AS STRING)
  END AS `user_id`,
  `timestamp`
FROM `raw_pages_table`;

CREATE OR REPLACE VIEW `events_pages` AS
/* Inputs: "raw_pages_table_ids", one table's files (any column spelling), identifier columns already read */
/*         as text by the loader (load.py, Engine.id_text: 1001.0 is '1001'); the loader fills */
/*         each column expression from the columns it found (quoted names only, never data). */
/* Output: one row per input row: */
/*         (source_table, message_id, anonymous_id, user_id, previous_id, one column per */
/*         configured extra identifier type (normalized as configured), ts) */
/* Invariants: ids are VARCHAR as the loader read them (no trimming, so "abc" and "abc " stay */
/*             two ids); */
/*             ts is a UTC TIMESTAMP, NULL when the input time is missing or unparseable. */
SELECT
  'pages' AS source_table,
  CAST(`id` AS STRING) AS message_id,
  CAST(`anonymous_id` AS STRING) AS anonymous_id,
  CAST(`user_id` AS STRING) AS user_id,
  CAST(NULL AS STRING) AS previous_id,
  CAST(`timestamp` AS TIMESTAMP_NTZ) AS ts
FROM `raw_pages_table_ids`;

CREATE OR REPLACE VIEW `raw_identifies_table` AS
SELECT
  *
FROM `analytics`.`identifies`;

CREATE OR REPLACE VIEW `raw_identifies_table_ids` AS
SELECT
  CASE
    WHEN CAST(`id` AS STRING) LIKE '%.%0' AND CAST(`id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`id` AS STRING), '[.]0+$', '')
    ELSE CAST(`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(`anonymous_id` AS STRING) LIKE '%.%0'
    AND CAST(`anonymous_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  CASE
    WHEN CAST(`user_id` AS STRING) LIKE '%.%0'
    AND CAST(`user_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`user_id` AS STRING)
  END AS `user_id`,
  `timestamp`,
  `plan`
FROM `raw_identifies_table`;

CREATE OR REPLACE VIEW `events_identifies` AS
/* Inputs: "raw_identifies_table_ids", one table's files (any column spelling), identifier columns already read */
/*         as text by the loader (load.py, Engine.id_text: 1001.0 is '1001'); the loader fills */
/*         each column expression from the columns it found (quoted names only, never data). */
/* Output: one row per input row: */
/*         (source_table, message_id, anonymous_id, user_id, previous_id, one column per */
/*         configured extra identifier type (normalized as configured), ts) */
/* Invariants: ids are VARCHAR as the loader read them (no trimming, so "abc" and "abc " stay */
/*             two ids); */
/*             ts is a UTC TIMESTAMP, NULL when the input time is missing or unparseable. */
SELECT
  'identifies' AS source_table,
  CAST(`id` AS STRING) AS message_id,
  CAST(`anonymous_id` AS STRING) AS anonymous_id,
  CAST(`user_id` AS STRING) AS user_id,
  CAST(NULL AS STRING) AS previous_id,
  CAST(`timestamp` AS TIMESTAMP_NTZ) AS ts
FROM `raw_identifies_table_ids`;

CREATE OR REPLACE VIEW identify_traits AS
SELECT
  CAST(`anonymous_id` AS STRING) AS anonymous_id,
  CAST(`user_id` AS STRING) AS user_id,
  CAST(`timestamp` AS TIMESTAMP_NTZ) AS ts,
  `plan` AS `__trait_0`
FROM `raw_identifies_table_ids`;

CREATE OR REPLACE VIEW `raw_aliases_table` AS
SELECT
  *
FROM `analytics`.`aliases`;

CREATE OR REPLACE VIEW `raw_aliases_table_ids` AS
SELECT
  CASE
    WHEN CAST(`id` AS STRING) LIKE '%.%0' AND CAST(`id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`id` AS STRING), '[.]0+$', '')
    ELSE CAST(`id` AS STRING)
  END AS `id`,
  CASE
    WHEN CAST(`previous_id` AS STRING) LIKE '%.%0'
    AND CAST(`previous_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`previous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`previous_id` AS STRING)
  END AS `previous_id`,
  CASE
    WHEN CAST(`user_id` AS STRING) LIKE '%.%0'
    AND CAST(`user_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`user_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`user_id` AS STRING)
  END AS `user_id`,
  CASE
    WHEN CAST(`anonymous_id` AS STRING) LIKE '%.%0'
    AND CAST(`anonymous_id` AS STRING) RLIKE '^-?[0-9]+[.]0+$'
    THEN REGEXP_REPLACE(CAST(`anonymous_id` AS STRING), '[.]0+$', '')
    ELSE CAST(`anonymous_id` AS STRING)
  END AS `anonymous_id`,
  `timestamp`
FROM `raw_aliases_table`;

CREATE OR REPLACE VIEW `events_aliases` AS
/* Inputs: "raw_aliases_table_ids", one table's files (any column spelling), identifier columns already read */
/*         as text by the loader (load.py, Engine.id_text: 1001.0 is '1001'); the loader fills */
/*         each column expression from the columns it found (quoted names only, never data). */
/* Output: one row per input row: */
/*         (source_table, message_id, anonymous_id, user_id, previous_id, one column per */
/*         configured extra identifier type (normalized as configured), ts) */
/* Invariants: ids are VARCHAR as the loader read them (no trimming, so "abc" and "abc " stay */
/*             two ids); */
/*             ts is a UTC TIMESTAMP, NULL when the input time is missing or unparseable. */
SELECT
  'aliases' AS source_table,
  CAST(`id` AS STRING) AS message_id,
  CAST(`anonymous_id` AS STRING) AS anonymous_id,
  CAST(`user_id` AS STRING) AS user_id,
  CAST(`previous_id` AS STRING) AS previous_id,
  CAST(`timestamp` AS TIMESTAMP_NTZ) AS ts
FROM `raw_aliases_table_ids`;

CREATE OR REPLACE VIEW events AS
SELECT
  *
FROM `events_tracks`
UNION ALL
SELECT
  *
FROM `events_pages`
UNION ALL
SELECT
  *
FROM `events_identifies`
UNION ALL
SELECT
  *
FROM `events_aliases`;

DROP TABLE IF EXISTS `junk_values`;

CREATE TABLE `junk_values` AS
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

DROP TABLE IF EXISTS `pairs`;

CREATE TABLE `pairs` AS
/* Inputs: one input table's events (the view events_<table>), or with --dedupe that table's */
/*         events_deduped subquery (12_deduped_events.sql): source_table, message_id, */
/*         anonymous_id, user_id, previous_id, one column per configured extra identifier type, */
/*         ts. The pipeline runs this step once per input table, joined by UNION ALL into one */
/*         statement: source_table is part of the key, so the union is the aggregate of all the */
/*         events, while each hash table holds one table's groups. At 100M events under */
/*         --memory-limit 6GB the single aggregate spilled its hash tables and sometimes ran */
/*         out of memory (39-45 s; 2 of 6 runs failed); per table, nothing of it spills (31-34 s). */
/* Output: pairs, one row per distinct (source_table, anonymous_id, user_id, previous_id */
/*         ): event_count, events_without_ts, first_ts, last_ts and, for rows */
/*         carrying at least two identifiers, first_evidence = the earliest (ts, message_id). */
/* Invariants: sum(event_count) = number of events; each event is counted in exactly one row. */
SELECT
  source_table,
  anonymous_id,
  user_id,
  previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN ts IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS events_without_ts,
  MIN(ts) AS first_ts,
  MAX(ts) AS last_ts,
  MIN(
    STRUCT(
      ts IS NULL AS ts_unknown,
      ts AS ts,
      message_id IS NULL AS message_id_unknown,
      message_id AS message_id
    )
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM `events_tracks`
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id
UNION ALL
/* Step: the one scan of the events. Every later step reads this aggregate, never the events. */
/* Inputs: one input table's events (the view events_<table>), or with --dedupe that table's */
/*         events_deduped subquery (12_deduped_events.sql): source_table, message_id, */
/*         anonymous_id, user_id, previous_id, one column per configured extra identifier type, */
/*         ts. The pipeline runs this step once per input table, joined by UNION ALL into one */
/*         statement: source_table is part of the key, so the union is the aggregate of all the */
/*         events, while each hash table holds one table's groups. At 100M events under */
/*         --memory-limit 6GB the single aggregate spilled its hash tables and sometimes ran */
/*         out of memory (39-45 s; 2 of 6 runs failed); per table, nothing of it spills (31-34 s). */
/* Output: pairs, one row per distinct (source_table, anonymous_id, user_id, previous_id */
/*         ): event_count, events_without_ts, first_ts, last_ts and, for rows */
/*         carrying at least two identifiers, first_evidence = the earliest (ts, message_id). */
/* Invariants: sum(event_count) = number of events; each event is counted in exactly one row. */
SELECT
  source_table,
  anonymous_id,
  user_id,
  previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN ts IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS events_without_ts,
  MIN(ts) AS first_ts,
  MAX(ts) AS last_ts,
  MIN(
    STRUCT(
      ts IS NULL AS ts_unknown,
      ts AS ts,
      message_id IS NULL AS message_id_unknown,
      message_id AS message_id
    )
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM `events_pages`
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id
UNION ALL
/* Step: the one scan of the events. Every later step reads this aggregate, never the events. */
/* Inputs: one input table's events (the view events_<table>), or with --dedupe that table's */
/*         events_deduped subquery (12_deduped_events.sql): source_table, message_id, */
/*         anonymous_id, user_id, previous_id, one column per configured extra identifier type, */
/*         ts. The pipeline runs this step once per input table, joined by UNION ALL into one */
/*         statement: source_table is part of the key, so the union is the aggregate of all the */
/*         events, while each hash table holds one table's groups. At 100M events under */
/*         --memory-limit 6GB the single aggregate spilled its hash tables and sometimes ran */
/*         out of memory (39-45 s; 2 of 6 runs failed); per table, nothing of it spills (31-34 s). */
/* Output: pairs, one row per distinct (source_table, anonymous_id, user_id, previous_id */
/*         ): event_count, events_without_ts, first_ts, last_ts and, for rows */
/*         carrying at least two identifiers, first_evidence = the earliest (ts, message_id). */
/* Invariants: sum(event_count) = number of events; each event is counted in exactly one row. */
SELECT
  source_table,
  anonymous_id,
  user_id,
  previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN ts IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS events_without_ts,
  MIN(ts) AS first_ts,
  MAX(ts) AS last_ts,
  MIN(
    STRUCT(
      ts IS NULL AS ts_unknown,
      ts AS ts,
      message_id IS NULL AS message_id_unknown,
      message_id AS message_id
    )
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM `events_identifies`
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id
UNION ALL
/* Step: the one scan of the events. Every later step reads this aggregate, never the events. */
/* Inputs: one input table's events (the view events_<table>), or with --dedupe that table's */
/*         events_deduped subquery (12_deduped_events.sql): source_table, message_id, */
/*         anonymous_id, user_id, previous_id, one column per configured extra identifier type, */
/*         ts. The pipeline runs this step once per input table, joined by UNION ALL into one */
/*         statement: source_table is part of the key, so the union is the aggregate of all the */
/*         events, while each hash table holds one table's groups. At 100M events under */
/*         --memory-limit 6GB the single aggregate spilled its hash tables and sometimes ran */
/*         out of memory (39-45 s; 2 of 6 runs failed); per table, nothing of it spills (31-34 s). */
/* Output: pairs, one row per distinct (source_table, anonymous_id, user_id, previous_id */
/*         ): event_count, events_without_ts, first_ts, last_ts and, for rows */
/*         carrying at least two identifiers, first_evidence = the earliest (ts, message_id). */
/* Invariants: sum(event_count) = number of events; each event is counted in exactly one row. */
SELECT
  source_table,
  anonymous_id,
  user_id,
  previous_id,
  COUNT(*) AS event_count,
  CAST(SUM(CASE WHEN ts IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS events_without_ts,
  MIN(ts) AS first_ts,
  MAX(ts) AS last_ts,
  MIN(
    STRUCT(
      ts IS NULL AS ts_unknown,
      ts AS ts,
      message_id IS NULL AS message_id_unknown,
      message_id AS message_id
    )
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM `events_aliases`
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id;

DROP TABLE IF EXISTS `duplicate_hashes`;

DROP TABLE IF EXISTS `first_deliveries`;

DROP TABLE IF EXISTS `pair_totals`;

CREATE TABLE `pair_totals` AS
SELECT
  source_table,
  CAST(SUM(event_count) AS BIGINT) AS event_count,
  CAST(SUM(events_without_ts) AS BIGINT) AS events_without_ts
FROM pairs
GROUP BY
  source_table;

DROP TABLE IF EXISTS `identifiers`;

DROP TABLE IF EXISTS `identifiers`;

CREATE TABLE identifiers AS
WITH anonymous_ids AS (
  SELECT
    'anonymous_id' AS identifier_type,
    anonymous_id AS identifier,
    MIN(first_ts) AS first_seen,
    MAX(last_ts) AS last_seen,
    CAST(SUM(event_count) AS BIGINT) AS event_count,
    CAST(COALESCE(SUM(event_count) FILTER(WHERE
      user_id IS NULL), 0) AS BIGINT) AS attributed_event_count,
    MIN(first_ts) FILTER(WHERE
      user_id IS NULL) AS attributed_first_ts,
    MAX(last_ts) FILTER(WHERE
      user_id IS NULL) AS attributed_last_ts
  FROM pairs
  WHERE
    NOT anonymous_id IS NULL
  GROUP BY
    anonymous_id
), other_occurrences AS (
  SELECT
    'user_id' AS identifier_type,
    user_id AS identifier,
    first_ts,
    last_ts,
    event_count,
    TRUE AS attributed
  FROM pairs
  WHERE
    NOT user_id IS NULL
  UNION ALL
  SELECT
    'user_id',
    previous_id,
    first_ts,
    last_ts,
    event_count,
    user_id IS NULL AND anonymous_id IS NULL
  FROM pairs
  WHERE
    NOT previous_id IS NULL AND (
      user_id IS NULL OR previous_id <> user_id
    )
), other_ids AS (
  SELECT
    identifier_type,
    identifier,
    MIN(first_ts) AS first_seen,
    MAX(last_ts) AS last_seen,
    CAST(SUM(event_count) AS BIGINT) AS event_count,
    CAST(COALESCE(SUM(event_count) FILTER(WHERE
      attributed), 0) AS BIGINT) AS attributed_event_count, /* The attribution rides on this grouping instead of grouping the pairs again by */ /* their attributed id (a second 1.3M-group aggregate over strings at 10M events). */
    MIN(first_ts) FILTER(WHERE
      attributed) AS attributed_first_ts,
    MAX(last_ts) FILTER(WHERE
      attributed) AS attributed_last_ts
  FROM other_occurrences
  GROUP BY
    identifier_type,
    identifier
), grouped AS (
  SELECT
    *
  FROM anonymous_ids
  UNION ALL
  SELECT
    *
  FROM other_ids
), normalized AS (
  SELECT
    *,
    LOWER(REGEXP_REPLACE(identifier, '^[\\t\\n\\f\\r "\']+|[\\t\\n\\f\\r "\']+$', '')) AS junk_key
  FROM grouped
), junk_any_type /* junk_key is computed once and every identifier is looked up in the two small lists by hash */ /* join: no DISTINCT or self-join over the 1.6M identifiers. */ AS (
  SELECT DISTINCT
    value
  FROM junk_values
  WHERE
    identifier_type IS NULL
), junk_one_type AS (
  SELECT DISTINCT
    identifier_type,
    value
  FROM junk_values
  WHERE
    NOT identifier_type IS NULL
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
    WHEN NOT a.value IS NULL OR NOT t.value IS NULL
    THEN 'junk_value'
    WHEN n.junk_key RLIKE '^([0-]*)$'
    THEN 'junk_pattern'
  END AS quarantine_reason
FROM normalized AS n
LEFT JOIN junk_any_type AS a
  ON a.value = n.junk_key
LEFT JOIN junk_one_type AS t
  ON t.identifier_type = n.identifier_type AND t.value = n.junk_key;

DROP TABLE IF EXISTS `hub_degrees`;

CREATE TABLE `hub_degrees` AS
/*       hard-coded device id, a shared `guest-account` login), judged by the shape of the graph */
/*       rather than by one fixed count, so that small and large data get the same answer. */
/* Inputs: pairs; identifiers (quarantine_reason from the junk step); from stitcher/graph.py: */
/*         hub_type_pairs (pair_no, a_type, b_type), one row per pair of types some rule links; */
/*         hub_links (pair_no, a, b), a SELECT over pairs per column of a_type and column of */
/*         b_type; hub_rules (rule_no, pair_no, side, identifier_type, linked_type, max_linked), */
/*         side = 'a' or 'b', the side of the pair the rule judges; min_contention and */
/*         outlier_factor, validated numbers from the run options. */
/* Output: hub_degrees(identifier_type, identifier, linked_type, degree, contention, */
/*         typical_degree, hub_rule), one row per (identifier, hub rule) found to be a hub. */
/* Invariants: */
/*   degree = distinct non-junk partners of linked_type seen on the same events as the */
/*     identifier; */
/*   contention = distinct other identifiers of the identifier's own type that its partners lead */
/*     to, at most one per partner (the partner's least owner, or its greatest when the least is */
/*     the identifier itself). A shared login's devices lead to their owners' own logins, one */
/*     owner each; a power user's cookies lead nowhere; a family of three sharing one computer */
/*     gives each of its logins a contention of at most 2 and the computer at most 3; */
/*   typical_degree = the 99th percentile (nearest rank) of degree over the identifiers of the */
/*     type that have a partner under the rule and a contention of 0 or 1: the data's own idea */
/*     of "many" (0 when there are none); */
/*   a hub breaks at least one rule, and hub_rule names the first it breaks: */
/*     'max_linked'  degree > max_linked (the fixed bound a user sets), */
/*     'contention'  contention >= min_contention, */
/*     'outlier'     contention >= 2 and degree above a bar that falls as contention nears */
/*                   min_contention: outlier_factor * greatest(typical_degree, 3) */
/*                   * (min_contention - contention) / (min_contention - 2). With the defaults */
/*                   (4, 2.0): twice the typical degree at contention 2, the typical degree at */
/*                   3. The floor of 3 keeps a family computer (3 users, contention 3) clear; */
/*   junk identifiers are neither hubs nor partners: one junk value cannot make a real id a hub. */
/* Why by type pair: the default rules judge both ends of the (anonymous_id, user_id) links, so */
/*   one DISTINCT and one aggregate per end serve both (at 10M events this step took 0.64 s; */
/*   a DISTINCT and two aggregates per rule, 1.06 s). */
WITH identifiers_junk AS (
  SELECT
    identifier_type,
    identifier
  FROM identifiers
  WHERE
    NOT quarantine_reason IS NULL
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
    pair_no,
    a,
    b
  FROM (
    SELECT
      0 AS pair_no,
      `anonymous_id` AS a,
      `user_id` AS b
    FROM pairs
    WHERE
      NOT `anonymous_id` IS NULL AND NOT `user_id` IS NULL
  ) AS l
), edges AS (
  SELECT
    e.pair_no,
    e.a,
    e.b
  FROM distinct_edges AS e
  JOIN type_pairs AS t
    ON t.pair_no = e.pair_no
  /* Anti-joins with the junk identifiers only (a few rows), after the DISTINCT: half the */
  /* probes of joining every pairs row. */
  LEFT JOIN identifiers_junk AS ja
    ON ja.identifier_type = t.a_type AND ja.identifier = e.a
  LEFT JOIN identifiers_junk AS jb
    ON jb.identifier_type = t.b_type AND jb.identifier = e.b
  WHERE
    ja.identifier IS NULL AND jb.identifier IS NULL
), ends /* Each end of each edge set: its degree, and the first and last identifier on the other end */ /* (for a partner shared by two or more owners, the one it leads to). The two ends (here and in */ /* leads) are spelled out as mirror halves: one UNION ALL of both orientations first, read by */ /* both, held every edge twice and took 0.75-0.92 s at 10M events against 0.62-0.75 s. */ AS (
  SELECT
    pair_no,
    'a' AS side,
    a AS identifier,
    COUNT(*) AS degree,
    MIN(b) AS first_other,
    MAX(b) AS last_other
  FROM edges
  GROUP BY
    pair_no,
    a
  UNION ALL
  SELECT
    pair_no,
    'b' AS side,
    b AS identifier,
    COUNT(*) AS degree,
    MIN(a) AS first_other,
    MAX(a) AS last_other
  FROM edges
  GROUP BY
    pair_no,
    b
), shared_partners /* Only partners with two or more owners add contention: a few percent of them. */ AS (
  SELECT
    pair_no,
    side,
    identifier AS partner,
    first_other,
    last_other
  FROM ends
  WHERE
    degree > 1
), leads AS (
  SELECT
    r.rule_no,
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
    r.rule_no,
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
    rule_no,
    identifier,
    COUNT(DISTINCT other) AS contention
  FROM leads
  GROUP BY
    rule_no,
    identifier
), scored AS (
  SELECT
    r.rule_no,
    x.identifier,
    x.degree,
    COALESCE(c.contention, 0) AS contention
  FROM hub_rules AS r
  JOIN ends AS x
    ON x.pair_no = r.pair_no AND x.side = r.side
  LEFT JOIN contentions AS c
    ON c.rule_no = r.rule_no AND c.identifier = x.identifier
), histogram /* The percentile from a histogram of degrees (a few hundred rows), not a sort of every */ /* identifier; integer arithmetic, so every engine picks the same degree. Only identifiers that */ /* tie no one together (contention 0 or 1) say what is typical: on small data a hub would */ /* otherwise be its own 99th percentile. */ AS (
  SELECT
    rule_no,
    degree,
    COUNT(*) AS identifiers
  FROM scored
  WHERE
    contention < 2
  GROUP BY
    rule_no,
    degree
), cumulative AS (
  SELECT
    rule_no,
    degree,
    SUM(identifiers) OVER (
      PARTITION BY rule_no
      ORDER BY degree NULLS LAST
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS at_most,
    SUM(identifiers) OVER (PARTITION BY rule_no) AS total
  FROM histogram
), typical AS (
  SELECT
    rule_no,
    MIN(degree) AS typical_degree
  FROM cumulative
  WHERE
    100 * at_most >= 99 * total
  GROUP BY
    rule_no
), judged AS (
  SELECT
    r.identifier_type,
    s.identifier,
    r.linked_type,
    s.degree,
    s.contention,
    COALESCE(t.typical_degree, 0) AS typical_degree,
    r.max_linked
  FROM scored AS s
  JOIN hub_rules AS r
    ON r.rule_no = s.rule_no
  LEFT JOIN typical AS t
    ON t.rule_no = s.rule_no
)
SELECT
  identifier_type,
  identifier,
  linked_type,
  degree,
  contention,
  typical_degree,
  CASE
    WHEN degree > max_linked
    THEN 'max_linked'
    WHEN contention >= 4
    THEN 'contention'
    ELSE 'outlier'
  END AS hub_rule
FROM judged
WHERE
  degree > max_linked
  OR contention >= 4
  OR /* The bar, multiplied out so that integers compare exactly where they can: */ /* degree > outlier_factor * greatest(typical_degree, 3) */ /*          * (min_contention - contention) / (min_contention - 2) */ (
    contention >= 2
    AND degree * (
      4 - 2
    ) > 2.0 * (
      CASE WHEN typical_degree > 3 THEN typical_degree ELSE 3 END
    ) * (
      4 - contention
    )
  );

DROP TABLE IF EXISTS `identifiers_quarantined`;

CREATE TABLE `identifiers_quarantined` AS
/* Inputs: identifiers; hub_degrees */
/* Output: identifiers_quarantined = identifiers + (hub_linked_type, hub_degree, hub_contention, */
/*         hub_typical_degree, hub_rule), the evidence that condemned a hub (31_hub_degrees.sql); */
/*         quarantine_reason becomes 'hub' for hubs that are not already junk. Read by the */
/*         quarantine output (93_quarantine.sql), the run record's totals and the numbering */
/*         step (33_node_ids*.sql), which adds node_id. */
/* Invariants: one row per identifier; a hub reports the hub rule under which its degree is */
/*             largest; the hub columns are NULL for every identifier that is not a hub. */
WITH hub AS (
  SELECT
    identifier_type,
    identifier,
    MAX(
      STRUCT(
        degree AS degree,
        linked_type AS linked_type,
        contention AS contention,
        typical_degree AS typical_degree,
        hub_rule AS hub_rule
      )
    ) AS worst
  FROM hub_degrees
  GROUP BY
    identifier_type,
    identifier
)
SELECT
  i.identifier_type,
  i.identifier,
  i.first_seen,
  i.last_seen,
  i.event_count,
  i.attributed_event_count,
  i.attributed_first_ts,
  i.attributed_last_ts,
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
FROM identifiers AS i
LEFT JOIN hub AS h
  ON h.identifier_type = i.identifier_type AND h.identifier = i.identifier;

DROP TABLE IF EXISTS `identifier_totals`;

CREATE TABLE `identifier_totals` AS
SELECT
  identifier_type,
  NOT quarantine_reason IS NULL AS quarantined,
  COUNT(*) AS identifiers
FROM identifiers_quarantined
GROUP BY
  identifier_type,
  NOT quarantine_reason IS NULL;

DROP TABLE IF EXISTS `quarantine`;

CREATE TABLE `quarantine` AS
/* Inputs: identifiers_quarantined (32_quarantine.sql) */
/* Output: quarantine(identifier_type, identifier, reason, event_count, first_seen_at, */
/*         last_seen_at, hub_linked_type, hub_degree, hub_contention, hub_typical_degree, */
/*         hub_rule) */
/* Invariants: exactly the identifiers missing from id_map; reason is junk_value, junk_pattern */
/*             or hub; hubs carry the evidence that condemned them (31_hub_degrees.sql): the */
/*             linked type, the degree, the contention, the type's typical degree and the */
/*             rule broken; those columns are NULL on junk. */
SELECT
  identifier_type,
  identifier,
  quarantine_reason AS reason,
  event_count,
  first_seen AS first_seen_at,
  last_seen AS last_seen_at,
  hub_linked_type,
  hub_degree,
  hub_contention,
  hub_typical_degree,
  hub_rule
FROM identifiers_quarantined
WHERE
  NOT quarantine_reason IS NULL;

DROP TABLE IF EXISTS `reattributed_events`;

CREATE TABLE `reattributed_events` AS
/*       quarantined, attributed again to the next usable id they carry, so that `pairs` can be */
/*       freed long before persons exist. */
/* Inputs: pairs; quarantine (junk values and hubs) */
/* Output: reattributed_events(identifier_type, identifier, event_count, first_ts, last_ts), */
/*         one row per identifier that such events go to, plus one row with NULL type and */
/*         identifier for the events whose every id is quarantined (or that carry none). */
/* Invariants: an event is attributed to its user_id when that is usable (not quarantined), */
/*             else to its anonymous_id, else to its previous_id. 30_identifiers.sql counted */
/*             every event for its user_id, else anonymous_id, else previous_id; this step */
/*             takes exactly the events whose id so chosen is quarantined or absent, so with */
/*             the usable identifiers' attributed_* columns each event counts exactly once */
/*             (sum = number of events), and an event whose link is refused later still */
/*             counts for its user. Only the few quarantined ids are looked up: the pairs are */
/*             filtered against the small quarantine table before anything is grouped. */
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
  CAST(SUM(pr.event_count) AS BIGINT) AS event_count,
  MIN(pr.first_ts) AS first_ts,
  MAX(pr.last_ts) AS last_ts
FROM pairs AS pr
LEFT JOIN quarantine AS qu
  ON qu.identifier_type = 'user_id' AND qu.identifier = pr.user_id
LEFT JOIN quarantine AS qa
  ON qa.identifier_type = 'anonymous_id' AND qa.identifier = pr.anonymous_id
LEFT JOIN quarantine AS qp
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
  1,
  2;

DROP TABLE IF EXISTS `candidate_edges`;

CREATE TABLE `candidate_edges` AS
/* Inputs: pairs */
/* Output: candidate_edges(from_type, from_id, to_type, to_id, rule, event_count, first_ts, */
/*         last_ts, evidence_ts, evidence_message_id, evidence_table), one row per */
/*         (from_type, from_id, to_type, to_id, rule). */
/* Invariants: rule 'same_event' links every two identifiers carried by one event (from = the */
/*             less trusted type, e.g. anonymous_id -> user_id); rule 'alias' links an alias's */
/*             previous_id to its user_id. Self links (previous_id = user_id) are not edges. The */
/*             evidence is the earliest event asserting the link: least (ts, message_id, */
/*             table), NULL times last. */
WITH links AS (
  SELECT
    'anonymous_id' AS from_type,
    anonymous_id AS from_id,
    'user_id' AS to_type,
    user_id AS to_id,
    'same_event' AS rule,
    source_table,
    event_count,
    first_ts,
    last_ts,
    first_evidence
  FROM pairs
  WHERE
    NOT anonymous_id IS NULL AND NOT user_id IS NULL
  UNION ALL
  SELECT
    'user_id',
    previous_id,
    'user_id',
    user_id,
    'alias',
    source_table,
    event_count,
    first_ts,
    last_ts,
    first_evidence
  FROM pairs
  WHERE
    NOT previous_id IS NULL AND NOT user_id IS NULL AND previous_id <> user_id
), grouped AS (
  SELECT
    from_type,
    from_id,
    to_type,
    to_id,
    rule,
    CAST(SUM(event_count) AS BIGINT) AS event_count,
    MIN(first_ts) AS first_ts,
    MAX(last_ts) AS last_ts,
    MIN(
      STRUCT(
        first_evidence.ts IS NULL AS ts_unknown,
        first_evidence.ts AS ts,
        first_evidence.message_id IS NULL AS message_id_unknown,
        first_evidence.message_id AS message_id,
        source_table AS source_table
      )
    ) AS evidence /* NULLs last through explicit flags (see 20_pairs.sql: engines differ otherwise). */
  FROM links
  GROUP BY
    from_type,
    from_id,
    to_type,
    to_id,
    rule
)
SELECT
  from_type,
  from_id,
  to_type,
  to_id,
  rule,
  event_count,
  first_ts,
  last_ts,
  evidence.ts AS evidence_ts,
  evidence.message_id AS evidence_message_id,
  evidence.source_table AS evidence_table
FROM grouped;

DROP TABLE IF EXISTS `pairs`;

DROP TABLE IF EXISTS `identifiers_checked`;

CREATE TABLE `identifiers_checked` AS
/*       over machines: Spark, warehouses). */
/* Inputs: identifiers_quarantined (32_quarantine.sql) */
/* Output: identifiers_checked = identifiers_quarantined + node_id: exactly the node ids of */
/*         33_node_ids.sql (anchor order; NULL for quarantined identifiers, 0..n-1 for the */
/*         others), which the tests check on Spark and on DuckDB. */
/* Why: one ordered window with no PARTITION BY is one task on Spark (and one worker in a */
/*   warehouse): a single executor would sort and number every identifier. Here: */
/*   1. each usable identifier gets a bucket that is a monotone function of a prefix of the */
/*      anchor-order key: (type is not user_id, first_seen is unknown, the minute of */
/*      first_seen, and for unknown times the first 4 characters of the identifier). Buckets */
/*      never overlap in key order, so the buckets' order is the identifiers' order; */
/*   2. each bucket is numbered by its own window (PARTITION BY bucket, ORDER BY the rest of */
/*      the key), spread over the tasks by bucket; */
/*   3. each bucket's offset is the count of usable identifiers in the buckets before it: one */
/*      ordered window in one task, but over the per-bucket counts (a row per minute that */
/*      holds first sightings, per type group: at most 86,400 rows over 30 days, whatever */
/*      the number of events), not over the identifiers. */
/*   Buckets only decide where the work runs, never the numbers: any monotone bucket gives the */
/*   same ids. Skew: a minute is a small share of any real period (generated data, 1M events */
/*   over 30 days: 62,504 buckets, the largest 0.008% of the identifiers); a day that holds */
/*   most identifiers is still 1,440 buckets, and clock outliers add buckets, not skew. */
/*   Unknown first times, all ordered by value, are split by the identifier's first 4 */
/*   characters (a prefix orders like the value). What stays in one task: identifiers first */
/*   seen in the same minute (a backfill that stamps every event with one time), and timeless */
/*   identifiers that share their first 4 characters; their numbers are right, only not spread. */
/* Invariants: NULL handling is explicit: every bucket column is non-NULL, and within a bucket */
/*   first_seen is either always NULL or never, so where an engine sorts NULLs (first on */
/*   Spark, last on DuckDB) cannot change the order. Booleans sort false first on every */
/*   engine. BIGINT everywhere (Spark's row_number is an INT). */
WITH keyed AS (
  SELECT
    *,
    identifier_type <> 'user_id' AS bucket_later_type,
    first_seen IS NULL AS bucket_unknown_time,
    COALESCE(DATE_TRUNC('MINUTE', first_seen), CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS bucket_minute,
    CASE WHEN first_seen IS NULL THEN SUBSTRING(identifier, 1, 4) ELSE '' END AS bucket_prefix
  FROM identifiers_quarantined
), bucket_sizes AS (
  SELECT
    bucket_later_type,
    bucket_unknown_time,
    bucket_minute,
    bucket_prefix,
    COUNT(*) AS identifiers
  FROM keyed
  WHERE
    quarantine_reason IS NULL
  GROUP BY
    bucket_later_type,
    bucket_unknown_time,
    bucket_minute,
    bucket_prefix
), bucket_offsets /* offset = usable identifiers in every earlier bucket (the running sum, less this bucket). */ AS (
  SELECT
    bucket_later_type,
    bucket_unknown_time,
    bucket_minute,
    bucket_prefix,
    CAST(SUM(identifiers) OVER (
      ORDER BY bucket_later_type NULLS LAST, bucket_unknown_time NULLS LAST, bucket_minute NULLS LAST, bucket_prefix NULLS LAST
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) - identifiers AS BIGINT) AS bucket_offset
  FROM bucket_sizes
), ranked /* rank within the bucket, 0-based; quarantined identifiers are left out (their node_id is NULL). */ AS (
  SELECT
    *,
    CAST(ROW_NUMBER() OVER (
      PARTITION BY bucket_later_type, bucket_unknown_time, bucket_minute, bucket_prefix
      ORDER BY first_seen NULLS LAST, identifier NULLS LAST, identifier_type NULLS LAST
    ) - 1 AS BIGINT) AS rank_in_bucket
  FROM keyed
  WHERE
    quarantine_reason IS NULL
)
SELECT
  r.identifier_type,
  r.identifier,
  r.first_seen,
  r.last_seen,
  r.event_count,
  r.attributed_event_count,
  r.attributed_first_ts,
  r.attributed_last_ts,
  r.quarantine_reason,
  r.hub_linked_type,
  r.hub_degree,
  r.hub_contention,
  r.hub_typical_degree,
  r.hub_rule,
  CAST(o.bucket_offset + r.rank_in_bucket AS BIGINT) AS node_id
FROM ranked AS r
JOIN bucket_offsets AS o
  ON o.bucket_later_type = r.bucket_later_type
  AND o.bucket_unknown_time = r.bucket_unknown_time
  AND o.bucket_minute = r.bucket_minute
  AND o.bucket_prefix = r.bucket_prefix
UNION ALL
SELECT
  identifier_type,
  identifier,
  first_seen,
  last_seen,
  event_count,
  attributed_event_count,
  attributed_first_ts,
  attributed_last_ts,
  quarantine_reason,
  hub_linked_type,
  hub_degree,
  hub_contention,
  hub_typical_degree,
  hub_rule,
  CAST(NULL AS BIGINT) AS node_id
FROM identifiers_quarantined
WHERE
  NOT quarantine_reason IS NULL;

DROP TABLE IF EXISTS `identifiers_quarantined`;

DROP TABLE IF EXISTS `identifiers`;

DROP TABLE IF EXISTS `hub_degrees`;

DROP TABLE IF EXISTS `checked_edges`;

CREATE TABLE `checked_edges` AS
/* Inputs: candidate_edges; identifiers_checked (quarantine_reason) */
/* Output: checked_edges = candidate_edges + junk_refusal ('junk_<type>', 'hub_<type>' or */
/*         NULL) + from_node, to_node (the ends' node ids, NULL for a quarantined end). */
/* Invariants: one row per candidate edge; junk_refusal names the quarantined end (the from end */
/*             first) and why it is quarantined. Every later step finds an edge's ends by these */
/*             integers, never by joining the id strings again. */
SELECT
  e.*,
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
FROM candidate_edges AS e
JOIN identifiers_checked AS f
  ON f.identifier_type = e.from_type AND f.identifier = e.from_id
JOIN identifiers_checked AS t
  ON t.identifier_type = e.to_type AND t.identifier = e.to_id;

DROP TABLE IF EXISTS `candidate_edges`;

DROP TABLE IF EXISTS `classified_edges`;

CREATE TABLE `classified_edges` AS
/* Inputs: checked_edges (from_node: the from end's node id, NULL when quarantined) */
/* Output: classified_edges = candidate_edges columns + (from_node, to_node, kept BOOLEAN, */
/*         reason VARCHAR). */
/* Invariants: */
/*   * junk links are refused, as under every policy; */
/*   * per anonymous_id (and per identifier of any other non-user type), only the usable */
/*     same_event link to a user_id with the earliest evidence (evidence_ts, then */
/*     evidence_message_id, then user id) is kept; the others are refused as */
/*     <type>_has_earlier_user_id. This is what protects a shared device: the second */
/*     person to log in on it does not absorb the first. */
/*   * alias links are explicit merges of user ids and are kept. */
/* So a person holds two user_ids only when an alias joined them. */
WITH ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY from_node, rule, to_type, junk_refusal IS NULL
      ORDER BY evidence_ts NULLS LAST, evidence_message_id NULLS LAST, to_id NULLS LAST
    ) AS user_rank
  FROM checked_edges
), decided AS (
  SELECT
    *,
    CASE
      WHEN NOT junk_refusal IS NULL
      THEN junk_refusal
      WHEN rule = 'same_event' AND to_type = 'user_id' AND user_rank > 1
      THEN from_type || '_has_earlier_user_id'
    END AS refusal
  FROM ranked
)
SELECT
  from_type,
  from_id,
  to_type,
  to_id,
  rule,
  event_count,
  first_ts,
  last_ts,
  evidence_ts,
  evidence_message_id,
  evidence_table,
  from_node,
  to_node,
  refusal IS NULL AS kept,
  COALESCE(refusal, rule) AS reason
FROM decided;

DROP TABLE IF EXISTS `checked_edges`;

DROP TABLE IF EXISTS `policy_base`;

DROP TABLE IF EXISTS `pairs`;

DROP TABLE IF EXISTS `nodes`;

CREATE TABLE `nodes` AS
/* Inputs: identifiers_checked (node_id numbered by 33_node_ids*.sql) */
/* Output: nodes(node_id, identifier_type, identifier, first_seen, last_seen, event_count, */
/*         attributed_event_count, attributed_first_ts, attributed_last_ts), node_id = 0 .. n-1. */
/* Invariants: junk identifiers and hubs are not nodes (they are in quarantine instead); node */
/*             ids are in anchor order (see 33_node_ids.sql). */
SELECT
  node_id,
  identifier_type,
  identifier,
  first_seen,
  last_seen,
  event_count,
  attributed_event_count,
  attributed_first_ts,
  attributed_last_ts
FROM identifiers_checked
WHERE
  NOT node_id IS NULL;

DROP TABLE IF EXISTS `identifiers_checked`;

DROP TABLE IF EXISTS `node_edges`;

CREATE TABLE `node_edges` AS
/* Inputs: classified_edges (from_node, to_node) */
/* Output: node_edges(src, dst) BIGINT node ids. */
/* Invariants: only kept links; both ends are nodes (kept links never touch junk). */
SELECT
  from_node AS src,
  to_node AS dst
FROM classified_edges
WHERE
  kept;

DROP TABLE IF EXISTS `cc_edges`;

CREATE TABLE `cc_edges` AS
SELECT
  src,
  dst
FROM `node_edges`;

-- stitcher:loop max_rounds=100
DROP TABLE IF EXISTS `cc_large`;

CREATE TABLE `cc_large` AS
/*       Components in MapReduce and Beyond", 2014); used by engines that keep the graph */
/*       (Spark, warehouses). Repeated with cc_small_star.sql until cc_converged.sql says done. */
/* Inputs: "cc_edges"(src, dst) BIGINT node ids: an undirected graph, either orientation, */
/*         duplicates and self loops allowed. */
/* Output: (src, dst), distinct. */
/* Invariants: src > dst after this step. Each node u finds m(u), the least of u and its */
/*   neighbours, and every neighbour v > u is re-linked to m(u): v and m(u) were both linked to */
/*   u, so no component gains or loses a node. The least node of a component stays in it, and */
/*   every other node points to a smaller one. */
WITH neighbours AS (
  SELECT
    src AS u,
    dst AS v
  FROM `cc_edges`
  WHERE
    src <> dst
  UNION ALL
  SELECT
    dst AS u,
    src AS v
  FROM `cc_edges`
  WHERE
    src <> dst
), least_around AS (
  SELECT
    u,
    LEAST(u, MIN(v)) AS m
  FROM neighbours
  GROUP BY
    u
)
SELECT DISTINCT
  n.v AS src,
  l.m AS dst
FROM neighbours AS n
JOIN least_around AS l
  ON l.u = n.u
WHERE
  n.v > n.u;

DROP TABLE IF EXISTS `cc_edges`;

CREATE TABLE `cc_edges` AS
/*       cc_large_star.sql in every round. */
/* Inputs: "cc_large"(src, dst) BIGINT node ids, either orientation (normally src > dst). */
/* Output: (src, dst), distinct. */
/* Invariants: src > dst after this step. Each node u takes its smaller neighbours N(u) and */
/*   their least member m; u and every other member of N(u) are re-linked to m. All of them */
/*   were linked to u, so components are unchanged, and each node's pointer only decreases. */
WITH down AS (
  SELECT DISTINCT
    GREATEST(src, dst) AS u,
    LEAST(src, dst) AS v
  FROM `cc_large`
  WHERE
    src <> dst
), least_below AS (
  SELECT
    u,
    MIN(v) AS m
  FROM down
  GROUP BY
    u
)
SELECT DISTINCT
  src,
  dst
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
    u AS src,
    m AS dst
  FROM least_below
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
    src,
    COUNT(*) AS n
  FROM `cc_edges`
  GROUP BY
    src
), unsettled AS (
  SELECT
    src
  FROM parents
  WHERE
    n > 1
  UNION ALL
  SELECT DISTINCT
    e.dst
  FROM `cc_edges` AS e
  JOIN parents AS p
    ON p.src = e.dst
)
SELECT
  (
    SELECT
      COUNT(*)
    FROM unsettled
  ) AS unsettled,
  (
    SELECT
      COUNT(*)
    FROM `cc_edges`
  ) AS edges;
-- stitcher:end-loop

DROP TABLE IF EXISTS `node_components`;

CREATE TABLE `node_components` AS
/* Inputs: "nodes"(node_id, ...); "cc_edges"(src, dst), a star forest (cc_converged = 0). */
/* Output: node_components(node_id, component), one row per node. */
/* Invariants: component = the least node id of the node's component (a star's centre, or the */
/*   node itself when no kept link touches it), so labels do not depend on the engine or on */
/*   the number of rounds. */
SELECT
  n.node_id,
  COALESCE(e.dst, n.node_id) AS component
FROM `nodes` AS n
LEFT JOIN `cc_edges` AS e
  ON e.src = n.node_id;

DROP TABLE IF EXISTS `cc_large`;

DROP TABLE IF EXISTS `cc_edges`;

DROP TABLE IF EXISTS `node_edges`;

DROP TABLE IF EXISTS `persons`;

CREATE TABLE `persons` AS
/* Inputs: nodes, node_components(node_id, component), component = the least node id in it */
/* Output: persons(component, person_id, anchor_type, anchor_id, identifier_count) */
/* Invariants: the anchor is the component's earliest-seen user_id, else its earliest-seen */
/*             identifier of another type; ties (and unknown times) are broken by the */
/*             identifier's value. Node ids are numbered in exactly that order */
/*             (33_node_ids.sql), so the anchor is the node whose id is the component label: */
/*             no ordering aggregate over the identifiers is needed here. */
/*             person_id = md5('<anchor_type>:<anchor_id>'), so it depends on the anchor only: */
/*             events that do not touch a person never change its id. */
WITH sizes AS (
  SELECT
    component,
    COUNT(*) AS identifier_count
  FROM node_components
  GROUP BY
    component
)
SELECT
  s.component,
  MD5(n.identifier_type || ':' || n.identifier) AS person_id,
  n.identifier_type AS anchor_type,
  n.identifier AS anchor_id,
  s.identifier_count
FROM sizes AS s
JOIN nodes AS n
  ON n.node_id = s.component;

DROP TABLE IF EXISTS `id_map`;

CREATE TABLE `id_map` AS
/* Inputs: nodes, node_components, persons */
/* Output: id_map(identifier_type, identifier, person_id, first_seen_at, last_seen_at, */
/*         event_count, node_id, component); the last two are for the steps after this one */
/*         and are not written to the output file. */
/* Invariants: exactly one row per node, i.e. per non-junk identifier in the input. */
SELECT
  n.identifier_type,
  n.identifier,
  p.person_id,
  n.first_seen AS first_seen_at,
  n.last_seen AS last_seen_at,
  n.event_count,
  n.node_id,
  c.component
FROM nodes AS n
JOIN node_components AS c
  ON c.node_id = n.node_id
JOIN persons AS p
  ON p.component = c.component;

DROP TABLE IF EXISTS `person_activity`;

CREATE TABLE `person_activity` AS
/* Inputs: nodes (attributed_* from 30_identifiers.sql), node_components, reattributed_events, */
/*         id_map */
/* Output: person_activity(component, event_count, first_seen_at, last_seen_at); component is */
/*         NULL for the events whose every id is quarantined. */
/* Invariants: each event counts once, for the person of the identifier it is attributed to: */
/*             a usable identifier's attributed_* columns, plus the events moved to it from a */
/*             quarantined id (35_reattributed_events.sql, a handful of rows looked up by */
/*             string). Grouped by the integer component, not the 32-character person id. */
WITH attributed AS (
  SELECT
    c.component,
    n.attributed_event_count AS event_count,
    n.attributed_first_ts AS first_ts,
    n.attributed_last_ts AS last_ts
  FROM nodes AS n
  JOIN node_components AS c
    ON c.node_id = n.node_id
  WHERE
    n.attributed_event_count > 0
  UNION ALL
  SELECT
    m.component,
    r.event_count,
    r.first_ts,
    r.last_ts
  FROM reattributed_events AS r
  LEFT JOIN id_map AS m
    ON m.identifier_type = r.identifier_type AND m.identifier = r.identifier
)
SELECT
  component,
  CAST(SUM(event_count) AS BIGINT) AS event_count,
  MIN(first_ts) AS first_seen_at,
  MAX(last_ts) AS last_seen_at
FROM attributed
GROUP BY
  component;

DROP TABLE IF EXISTS `nodes`;

DROP TABLE IF EXISTS `node_components`;

DROP TABLE IF EXISTS `reattributed_events`;

DROP TABLE IF EXISTS `edges`;

CREATE TABLE `edges` AS
/* Inputs: classified_edges (from_node), id_map (node_id) */
/* Output: edges(person_id, from_type, from_id, to_type, to_id, rule, event_count, */
/*         first_seen_at, last_seen_at, evidence_at, evidence_message_id, evidence_table) */
/* Invariants: kept links only; both ends belong to person_id. */
SELECT
  f.person_id,
  e.from_type,
  e.from_id,
  e.to_type,
  e.to_id,
  e.rule,
  e.event_count,
  e.first_ts AS first_seen_at,
  e.last_ts AS last_seen_at,
  e.evidence_ts AS evidence_at,
  e.evidence_message_id,
  e.evidence_table
FROM classified_edges AS e
JOIN id_map AS f
  ON f.node_id = e.from_node
WHERE
  e.kept;

DROP TABLE IF EXISTS `rejected_edges`;

CREATE TABLE `rejected_edges` AS
/*       `rejected_edges`). */
/* Inputs: classified_edges (from_node, to_node), id_map (node_id) */
/* Output: rejected_edges(from_type, from_id, to_type, to_id, rule, reason, from_person_id, */
/*         to_person_id, event_count, first_seen_at, last_seen_at, evidence_at, */
/*         evidence_message_id, evidence_table) */
/* Invariants: one row per refused link; a junk end has a NULL person_id (it is in quarantine). */
SELECT
  e.from_type,
  e.from_id,
  e.to_type,
  e.to_id,
  e.rule,
  e.reason,
  f.person_id AS from_person_id,
  t.person_id AS to_person_id,
  e.event_count,
  e.first_ts AS first_seen_at,
  e.last_ts AS last_seen_at,
  e.evidence_ts AS evidence_at,
  e.evidence_message_id,
  e.evidence_table
FROM classified_edges AS e
LEFT JOIN id_map AS f
  ON f.node_id = e.from_node
LEFT JOIN id_map AS t
  ON t.node_id = e.to_node
WHERE
  NOT e.kept;

DROP TABLE IF EXISTS `edge_totals`;

CREATE TABLE `edge_totals` AS
SELECT
  kept,
  reason,
  COUNT(*) AS edges
FROM classified_edges
GROUP BY
  kept,
  reason;

DROP TABLE IF EXISTS `classified_edges`;

DROP TABLE IF EXISTS `person_traits`;

CREATE TABLE `person_traits` AS
/* Inputs: identify_traits(anonymous_id, user_id, ts, <trait columns>), the traits under their */
/*         internal names __trait_0, __trait_1... (load.trait_column), so that no input name */
/*         can meet a column of ours; quarantine; id_map */
/* Output: person_traits(component, <trait columns>), by the same internal names */
/* Invariants: an identify call belongs to the person of its user_id, else of its anonymous_id */
/*             (the attribution of 35_reattributed_events.sql, decided against the small */
/*             quarantine table so each call is looked up in id_map once); calls whose ids are */
/*             all quarantined are dropped. "Latest" is by ts, an unknown ts counting as */
/*             oldest; equal times are broken by the greater value, so the choice never depends */
/*             on row order. */
WITH attributed AS (
  SELECT
    t.*,
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
  FROM identify_traits AS t
  LEFT JOIN quarantine AS qu
    ON qu.identifier_type = 'user_id' AND qu.identifier = t.user_id
  LEFT JOIN quarantine AS qa
    ON qa.identifier_type = 'anonymous_id' AND qa.identifier = t.anonymous_id
)
SELECT
  m.component,
  MAX(
    CASE
      WHEN NOT t.`__trait_0` IS NULL
      THEN STRUCT(COALESCE(t.ts, CAST('0001-01-01' AS TIMESTAMP_NTZ)) AS ts, t.`__trait_0` AS v)
    END
  ).v AS `__trait_0`
FROM attributed AS t
JOIN id_map AS m
  ON m.identifier_type = t._attributed_type AND m.identifier = t._attributed_id
GROUP BY
  m.component;

DROP TABLE IF EXISTS `users`;

CREATE TABLE `users` AS
/* Inputs: persons, id_map, person_activity, person_traits */
/* Output: users(person_id, user_id, user_ids, anonymous_ids, identifier_count, first_seen_at, */
/*         last_seen_at, event_count, <traits>); each trait under its input name (lower */
/*         case), or trait_<name> where users already has that column (load.output_trait_names) */
/* Invariants: one row per person; user_id is the anchor when the person has any user id, NULL */
/*             for anonymous-only people; the id lists are sorted, never NULL. Every join and */
/*             grouping is on the integer component. */
WITH id_lists AS (
  SELECT
    component,
    ARRAY_SORT(COLLECT_LIST(identifier) FILTER(WHERE
      identifier_type = 'user_id')) AS user_ids,
    ARRAY_SORT(COLLECT_LIST(identifier) FILTER(WHERE
      identifier_type = 'anonymous_id')) AS anonymous_ids
  FROM id_map
  GROUP BY
    component
)
SELECT
  p.person_id,
  CASE WHEN p.anchor_type = 'user_id' THEN p.anchor_id END AS user_id,
  COALESCE(l.user_ids, CAST(ARRAY() AS ARRAY<STRING>)) AS user_ids,
  COALESCE(l.anonymous_ids, CAST(ARRAY() AS ARRAY<STRING>)) AS anonymous_ids,
  p.identifier_count,
  a.first_seen_at,
  a.last_seen_at,
  COALESCE(a.event_count, 0) AS event_count,
  t.`__trait_0` AS `plan`
FROM persons AS p
JOIN id_lists AS l
  ON l.component = p.component
LEFT JOIN person_activity AS a
  ON a.component = p.component
LEFT JOIN person_traits AS t
  ON t.component = p.component;

DROP TABLE IF EXISTS `persons`;

DROP TABLE IF EXISTS `person_traits`;

DROP TABLE IF EXISTS `id_map_with_keys`;

CREATE TABLE `id_map_with_keys` AS
SELECT
  *
FROM id_map;

DROP TABLE IF EXISTS `id_map`;

CREATE TABLE `id_map` AS
SELECT
  identifier_type,
  identifier,
  person_id,
  first_seen_at,
  last_seen_at,
  event_count
FROM id_map_with_keys;

DROP TABLE IF EXISTS `id_map_with_keys`;

