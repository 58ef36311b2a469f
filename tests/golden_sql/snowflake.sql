-- The stitcher 0.1.0 identity pipeline as snowflake SQL (`stitcher sql`).
-- Inputs: tracks = analytics.tracks, pages = analytics.pages, identifies = analytics.identifies, aliases = analytics.aliases.
-- Outputs: tables id_map, users, edges, rejected_edges, quarantine (and scratch tables) in the current schema; times are read as UTC.
-- Run the statements in order. The block between `stitcher:loop` and `stitcher:end-loop`
-- repeats until the query after `stitcher:until-zero` returns 0 (at most max_rounds times);
-- stitcher.warehouse.run_script(path, connection) does this over a DB-API connection.
-- Snowflake: lower-case names are written as Snowflake stores unquoted names (upper
-- case), so ANALYTICS.TRACKS and its TIMESTAMP column match analytics.tracks and
-- timestamp; other names are kept exactly. Checked as text only: never run against
-- Snowflake by the tests.

CREATE OR REPLACE VIEW "RAW_TRACKS_TABLE" AS
SELECT
  *
FROM "ANALYTICS"."TRACKS";

CREATE OR REPLACE VIEW "RAW_TRACKS_TABLE_IDS" AS
SELECT
  CASE
    WHEN CAST("RAW_TRACKS_TABLE"."ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_TRACKS_TABLE"."ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_TRACKS_TABLE"."ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_TRACKS_TABLE"."ID" AS VARCHAR)
  END AS "ID",
  CASE
    WHEN CAST("RAW_TRACKS_TABLE"."ANONYMOUS_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_TRACKS_TABLE"."ANONYMOUS_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_TRACKS_TABLE"."ANONYMOUS_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_TRACKS_TABLE"."ANONYMOUS_ID" AS VARCHAR)
  END AS "ANONYMOUS_ID",
  CASE
    WHEN CAST("RAW_TRACKS_TABLE"."USER_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_TRACKS_TABLE"."USER_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_TRACKS_TABLE"."USER_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_TRACKS_TABLE"."USER_ID" AS VARCHAR)
  END AS "USER_ID",
  "RAW_TRACKS_TABLE"."TIMESTAMP" AS "TIMESTAMP"
FROM "RAW_TRACKS_TABLE" AS "RAW_TRACKS_TABLE";

CREATE OR REPLACE VIEW "EVENTS_TRACKS" AS
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
  'tracks' AS "SOURCE_TABLE",
  CAST("RAW_TRACKS_TABLE_IDS"."ID" AS VARCHAR) AS "MESSAGE_ID",
  CAST("RAW_TRACKS_TABLE_IDS"."ANONYMOUS_ID" AS VARCHAR) AS "ANONYMOUS_ID",
  CAST("RAW_TRACKS_TABLE_IDS"."USER_ID" AS VARCHAR) AS "USER_ID",
  CAST(NULL AS VARCHAR) AS "PREVIOUS_ID",
  CAST("RAW_TRACKS_TABLE_IDS"."TIMESTAMP" AS TIMESTAMP_NTZ) AS "TS"
FROM "RAW_TRACKS_TABLE_IDS" AS "RAW_TRACKS_TABLE_IDS";

CREATE OR REPLACE VIEW "RAW_PAGES_TABLE" AS
SELECT
  *
FROM "ANALYTICS"."PAGES";

CREATE OR REPLACE VIEW "RAW_PAGES_TABLE_IDS" AS
SELECT
  CASE
    WHEN CAST("RAW_PAGES_TABLE"."ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_PAGES_TABLE"."ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_PAGES_TABLE"."ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_PAGES_TABLE"."ID" AS VARCHAR)
  END AS "ID",
  CASE
    WHEN CAST("RAW_PAGES_TABLE"."ANONYMOUS_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_PAGES_TABLE"."ANONYMOUS_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_PAGES_TABLE"."ANONYMOUS_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_PAGES_TABLE"."ANONYMOUS_ID" AS VARCHAR)
  END AS "ANONYMOUS_ID",
  CASE
    WHEN CAST("RAW_PAGES_TABLE"."USER_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_PAGES_TABLE"."USER_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_PAGES_TABLE"."USER_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_PAGES_TABLE"."USER_ID" AS VARCHAR)
  END AS "USER_ID",
  "RAW_PAGES_TABLE"."TIMESTAMP" AS "TIMESTAMP"
FROM "RAW_PAGES_TABLE" AS "RAW_PAGES_TABLE";

CREATE OR REPLACE VIEW "EVENTS_PAGES" AS
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
  'pages' AS "SOURCE_TABLE",
  CAST("RAW_PAGES_TABLE_IDS"."ID" AS VARCHAR) AS "MESSAGE_ID",
  CAST("RAW_PAGES_TABLE_IDS"."ANONYMOUS_ID" AS VARCHAR) AS "ANONYMOUS_ID",
  CAST("RAW_PAGES_TABLE_IDS"."USER_ID" AS VARCHAR) AS "USER_ID",
  CAST(NULL AS VARCHAR) AS "PREVIOUS_ID",
  CAST("RAW_PAGES_TABLE_IDS"."TIMESTAMP" AS TIMESTAMP_NTZ) AS "TS"
FROM "RAW_PAGES_TABLE_IDS" AS "RAW_PAGES_TABLE_IDS";

CREATE OR REPLACE VIEW "RAW_IDENTIFIES_TABLE" AS
SELECT
  *
FROM "ANALYTICS"."IDENTIFIES";

CREATE OR REPLACE VIEW "RAW_IDENTIFIES_TABLE_IDS" AS
SELECT
  CASE
    WHEN CAST("RAW_IDENTIFIES_TABLE"."ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_IDENTIFIES_TABLE"."ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_IDENTIFIES_TABLE"."ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_IDENTIFIES_TABLE"."ID" AS VARCHAR)
  END AS "ID",
  CASE
    WHEN CAST("RAW_IDENTIFIES_TABLE"."ANONYMOUS_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_IDENTIFIES_TABLE"."ANONYMOUS_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_IDENTIFIES_TABLE"."ANONYMOUS_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_IDENTIFIES_TABLE"."ANONYMOUS_ID" AS VARCHAR)
  END AS "ANONYMOUS_ID",
  CASE
    WHEN CAST("RAW_IDENTIFIES_TABLE"."USER_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_IDENTIFIES_TABLE"."USER_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_IDENTIFIES_TABLE"."USER_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_IDENTIFIES_TABLE"."USER_ID" AS VARCHAR)
  END AS "USER_ID",
  "RAW_IDENTIFIES_TABLE"."TIMESTAMP" AS "TIMESTAMP",
  "RAW_IDENTIFIES_TABLE"."PLAN" AS "PLAN"
FROM "RAW_IDENTIFIES_TABLE" AS "RAW_IDENTIFIES_TABLE";

CREATE OR REPLACE VIEW "EVENTS_IDENTIFIES" AS
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
  'identifies' AS "SOURCE_TABLE",
  CAST("RAW_IDENTIFIES_TABLE_IDS"."ID" AS VARCHAR) AS "MESSAGE_ID",
  CAST("RAW_IDENTIFIES_TABLE_IDS"."ANONYMOUS_ID" AS VARCHAR) AS "ANONYMOUS_ID",
  CAST("RAW_IDENTIFIES_TABLE_IDS"."USER_ID" AS VARCHAR) AS "USER_ID",
  CAST(NULL AS VARCHAR) AS "PREVIOUS_ID",
  CAST("RAW_IDENTIFIES_TABLE_IDS"."TIMESTAMP" AS TIMESTAMP_NTZ) AS "TS"
FROM "RAW_IDENTIFIES_TABLE_IDS" AS "RAW_IDENTIFIES_TABLE_IDS";

CREATE OR REPLACE VIEW "IDENTIFY_TRAITS" AS
SELECT
  CAST("RAW_IDENTIFIES_TABLE_IDS"."ANONYMOUS_ID" AS VARCHAR) AS "ANONYMOUS_ID",
  CAST("RAW_IDENTIFIES_TABLE_IDS"."USER_ID" AS VARCHAR) AS "USER_ID",
  CAST("RAW_IDENTIFIES_TABLE_IDS"."TIMESTAMP" AS TIMESTAMP_NTZ) AS "TS",
  "RAW_IDENTIFIES_TABLE_IDS"."PLAN" AS "__TRAIT_0"
FROM "RAW_IDENTIFIES_TABLE_IDS" AS "RAW_IDENTIFIES_TABLE_IDS";

CREATE OR REPLACE VIEW "RAW_ALIASES_TABLE" AS
SELECT
  *
FROM "ANALYTICS"."ALIASES";

CREATE OR REPLACE VIEW "RAW_ALIASES_TABLE_IDS" AS
SELECT
  CASE
    WHEN CAST("RAW_ALIASES_TABLE"."ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_ALIASES_TABLE"."ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_ALIASES_TABLE"."ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_ALIASES_TABLE"."ID" AS VARCHAR)
  END AS "ID",
  CASE
    WHEN CAST("RAW_ALIASES_TABLE"."PREVIOUS_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_ALIASES_TABLE"."PREVIOUS_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_ALIASES_TABLE"."PREVIOUS_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_ALIASES_TABLE"."PREVIOUS_ID" AS VARCHAR)
  END AS "PREVIOUS_ID",
  CASE
    WHEN CAST("RAW_ALIASES_TABLE"."USER_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_ALIASES_TABLE"."USER_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_ALIASES_TABLE"."USER_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_ALIASES_TABLE"."USER_ID" AS VARCHAR)
  END AS "USER_ID",
  CASE
    WHEN CAST("RAW_ALIASES_TABLE"."ANONYMOUS_ID" AS VARCHAR) LIKE '%.%0'
    AND REGEXP_LIKE(CAST("RAW_ALIASES_TABLE"."ANONYMOUS_ID" AS VARCHAR), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("RAW_ALIASES_TABLE"."ANONYMOUS_ID" AS VARCHAR), '[.]0+$', '')
    ELSE CAST("RAW_ALIASES_TABLE"."ANONYMOUS_ID" AS VARCHAR)
  END AS "ANONYMOUS_ID",
  "RAW_ALIASES_TABLE"."TIMESTAMP" AS "TIMESTAMP"
FROM "RAW_ALIASES_TABLE" AS "RAW_ALIASES_TABLE";

CREATE OR REPLACE VIEW "EVENTS_ALIASES" AS
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
  'aliases' AS "SOURCE_TABLE",
  CAST("RAW_ALIASES_TABLE_IDS"."ID" AS VARCHAR) AS "MESSAGE_ID",
  CAST("RAW_ALIASES_TABLE_IDS"."ANONYMOUS_ID" AS VARCHAR) AS "ANONYMOUS_ID",
  CAST("RAW_ALIASES_TABLE_IDS"."USER_ID" AS VARCHAR) AS "USER_ID",
  CAST("RAW_ALIASES_TABLE_IDS"."PREVIOUS_ID" AS VARCHAR) AS "PREVIOUS_ID",
  CAST("RAW_ALIASES_TABLE_IDS"."TIMESTAMP" AS TIMESTAMP_NTZ) AS "TS"
FROM "RAW_ALIASES_TABLE_IDS" AS "RAW_ALIASES_TABLE_IDS";

CREATE OR REPLACE VIEW "EVENTS" AS
SELECT
  "EVENTS_TRACKS"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_TRACKS"."MESSAGE_ID" AS "MESSAGE_ID",
  "EVENTS_TRACKS"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_TRACKS"."USER_ID" AS "USER_ID",
  "EVENTS_TRACKS"."PREVIOUS_ID" AS "PREVIOUS_ID",
  "EVENTS_TRACKS"."TS" AS "TS"
FROM "EVENTS_TRACKS" AS "EVENTS_TRACKS"
UNION ALL
SELECT
  "EVENTS_PAGES"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_PAGES"."MESSAGE_ID" AS "MESSAGE_ID",
  "EVENTS_PAGES"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_PAGES"."USER_ID" AS "USER_ID",
  "EVENTS_PAGES"."PREVIOUS_ID" AS "PREVIOUS_ID",
  "EVENTS_PAGES"."TS" AS "TS"
FROM "EVENTS_PAGES" AS "EVENTS_PAGES"
UNION ALL
SELECT
  "EVENTS_IDENTIFIES"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_IDENTIFIES"."MESSAGE_ID" AS "MESSAGE_ID",
  "EVENTS_IDENTIFIES"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_IDENTIFIES"."USER_ID" AS "USER_ID",
  "EVENTS_IDENTIFIES"."PREVIOUS_ID" AS "PREVIOUS_ID",
  "EVENTS_IDENTIFIES"."TS" AS "TS"
