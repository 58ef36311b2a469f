-- Step: mark hubs as quarantined, beside junk.
-- Inputs: identifiers; hub_degrees
-- Output: identifiers_quarantined = identifiers + (hub_linked_type, hub_degree, hub_contention,
--         hub_typical_degree, hub_rule), the evidence that condemned a hub (31_hub_degrees.sql);
--         quarantine_reason becomes 'hub' for hubs that are not already junk. Read by the
--         quarantine output (93_quarantine.sql), the run record's totals and the numbering
--         step (33_node_ids*.sql), which adds node_id.
-- Invariants: one row per identifier; a hub reports the hub rule under which its degree is
--             largest; the hub columns are NULL for every identifier that is not a hub.
WITH hub AS (
    SELECT identifier_type, identifier,
           max(struct_pack(
               degree := degree, linked_type := linked_type, contention := contention,
               typical_degree := typical_degree, hub_rule := hub_rule
           )) AS worst
    FROM hub_degrees
    GROUP BY identifier_type, identifier
)
SELECT
    i.identifier_type, i.identifier, i.first_seen, i.last_seen, i.event_count,
    i.attributed_event_count, i.attributed_first_ts, i.attributed_last_ts,
    CASE
        WHEN i.quarantine_reason IS NOT NULL THEN i.quarantine_reason
        WHEN h.identifier IS NOT NULL THEN 'hub'
    END AS quarantine_reason,
    h.worst.linked_type AS hub_linked_type,
    h.worst.degree AS hub_degree,
    h.worst.contention AS hub_contention,
    h.worst.typical_degree AS hub_typical_degree,
    h.worst.hub_rule AS hub_rule
FROM identifiers AS i
LEFT JOIN hub AS h ON h.identifier_type = i.identifier_type AND h.identifier = i.identifier
