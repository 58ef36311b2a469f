-- Step: give every usable identifier a dense integer id for the components solver.
-- Inputs: identifiers
-- Output: nodes(node_id, identifier_type, identifier, first_seen, last_seen, event_count),
--         node_id = 0 .. n-1.
-- Invariants: junk identifiers are not nodes (they are in quarantine instead); node ids are
--             assigned in (identifier_type, identifier) order, so they do not depend on threads.
SELECT
    -- BIGINT on every engine (Spark's row_number is a 32-bit INT).
    CAST(row_number() OVER (ORDER BY identifier_type, identifier) - 1 AS BIGINT) AS node_id,
    identifier_type, identifier, first_seen, last_seen, event_count
FROM identifiers_checked
WHERE quarantine_reason IS NULL
