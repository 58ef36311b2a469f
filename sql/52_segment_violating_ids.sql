-- Step (policy segment): the identifiers of the components that break a per-type limit.
-- Inputs: nodes (60_nodes.sql), policy_components(node_id, component) over every usable link
--         (53_usable_node_edges.sql); the fragment `limit`: the CASE branches of the per-type
--         limits,
--         `default`: the limit of the other types.
-- Output: violating_ids(node_id, identifier_type, identifier, component).
-- Invariants: a component is listed whole or not at all.
WITH over_limit AS (
    SELECT DISTINCT c.component
    FROM policy_components AS c
    JOIN nodes AS n ON n.node_id = c.node_id
    GROUP BY c.component, n.identifier_type
    HAVING count(*) > CASE n.identifier_type {{limit}} ELSE {{default}} END
)
SELECT n.node_id, n.identifier_type, n.identifier, c.component
FROM nodes AS n
JOIN policy_components AS c ON c.node_id = n.node_id
JOIN over_limit AS o ON o.component = c.component
