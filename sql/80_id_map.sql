-- Step: every usable identifier and its person.
-- Inputs: nodes, node_components, persons
-- Output: id_map(identifier_type, identifier, person_id, first_seen_at, last_seen_at,
--         event_count, node_id, component); the last two are for the steps after this one
--         and are not written to the output file.
-- Invariants: exactly one row per node, i.e. per non-junk identifier in the input.
SELECT
    n.identifier_type,
    n.identifier,
    p.person_id,
    n.first_seen AS first_seen_at,
    n.last_seen AS last_seen_at,
    n.event_count,
    n.node_id,
    c.component
FROM nodes AS n
JOIN node_components AS c ON c.node_id = n.node_id
JOIN persons AS p ON p.component = c.component
