-- Step (policy guarded, with extra identifier types): the components over kept links that
--       hold user ids of two or more alias groups: the ones a chain of non-user ids joins to
--       two users.
-- Inputs: nodes, kept_components and alias_components(node_id, component) (the solver over
--         61_node_edges.sql and 55_alias_node_edges.sql)
-- Output: violating_kept(component)
-- Invariants: one row per such component.
SELECT k.component
FROM nodes AS n
JOIN kept_components AS k ON k.node_id = n.node_id
JOIN alias_components AS a ON a.node_id = n.node_id
WHERE n.identifier_type = 'user_id'
GROUP BY k.component
HAVING count(DISTINCT a.component) > 1
