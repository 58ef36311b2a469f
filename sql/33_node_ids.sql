-- Step: number the identifiers that stay usable, in one ordered pass (embedded engines).
-- Inputs: identifiers_quarantined (32_quarantine.sql)
-- Output: identifiers_checked = identifiers_quarantined + node_id.
-- Invariants: one row per identifier. node_id is NULL for quarantined identifiers and 0..n-1
--   for the others, in anchor order: user ids before other types, then earliest first_seen
--   (unknown times last), then the identifier's value and type. So the least node id of a
--   component is its anchor (see 70_persons.sql), and node ids never depend on threads or
--   file order. 33_node_ids_bucketed.sql gives exactly these numbers on engines that spread
--   the work over machines (Engine.distributed_numbering); the tests compare the two.
SELECT
    *,
    -- One ordered pass numbers every identifier, quarantined ones last, so the usable ones get
    -- 0..n-1 with no PARTITION BY: on DuckDB a partitioned window cost ~50% more, and the
    -- bucketed form 10-100% more (medians of 5 at 1M events: 0.20 and 0.37 s against 0.18 and
    -- 0.19 s; bench/numbering.py). Booleans sort false first on every engine. BIGINT
    -- everywhere (Spark's row_number is an INT).
    CASE WHEN quarantine_reason IS NULL THEN CAST(row_number() OVER (
        ORDER BY quarantine_reason IS NOT NULL, identifier_type <> 'user_id',
                 first_seen IS NULL, first_seen, identifier, identifier_type
    ) - 1 AS BIGINT) END AS node_id
FROM identifiers_quarantined
