-- Step: component labels from the converged star forest of the SQL components loop.
-- Inputs: {{nodes}}(node_id, ...); {{edges}}(src, dst), a star forest (cc_converged = 0).
-- Output: node_components(node_id, component), one row per node.
-- Invariants: component = the least node id of the node's component (a star's centre, or the
--   node itself when no kept link touches it), so labels do not depend on the engine or on
--   the number of rounds.
SELECT n.node_id, coalesce(e.dst, n.node_id) AS component
FROM {{nodes}} AS n
LEFT JOIN {{edges}} AS e ON e.src = n.node_id
