-- Step: identifiers that were not allowed to identify anyone (output `quarantine`).
-- Inputs: identifiers_quarantined (32_quarantine.sql)
-- Output: quarantine(identifier_type, identifier, reason, event_count, first_seen_at,
--         last_seen_at, hub_linked_type, hub_degree, hub_contention, hub_typical_degree,
--         hub_rule)
-- Invariants: exactly the identifiers missing from id_map; reason is junk_value, junk_pattern
--             or hub; hubs carry the evidence that condemned them (31_hub_degrees.sql): the
--             linked type, the degree, the contention, the type's typical degree and the
--             rule broken; those columns are NULL on junk.
SELECT
    identifier_type, identifier, quarantine_reason AS reason, event_count,
    first_seen AS first_seen_at, last_seen AS last_seen_at,
    hub_linked_type, hub_degree, hub_contention, hub_typical_degree, hub_rule
FROM identifiers_quarantined
WHERE quarantine_reason IS NOT NULL
