-- The stitcher 0.1.0 identity pipeline as duckdb SQL (`stitcher sql`).
-- Inputs: tracks = analytics.tracks, pages = analytics.pages, identifies = analytics.identifies, aliases = analytics.aliases.
-- Outputs: tables id_map, users, edges, rejected_edges, quarantine in schema identity; times are read as UTC.
-- The script works in tables named stitcher__* there and drops them at the end. It
-- replaces an output table only if an earlier `stitcher sql` script made it (the table's
-- comment says so): it stops, before changing anything, on any other table of that name.
-- Run the statements in order. The block between `stitcher:loop` and `stitcher:end-loop`
-- repeats until the query after `stitcher:until-zero` returns 0 (at most max_rounds times);
-- stitcher.warehouse.run_script(path, connection) does this over a DB-API connection.

SELECT error('stitcher: table ' || table_schema || '.' || table_name || ' exists and was not made by stitcher sql, so the script stops without touching it: rename or drop it yourself, or write the outputs elsewhere with stitcher sql --output-schema or --output-table')
FROM information_schema.tables
WHERE lower(table_catalog) = lower(current_database()) AND lower(table_schema) = 'identity'
  AND lower(table_name) IN ('id_map', 'users', 'edges', 'rejected_edges', 'quarantine')
  AND coalesce(table_comment, '') NOT LIKE 'stitcher sql output%';

CREATE OR REPLACE VIEW identity.stitcher__raw_tracks_table AS
SELECT
  *
FROM "analytics"."tracks";

