-- Step: identifiers that were not allowed to identify anyone (output `quarantine`).
-- Inputs: identifiers
-- Output: quarantine(identifier_type, identifier, reason, event_count, first_seen_at,
--         last_seen_at)
-- Invariants: exactly the identifiers missing from id_map.
SELECT
    identifier_type, identifier, junk_reason AS reason, event_count,
    first_seen AS first_seen_at, last_seen AS last_seen_at
FROM identifiers
WHERE junk_reason IS NOT NULL