FROM "EVENTS_IDENTIFIES" AS "EVENTS_IDENTIFIES"
UNION ALL
SELECT
  "EVENTS_ALIASES"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_ALIASES"."MESSAGE_ID" AS "MESSAGE_ID",
  "EVENTS_ALIASES"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_ALIASES"."USER_ID" AS "USER_ID",
  "EVENTS_ALIASES"."PREVIOUS_ID" AS "PREVIOUS_ID",
  "EVENTS_ALIASES"."TS" AS "TS"
FROM "EVENTS_ALIASES" AS "EVENTS_ALIASES";

DROP TABLE IF EXISTS "JUNK_VALUES";

CREATE TABLE "JUNK_VALUES" AS
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('null' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('undefined' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('none' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('nil' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('nan' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('inf' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('-inf' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('infinity' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('-infinity' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('0' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('-1' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('anonymous' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('guest' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('unknown' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('n/a' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('[object object]' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('true' AS VARCHAR) AS "VALUE"
UNION ALL
SELECT
  CAST(NULL AS VARCHAR) AS "IDENTIFIER_TYPE",
  CAST('false' AS VARCHAR) AS "VALUE";

DROP TABLE IF EXISTS "PAIRS";

CREATE TABLE "PAIRS" AS
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
  "EVENTS_TRACKS"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_TRACKS"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_TRACKS"."USER_ID" AS "USER_ID",
  "EVENTS_TRACKS"."PREVIOUS_ID" AS "PREVIOUS_ID",
  COUNT(*) AS "EVENT_COUNT",
  CAST(SUM(CASE WHEN "EVENTS_TRACKS"."TS" IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS "EVENTS_WITHOUT_TS",
  MIN("EVENTS_TRACKS"."TS") AS "FIRST_TS",
  MAX("EVENTS_TRACKS"."TS") AS "LAST_TS",
  GET(
    ARRAY_AGG(
      IFF(
        (
          NOT "EVENTS_TRACKS"."ANONYMOUS_ID" IS NULL
          AND NOT "EVENTS_TRACKS"."USER_ID" IS NULL
        )
        OR (
          NOT "EVENTS_TRACKS"."PREVIOUS_ID" IS NULL
          AND NOT "EVENTS_TRACKS"."USER_ID" IS NULL
        ),
        OBJECT_CONSTRUCT(
          'ts_unknown',
          "EVENTS_TRACKS"."TS" IS NULL,
          'ts',
          "EVENTS_TRACKS"."TS",
          'message_id_unknown',
          "EVENTS_TRACKS"."MESSAGE_ID" IS NULL,
          'message_id',
          "EVENTS_TRACKS"."MESSAGE_ID"
        ),
        NULL
      )
    ) WITHIN GROUP (ORDER BY
      "EVENTS_TRACKS"."TS" IS NULL ASC,
      "EVENTS_TRACKS"."TS" ASC,
      "EVENTS_TRACKS"."MESSAGE_ID" IS NULL ASC,
      "EVENTS_TRACKS"."MESSAGE_ID" ASC),
    0
  ) AS "FIRST_EVIDENCE"
FROM "EVENTS_TRACKS" AS "EVENTS_TRACKS"
GROUP BY
  "EVENTS_TRACKS"."SOURCE_TABLE",
  "EVENTS_TRACKS"."ANONYMOUS_ID",
  "EVENTS_TRACKS"."USER_ID",
  "EVENTS_TRACKS"."PREVIOUS_ID"
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
  "EVENTS_PAGES"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_PAGES"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_PAGES"."USER_ID" AS "USER_ID",
  "EVENTS_PAGES"."PREVIOUS_ID" AS "PREVIOUS_ID",
  COUNT(*) AS "EVENT_COUNT",
  CAST(SUM(CASE WHEN "EVENTS_PAGES"."TS" IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS "EVENTS_WITHOUT_TS",
  MIN("EVENTS_PAGES"."TS") AS "FIRST_TS",
  MAX("EVENTS_PAGES"."TS") AS "LAST_TS",
  GET(
    ARRAY_AGG(
      IFF(
        (
          NOT "EVENTS_PAGES"."ANONYMOUS_ID" IS NULL
          AND NOT "EVENTS_PAGES"."USER_ID" IS NULL
        )
        OR (
          NOT "EVENTS_PAGES"."PREVIOUS_ID" IS NULL AND NOT "EVENTS_PAGES"."USER_ID" IS NULL
        ),
        OBJECT_CONSTRUCT(
          'ts_unknown',
          "EVENTS_PAGES"."TS" IS NULL,
          'ts',
          "EVENTS_PAGES"."TS",
          'message_id_unknown',
          "EVENTS_PAGES"."MESSAGE_ID" IS NULL,
          'message_id',
          "EVENTS_PAGES"."MESSAGE_ID"
        ),
        NULL
      )
    ) WITHIN GROUP (ORDER BY
      "EVENTS_PAGES"."TS" IS NULL ASC,
      "EVENTS_PAGES"."TS" ASC,
      "EVENTS_PAGES"."MESSAGE_ID" IS NULL ASC,
      "EVENTS_PAGES"."MESSAGE_ID" ASC),
    0
  ) AS "FIRST_EVIDENCE"
FROM "EVENTS_PAGES" AS "EVENTS_PAGES"
GROUP BY
  "EVENTS_PAGES"."SOURCE_TABLE",
  "EVENTS_PAGES"."ANONYMOUS_ID",
  "EVENTS_PAGES"."USER_ID",
  "EVENTS_PAGES"."PREVIOUS_ID"
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
  "EVENTS_IDENTIFIES"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_IDENTIFIES"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_IDENTIFIES"."USER_ID" AS "USER_ID",
  "EVENTS_IDENTIFIES"."PREVIOUS_ID" AS "PREVIOUS_ID",
  COUNT(*) AS "EVENT_COUNT",
  CAST(SUM(CASE WHEN "EVENTS_IDENTIFIES"."TS" IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS "EVENTS_WITHOUT_TS",
  MIN("EVENTS_IDENTIFIES"."TS") AS "FIRST_TS",
  MAX("EVENTS_IDENTIFIES"."TS") AS "LAST_TS",
  GET(
    ARRAY_AGG(
      IFF(
        (
          NOT "EVENTS_IDENTIFIES"."ANONYMOUS_ID" IS NULL
          AND NOT "EVENTS_IDENTIFIES"."USER_ID" IS NULL
        )
        OR (
          NOT "EVENTS_IDENTIFIES"."PREVIOUS_ID" IS NULL
          AND NOT "EVENTS_IDENTIFIES"."USER_ID" IS NULL
        ),
        OBJECT_CONSTRUCT(
          'ts_unknown',
          "EVENTS_IDENTIFIES"."TS" IS NULL,
          'ts',
          "EVENTS_IDENTIFIES"."TS",
          'message_id_unknown',
          "EVENTS_IDENTIFIES"."MESSAGE_ID" IS NULL,
          'message_id',
          "EVENTS_IDENTIFIES"."MESSAGE_ID"
        ),
        NULL
      )
    ) WITHIN GROUP (ORDER BY
      "EVENTS_IDENTIFIES"."TS" IS NULL ASC,
      "EVENTS_IDENTIFIES"."TS" ASC,
      "EVENTS_IDENTIFIES"."MESSAGE_ID" IS NULL ASC,
      "EVENTS_IDENTIFIES"."MESSAGE_ID" ASC),
    0
  ) AS "FIRST_EVIDENCE"
FROM "EVENTS_IDENTIFIES" AS "EVENTS_IDENTIFIES"
GROUP BY
  "EVENTS_IDENTIFIES"."SOURCE_TABLE",
  "EVENTS_IDENTIFIES"."ANONYMOUS_ID",
  "EVENTS_IDENTIFIES"."USER_ID",
  "EVENTS_IDENTIFIES"."PREVIOUS_ID"
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
  "EVENTS_ALIASES"."SOURCE_TABLE" AS "SOURCE_TABLE",
  "EVENTS_ALIASES"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
  "EVENTS_ALIASES"."USER_ID" AS "USER_ID",
  "EVENTS_ALIASES"."PREVIOUS_ID" AS "PREVIOUS_ID",
  COUNT(*) AS "EVENT_COUNT",
  CAST(SUM(CASE WHEN "EVENTS_ALIASES"."TS" IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS "EVENTS_WITHOUT_TS",
  MIN("EVENTS_ALIASES"."TS") AS "FIRST_TS",
  MAX("EVENTS_ALIASES"."TS") AS "LAST_TS",
  GET(
    ARRAY_AGG(
      IFF(
        (
          NOT "EVENTS_ALIASES"."ANONYMOUS_ID" IS NULL
          AND NOT "EVENTS_ALIASES"."USER_ID" IS NULL
        )
        OR (
          NOT "EVENTS_ALIASES"."PREVIOUS_ID" IS NULL
          AND NOT "EVENTS_ALIASES"."USER_ID" IS NULL
        ),
        OBJECT_CONSTRUCT(
          'ts_unknown',
          "EVENTS_ALIASES"."TS" IS NULL,
          'ts',
          "EVENTS_ALIASES"."TS",
          'message_id_unknown',
          "EVENTS_ALIASES"."MESSAGE_ID" IS NULL,
          'message_id',
          "EVENTS_ALIASES"."MESSAGE_ID"
        ),
        NULL
      )
    ) WITHIN GROUP (ORDER BY
      "EVENTS_ALIASES"."TS" IS NULL ASC,
      "EVENTS_ALIASES"."TS" ASC,
      "EVENTS_ALIASES"."MESSAGE_ID" IS NULL ASC,
      "EVENTS_ALIASES"."MESSAGE_ID" ASC),
    0
  ) AS "FIRST_EVIDENCE"
FROM "EVENTS_ALIASES" AS "EVENTS_ALIASES"
GROUP BY
  "EVENTS_ALIASES"."SOURCE_TABLE",
  "EVENTS_ALIASES"."ANONYMOUS_ID",
  "EVENTS_ALIASES"."USER_ID",
  "EVENTS_ALIASES"."PREVIOUS_ID";

DROP TABLE IF EXISTS "DUPLICATE_HASHES";

DROP TABLE IF EXISTS "FIRST_DELIVERIES";

DROP TABLE IF EXISTS "PAIR_TOTALS";

CREATE TABLE "PAIR_TOTALS" AS
SELECT
  "PAIRS"."SOURCE_TABLE" AS "SOURCE_TABLE",
  CAST(SUM("PAIRS"."EVENT_COUNT") AS BIGINT) AS "EVENT_COUNT",
  CAST(SUM("PAIRS"."EVENTS_WITHOUT_TS") AS BIGINT) AS "EVENTS_WITHOUT_TS"
FROM "PAIRS" AS "PAIRS"
GROUP BY
  "PAIRS"."SOURCE_TABLE";

DROP TABLE IF EXISTS "IDENTIFIERS";

DROP TABLE IF EXISTS "IDENTIFIERS";

CREATE TABLE "IDENTIFIERS" AS
WITH "ANONYMOUS_IDS" AS (
  SELECT
    'anonymous_id' AS "IDENTIFIER_TYPE",
    "PAIRS"."ANONYMOUS_ID" AS "IDENTIFIER",
    MIN("PAIRS"."FIRST_TS") AS "FIRST_SEEN",
    MAX("PAIRS"."LAST_TS") AS "LAST_SEEN",
    CAST(SUM("PAIRS"."EVENT_COUNT") AS BIGINT) AS "EVENT_COUNT",
    CAST(COALESCE(SUM(IFF("PAIRS"."USER_ID" IS NULL, "PAIRS"."EVENT_COUNT", NULL)), 0) AS BIGINT) AS "ATTRIBUTED_EVENT_COUNT",
    MIN(IFF("PAIRS"."USER_ID" IS NULL, "PAIRS"."FIRST_TS", NULL)) AS "ATTRIBUTED_FIRST_TS",
    MAX(IFF("PAIRS"."USER_ID" IS NULL, "PAIRS"."LAST_TS", NULL)) AS "ATTRIBUTED_LAST_TS"
  FROM "PAIRS" AS "PAIRS"
  WHERE
    NOT "PAIRS"."ANONYMOUS_ID" IS NULL
  GROUP BY
    "PAIRS"."ANONYMOUS_ID"
), "OTHER_OCCURRENCES" AS (
  SELECT
    'user_id' AS "IDENTIFIER_TYPE",
    "PAIRS"."USER_ID" AS "IDENTIFIER",
    "PAIRS"."FIRST_TS" AS "FIRST_TS",
    "PAIRS"."LAST_TS" AS "LAST_TS",
    "PAIRS"."EVENT_COUNT" AS "EVENT_COUNT",
    TRUE AS "ATTRIBUTED"
  FROM "PAIRS" AS "PAIRS"
  WHERE
    NOT "PAIRS"."USER_ID" IS NULL
  UNION ALL
  SELECT
    'user_id' AS "USER_ID",
    "PAIRS"."PREVIOUS_ID" AS "PREVIOUS_ID",
    "PAIRS"."FIRST_TS" AS "FIRST_TS",
    "PAIRS"."LAST_TS" AS "LAST_TS",
    "PAIRS"."EVENT_COUNT" AS "EVENT_COUNT",
    "PAIRS"."USER_ID" IS NULL AND "PAIRS"."ANONYMOUS_ID" IS NULL AS "_COL_5"
  FROM "PAIRS" AS "PAIRS"
  WHERE
    NOT "PAIRS"."PREVIOUS_ID" IS NULL
    AND (
      "PAIRS"."USER_ID" IS NULL OR "PAIRS"."PREVIOUS_ID" <> "PAIRS"."USER_ID"
    )
), "OTHER_IDS" AS (
  SELECT
    "OTHER_OCCURRENCES"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "OTHER_OCCURRENCES"."IDENTIFIER" AS "IDENTIFIER",
    MIN("OTHER_OCCURRENCES"."FIRST_TS") AS "FIRST_SEEN",
    MAX("OTHER_OCCURRENCES"."LAST_TS") AS "LAST_SEEN",
    CAST(SUM("OTHER_OCCURRENCES"."EVENT_COUNT") AS BIGINT) AS "EVENT_COUNT",
    CAST(COALESCE(
      SUM(IFF("OTHER_OCCURRENCES"."ATTRIBUTED", "OTHER_OCCURRENCES"."EVENT_COUNT", NULL)),
      0
    ) AS BIGINT) AS "ATTRIBUTED_EVENT_COUNT", /* The attribution rides on this grouping instead of grouping the pairs again by */ /* their attributed id (a second 1.3M-group aggregate over strings at 10M events). */
    MIN(IFF("OTHER_OCCURRENCES"."ATTRIBUTED", "OTHER_OCCURRENCES"."FIRST_TS", NULL)) AS "ATTRIBUTED_FIRST_TS",
    MAX(IFF("OTHER_OCCURRENCES"."ATTRIBUTED", "OTHER_OCCURRENCES"."LAST_TS", NULL)) AS "ATTRIBUTED_LAST_TS"
  FROM "OTHER_OCCURRENCES" AS "OTHER_OCCURRENCES"
  GROUP BY
    "OTHER_OCCURRENCES"."IDENTIFIER_TYPE",
    "OTHER_OCCURRENCES"."IDENTIFIER"
), "GROUPED" AS (
  SELECT
    "ANONYMOUS_IDS"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "ANONYMOUS_IDS"."IDENTIFIER" AS "IDENTIFIER",
    "ANONYMOUS_IDS"."FIRST_SEEN" AS "FIRST_SEEN",
    "ANONYMOUS_IDS"."LAST_SEEN" AS "LAST_SEEN",
    "ANONYMOUS_IDS"."EVENT_COUNT" AS "EVENT_COUNT",
    "ANONYMOUS_IDS"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
    "ANONYMOUS_IDS"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
    "ANONYMOUS_IDS"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS"
  FROM "ANONYMOUS_IDS" AS "ANONYMOUS_IDS"
  UNION ALL
  SELECT
    "OTHER_IDS"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "OTHER_IDS"."IDENTIFIER" AS "IDENTIFIER",
    "OTHER_IDS"."FIRST_SEEN" AS "FIRST_SEEN",
    "OTHER_IDS"."LAST_SEEN" AS "LAST_SEEN",
    "OTHER_IDS"."EVENT_COUNT" AS "EVENT_COUNT",
    "OTHER_IDS"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
    "OTHER_IDS"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
    "OTHER_IDS"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS"
  FROM "OTHER_IDS" AS "OTHER_IDS"
), "NORMALIZED" AS (
  SELECT
    "GROUPED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "GROUPED"."IDENTIFIER" AS "IDENTIFIER",
    "GROUPED"."FIRST_SEEN" AS "FIRST_SEEN",
    "GROUPED"."LAST_SEEN" AS "LAST_SEEN",
    "GROUPED"."EVENT_COUNT" AS "EVENT_COUNT",
    "GROUPED"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
    "GROUPED"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
    "GROUPED"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
    LOWER(REGEXP_REPLACE("GROUPED"."IDENTIFIER", '^[\t\n\f\r "\']+|[\t\n\f\r "\']+$', '')) AS "JUNK_KEY"
  FROM "GROUPED" AS "GROUPED"
), "JUNK_ANY_TYPE" /* junk_key is computed once and every identifier is looked up in the two small lists by hash */ /* join: no DISTINCT or self-join over the 1.6M identifiers. */ AS (
  SELECT DISTINCT
    "JUNK_VALUES"."VALUE" AS "VALUE"
  FROM "JUNK_VALUES" AS "JUNK_VALUES"
  WHERE
    "JUNK_VALUES"."IDENTIFIER_TYPE" IS NULL
), "JUNK_ONE_TYPE" AS (
  SELECT DISTINCT
    "JUNK_VALUES"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "JUNK_VALUES"."VALUE" AS "VALUE"
  FROM "JUNK_VALUES" AS "JUNK_VALUES"
  WHERE
    NOT "JUNK_VALUES"."IDENTIFIER_TYPE" IS NULL
)
SELECT
  "N"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "N"."IDENTIFIER" AS "IDENTIFIER",
  "N"."FIRST_SEEN" AS "FIRST_SEEN",
  "N"."LAST_SEEN" AS "LAST_SEEN",
  "N"."EVENT_COUNT" AS "EVENT_COUNT",
  "N"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
  "N"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
  "N"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
  CASE
    WHEN NOT "A"."VALUE" IS NULL OR NOT "T"."VALUE" IS NULL
    THEN 'junk_value'
    WHEN REGEXP_LIKE("N"."JUNK_KEY", '^([0-]*)$')
    THEN 'junk_pattern'
  END AS "QUARANTINE_REASON"
FROM "NORMALIZED" AS "N"
LEFT JOIN "JUNK_ANY_TYPE" AS "A"
  ON "A"."VALUE" = "N"."JUNK_KEY"
LEFT JOIN "JUNK_ONE_TYPE" AS "T"
  ON "T"."IDENTIFIER_TYPE" = "N"."IDENTIFIER_TYPE" AND "T"."VALUE" = "N"."JUNK_KEY";

DROP TABLE IF EXISTS "HUB_DEGREES";

CREATE TABLE "HUB_DEGREES" AS
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
WITH "IDENTIFIERS_JUNK" AS (
  SELECT
    "IDENTIFIERS"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "IDENTIFIERS"."IDENTIFIER" AS "IDENTIFIER"
  FROM "IDENTIFIERS" AS "IDENTIFIERS"
  WHERE
    NOT "IDENTIFIERS"."QUARANTINE_REASON" IS NULL
), "TYPE_PAIRS" AS (
  SELECT
    0 AS "PAIR_NO",
    'anonymous_id' AS "A_TYPE",
    'user_id' AS "B_TYPE"
), "HUB_RULES" AS (
  SELECT
    0 AS "RULE_NO",
    0 AS "PAIR_NO",
    'a' AS "SIDE",
    'anonymous_id' AS "IDENTIFIER_TYPE",
    'user_id' AS "LINKED_TYPE",
    50 AS "MAX_LINKED"
  UNION ALL
  SELECT
    1 AS "RULE_NO",
    0 AS "PAIR_NO",
    'b' AS "SIDE",
    'user_id' AS "IDENTIFIER_TYPE",
    'anonymous_id' AS "LINKED_TYPE",
    1000 AS "MAX_LINKED"
), "DISTINCT_EDGES" AS (
  SELECT DISTINCT
    "L"."PAIR_NO" AS "PAIR_NO",
    "L"."A" AS "A",
    "L"."B" AS "B"
  FROM (
    SELECT
      0 AS "PAIR_NO",
      "PAIRS"."ANONYMOUS_ID" AS "A",
      "PAIRS"."USER_ID" AS "B"
    FROM "PAIRS" AS "PAIRS"
    WHERE
      NOT "PAIRS"."ANONYMOUS_ID" IS NULL AND NOT "PAIRS"."USER_ID" IS NULL
  ) AS "L"
), "EDGES" AS (
  SELECT
    "E"."PAIR_NO" AS "PAIR_NO",
    "E"."A" AS "A",
    "E"."B" AS "B"
  FROM "DISTINCT_EDGES" AS "E"
  JOIN "TYPE_PAIRS" AS "T"
    ON "T"."PAIR_NO" = "E"."PAIR_NO"
  /* Anti-joins with the junk identifiers only (a few rows), after the DISTINCT: half the */
  /* probes of joining every pairs row. */
  LEFT JOIN "IDENTIFIERS_JUNK" AS "JA"
    ON "JA"."IDENTIFIER_TYPE" = "T"."A_TYPE" AND "JA"."IDENTIFIER" = "E"."A"
  LEFT JOIN "IDENTIFIERS_JUNK" AS "JB"
    ON "JB"."IDENTIFIER_TYPE" = "T"."B_TYPE" AND "JB"."IDENTIFIER" = "E"."B"
  WHERE
    "JA"."IDENTIFIER" IS NULL AND "JB"."IDENTIFIER" IS NULL
), "ENDS" /* Each end of each edge set: its degree, and the first and last identifier on the other end */ /* (for a partner shared by two or more owners, the one it leads to). The two ends (here and in */ /* leads) are spelled out as mirror halves: one UNION ALL of both orientations first, read by */ /* both, held every edge twice and took 0.75-0.92 s at 10M events against 0.62-0.75 s. */ AS (
  SELECT
    "EDGES"."PAIR_NO" AS "PAIR_NO",
    'a' AS "SIDE",
    "EDGES"."A" AS "IDENTIFIER",
    COUNT(*) AS "DEGREE",
    MIN("EDGES"."B") AS "FIRST_OTHER",
    MAX("EDGES"."B") AS "LAST_OTHER"
  FROM "EDGES" AS "EDGES"
  GROUP BY
    "EDGES"."PAIR_NO",
    "EDGES"."A"
  UNION ALL
  SELECT
    "EDGES"."PAIR_NO" AS "PAIR_NO",
    'b' AS "SIDE",
    "EDGES"."B" AS "IDENTIFIER",
    COUNT(*) AS "DEGREE",
    MIN("EDGES"."A") AS "FIRST_OTHER",
    MAX("EDGES"."A") AS "LAST_OTHER"
  FROM "EDGES" AS "EDGES"
  GROUP BY
    "EDGES"."PAIR_NO",
    "EDGES"."B"
), "SHARED_PARTNERS" /* Only partners with two or more owners add contention: a few percent of them. */ AS (
  SELECT
    "ENDS"."PAIR_NO" AS "PAIR_NO",
    "ENDS"."SIDE" AS "SIDE",
    "ENDS"."IDENTIFIER" AS "PARTNER",
    "ENDS"."FIRST_OTHER" AS "FIRST_OTHER",
    "ENDS"."LAST_OTHER" AS "LAST_OTHER"
  FROM "ENDS" AS "ENDS"
  WHERE
    "ENDS"."DEGREE" > 1
), "LEADS" AS (
  SELECT
    "R"."RULE_NO" AS "RULE_NO",
    "E"."A" AS "IDENTIFIER",
    CASE
      WHEN "P"."FIRST_OTHER" <> "E"."A"
      THEN "P"."FIRST_OTHER"
      ELSE "P"."LAST_OTHER"
    END AS "OTHER"
  FROM "HUB_RULES" AS "R"
  JOIN "EDGES" AS "E"
    ON "E"."PAIR_NO" = "R"."PAIR_NO"
  JOIN "SHARED_PARTNERS" AS "P"
    ON "P"."PAIR_NO" = "E"."PAIR_NO" AND "P"."SIDE" = 'b' AND "P"."PARTNER" = "E"."B"
  WHERE
    "R"."SIDE" = 'a'
  UNION ALL
  SELECT
    "R"."RULE_NO" AS "RULE_NO",
    "E"."B" AS "IDENTIFIER",
    CASE
      WHEN "P"."FIRST_OTHER" <> "E"."B"
      THEN "P"."FIRST_OTHER"
      ELSE "P"."LAST_OTHER"
    END AS "OTHER"
  FROM "HUB_RULES" AS "R"
  JOIN "EDGES" AS "E"
    ON "E"."PAIR_NO" = "R"."PAIR_NO"
  JOIN "SHARED_PARTNERS" AS "P"
    ON "P"."PAIR_NO" = "E"."PAIR_NO" AND "P"."SIDE" = 'a' AND "P"."PARTNER" = "E"."A"
  WHERE
    "R"."SIDE" = 'b'
), "CONTENTIONS" AS (
  SELECT
    "LEADS"."RULE_NO" AS "RULE_NO",
    "LEADS"."IDENTIFIER" AS "IDENTIFIER",
    COUNT(DISTINCT "LEADS"."OTHER") AS "CONTENTION"
  FROM "LEADS" AS "LEADS"
  GROUP BY
    "LEADS"."RULE_NO",
    "LEADS"."IDENTIFIER"
), "SCORED" AS (
  SELECT
    "R"."RULE_NO" AS "RULE_NO",
    "X"."IDENTIFIER" AS "IDENTIFIER",
    "X"."DEGREE" AS "DEGREE",
    COALESCE("C"."CONTENTION", 0) AS "CONTENTION"
  FROM "HUB_RULES" AS "R"
  JOIN "ENDS" AS "X"
    ON "X"."PAIR_NO" = "R"."PAIR_NO" AND "X"."SIDE" = "R"."SIDE"
  LEFT JOIN "CONTENTIONS" AS "C"
    ON "C"."RULE_NO" = "R"."RULE_NO" AND "C"."IDENTIFIER" = "X"."IDENTIFIER"
), "HISTOGRAM" /* The percentile from a histogram of degrees (a few hundred rows), not a sort of every */ /* identifier; integer arithmetic, so every engine picks the same degree. Only identifiers that */ /* tie no one together (contention 0 or 1) say what is typical: on small data a hub would */ /* otherwise be its own 99th percentile. */ AS (
  SELECT
    "SCORED"."RULE_NO" AS "RULE_NO",
    "SCORED"."DEGREE" AS "DEGREE",
    COUNT(*) AS "IDENTIFIERS"
  FROM "SCORED" AS "SCORED"
  WHERE
    "SCORED"."CONTENTION" < 2
  GROUP BY
    "SCORED"."RULE_NO",
    "SCORED"."DEGREE"
), "CUMULATIVE" AS (
  SELECT
    "HISTOGRAM"."RULE_NO" AS "RULE_NO",
    "HISTOGRAM"."DEGREE" AS "DEGREE",
    SUM("HISTOGRAM"."IDENTIFIERS") OVER (
      PARTITION BY "HISTOGRAM"."RULE_NO"
      ORDER BY "HISTOGRAM"."DEGREE"
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS "AT_MOST",
    SUM("HISTOGRAM"."IDENTIFIERS") OVER (PARTITION BY "HISTOGRAM"."RULE_NO") AS "TOTAL"
  FROM "HISTOGRAM" AS "HISTOGRAM"
), "TYPICAL" AS (
  SELECT
    "CUMULATIVE"."RULE_NO" AS "RULE_NO",
    MIN("CUMULATIVE"."DEGREE") AS "TYPICAL_DEGREE"
  FROM "CUMULATIVE" AS "CUMULATIVE"
  WHERE
    100 * "CUMULATIVE"."AT_MOST" >= 99 * "CUMULATIVE"."TOTAL"
  GROUP BY
    "CUMULATIVE"."RULE_NO"
), "JUDGED" AS (
  SELECT
    "R"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "S"."IDENTIFIER" AS "IDENTIFIER",
    "R"."LINKED_TYPE" AS "LINKED_TYPE",
    "S"."DEGREE" AS "DEGREE",
    "S"."CONTENTION" AS "CONTENTION",
    COALESCE("T"."TYPICAL_DEGREE", 0) AS "TYPICAL_DEGREE",
    "R"."MAX_LINKED" AS "MAX_LINKED"
  FROM "SCORED" AS "S"
  JOIN "HUB_RULES" AS "R"
    ON "R"."RULE_NO" = "S"."RULE_NO"
  LEFT JOIN "TYPICAL" AS "T"
    ON "T"."RULE_NO" = "S"."RULE_NO"
)
SELECT
  "JUDGED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "JUDGED"."IDENTIFIER" AS "IDENTIFIER",
  "JUDGED"."LINKED_TYPE" AS "LINKED_TYPE",
  "JUDGED"."DEGREE" AS "DEGREE",
  "JUDGED"."CONTENTION" AS "CONTENTION",
  "JUDGED"."TYPICAL_DEGREE" AS "TYPICAL_DEGREE",
  CASE
    WHEN "JUDGED"."DEGREE" > "JUDGED"."MAX_LINKED"
    THEN 'max_linked'
    WHEN "JUDGED"."CONTENTION" >= 4
    THEN 'contention'
    ELSE 'outlier'
  END AS "HUB_RULE"
FROM "JUDGED" AS "JUDGED"
WHERE
  "JUDGED"."DEGREE" > "JUDGED"."MAX_LINKED"
  OR "JUDGED"."CONTENTION" >= 4
  OR /* The bar, multiplied out so that integers compare exactly where they can: */ /* degree > outlier_factor * greatest(typical_degree, 3) */ /*          * (min_contention - contention) / (min_contention - 2) */ (
    "JUDGED"."CONTENTION" >= 2
    AND "JUDGED"."DEGREE" * (
      4 - 2
    ) > 2.0 * (
      CASE WHEN "JUDGED"."TYPICAL_DEGREE" > 3 THEN "JUDGED"."TYPICAL_DEGREE" ELSE 3 END
    ) * (
      4 - "JUDGED"."CONTENTION"
    )
  );

DROP TABLE IF EXISTS "IDENTIFIERS_QUARANTINED";

CREATE TABLE "IDENTIFIERS_QUARANTINED" AS
/* Inputs: identifiers; hub_degrees */
/* Output: identifiers_quarantined = identifiers + (hub_linked_type, hub_degree, hub_contention, */
/*         hub_typical_degree, hub_rule), the evidence that condemned a hub (31_hub_degrees.sql); */
/*         quarantine_reason becomes 'hub' for hubs that are not already junk. Read by the */
/*         quarantine output (93_quarantine.sql), the run record's totals and the numbering */
/*         step (33_node_ids*.sql), which adds node_id. */
/* Invariants: one row per identifier; a hub reports the hub rule under which its degree is */
/*             largest; the hub columns are NULL for every identifier that is not a hub. */
WITH "HUB" AS (
  SELECT
    "HUB_DEGREES"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "HUB_DEGREES"."IDENTIFIER" AS "IDENTIFIER",
    GET(
      ARRAY_AGG(
        OBJECT_CONSTRUCT(
          'degree',
          "HUB_DEGREES"."DEGREE",
          'linked_type',
          "HUB_DEGREES"."LINKED_TYPE",
          'contention',
          "HUB_DEGREES"."CONTENTION",
          'typical_degree',
          "HUB_DEGREES"."TYPICAL_DEGREE",
          'hub_rule',
          "HUB_DEGREES"."HUB_RULE"
        )
      ) WITHIN GROUP (ORDER BY
        "HUB_DEGREES"."DEGREE" DESC,
        "HUB_DEGREES"."LINKED_TYPE" DESC,
        "HUB_DEGREES"."CONTENTION" DESC,
        "HUB_DEGREES"."TYPICAL_DEGREE" DESC,
        "HUB_DEGREES"."HUB_RULE" DESC),
      0
    ) AS "WORST"
  FROM "HUB_DEGREES" AS "HUB_DEGREES"
  GROUP BY
    "HUB_DEGREES"."IDENTIFIER_TYPE",
    "HUB_DEGREES"."IDENTIFIER"
)
SELECT
  "I"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "I"."IDENTIFIER" AS "IDENTIFIER",
  "I"."FIRST_SEEN" AS "FIRST_SEEN",
  "I"."LAST_SEEN" AS "LAST_SEEN",
  "I"."EVENT_COUNT" AS "EVENT_COUNT",
  "I"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
  "I"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
  "I"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
  CASE
    WHEN NOT "I"."QUARANTINE_REASON" IS NULL
    THEN "I"."QUARANTINE_REASON"
    WHEN NOT "H"."IDENTIFIER" IS NULL
    THEN 'hub'
  END AS "QUARANTINE_REASON",
  CAST(GET("H"."WORST", 'linked_type') AS VARCHAR) AS "HUB_LINKED_TYPE",
  CAST(GET("H"."WORST", 'degree') AS BIGINT) AS "HUB_DEGREE",
  CAST(GET("H"."WORST", 'contention') AS BIGINT) AS "HUB_CONTENTION",
  CAST(GET("H"."WORST", 'typical_degree') AS BIGINT) AS "HUB_TYPICAL_DEGREE",
  CAST(GET("H"."WORST", 'hub_rule') AS VARCHAR) AS "HUB_RULE"
FROM "IDENTIFIERS" AS "I"
LEFT JOIN "HUB" AS "H"
  ON "H"."IDENTIFIER_TYPE" = "I"."IDENTIFIER_TYPE"
  AND "H"."IDENTIFIER" = "I"."IDENTIFIER";

DROP TABLE IF EXISTS "IDENTIFIER_TOTALS";

CREATE TABLE "IDENTIFIER_TOTALS" AS
SELECT
  "IDENTIFIERS_QUARANTINED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  NOT "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" IS NULL AS "QUARANTINED",
  COUNT(*) AS "IDENTIFIERS"
FROM "IDENTIFIERS_QUARANTINED" AS "IDENTIFIERS_QUARANTINED"
GROUP BY
  "IDENTIFIERS_QUARANTINED"."IDENTIFIER_TYPE",
  NOT "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" IS NULL;

DROP TABLE IF EXISTS "QUARANTINE";

CREATE TABLE "QUARANTINE" AS
/* Inputs: identifiers_quarantined (32_quarantine.sql) */
/* Output: quarantine(identifier_type, identifier, reason, event_count, first_seen_at, */
/*         last_seen_at, hub_linked_type, hub_degree, hub_contention, hub_typical_degree, */
/*         hub_rule) */
/* Invariants: exactly the identifiers missing from id_map; reason is junk_value, junk_pattern */
/*             or hub; hubs carry the evidence that condemned them (31_hub_degrees.sql): the */
/*             linked type, the degree, the contention, the type's typical degree and the */
/*             rule broken; those columns are NULL on junk. */
SELECT
  "IDENTIFIERS_QUARANTINED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "IDENTIFIERS_QUARANTINED"."IDENTIFIER" AS "IDENTIFIER",
  "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" AS "REASON",
  "IDENTIFIERS_QUARANTINED"."EVENT_COUNT" AS "EVENT_COUNT",
  "IDENTIFIERS_QUARANTINED"."FIRST_SEEN" AS "FIRST_SEEN_AT",
  "IDENTIFIERS_QUARANTINED"."LAST_SEEN" AS "LAST_SEEN_AT",
  "IDENTIFIERS_QUARANTINED"."HUB_LINKED_TYPE" AS "HUB_LINKED_TYPE",
  "IDENTIFIERS_QUARANTINED"."HUB_DEGREE" AS "HUB_DEGREE",
  "IDENTIFIERS_QUARANTINED"."HUB_CONTENTION" AS "HUB_CONTENTION",
  "IDENTIFIERS_QUARANTINED"."HUB_TYPICAL_DEGREE" AS "HUB_TYPICAL_DEGREE",
  "IDENTIFIERS_QUARANTINED"."HUB_RULE" AS "HUB_RULE"
FROM "IDENTIFIERS_QUARANTINED" AS "IDENTIFIERS_QUARANTINED"
WHERE
  NOT "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" IS NULL;

DROP TABLE IF EXISTS "REATTRIBUTED_EVENTS";

CREATE TABLE "REATTRIBUTED_EVENTS" AS
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
    WHEN NOT "PR"."USER_ID" IS NULL AND "QU"."IDENTIFIER" IS NULL
    THEN 'user_id'
    WHEN NOT "PR"."ANONYMOUS_ID" IS NULL AND "QA"."IDENTIFIER" IS NULL
    THEN 'anonymous_id'
    WHEN NOT "PR"."PREVIOUS_ID" IS NULL AND "QP"."IDENTIFIER" IS NULL
    THEN 'user_id'
  END AS "IDENTIFIER_TYPE",
  CASE
    WHEN NOT "PR"."USER_ID" IS NULL AND "QU"."IDENTIFIER" IS NULL
    THEN "PR"."USER_ID"
    WHEN NOT "PR"."ANONYMOUS_ID" IS NULL AND "QA"."IDENTIFIER" IS NULL
    THEN "PR"."ANONYMOUS_ID"
    WHEN NOT "PR"."PREVIOUS_ID" IS NULL AND "QP"."IDENTIFIER" IS NULL
    THEN "PR"."PREVIOUS_ID"
  END AS "IDENTIFIER",
  CAST(SUM("PR"."EVENT_COUNT") AS BIGINT) AS "EVENT_COUNT",
  MIN("PR"."FIRST_TS") AS "FIRST_TS",
  MAX("PR"."LAST_TS") AS "LAST_TS"
FROM "PAIRS" AS "PR"
LEFT JOIN "QUARANTINE" AS "QU"
  ON "QU"."IDENTIFIER_TYPE" = 'user_id' AND "QU"."IDENTIFIER" = "PR"."USER_ID"
LEFT JOIN "QUARANTINE" AS "QA"
  ON "QA"."IDENTIFIER_TYPE" = 'anonymous_id'
  AND "QA"."IDENTIFIER" = "PR"."ANONYMOUS_ID"
LEFT JOIN "QUARANTINE" AS "QP"
  ON "QP"."IDENTIFIER_TYPE" = 'user_id' AND "QP"."IDENTIFIER" = "PR"."PREVIOUS_ID"
WHERE
  (
    NOT "PR"."USER_ID" IS NULL AND NOT "QU"."IDENTIFIER" IS NULL
  )
  OR (
    "PR"."USER_ID" IS NULL
    AND NOT "PR"."ANONYMOUS_ID" IS NULL
    AND NOT "QA"."IDENTIFIER" IS NULL
  )
  OR (
    "PR"."USER_ID" IS NULL
    AND "PR"."ANONYMOUS_ID" IS NULL
    AND (
      "PR"."PREVIOUS_ID" IS NULL OR NOT "QP"."IDENTIFIER" IS NULL
    )
  )
GROUP BY
  CASE
    WHEN NOT "PR"."USER_ID" IS NULL AND "QU"."IDENTIFIER" IS NULL
    THEN 'user_id'
    WHEN NOT "PR"."ANONYMOUS_ID" IS NULL AND "QA"."IDENTIFIER" IS NULL
    THEN 'anonymous_id'
    WHEN NOT "PR"."PREVIOUS_ID" IS NULL AND "QP"."IDENTIFIER" IS NULL
    THEN 'user_id'
  END,
  CASE
    WHEN NOT "PR"."USER_ID" IS NULL AND "QU"."IDENTIFIER" IS NULL
    THEN "PR"."USER_ID"
    WHEN NOT "PR"."ANONYMOUS_ID" IS NULL AND "QA"."IDENTIFIER" IS NULL
    THEN "PR"."ANONYMOUS_ID"
    WHEN NOT "PR"."PREVIOUS_ID" IS NULL AND "QP"."IDENTIFIER" IS NULL
    THEN "PR"."PREVIOUS_ID"
  END;

DROP TABLE IF EXISTS "CANDIDATE_EDGES";

CREATE TABLE "CANDIDATE_EDGES" AS
/* Inputs: pairs */
/* Output: candidate_edges(from_type, from_id, to_type, to_id, rule, event_count, first_ts, */
/*         last_ts, evidence_ts, evidence_message_id, evidence_table), one row per */
/*         (from_type, from_id, to_type, to_id, rule). */
/* Invariants: rule 'same_event' links every two identifiers carried by one event (from = the */
/*             less trusted type, e.g. anonymous_id -> user_id); rule 'alias' links an alias's */
/*             previous_id to its user_id. Self links (previous_id = user_id) are not edges. The */
/*             evidence is the earliest event asserting the link: least (ts, message_id, */
/*             table), NULL times last. */
WITH "LINKS" AS (
  SELECT
    'anonymous_id' AS "FROM_TYPE",
    "PAIRS"."ANONYMOUS_ID" AS "FROM_ID",
    'user_id' AS "TO_TYPE",
    "PAIRS"."USER_ID" AS "TO_ID",
    'same_event' AS "RULE",
    "PAIRS"."SOURCE_TABLE" AS "SOURCE_TABLE",
    "PAIRS"."EVENT_COUNT" AS "EVENT_COUNT",
    "PAIRS"."FIRST_TS" AS "FIRST_TS",
    "PAIRS"."LAST_TS" AS "LAST_TS",
    "PAIRS"."FIRST_EVIDENCE" AS "FIRST_EVIDENCE"
  FROM "PAIRS" AS "PAIRS"
  WHERE
    NOT "PAIRS"."ANONYMOUS_ID" IS NULL AND NOT "PAIRS"."USER_ID" IS NULL
  UNION ALL
  SELECT
    'user_id' AS "USER_ID",
    "PAIRS"."PREVIOUS_ID" AS "PREVIOUS_ID",
    'user_id' AS "USER_ID",
    "PAIRS"."USER_ID" AS "USER_ID",
    'alias' AS "ALIAS",
    "PAIRS"."SOURCE_TABLE" AS "SOURCE_TABLE",
    "PAIRS"."EVENT_COUNT" AS "EVENT_COUNT",
    "PAIRS"."FIRST_TS" AS "FIRST_TS",
    "PAIRS"."LAST_TS" AS "LAST_TS",
    "PAIRS"."FIRST_EVIDENCE" AS "FIRST_EVIDENCE"
  FROM "PAIRS" AS "PAIRS"
  WHERE
    NOT "PAIRS"."PREVIOUS_ID" IS NULL
    AND NOT "PAIRS"."USER_ID" IS NULL
    AND "PAIRS"."PREVIOUS_ID" <> "PAIRS"."USER_ID"
), "GROUPED" AS (
  SELECT
    "LINKS"."FROM_TYPE" AS "FROM_TYPE",
    "LINKS"."FROM_ID" AS "FROM_ID",
    "LINKS"."TO_TYPE" AS "TO_TYPE",
    "LINKS"."TO_ID" AS "TO_ID",
    "LINKS"."RULE" AS "RULE",
    CAST(SUM("LINKS"."EVENT_COUNT") AS BIGINT) AS "EVENT_COUNT",
    MIN("LINKS"."FIRST_TS") AS "FIRST_TS",
    MAX("LINKS"."LAST_TS") AS "LAST_TS",
    GET(
      ARRAY_AGG(
        OBJECT_CONSTRUCT(
          'ts_unknown',
          CAST(GET("LINKS"."FIRST_EVIDENCE", 'ts') AS TIMESTAMP_NTZ) IS NULL,
          'ts',
          CAST(GET("LINKS"."FIRST_EVIDENCE", 'ts') AS TIMESTAMP_NTZ),
          'message_id_unknown',
          CAST(GET("LINKS"."FIRST_EVIDENCE", 'message_id') AS VARCHAR) IS NULL,
          'message_id',
          CAST(GET("LINKS"."FIRST_EVIDENCE", 'message_id') AS VARCHAR),
          'source_table',
          "LINKS"."SOURCE_TABLE"
        )
      ) WITHIN GROUP (ORDER BY
        CAST(GET("LINKS"."FIRST_EVIDENCE", 'ts') AS TIMESTAMP_NTZ) IS NULL ASC,
        CAST(GET("LINKS"."FIRST_EVIDENCE", 'ts') AS TIMESTAMP_NTZ) ASC,
        CAST(GET("LINKS"."FIRST_EVIDENCE", 'message_id') AS VARCHAR) IS NULL ASC,
        CAST(GET("LINKS"."FIRST_EVIDENCE", 'message_id') AS VARCHAR) ASC,
        "LINKS"."SOURCE_TABLE" ASC),
      0
    ) AS "EVIDENCE" /* NULLs last through explicit flags (see 20_pairs.sql: engines differ otherwise). */
  FROM "LINKS" AS "LINKS"
  GROUP BY
    "LINKS"."FROM_TYPE",
    "LINKS"."FROM_ID",
    "LINKS"."TO_TYPE",
    "LINKS"."TO_ID",
    "LINKS"."RULE"
)
SELECT
  "GROUPED"."FROM_TYPE" AS "FROM_TYPE",
  "GROUPED"."FROM_ID" AS "FROM_ID",
  "GROUPED"."TO_TYPE" AS "TO_TYPE",
  "GROUPED"."TO_ID" AS "TO_ID",
  "GROUPED"."RULE" AS "RULE",
  "GROUPED"."EVENT_COUNT" AS "EVENT_COUNT",
  "GROUPED"."FIRST_TS" AS "FIRST_TS",
  "GROUPED"."LAST_TS" AS "LAST_TS",
  CAST(GET("GROUPED"."EVIDENCE", 'ts') AS TIMESTAMP_NTZ) AS "EVIDENCE_TS",
  CAST(GET("GROUPED"."EVIDENCE", 'message_id') AS VARCHAR) AS "EVIDENCE_MESSAGE_ID",
  CAST(GET("GROUPED"."EVIDENCE", 'source_table') AS VARCHAR) AS "EVIDENCE_TABLE"
FROM "GROUPED" AS "GROUPED";

DROP TABLE IF EXISTS "PAIRS";

DROP TABLE IF EXISTS "IDENTIFIERS_CHECKED";

CREATE TABLE "IDENTIFIERS_CHECKED" AS
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
WITH "KEYED" AS (
  SELECT
    "IDENTIFIERS_QUARANTINED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "IDENTIFIERS_QUARANTINED"."IDENTIFIER" AS "IDENTIFIER",
    "IDENTIFIERS_QUARANTINED"."FIRST_SEEN" AS "FIRST_SEEN",
    "IDENTIFIERS_QUARANTINED"."LAST_SEEN" AS "LAST_SEEN",
    "IDENTIFIERS_QUARANTINED"."EVENT_COUNT" AS "EVENT_COUNT",
    "IDENTIFIERS_QUARANTINED"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
    "IDENTIFIERS_QUARANTINED"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
    "IDENTIFIERS_QUARANTINED"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
    "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" AS "QUARANTINE_REASON",
    "IDENTIFIERS_QUARANTINED"."HUB_LINKED_TYPE" AS "HUB_LINKED_TYPE",
    "IDENTIFIERS_QUARANTINED"."HUB_DEGREE" AS "HUB_DEGREE",
    "IDENTIFIERS_QUARANTINED"."HUB_CONTENTION" AS "HUB_CONTENTION",
    "IDENTIFIERS_QUARANTINED"."HUB_TYPICAL_DEGREE" AS "HUB_TYPICAL_DEGREE",
    "IDENTIFIERS_QUARANTINED"."HUB_RULE" AS "HUB_RULE",
    "IDENTIFIERS_QUARANTINED"."IDENTIFIER_TYPE" <> 'user_id' AS "BUCKET_LATER_TYPE",
    "IDENTIFIERS_QUARANTINED"."FIRST_SEEN" IS NULL AS "BUCKET_UNKNOWN_TIME",
    COALESCE(
      DATE_TRUNC('MINUTE', "IDENTIFIERS_QUARANTINED"."FIRST_SEEN"),
      CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ)
    ) AS "BUCKET_MINUTE",
    CASE
      WHEN "IDENTIFIERS_QUARANTINED"."FIRST_SEEN" IS NULL
      THEN SUBSTRING("IDENTIFIERS_QUARANTINED"."IDENTIFIER", 1, 4)
      ELSE ''
    END AS "BUCKET_PREFIX"
  FROM "IDENTIFIERS_QUARANTINED" AS "IDENTIFIERS_QUARANTINED"
), "BUCKET_SIZES" AS (
  SELECT
    "KEYED"."BUCKET_LATER_TYPE" AS "BUCKET_LATER_TYPE",
    "KEYED"."BUCKET_UNKNOWN_TIME" AS "BUCKET_UNKNOWN_TIME",
    "KEYED"."BUCKET_MINUTE" AS "BUCKET_MINUTE",
    "KEYED"."BUCKET_PREFIX" AS "BUCKET_PREFIX",
    COUNT(*) AS "IDENTIFIERS"
  FROM "KEYED" AS "KEYED"
  WHERE
    "KEYED"."QUARANTINE_REASON" IS NULL
  GROUP BY
    "KEYED"."BUCKET_LATER_TYPE",
    "KEYED"."BUCKET_UNKNOWN_TIME",
    "KEYED"."BUCKET_MINUTE",
    "KEYED"."BUCKET_PREFIX"
), "BUCKET_OFFSETS" /* offset = usable identifiers in every earlier bucket (the running sum, less this bucket). */ AS (
  SELECT
    "BUCKET_SIZES"."BUCKET_LATER_TYPE" AS "BUCKET_LATER_TYPE",
    "BUCKET_SIZES"."BUCKET_UNKNOWN_TIME" AS "BUCKET_UNKNOWN_TIME",
    "BUCKET_SIZES"."BUCKET_MINUTE" AS "BUCKET_MINUTE",
    "BUCKET_SIZES"."BUCKET_PREFIX" AS "BUCKET_PREFIX",
    CAST(SUM("BUCKET_SIZES"."IDENTIFIERS") OVER (
      ORDER BY "BUCKET_SIZES"."BUCKET_LATER_TYPE", "BUCKET_SIZES"."BUCKET_UNKNOWN_TIME", "BUCKET_SIZES"."BUCKET_MINUTE", "BUCKET_SIZES"."BUCKET_PREFIX"
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) - "BUCKET_SIZES"."IDENTIFIERS" AS BIGINT) AS "BUCKET_OFFSET"
  FROM "BUCKET_SIZES" AS "BUCKET_SIZES"
), "RANKED" /* rank within the bucket, 0-based; quarantined identifiers are left out (their node_id is NULL). */ AS (
  SELECT
    "KEYED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
    "KEYED"."IDENTIFIER" AS "IDENTIFIER",
    "KEYED"."FIRST_SEEN" AS "FIRST_SEEN",
    "KEYED"."LAST_SEEN" AS "LAST_SEEN",
    "KEYED"."EVENT_COUNT" AS "EVENT_COUNT",
    "KEYED"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
    "KEYED"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
    "KEYED"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
    "KEYED"."QUARANTINE_REASON" AS "QUARANTINE_REASON",
    "KEYED"."HUB_LINKED_TYPE" AS "HUB_LINKED_TYPE",
    "KEYED"."HUB_DEGREE" AS "HUB_DEGREE",
    "KEYED"."HUB_CONTENTION" AS "HUB_CONTENTION",
    "KEYED"."HUB_TYPICAL_DEGREE" AS "HUB_TYPICAL_DEGREE",
    "KEYED"."HUB_RULE" AS "HUB_RULE",
    "KEYED"."BUCKET_LATER_TYPE" AS "BUCKET_LATER_TYPE",
    "KEYED"."BUCKET_UNKNOWN_TIME" AS "BUCKET_UNKNOWN_TIME",
    "KEYED"."BUCKET_MINUTE" AS "BUCKET_MINUTE",
    "KEYED"."BUCKET_PREFIX" AS "BUCKET_PREFIX",
    CAST(ROW_NUMBER() OVER (
      PARTITION BY "KEYED"."BUCKET_LATER_TYPE", "KEYED"."BUCKET_UNKNOWN_TIME", "KEYED"."BUCKET_MINUTE", "KEYED"."BUCKET_PREFIX"
      ORDER BY "KEYED"."FIRST_SEEN", "KEYED"."IDENTIFIER", "KEYED"."IDENTIFIER_TYPE"
    ) - 1 AS BIGINT) AS "RANK_IN_BUCKET"
  FROM "KEYED" AS "KEYED"
  WHERE
    "KEYED"."QUARANTINE_REASON" IS NULL
)
SELECT
  "R"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "R"."IDENTIFIER" AS "IDENTIFIER",
  "R"."FIRST_SEEN" AS "FIRST_SEEN",
  "R"."LAST_SEEN" AS "LAST_SEEN",
  "R"."EVENT_COUNT" AS "EVENT_COUNT",
  "R"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
  "R"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
  "R"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
  "R"."QUARANTINE_REASON" AS "QUARANTINE_REASON",
  "R"."HUB_LINKED_TYPE" AS "HUB_LINKED_TYPE",
  "R"."HUB_DEGREE" AS "HUB_DEGREE",
  "R"."HUB_CONTENTION" AS "HUB_CONTENTION",
  "R"."HUB_TYPICAL_DEGREE" AS "HUB_TYPICAL_DEGREE",
  "R"."HUB_RULE" AS "HUB_RULE",
  CAST("O"."BUCKET_OFFSET" + "R"."RANK_IN_BUCKET" AS BIGINT) AS "NODE_ID"
FROM "RANKED" AS "R"
JOIN "BUCKET_OFFSETS" AS "O"
  ON "O"."BUCKET_LATER_TYPE" = "R"."BUCKET_LATER_TYPE"
  AND "O"."BUCKET_UNKNOWN_TIME" = "R"."BUCKET_UNKNOWN_TIME"
  AND "O"."BUCKET_MINUTE" = "R"."BUCKET_MINUTE"
  AND "O"."BUCKET_PREFIX" = "R"."BUCKET_PREFIX"
UNION ALL
SELECT
  "IDENTIFIERS_QUARANTINED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "IDENTIFIERS_QUARANTINED"."IDENTIFIER" AS "IDENTIFIER",
  "IDENTIFIERS_QUARANTINED"."FIRST_SEEN" AS "FIRST_SEEN",
  "IDENTIFIERS_QUARANTINED"."LAST_SEEN" AS "LAST_SEEN",
  "IDENTIFIERS_QUARANTINED"."EVENT_COUNT" AS "EVENT_COUNT",
  "IDENTIFIERS_QUARANTINED"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
  "IDENTIFIERS_QUARANTINED"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
  "IDENTIFIERS_QUARANTINED"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS",
  "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" AS "QUARANTINE_REASON",
  "IDENTIFIERS_QUARANTINED"."HUB_LINKED_TYPE" AS "HUB_LINKED_TYPE",
  "IDENTIFIERS_QUARANTINED"."HUB_DEGREE" AS "HUB_DEGREE",
  "IDENTIFIERS_QUARANTINED"."HUB_CONTENTION" AS "HUB_CONTENTION",
  "IDENTIFIERS_QUARANTINED"."HUB_TYPICAL_DEGREE" AS "HUB_TYPICAL_DEGREE",
  "IDENTIFIERS_QUARANTINED"."HUB_RULE" AS "HUB_RULE",
  CAST(NULL AS BIGINT) AS "NODE_ID"
FROM "IDENTIFIERS_QUARANTINED" AS "IDENTIFIERS_QUARANTINED"
WHERE
  NOT "IDENTIFIERS_QUARANTINED"."QUARANTINE_REASON" IS NULL;

DROP TABLE IF EXISTS "IDENTIFIERS_QUARANTINED";

DROP TABLE IF EXISTS "IDENTIFIERS";

DROP TABLE IF EXISTS "HUB_DEGREES";

DROP TABLE IF EXISTS "CHECKED_EDGES";

CREATE TABLE "CHECKED_EDGES" AS
/* Inputs: candidate_edges; identifiers_checked (quarantine_reason) */
/* Output: checked_edges = candidate_edges + junk_refusal ('junk_<type>', 'hub_<type>' or */
/*         NULL) + from_node, to_node (the ends' node ids, NULL for a quarantined end). */
/* Invariants: one row per candidate edge; junk_refusal names the quarantined end (the from end */
/*             first) and why it is quarantined. Every later step finds an edge's ends by these */
/*             integers, never by joining the id strings again. */
SELECT
  "E"."FROM_TYPE" AS "FROM_TYPE",
  "E"."FROM_ID" AS "FROM_ID",
  "E"."TO_TYPE" AS "TO_TYPE",
  "E"."TO_ID" AS "TO_ID",
  "E"."RULE" AS "RULE",
  "E"."EVENT_COUNT" AS "EVENT_COUNT",
  "E"."FIRST_TS" AS "FIRST_TS",
  "E"."LAST_TS" AS "LAST_TS",
  "E"."EVIDENCE_TS" AS "EVIDENCE_TS",
  "E"."EVIDENCE_MESSAGE_ID" AS "EVIDENCE_MESSAGE_ID",
  "E"."EVIDENCE_TABLE" AS "EVIDENCE_TABLE",
  CASE
    WHEN "F"."QUARANTINE_REASON" = 'hub'
    THEN 'hub_' || "E"."FROM_TYPE"
    WHEN NOT "F"."QUARANTINE_REASON" IS NULL
    THEN 'junk_' || "E"."FROM_TYPE"
    WHEN "T"."QUARANTINE_REASON" = 'hub'
    THEN 'hub_' || "E"."TO_TYPE"
    WHEN NOT "T"."QUARANTINE_REASON" IS NULL
    THEN 'junk_' || "E"."TO_TYPE"
  END AS "JUNK_REFUSAL",
  "F"."NODE_ID" AS "FROM_NODE",
  "T"."NODE_ID" AS "TO_NODE"
FROM "CANDIDATE_EDGES" AS "E"
JOIN "IDENTIFIERS_CHECKED" AS "F"
  ON "F"."IDENTIFIER_TYPE" = "E"."FROM_TYPE" AND "F"."IDENTIFIER" = "E"."FROM_ID"
JOIN "IDENTIFIERS_CHECKED" AS "T"
  ON "T"."IDENTIFIER_TYPE" = "E"."TO_TYPE" AND "T"."IDENTIFIER" = "E"."TO_ID";

DROP TABLE IF EXISTS "CANDIDATE_EDGES";

DROP TABLE IF EXISTS "CLASSIFIED_EDGES";

CREATE TABLE "CLASSIFIED_EDGES" AS
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
WITH "RANKED" AS (
  SELECT
    "CHECKED_EDGES"."FROM_TYPE" AS "FROM_TYPE",
    "CHECKED_EDGES"."FROM_ID" AS "FROM_ID",
    "CHECKED_EDGES"."TO_TYPE" AS "TO_TYPE",
    "CHECKED_EDGES"."TO_ID" AS "TO_ID",
    "CHECKED_EDGES"."RULE" AS "RULE",
    "CHECKED_EDGES"."EVENT_COUNT" AS "EVENT_COUNT",
    "CHECKED_EDGES"."FIRST_TS" AS "FIRST_TS",
    "CHECKED_EDGES"."LAST_TS" AS "LAST_TS",
    "CHECKED_EDGES"."EVIDENCE_TS" AS "EVIDENCE_TS",
    "CHECKED_EDGES"."EVIDENCE_MESSAGE_ID" AS "EVIDENCE_MESSAGE_ID",
    "CHECKED_EDGES"."EVIDENCE_TABLE" AS "EVIDENCE_TABLE",
    "CHECKED_EDGES"."JUNK_REFUSAL" AS "JUNK_REFUSAL",
    "CHECKED_EDGES"."FROM_NODE" AS "FROM_NODE",
    "CHECKED_EDGES"."TO_NODE" AS "TO_NODE",
    ROW_NUMBER() OVER (
      PARTITION BY "CHECKED_EDGES"."FROM_NODE", "CHECKED_EDGES"."RULE", "CHECKED_EDGES"."TO_TYPE", "CHECKED_EDGES"."JUNK_REFUSAL" IS NULL
      ORDER BY "CHECKED_EDGES"."EVIDENCE_TS", "CHECKED_EDGES"."EVIDENCE_MESSAGE_ID", "CHECKED_EDGES"."TO_ID"
    ) AS "USER_RANK"
  FROM "CHECKED_EDGES" AS "CHECKED_EDGES"
), "DECIDED" AS (
  SELECT
    "RANKED"."FROM_TYPE" AS "FROM_TYPE",
    "RANKED"."FROM_ID" AS "FROM_ID",
    "RANKED"."TO_TYPE" AS "TO_TYPE",
    "RANKED"."TO_ID" AS "TO_ID",
    "RANKED"."RULE" AS "RULE",
    "RANKED"."EVENT_COUNT" AS "EVENT_COUNT",
    "RANKED"."FIRST_TS" AS "FIRST_TS",
    "RANKED"."LAST_TS" AS "LAST_TS",
    "RANKED"."EVIDENCE_TS" AS "EVIDENCE_TS",
    "RANKED"."EVIDENCE_MESSAGE_ID" AS "EVIDENCE_MESSAGE_ID",
    "RANKED"."EVIDENCE_TABLE" AS "EVIDENCE_TABLE",
    "RANKED"."JUNK_REFUSAL" AS "JUNK_REFUSAL",
    "RANKED"."FROM_NODE" AS "FROM_NODE",
    "RANKED"."TO_NODE" AS "TO_NODE",
    "RANKED"."USER_RANK" AS "USER_RANK",
    CASE
      WHEN NOT "RANKED"."JUNK_REFUSAL" IS NULL
      THEN "RANKED"."JUNK_REFUSAL"
      WHEN "RANKED"."RULE" = 'same_event'
      AND "RANKED"."TO_TYPE" = 'user_id'
      AND "RANKED"."USER_RANK" > 1
      THEN "RANKED"."FROM_TYPE" || '_has_earlier_user_id'
    END AS "REFUSAL"
  FROM "RANKED" AS "RANKED"
)
SELECT
  "DECIDED"."FROM_TYPE" AS "FROM_TYPE",
  "DECIDED"."FROM_ID" AS "FROM_ID",
  "DECIDED"."TO_TYPE" AS "TO_TYPE",
  "DECIDED"."TO_ID" AS "TO_ID",
  "DECIDED"."RULE" AS "RULE",
  "DECIDED"."EVENT_COUNT" AS "EVENT_COUNT",
  "DECIDED"."FIRST_TS" AS "FIRST_TS",
  "DECIDED"."LAST_TS" AS "LAST_TS",
  "DECIDED"."EVIDENCE_TS" AS "EVIDENCE_TS",
  "DECIDED"."EVIDENCE_MESSAGE_ID" AS "EVIDENCE_MESSAGE_ID",
  "DECIDED"."EVIDENCE_TABLE" AS "EVIDENCE_TABLE",
  "DECIDED"."FROM_NODE" AS "FROM_NODE",
  "DECIDED"."TO_NODE" AS "TO_NODE",
  "DECIDED"."REFUSAL" IS NULL AS "KEPT",
  COALESCE("DECIDED"."REFUSAL", "DECIDED"."RULE") AS "REASON"
FROM "DECIDED" AS "DECIDED";

DROP TABLE IF EXISTS "CHECKED_EDGES";

DROP TABLE IF EXISTS "POLICY_BASE";

DROP TABLE IF EXISTS "PAIRS";

DROP TABLE IF EXISTS "NODES";

CREATE TABLE "NODES" AS
/* Inputs: identifiers_checked (node_id numbered by 33_node_ids*.sql) */
/* Output: nodes(node_id, identifier_type, identifier, first_seen, last_seen, event_count, */
/*         attributed_event_count, attributed_first_ts, attributed_last_ts), node_id = 0 .. n-1. */
/* Invariants: junk identifiers and hubs are not nodes (they are in quarantine instead); node */
/*             ids are in anchor order (see 33_node_ids.sql). */
SELECT
  "IDENTIFIERS_CHECKED"."NODE_ID" AS "NODE_ID",
  "IDENTIFIERS_CHECKED"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "IDENTIFIERS_CHECKED"."IDENTIFIER" AS "IDENTIFIER",
  "IDENTIFIERS_CHECKED"."FIRST_SEEN" AS "FIRST_SEEN",
  "IDENTIFIERS_CHECKED"."LAST_SEEN" AS "LAST_SEEN",
  "IDENTIFIERS_CHECKED"."EVENT_COUNT" AS "EVENT_COUNT",
  "IDENTIFIERS_CHECKED"."ATTRIBUTED_EVENT_COUNT" AS "ATTRIBUTED_EVENT_COUNT",
  "IDENTIFIERS_CHECKED"."ATTRIBUTED_FIRST_TS" AS "ATTRIBUTED_FIRST_TS",
  "IDENTIFIERS_CHECKED"."ATTRIBUTED_LAST_TS" AS "ATTRIBUTED_LAST_TS"
FROM "IDENTIFIERS_CHECKED" AS "IDENTIFIERS_CHECKED"
WHERE
  NOT "IDENTIFIERS_CHECKED"."NODE_ID" IS NULL;

DROP TABLE IF EXISTS "IDENTIFIERS_CHECKED";

DROP TABLE IF EXISTS "NODE_EDGES";

CREATE TABLE "NODE_EDGES" AS
/* Inputs: classified_edges (from_node, to_node) */
/* Output: node_edges(src, dst) BIGINT node ids. */
/* Invariants: only kept links; both ends are nodes (kept links never touch junk). */
SELECT
  "CLASSIFIED_EDGES"."FROM_NODE" AS "SRC",
  "CLASSIFIED_EDGES"."TO_NODE" AS "DST"
FROM "CLASSIFIED_EDGES" AS "CLASSIFIED_EDGES"
WHERE
  "CLASSIFIED_EDGES"."KEPT";

DROP TABLE IF EXISTS "CC_EDGES";

CREATE TABLE "CC_EDGES" AS
SELECT
  "NODE_EDGES"."SRC" AS "SRC",
  "NODE_EDGES"."DST" AS "DST"
FROM "NODE_EDGES" AS "NODE_EDGES";

-- stitcher:loop max_rounds=100
DROP TABLE IF EXISTS "CC_LARGE";

CREATE TABLE "CC_LARGE" AS
/*       Components in MapReduce and Beyond", 2014); used by engines that keep the graph */
/*       (Spark, warehouses). Repeated with cc_small_star.sql until cc_converged.sql says done. */
/* Inputs: "cc_edges"(src, dst) BIGINT node ids: an undirected graph, either orientation, */
/*         duplicates and self loops allowed. */
/* Output: (src, dst), distinct. */
/* Invariants: src > dst after this step. Each node u finds m(u), the least of u and its */
/*   neighbours, and every neighbour v > u is re-linked to m(u): v and m(u) were both linked to */
/*   u, so no component gains or loses a node. The least node of a component stays in it, and */
/*   every other node points to a smaller one. */
WITH "NEIGHBOURS" AS (
  SELECT
    "CC_EDGES"."SRC" AS "U",
    "CC_EDGES"."DST" AS "V"
  FROM "CC_EDGES" AS "CC_EDGES"
  WHERE
    "CC_EDGES"."SRC" <> "CC_EDGES"."DST"
  UNION ALL
  SELECT
    "CC_EDGES"."DST" AS "U",
    "CC_EDGES"."SRC" AS "V"
  FROM "CC_EDGES" AS "CC_EDGES"
  WHERE
    "CC_EDGES"."SRC" <> "CC_EDGES"."DST"
), "LEAST_AROUND" AS (
  SELECT
    "NEIGHBOURS"."U" AS "U",
    LEAST_IGNORE_NULLS("NEIGHBOURS"."U", MIN("NEIGHBOURS"."V")) AS "M"
  FROM "NEIGHBOURS" AS "NEIGHBOURS"
  GROUP BY
    "NEIGHBOURS"."U"
)
SELECT DISTINCT
  "N"."V" AS "SRC",
  "L"."M" AS "DST"
FROM "NEIGHBOURS" AS "N"
JOIN "LEAST_AROUND" AS "L"
  ON "L"."U" = "N"."U"
WHERE
  "N"."V" > "N"."U";

DROP TABLE IF EXISTS "CC_EDGES";

CREATE TABLE "CC_EDGES" AS
/*       cc_large_star.sql in every round. */
/* Inputs: "cc_large"(src, dst) BIGINT node ids, either orientation (normally src > dst). */
/* Output: (src, dst), distinct. */
/* Invariants: src > dst after this step. Each node u takes its smaller neighbours N(u) and */
/*   their least member m; u and every other member of N(u) are re-linked to m. All of them */
/*   were linked to u, so components are unchanged, and each node's pointer only decreases. */
WITH "DOWN" AS (
  SELECT DISTINCT
    GREATEST_IGNORE_NULLS("CC_LARGE"."SRC", "CC_LARGE"."DST") AS "U",
    LEAST_IGNORE_NULLS("CC_LARGE"."SRC", "CC_LARGE"."DST") AS "V"
  FROM "CC_LARGE" AS "CC_LARGE"
  WHERE
    "CC_LARGE"."SRC" <> "CC_LARGE"."DST"
), "LEAST_BELOW" AS (
  SELECT
    "DOWN"."U" AS "U",
    MIN("DOWN"."V") AS "M"
  FROM "DOWN" AS "DOWN"
  GROUP BY
    "DOWN"."U"
)
SELECT DISTINCT
  "RELINKED"."SRC" AS "SRC",
  "RELINKED"."DST" AS "DST"
FROM (
  SELECT
    "D"."V" AS "SRC",
    "L"."M" AS "DST"
  FROM "DOWN" AS "D"
  JOIN "LEAST_BELOW" AS "L"
    ON "L"."U" = "D"."U"
  WHERE
    "D"."V" <> "L"."M"
  UNION ALL
  SELECT
    "LEAST_BELOW"."U" AS "SRC",
    "LEAST_BELOW"."M" AS "DST"
  FROM "LEAST_BELOW" AS "LEAST_BELOW"
) AS "RELINKED";

-- stitcher:until-zero
/* Step: has the components loop converged? Checked after every large-star/small-star round. */
/* Inputs: "cc_edges"(src, dst), distinct, src > dst (the output of cc_small_star.sql). */
/* Output: one row (unsettled, edges): unsettled = nodes with two parents plus parents that */
/*         have a parent themselves; edges = the edge count, for the log. */
/* Invariants: unsettled = 0 <=> the edges form a star forest: every node points to one node */
/*   that points nowhere. As src > dst and the rounds never change a component, each star is */
/*   a whole component and its centre is the component's least node id. */
WITH "PARENTS" AS (
  SELECT
    "CC_EDGES"."SRC" AS "SRC",
    COUNT(*) AS "N"
  FROM "CC_EDGES" AS "CC_EDGES"
  GROUP BY
    "CC_EDGES"."SRC"
), "UNSETTLED" AS (
  SELECT
    "PARENTS"."SRC" AS "SRC"
  FROM "PARENTS" AS "PARENTS"
  WHERE
    "PARENTS"."N" > 1
  UNION ALL
  SELECT DISTINCT
    "E"."DST" AS "DST"
  FROM "CC_EDGES" AS "E"
  JOIN "PARENTS" AS "P"
    ON "P"."SRC" = "E"."DST"
)
SELECT
  (
    SELECT
      COUNT(*) AS "_COL_0"
    FROM "UNSETTLED" AS "UNSETTLED"
  ) AS "UNSETTLED",
  (
    SELECT
      COUNT(*) AS "_COL_0"
    FROM "CC_EDGES" AS "CC_EDGES"
  ) AS "EDGES";
-- stitcher:end-loop

DROP TABLE IF EXISTS "NODE_COMPONENTS";

CREATE TABLE "NODE_COMPONENTS" AS
/* Inputs: "nodes"(node_id, ...); "cc_edges"(src, dst), a star forest (cc_converged = 0). */
/* Output: node_components(node_id, component), one row per node. */
/* Invariants: component = the least node id of the node's component (a star's centre, or the */
/*   node itself when no kept link touches it), so labels do not depend on the engine or on */
/*   the number of rounds. */
SELECT
  "N"."NODE_ID" AS "NODE_ID",
  COALESCE("E"."DST", "N"."NODE_ID") AS "COMPONENT"
FROM "NODES" AS "N"
LEFT JOIN "CC_EDGES" AS "E"
  ON "E"."SRC" = "N"."NODE_ID";

DROP TABLE IF EXISTS "CC_LARGE";

DROP TABLE IF EXISTS "CC_EDGES";

DROP TABLE IF EXISTS "NODE_EDGES";

DROP TABLE IF EXISTS "PERSONS";

CREATE TABLE "PERSONS" AS
/* Inputs: nodes, node_components(node_id, component), component = the least node id in it */
/* Output: persons(component, person_id, anchor_type, anchor_id, identifier_count) */
/* Invariants: the anchor is the component's earliest-seen user_id, else its earliest-seen */
/*             identifier of another type; ties (and unknown times) are broken by the */
/*             identifier's value. Node ids are numbered in exactly that order */
/*             (33_node_ids.sql), so the anchor is the node whose id is the component label: */
/*             no ordering aggregate over the identifiers is needed here. */
/*             person_id = md5('<anchor_type>:<anchor_id>'), so it depends on the anchor only: */
/*             events that do not touch a person never change its id. */
WITH "SIZES" AS (
  SELECT
    "NODE_COMPONENTS"."COMPONENT" AS "COMPONENT",
    COUNT(*) AS "IDENTIFIER_COUNT"
  FROM "NODE_COMPONENTS" AS "NODE_COMPONENTS"
  GROUP BY
    "NODE_COMPONENTS"."COMPONENT"
)
SELECT
  "S"."COMPONENT" AS "COMPONENT",
  MD5("N"."IDENTIFIER_TYPE" || ':' || "N"."IDENTIFIER") AS "PERSON_ID",
  "N"."IDENTIFIER_TYPE" AS "ANCHOR_TYPE",
  "N"."IDENTIFIER" AS "ANCHOR_ID",
  "S"."IDENTIFIER_COUNT" AS "IDENTIFIER_COUNT"
FROM "SIZES" AS "S"
JOIN "NODES" AS "N"
  ON "N"."NODE_ID" = "S"."COMPONENT";

DROP TABLE IF EXISTS "ID_MAP";

CREATE TABLE "ID_MAP" AS
/* Inputs: nodes, node_components, persons */
/* Output: id_map(identifier_type, identifier, person_id, first_seen_at, last_seen_at, */
/*         event_count, node_id, component); the last two are for the steps after this one */
/*         and are not written to the output file. */
/* Invariants: exactly one row per node, i.e. per non-junk identifier in the input. */
SELECT
  "N"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "N"."IDENTIFIER" AS "IDENTIFIER",
  "P"."PERSON_ID" AS "PERSON_ID",
  "N"."FIRST_SEEN" AS "FIRST_SEEN_AT",
  "N"."LAST_SEEN" AS "LAST_SEEN_AT",
  "N"."EVENT_COUNT" AS "EVENT_COUNT",
  "N"."NODE_ID" AS "NODE_ID",
  "C"."COMPONENT" AS "COMPONENT"
FROM "NODES" AS "N"
JOIN "NODE_COMPONENTS" AS "C"
  ON "C"."NODE_ID" = "N"."NODE_ID"
JOIN "PERSONS" AS "P"
  ON "P"."COMPONENT" = "C"."COMPONENT";

DROP TABLE IF EXISTS "PERSON_ACTIVITY";

CREATE TABLE "PERSON_ACTIVITY" AS
/* Inputs: nodes (attributed_* from 30_identifiers.sql), node_components, reattributed_events, */
/*         id_map */
/* Output: person_activity(component, event_count, first_seen_at, last_seen_at); component is */
/*         NULL for the events whose every id is quarantined. */
/* Invariants: each event counts once, for the person of the identifier it is attributed to: */
/*             a usable identifier's attributed_* columns, plus the events moved to it from a */
/*             quarantined id (35_reattributed_events.sql, a handful of rows looked up by */
/*             string). Grouped by the integer component, not the 32-character person id. */
WITH "ATTRIBUTED" AS (
  SELECT
    "C"."COMPONENT" AS "COMPONENT",
    "N"."ATTRIBUTED_EVENT_COUNT" AS "EVENT_COUNT",
    "N"."ATTRIBUTED_FIRST_TS" AS "FIRST_TS",
    "N"."ATTRIBUTED_LAST_TS" AS "LAST_TS"
  FROM "NODES" AS "N"
  JOIN "NODE_COMPONENTS" AS "C"
    ON "C"."NODE_ID" = "N"."NODE_ID"
  WHERE
    "N"."ATTRIBUTED_EVENT_COUNT" > 0
  UNION ALL
  SELECT
    "M"."COMPONENT" AS "COMPONENT",
    "R"."EVENT_COUNT" AS "EVENT_COUNT",
    "R"."FIRST_TS" AS "FIRST_TS",
    "R"."LAST_TS" AS "LAST_TS"
  FROM "REATTRIBUTED_EVENTS" AS "R"
  LEFT JOIN "ID_MAP" AS "M"
    ON "M"."IDENTIFIER_TYPE" = "R"."IDENTIFIER_TYPE"
    AND "M"."IDENTIFIER" = "R"."IDENTIFIER"
)
SELECT
  "ATTRIBUTED"."COMPONENT" AS "COMPONENT",
  CAST(SUM("ATTRIBUTED"."EVENT_COUNT") AS BIGINT) AS "EVENT_COUNT",
  MIN("ATTRIBUTED"."FIRST_TS") AS "FIRST_SEEN_AT",
  MAX("ATTRIBUTED"."LAST_TS") AS "LAST_SEEN_AT"
FROM "ATTRIBUTED" AS "ATTRIBUTED"
GROUP BY
  "ATTRIBUTED"."COMPONENT";

DROP TABLE IF EXISTS "NODES";

DROP TABLE IF EXISTS "NODE_COMPONENTS";

DROP TABLE IF EXISTS "REATTRIBUTED_EVENTS";

DROP TABLE IF EXISTS "EDGES";

CREATE TABLE "EDGES" AS
/* Inputs: classified_edges (from_node), id_map (node_id) */
/* Output: edges(person_id, from_type, from_id, to_type, to_id, rule, event_count, */
/*         first_seen_at, last_seen_at, evidence_at, evidence_message_id, evidence_table) */
/* Invariants: kept links only; both ends belong to person_id. */
SELECT
  "F"."PERSON_ID" AS "PERSON_ID",
  "E"."FROM_TYPE" AS "FROM_TYPE",
  "E"."FROM_ID" AS "FROM_ID",
  "E"."TO_TYPE" AS "TO_TYPE",
  "E"."TO_ID" AS "TO_ID",
  "E"."RULE" AS "RULE",
  "E"."EVENT_COUNT" AS "EVENT_COUNT",
  "E"."FIRST_TS" AS "FIRST_SEEN_AT",
  "E"."LAST_TS" AS "LAST_SEEN_AT",
  "E"."EVIDENCE_TS" AS "EVIDENCE_AT",
  "E"."EVIDENCE_MESSAGE_ID" AS "EVIDENCE_MESSAGE_ID",
  "E"."EVIDENCE_TABLE" AS "EVIDENCE_TABLE"
FROM "CLASSIFIED_EDGES" AS "E"
JOIN "ID_MAP" AS "F"
  ON "F"."NODE_ID" = "E"."FROM_NODE"
WHERE
  "E"."KEPT";

DROP TABLE IF EXISTS "REJECTED_EDGES";

CREATE TABLE "REJECTED_EDGES" AS
/*       `rejected_edges`). */
/* Inputs: classified_edges (from_node, to_node), id_map (node_id) */
/* Output: rejected_edges(from_type, from_id, to_type, to_id, rule, reason, from_person_id, */
/*         to_person_id, event_count, first_seen_at, last_seen_at, evidence_at, */
/*         evidence_message_id, evidence_table) */
/* Invariants: one row per refused link; a junk end has a NULL person_id (it is in quarantine). */
SELECT
  "E"."FROM_TYPE" AS "FROM_TYPE",
  "E"."FROM_ID" AS "FROM_ID",
  "E"."TO_TYPE" AS "TO_TYPE",
  "E"."TO_ID" AS "TO_ID",
  "E"."RULE" AS "RULE",
  "E"."REASON" AS "REASON",
  "F"."PERSON_ID" AS "FROM_PERSON_ID",
  "T"."PERSON_ID" AS "TO_PERSON_ID",
  "E"."EVENT_COUNT" AS "EVENT_COUNT",
  "E"."FIRST_TS" AS "FIRST_SEEN_AT",
  "E"."LAST_TS" AS "LAST_SEEN_AT",
  "E"."EVIDENCE_TS" AS "EVIDENCE_AT",
  "E"."EVIDENCE_MESSAGE_ID" AS "EVIDENCE_MESSAGE_ID",
  "E"."EVIDENCE_TABLE" AS "EVIDENCE_TABLE"
FROM "CLASSIFIED_EDGES" AS "E"
LEFT JOIN "ID_MAP" AS "F"
  ON "F"."NODE_ID" = "E"."FROM_NODE"
LEFT JOIN "ID_MAP" AS "T"
  ON "T"."NODE_ID" = "E"."TO_NODE"
WHERE
  NOT "E"."KEPT";

DROP TABLE IF EXISTS "EDGE_TOTALS";

CREATE TABLE "EDGE_TOTALS" AS
SELECT
  "CLASSIFIED_EDGES"."KEPT" AS "KEPT",
  "CLASSIFIED_EDGES"."REASON" AS "REASON",
  COUNT(*) AS "EDGES"
FROM "CLASSIFIED_EDGES" AS "CLASSIFIED_EDGES"
GROUP BY
  "CLASSIFIED_EDGES"."KEPT",
  "CLASSIFIED_EDGES"."REASON";

DROP TABLE IF EXISTS "CLASSIFIED_EDGES";

DROP TABLE IF EXISTS "PERSON_TRAITS";

CREATE TABLE "PERSON_TRAITS" AS
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
WITH "ATTRIBUTED" AS (
  SELECT
    "T"."ANONYMOUS_ID" AS "ANONYMOUS_ID",
    "T"."USER_ID" AS "USER_ID",
    "T"."TS" AS "TS",
    "T"."__TRAIT_0" AS "__TRAIT_0",
    CASE
      WHEN NOT "T"."USER_ID" IS NULL AND "QU"."IDENTIFIER" IS NULL
      THEN 'user_id'
      WHEN NOT "T"."ANONYMOUS_ID" IS NULL AND "QA"."IDENTIFIER" IS NULL
      THEN 'anonymous_id'
    END AS "_ATTRIBUTED_TYPE",
    CASE
      WHEN NOT "T"."USER_ID" IS NULL AND "QU"."IDENTIFIER" IS NULL
      THEN "T"."USER_ID"
      WHEN NOT "T"."ANONYMOUS_ID" IS NULL AND "QA"."IDENTIFIER" IS NULL
      THEN "T"."ANONYMOUS_ID"
    END AS "_ATTRIBUTED_ID"
  FROM "IDENTIFY_TRAITS" AS "T"
  LEFT JOIN "QUARANTINE" AS "QU"
    ON "QU"."IDENTIFIER_TYPE" = 'user_id' AND "QU"."IDENTIFIER" = "T"."USER_ID"
  LEFT JOIN "QUARANTINE" AS "QA"
    ON "QA"."IDENTIFIER_TYPE" = 'anonymous_id'
    AND "QA"."IDENTIFIER" = "T"."ANONYMOUS_ID"
)
SELECT
  "M"."COMPONENT" AS "COMPONENT",
  CAST(GET(
    (
      GET(
        ARRAY_AGG(
          IFF(
            NOT "T"."__TRAIT_0" IS NULL,
            OBJECT_CONSTRUCT('ts', COALESCE("T"."TS", CAST('0001-01-01' AS TIMESTAMP_NTZ)), 'v', "T"."__TRAIT_0"),
            NULL
          )
        ) WITHIN GROUP (ORDER BY
          COALESCE("T"."TS", CAST('0001-01-01' AS TIMESTAMP_NTZ)) DESC,
          "T"."__TRAIT_0" DESC),
        0
      )
    ),
    'v'
  ) AS VARCHAR) AS "__TRAIT_0"
FROM "ATTRIBUTED" AS "T"
JOIN "ID_MAP" AS "M"
  ON "M"."IDENTIFIER_TYPE" = "T"."_ATTRIBUTED_TYPE"
  AND "M"."IDENTIFIER" = "T"."_ATTRIBUTED_ID"
GROUP BY
  "M"."COMPONENT";

DROP TABLE IF EXISTS "USERS";

CREATE TABLE "USERS" AS
/* Inputs: persons, id_map, person_activity, person_traits */
/* Output: users(person_id, user_id, user_ids, anonymous_ids, identifier_count, first_seen_at, */
/*         last_seen_at, event_count, <traits>); each trait under its input name (lower */
/*         case), or trait_<name> where users already has that column (load.output_trait_names) */
/* Invariants: one row per person; user_id is the anchor when the person has any user id, NULL */
/*             for anonymous-only people; the id lists are sorted, never NULL. Every join and */
/*             grouping is on the integer component. */
WITH "ID_LISTS" AS (
  SELECT
    "ID_MAP"."COMPONENT" AS "COMPONENT",
    ARRAY_AGG(IFF("ID_MAP"."IDENTIFIER_TYPE" = 'user_id', "ID_MAP"."IDENTIFIER", NULL)) WITHIN GROUP (ORDER BY
      "ID_MAP"."IDENTIFIER" ASC) AS "USER_IDS",
    ARRAY_AGG(IFF("ID_MAP"."IDENTIFIER_TYPE" = 'anonymous_id', "ID_MAP"."IDENTIFIER", NULL)) WITHIN GROUP (ORDER BY
      "ID_MAP"."IDENTIFIER" ASC) AS "ANONYMOUS_IDS"
  FROM "ID_MAP" AS "ID_MAP"
  GROUP BY
    "ID_MAP"."COMPONENT"
)
SELECT
  "P"."PERSON_ID" AS "PERSON_ID",
  CASE WHEN "P"."ANCHOR_TYPE" = 'user_id' THEN "P"."ANCHOR_ID" END AS "USER_ID",
  COALESCE("L"."USER_IDS", ARRAY_CONSTRUCT()) AS "USER_IDS",
  COALESCE("L"."ANONYMOUS_IDS", ARRAY_CONSTRUCT()) AS "ANONYMOUS_IDS",
  "P"."IDENTIFIER_COUNT" AS "IDENTIFIER_COUNT",
  "A"."FIRST_SEEN_AT" AS "FIRST_SEEN_AT",
  "A"."LAST_SEEN_AT" AS "LAST_SEEN_AT",
  COALESCE("A"."EVENT_COUNT", 0) AS "EVENT_COUNT",
  "T"."__TRAIT_0" AS "PLAN"
FROM "PERSONS" AS "P"
JOIN "ID_LISTS" AS "L"
  ON "L"."COMPONENT" = "P"."COMPONENT"
LEFT JOIN "PERSON_ACTIVITY" AS "A"
  ON "A"."COMPONENT" = "P"."COMPONENT"
LEFT JOIN "PERSON_TRAITS" AS "T"
  ON "T"."COMPONENT" = "P"."COMPONENT";

DROP TABLE IF EXISTS "PERSONS";

DROP TABLE IF EXISTS "PERSON_TRAITS";

DROP TABLE IF EXISTS "ID_MAP_WITH_KEYS";

CREATE TABLE "ID_MAP_WITH_KEYS" AS
SELECT
  "ID_MAP"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "ID_MAP"."IDENTIFIER" AS "IDENTIFIER",
  "ID_MAP"."PERSON_ID" AS "PERSON_ID",
  "ID_MAP"."FIRST_SEEN_AT" AS "FIRST_SEEN_AT",
  "ID_MAP"."LAST_SEEN_AT" AS "LAST_SEEN_AT",
  "ID_MAP"."EVENT_COUNT" AS "EVENT_COUNT",
  "ID_MAP"."NODE_ID" AS "NODE_ID",
  "ID_MAP"."COMPONENT" AS "COMPONENT"
FROM "ID_MAP" AS "ID_MAP";

DROP TABLE IF EXISTS "ID_MAP";

CREATE TABLE "ID_MAP" AS
SELECT
  "ID_MAP_WITH_KEYS"."IDENTIFIER_TYPE" AS "IDENTIFIER_TYPE",
  "ID_MAP_WITH_KEYS"."IDENTIFIER" AS "IDENTIFIER",
  "ID_MAP_WITH_KEYS"."PERSON_ID" AS "PERSON_ID",
  "ID_MAP_WITH_KEYS"."FIRST_SEEN_AT" AS "FIRST_SEEN_AT",
  "ID_MAP_WITH_KEYS"."LAST_SEEN_AT" AS "LAST_SEEN_AT",
  "ID_MAP_WITH_KEYS"."EVENT_COUNT" AS "EVENT_COUNT"
FROM "ID_MAP_WITH_KEYS" AS "ID_MAP_WITH_KEYS";

DROP TABLE IF EXISTS "ID_MAP_WITH_KEYS";

