-- Step: mark hubs as quarantined, beside junk, and number the identifiers that stay usable.
-- Inputs: identifiers; hub_degrees
-- Output: identifiers_checked = identifiers + (hub_linked_type, hub_degree, node_id);
--         quarantine_reason becomes 'hub' for hubs that are not already junk.
-- Invariants: one row per identifier; a hub's reported degree is its largest over the rules.
--   node_id is NULL for quarantined identifiers and 0..n-1 for the others, in anchor order:
--   user ids before other types, then earliest first_seen (unknown times last), then the
--   identifier's value and type. So the least node id of a component is its anchor (see
--   70_persons.sql), and node ids never depend on threads or file order.
WITH hub AS (
    SELECT identifier_type, identifier,
           max(struct_pack(degree := degree, linked_type := linked_type)) AS worst
    FROM hub_degrees
    GROUP BY identifier_type, identifier
),
checked AS (
    SELECT
        i.identifier_type, i.identifier, i.first_seen, i.last_seen, i.event_count,
        i.attributed_event_count, i.attributed_first_ts, i.attributed_last_ts,
        CASE
            WHEN i.quarantine_reason IS NOT NULL THEN i.quarantine_reason
            WHEN h.identifier IS NOT NULL THEN 'hub'
        END AS quarantine_reason,
        h.worst.linked_type AS hub_linked_type,
        h.worst.degree AS hub_degree
    FROM identifiers AS i
    LEFT JOIN hub AS h ON h.identifier_type = i.identifier_type AND h.identifier = i.identifier
)
SELECT
    *,
    -- One ordered pass numbers every identifier, quarantined ones last, so the usable ones get
    -- 0..n-1 with no PARTITION BY (a partitioned window cost ~50% more on DuckDB). Booleans
    -- sort false first on every engine. BIGINT everywhere (Spark's row_number is an INT).
    CASE WHEN quarantine_reason IS NULL THEN CAST(row_number() OVER (
        ORDER BY quarantine_reason IS NOT NULL, identifier_type <> 'user_id',
                 first_seen IS NULL, first_seen, identifier, identifier_type
    ) - 1 AS BIGINT) END AS node_id
FROM checked