CREATE OR REPLACE VIEW identity.stitcher__raw_tracks_table_ids AS
SELECT
  CASE
    WHEN CAST("id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("id" AS TEXT)
  END AS "id",
  CASE
    WHEN CAST("anonymous_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("anonymous_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("anonymous_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("anonymous_id" AS TEXT)
  END AS "anonymous_id",
  CASE
    WHEN CAST("user_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("user_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("user_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("user_id" AS TEXT)
  END AS "user_id",
  "timestamp"
FROM identity.stitcher__raw_tracks_table AS raw_tracks_table;

CREATE OR REPLACE VIEW identity.stitcher__events_tracks AS
SELECT
  'tracks' AS source_table,
  CAST("id" AS TEXT) AS message_id,
  CAST("anonymous_id" AS TEXT) AS anonymous_id,
  CAST("user_id" AS TEXT) AS user_id,
  CAST(NULL AS TEXT) AS previous_id,
  CAST("timestamp" AS TIMESTAMP) AS ts
FROM identity.stitcher__raw_tracks_table_ids AS raw_tracks_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__raw_pages_table AS
SELECT
  *
FROM "analytics"."pages";

CREATE OR REPLACE VIEW identity.stitcher__raw_pages_table_ids AS
SELECT
  CASE
    WHEN CAST("id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("id" AS TEXT)
  END AS "id",
  CASE
    WHEN CAST("anonymous_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("anonymous_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("anonymous_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("anonymous_id" AS TEXT)
  END AS "anonymous_id",
  CASE
    WHEN CAST("user_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("user_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("user_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("user_id" AS TEXT)
  END AS "user_id",
  "timestamp"
FROM identity.stitcher__raw_pages_table AS raw_pages_table;

CREATE OR REPLACE VIEW identity.stitcher__events_pages AS
SELECT
  'pages' AS source_table,
  CAST("id" AS TEXT) AS message_id,
  CAST("anonymous_id" AS TEXT) AS anonymous_id,
  CAST("user_id" AS TEXT) AS user_id,
  CAST(NULL AS TEXT) AS previous_id,
  CAST("timestamp" AS TIMESTAMP) AS ts
FROM identity.stitcher__raw_pages_table_ids AS raw_pages_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__raw_identifies_table AS
SELECT
  *
FROM "analytics"."identifies";

CREATE OR REPLACE VIEW identity.stitcher__raw_identifies_table_ids AS
SELECT
  CASE
    WHEN CAST("id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("id" AS TEXT)
  END AS "id",
  CASE
    WHEN CAST("anonymous_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("anonymous_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("anonymous_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("anonymous_id" AS TEXT)
  END AS "anonymous_id",
  CASE
    WHEN CAST("user_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("user_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("user_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("user_id" AS TEXT)
  END AS "user_id",
  "timestamp",
  "plan"
FROM identity.stitcher__raw_identifies_table AS raw_identifies_table;

CREATE OR REPLACE VIEW identity.stitcher__events_identifies AS
SELECT
  'identifies' AS source_table,
  CAST("id" AS TEXT) AS message_id,
  CAST("anonymous_id" AS TEXT) AS anonymous_id,
  CAST("user_id" AS TEXT) AS user_id,
  CAST(NULL AS TEXT) AS previous_id,
  CAST("timestamp" AS TIMESTAMP) AS ts
FROM identity.stitcher__raw_identifies_table_ids AS raw_identifies_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__identify_traits AS
SELECT
  CAST("anonymous_id" AS TEXT) AS anonymous_id,
  CAST("user_id" AS TEXT) AS user_id,
  CAST("timestamp" AS TIMESTAMP) AS ts,
  "plan" AS "__trait_0"
FROM identity.stitcher__raw_identifies_table_ids AS raw_identifies_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__raw_aliases_table AS
SELECT
  *
FROM "analytics"."aliases";

CREATE OR REPLACE VIEW identity.stitcher__raw_aliases_table_ids AS
SELECT
  CASE
    WHEN CAST("id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("id" AS TEXT)
  END AS "id",
  CASE
    WHEN CAST("previous_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("previous_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("previous_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("previous_id" AS TEXT)
  END AS "previous_id",
  CASE
    WHEN CAST("user_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("user_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("user_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("user_id" AS TEXT)
  END AS "user_id",
  CASE
    WHEN CAST("anonymous_id" AS TEXT) LIKE '%.%0'
    AND REGEXP_MATCHES(CAST("anonymous_id" AS TEXT), '^-?[0-9]+[.]0+$')
    THEN REGEXP_REPLACE(CAST("anonymous_id" AS TEXT), '[.]0+$', '', 'g')
    ELSE CAST("anonymous_id" AS TEXT)
  END AS "anonymous_id",
  "timestamp"
FROM identity.stitcher__raw_aliases_table AS raw_aliases_table;

CREATE OR REPLACE VIEW identity.stitcher__events_aliases AS
SELECT
  'aliases' AS source_table,
  CAST("id" AS TEXT) AS message_id,
  CAST("anonymous_id" AS TEXT) AS anonymous_id,
  CAST("user_id" AS TEXT) AS user_id,
  CAST("previous_id" AS TEXT) AS previous_id,
  CAST("timestamp" AS TIMESTAMP) AS ts
FROM identity.stitcher__raw_aliases_table_ids AS raw_aliases_table_ids;

CREATE OR REPLACE VIEW identity.stitcher__events AS
SELECT
  *
FROM identity.stitcher__events_tracks AS events_tracks
UNION ALL
SELECT
  *
FROM identity.stitcher__events_pages AS events_pages
UNION ALL
SELECT
  *
FROM identity.stitcher__events_identifies AS events_identifies
UNION ALL
SELECT
  *
FROM identity.stitcher__events_aliases AS events_aliases;

DROP TABLE IF EXISTS identity.stitcher__junk_values;

CREATE TABLE identity.stitcher__junk_values AS
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('null' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('undefined' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('none' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('nil' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('nan' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('inf' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('-inf' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('infinity' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('-infinity' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('0' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('-1' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('anonymous' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('guest' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('unknown' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('n/a' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('[object object]' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('true' AS TEXT) AS "value"
UNION ALL
SELECT
  CAST(NULL AS TEXT) AS "identifier_type",
  CAST('false' AS TEXT) AS "value";

DROP TABLE IF EXISTS identity.stitcher__pairs;

CREATE TABLE identity.stitcher__pairs AS
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
    {'ts_unknown': ts IS NULL, 'ts': ts, 'message_id_unknown': message_id IS NULL, 'message_id': message_id}
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM identity.stitcher__events_tracks AS events_tracks
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id
UNION ALL
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
    {'ts_unknown': ts IS NULL, 'ts': ts, 'message_id_unknown': message_id IS NULL, 'message_id': message_id}
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM identity.stitcher__events_pages AS events_pages
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id
UNION ALL
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
    {'ts_unknown': ts IS NULL, 'ts': ts, 'message_id_unknown': message_id IS NULL, 'message_id': message_id}
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM identity.stitcher__events_identifies AS events_identifies
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id
UNION ALL
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
    {'ts_unknown': ts IS NULL, 'ts': ts, 'message_id_unknown': message_id IS NULL, 'message_id': message_id}
  ) /* NULL ts sorts after every time, so an event with a time is always the better evidence. */ /* The *_unknown flags spell that order out: engines disagree on where a NULL field sorts */ /* inside a struct (DuckDB: last, Spark: first), but all agree that false < true. */ FILTER(WHERE
    (
      NOT anonymous_id IS NULL AND NOT user_id IS NULL
    )
    OR (
      NOT previous_id IS NULL AND NOT user_id IS NULL
    )) AS first_evidence
FROM identity.stitcher__events_aliases AS events_aliases
GROUP BY
  source_table,
  anonymous_id,
  user_id,
  previous_id;

DROP TABLE IF EXISTS identity.stitcher__duplicate_hashes;

DROP TABLE IF EXISTS identity.stitcher__first_deliveries;

DROP TABLE IF EXISTS identity.stitcher__pair_totals;

CREATE TABLE identity.stitcher__pair_totals AS
SELECT
  source_table,
  CAST(SUM(event_count) AS BIGINT) AS event_count,
  CAST(SUM(events_without_ts) AS BIGINT) AS events_without_ts,
  MIN(first_ts) AS first_ts,
  MAX(last_ts) AS last_ts
FROM identity.stitcher__pairs AS pairs
GROUP BY
  source_table;

DROP TABLE IF EXISTS identity.stitcher__identifiers;

DROP TABLE IF EXISTS identity.stitcher__identifiers;

CREATE TABLE identity.stitcher__identifiers AS
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
  FROM identity.stitcher__pairs AS pairs
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
  FROM identity.stitcher__pairs AS pairs
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
  FROM identity.stitcher__pairs AS pairs
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
    LOWER(REGEXP_REPLACE(identifier, '^[\t\n\f\r "'']+|[\t\n\f\r "'']+$', '', 'g')) AS junk_key
  FROM grouped
), junk_any_type /* junk_key is computed once and every identifier is looked up in the two small lists by hash */ /* join: no DISTINCT or self-join over the 1.6M identifiers. */ AS (
  SELECT DISTINCT
    value
  FROM identity.stitcher__junk_values AS junk_values
  WHERE
    identifier_type IS NULL
), junk_one_type AS (
  SELECT DISTINCT
    identifier_type,
    value
  FROM identity.stitcher__junk_values AS junk_values
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
    WHEN REGEXP_MATCHES(n.junk_key, '^([0-]*)$')
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
    identifier_type,
    identifier
  FROM identity.stitcher__identifiers AS identifiers
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
      "anonymous_id" AS a,
      "user_id" AS b
    FROM identity.stitcher__pairs AS pairs
    WHERE
      NOT "anonymous_id" IS NULL AND NOT "user_id" IS NULL
  ) AS l
), edges AS (
  SELECT
    e.pair_no,
    e.a,
    e.b
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
      ORDER BY degree
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

CREATE OR REPLACE VIEW identity.stitcher__identifiers_quarantined AS
WITH hub AS (
  SELECT
    identifier_type,
    identifier,
    MAX(
      {'degree': degree, 'linked_type': linked_type, 'contention': contention, 'typical_degree': typical_degree, 'hub_rule': hub_rule}
    ) AS worst
  FROM identity.stitcher__hub_degrees AS hub_degrees
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
FROM identity.stitcher__identifiers AS i
LEFT JOIN hub AS h
  ON h.identifier_type = i.identifier_type AND h.identifier = i.identifier;

DROP TABLE IF EXISTS identity.stitcher__identifier_totals;

CREATE TABLE identity.stitcher__identifier_totals AS
SELECT
  identifier_type,
  NOT quarantine_reason IS NULL AS quarantined,
  COUNT(*) AS identifiers
FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
GROUP BY
  identifier_type,
  NOT quarantine_reason IS NULL;

DROP TABLE IF EXISTS identity.stitcher__quarantine;

CREATE TABLE identity.stitcher__quarantine AS
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
FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
WHERE
  NOT quarantine_reason IS NULL;

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
  CAST(SUM(pr.event_count) AS BIGINT) AS event_count,
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
  1,
  2;

DROP TABLE IF EXISTS identity.stitcher__candidate_edges;

CREATE TABLE identity.stitcher__candidate_edges AS
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
  FROM identity.stitcher__pairs AS pairs
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
  FROM identity.stitcher__pairs AS pairs
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
      {'ts_unknown': first_evidence.ts IS NULL, 'ts': first_evidence.ts, 'message_id_unknown': first_evidence.message_id IS NULL, 'message_id': first_evidence.message_id, 'source_table': source_table}
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

DROP TABLE IF EXISTS identity.stitcher__pairs;

DROP TABLE IF EXISTS identity.stitcher__identifiers_checked;

CREATE TABLE identity.stitcher__identifiers_checked AS
WITH numbered AS (
  SELECT
    identifier_type,
    identifier,
    CAST(ROW_NUMBER() OVER (
      ORDER BY identifier_type <> 'user_id', first_seen IS NULL, first_seen, identifier, identifier_type
    ) - 1 AS BIGINT) AS node_id
  FROM identity.stitcher__identifiers_quarantined AS identifiers_quarantined
  WHERE
    quarantine_reason IS NULL
)
SELECT
  i.*,
  n.node_id
FROM identity.stitcher__identifiers_quarantined AS i
LEFT JOIN numbered AS n
  ON n.identifier_type = i.identifier_type AND n.identifier = i.identifier;

DROP VIEW IF EXISTS identity.stitcher__identifiers_quarantined;

DROP TABLE IF EXISTS identity.stitcher__identifiers;

DROP TABLE IF EXISTS identity.stitcher__hub_degrees;

DROP TABLE IF EXISTS identity.stitcher__checked_edges;

CREATE TABLE identity.stitcher__checked_edges AS
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
    *,
    ROW_NUMBER() OVER (
      PARTITION BY from_node, rule, to_type, junk_refusal IS NULL
      ORDER BY evidence_ts, evidence_message_id, to_id
    ) AS user_rank
  FROM identity.stitcher__checked_edges AS checked_edges
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

DROP TABLE IF EXISTS identity.stitcher__checked_edges;

DROP TABLE IF EXISTS identity.stitcher__policy_base;

DROP TABLE IF EXISTS identity.stitcher__nodes;

CREATE TABLE identity.stitcher__nodes AS
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
FROM identity.stitcher__identifiers_checked AS identifiers_checked
WHERE
  NOT node_id IS NULL;

DROP TABLE IF EXISTS identity.stitcher__identifiers_checked;

DROP TABLE IF EXISTS identity.stitcher__node_edges;

CREATE TABLE identity.stitcher__node_edges AS
SELECT
  from_node AS src,
  to_node AS dst
FROM identity.stitcher__classified_edges AS classified_edges
WHERE
  kept;

DROP TABLE IF EXISTS identity.stitcher__cc_edges;

CREATE TABLE identity.stitcher__cc_edges AS
SELECT
  src,
  dst
FROM identity.stitcher__node_edges AS node_edges;

-- stitcher:loop max_rounds=100
DROP TABLE IF EXISTS identity.stitcher__cc_large;

CREATE TABLE identity.stitcher__cc_large AS
WITH neighbours AS (
  SELECT
    src AS u,
    dst AS v
  FROM identity.stitcher__cc_edges AS cc_edges
  WHERE
    src <> dst
  UNION ALL
  SELECT
    dst AS u,
    src AS v
  FROM identity.stitcher__cc_edges AS cc_edges
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

DROP TABLE IF EXISTS identity.stitcher__cc_edges;

CREATE TABLE identity.stitcher__cc_edges AS
WITH down AS (
  SELECT DISTINCT
    GREATEST(src, dst) AS u,
    LEAST(src, dst) AS v
  FROM identity.stitcher__cc_large AS cc_large
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
  FROM identity.stitcher__cc_edges AS cc_edges
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
  FROM identity.stitcher__cc_edges AS e
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
    FROM identity.stitcher__cc_edges AS cc_edges
  ) AS edges;
-- stitcher:end-loop

DROP TABLE IF EXISTS identity.stitcher__node_components;

CREATE TABLE identity.stitcher__node_components AS
SELECT
  n.node_id,
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
    component,
    COUNT(*) AS identifier_count
  FROM identity.stitcher__node_components AS node_components
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
JOIN identity.stitcher__nodes AS n
  ON n.node_id = s.component;

DROP TABLE IF EXISTS identity.stitcher__id_map;

CREATE TABLE identity.stitcher__id_map AS
SELECT
  n.identifier_type,
  n.identifier,
  p.person_id,
  n.first_seen AS first_seen_at,
  n.last_seen AS last_seen_at,
  n.event_count,
  n.node_id,
  c.component
FROM identity.stitcher__nodes AS n
JOIN identity.stitcher__node_components AS c
  ON c.node_id = n.node_id
JOIN identity.stitcher__persons AS p
  ON p.component = c.component;

DROP TABLE IF EXISTS identity.stitcher__person_activity;

CREATE TABLE identity.stitcher__person_activity AS
WITH attributed AS (
  SELECT
    c.component,
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
    m.component,
    r.event_count,
    r.first_ts,
    r.last_ts
  FROM identity.stitcher__reattributed_events AS r
  LEFT JOIN identity.stitcher__id_map AS m
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

DROP TABLE IF EXISTS identity.stitcher__reattributed_events;

DROP TABLE IF EXISTS identity.stitcher__nodes;

DROP TABLE IF EXISTS identity.stitcher__node_components;

DROP TABLE IF EXISTS identity.stitcher__edges;

CREATE TABLE identity.stitcher__edges AS
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
FROM identity.stitcher__classified_edges AS e
JOIN identity.stitcher__id_map AS f
  ON f.node_id = e.from_node
WHERE
  e.kept;

DROP TABLE IF EXISTS identity.stitcher__rejected_edges;

CREATE TABLE identity.stitcher__rejected_edges AS
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
  kept,
  reason,
  COUNT(*) AS edges
FROM identity.stitcher__classified_edges AS classified_edges
GROUP BY
  kept,
  reason;

DROP TABLE IF EXISTS identity.stitcher__classified_edges;

DROP TABLE IF EXISTS identity.stitcher__person_traits;

CREATE TABLE identity.stitcher__person_traits AS
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
  FROM identity.stitcher__identify_traits AS t
  LEFT JOIN identity.stitcher__quarantine AS qu
    ON qu.identifier_type = 'user_id' AND qu.identifier = t.user_id
  LEFT JOIN identity.stitcher__quarantine AS qa
    ON qa.identifier_type = 'anonymous_id' AND qa.identifier = t.anonymous_id
)
SELECT
  m.component,
  STRUCT_EXTRACT(
    MAX(
      CASE
        WHEN NOT t."__trait_0" IS NULL
        THEN {'ts': COALESCE(t.ts, CAST('0001-01-01' AS TIMESTAMP)), 'v': t."__trait_0"}
      END
    ),
    'v'
  ) AS "__trait_0"
FROM attributed AS t
JOIN identity.stitcher__id_map AS m
  ON m.identifier_type = t._attributed_type AND m.identifier = t._attributed_id
GROUP BY
  m.component;

DROP TABLE IF EXISTS identity.stitcher__users;

CREATE TABLE identity.stitcher__users AS
WITH id_lists AS (
  SELECT
    component,
    LIST_SORT(ARRAY_AGG(identifier) FILTER(WHERE
      identifier_type = 'user_id')) AS user_ids,
    LIST_SORT(ARRAY_AGG(identifier) FILTER(WHERE
      identifier_type = 'anonymous_id')) AS anonymous_ids
  FROM identity.stitcher__id_map AS id_map
  GROUP BY
    component
)
SELECT
  p.person_id,
  CASE WHEN p.anchor_type = 'user_id' THEN p.anchor_id END AS user_id,
  COALESCE(l.user_ids, CAST([] AS TEXT[])) AS user_ids,
  COALESCE(l.anonymous_ids, CAST([] AS TEXT[])) AS anonymous_ids,
  p.identifier_count,
  a.first_seen_at,
  a.last_seen_at,
  COALESCE(a.event_count, 0) AS event_count,
  t."__trait_0" AS "plan"
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
  *
FROM identity.stitcher__id_map AS id_map;

DROP TABLE IF EXISTS identity.stitcher__id_map;

CREATE TABLE identity.stitcher__id_map AS
SELECT
  identifier_type,
  identifier,
  person_id,
  first_seen_at,
  last_seen_at,
  event_count
FROM identity.stitcher__id_map_with_keys AS id_map_with_keys;

DROP TABLE IF EXISTS identity.stitcher__id_map_with_keys;

SELECT error('stitcher: table ' || table_schema || '.' || table_name || ' exists and was not made by stitcher sql, so the script stops without touching it: rename or drop it yourself, or write the outputs elsewhere with stitcher sql --output-schema or --output-table')
FROM information_schema.tables
WHERE lower(table_catalog) = lower(current_database()) AND lower(table_schema) = 'identity'
  AND lower(table_name) IN ('id_map', 'users', 'edges', 'rejected_edges', 'quarantine')
  AND coalesce(table_comment, '') NOT LIKE 'stitcher sql output%';

DROP TABLE IF EXISTS identity.id_map;

ALTER TABLE identity.stitcher__id_map RENAME TO id_map;

COMMENT ON TABLE identity.id_map IS 'stitcher sql output: id_map (stitcher 0.1.0)';

DROP TABLE IF EXISTS identity.users;

ALTER TABLE identity.stitcher__users RENAME TO users;

COMMENT ON TABLE identity.users IS 'stitcher sql output: users (stitcher 0.1.0)';

DROP TABLE IF EXISTS identity.edges;

ALTER TABLE identity.stitcher__edges RENAME TO edges;

COMMENT ON TABLE identity.edges IS 'stitcher sql output: edges (stitcher 0.1.0)';

DROP TABLE IF EXISTS identity.rejected_edges;

ALTER TABLE identity.stitcher__rejected_edges RENAME TO rejected_edges;

COMMENT ON TABLE identity.rejected_edges IS 'stitcher sql output: rejected_edges (stitcher 0.1.0)';

DROP TABLE IF EXISTS identity.quarantine;

ALTER TABLE identity.stitcher__quarantine RENAME TO quarantine;

COMMENT ON TABLE identity.quarantine IS 'stitcher sql output: quarantine (stitcher 0.1.0)';

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

