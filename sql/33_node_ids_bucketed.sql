-- Step: number the identifiers that stay usable, bucket by bucket (engines that spread work
--       over machines: Spark, warehouses).
-- Inputs: identifiers_quarantined (32_quarantine.sql)
-- Output: identifiers_checked = identifiers_quarantined + node_id: exactly the node ids of
--         33_node_ids.sql (anchor order; NULL for quarantined identifiers, 0..n-1 for the
--         others), which the tests check on Spark and on DuckDB.
-- Why: one ordered window with no PARTITION BY is one task on Spark (and one worker in a
--   warehouse): a single executor would sort and number every identifier. Here:
--   1. each usable identifier gets a bucket that is a monotone function of a prefix of the
--      anchor-order key: (type is not user_id, first_seen is unknown, the minute of
--      first_seen, and for unknown times the first 4 characters of the identifier). Buckets
--      never overlap in key order, so the buckets' order is the identifiers' order;
--   2. each bucket is numbered by its own window (PARTITION BY bucket, ORDER BY the rest of
--      the key), spread over the tasks by bucket;
--   3. each bucket's offset is the count of usable identifiers in the buckets before it: one
--      ordered window in one task, but over the per-bucket counts (a row per minute that
--      holds first sightings, per type group: at most 86,400 rows over 30 days, whatever
--      the number of events), not over the identifiers.
--   Buckets only decide where the work runs, never the numbers: any monotone bucket gives the
--   same ids. Skew: a minute is a small share of any real period (generated data, 1M events
--   over 30 days: 62,504 buckets, the largest 0.008% of the identifiers); a day that holds
--   most identifiers is still 1,440 buckets, and clock outliers add buckets, not skew.
--   Unknown first times, all ordered by value, are split by the identifier's first 4
--   characters (a prefix orders like the value). What stays in one task: identifiers first
--   seen in the same minute (a backfill that stamps every event with one time), and timeless
--   identifiers that share their first 4 characters; their numbers are right, only not spread.
-- Invariants: NULL handling is explicit: every bucket column is non-NULL, and within a bucket
--   first_seen is either always NULL or never, so where an engine sorts NULLs (first on
--   Spark, last on DuckDB) cannot change the order. Booleans sort false first on every
--   engine. BIGINT everywhere (Spark's row_number is an INT).
WITH keyed AS (
    SELECT
        *,
        identifier_type <> 'user_id' AS bucket_later_type,
        first_seen IS NULL AS bucket_unknown_time,
        coalesce(date_trunc('minute', first_seen), TIMESTAMP '1970-01-01 00:00:00')
            AS bucket_minute,
        CASE WHEN first_seen IS NULL THEN substr(identifier, 1, 4) ELSE '' END AS bucket_prefix
    FROM identifiers_quarantined
),
bucket_sizes AS (
    SELECT bucket_later_type, bucket_unknown_time, bucket_minute, bucket_prefix,
           count(*) AS identifiers
    FROM keyed
    WHERE quarantine_reason IS NULL
    GROUP BY bucket_later_type, bucket_unknown_time, bucket_minute, bucket_prefix
),
-- offset = usable identifiers in every earlier bucket (the running sum, less this bucket).
bucket_offsets AS (
    SELECT bucket_later_type, bucket_unknown_time, bucket_minute, bucket_prefix,
           CAST(sum(identifiers) OVER (
               ORDER BY bucket_later_type, bucket_unknown_time, bucket_minute, bucket_prefix
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) - identifiers AS BIGINT) AS bucket_offset
    FROM bucket_sizes
),
-- rank within the bucket, 0-based; quarantined identifiers are left out (their node_id is NULL).
ranked AS (
    SELECT
        *,
        CAST(row_number() OVER (
            PARTITION BY bucket_later_type, bucket_unknown_time, bucket_minute, bucket_prefix
            ORDER BY first_seen, identifier, identifier_type
        ) - 1 AS BIGINT) AS rank_in_bucket
    FROM keyed
    WHERE quarantine_reason IS NULL
)
SELECT
    r.identifier_type, r.identifier, r.first_seen, r.last_seen, r.event_count,
    r.attributed_event_count, r.attributed_first_ts, r.attributed_last_ts, r.quarantine_reason,
    r.hub_linked_type, r.hub_degree, r.hub_contention, r.hub_typical_degree, r.hub_rule,
    CAST(o.bucket_offset + r.rank_in_bucket AS BIGINT) AS node_id
FROM ranked AS r
JOIN bucket_offsets AS o
  ON o.bucket_later_type = r.bucket_later_type
 AND o.bucket_unknown_time = r.bucket_unknown_time
 AND o.bucket_minute = r.bucket_minute
 AND o.bucket_prefix = r.bucket_prefix
UNION ALL
SELECT
    identifier_type, identifier, first_seen, last_seen, event_count, attributed_event_count,
    attributed_first_ts, attributed_last_ts, quarantine_reason, hub_linked_type, hub_degree,
    hub_contention, hub_typical_degree, hub_rule,
    CAST(NULL AS BIGINT) AS node_id
FROM identifiers_quarantined
WHERE quarantine_reason IS NOT NULL
