-- Step: put the identifiers in anchor order, so that each one's position is its node id
--       (engines whose tables keep a sorted query's order and expose row positions: DuckDB
--       without --memory-limit, under which the window of 33_node_ids.sql spills better).
-- Inputs: identifiers_quarantined (32_quarantine.sql)
-- Output: identifiers_sorted = identifiers_quarantined in anchor order, usable identifiers
--         first. The pipeline reads it through the view identifiers_checked, which adds
--         node_id = the row's 0-based position for the usable ones (Engine.row_position).
-- Invariants: the same order as the window in 33_node_ids.sql, so exactly its node ids; the
--   tests compare the two. Why: that window has no PARTITION BY, so DuckDB numbers every
--   identifier on one thread (1.1 s at 10M events, 15.5 s at 100M), where a plain ORDER BY
--   sorts on every thread and the table keeps the order (preserve_insertion_order).
SELECT *
FROM identifiers_quarantined
ORDER BY quarantine_reason IS NOT NULL, identifier_type <> 'user_id',
         first_seen IS NULL, first_seen, identifier, identifier_type
