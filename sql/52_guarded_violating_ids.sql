-- Step (policy guarded, with extra identifier types): every identifier of the components
--       that violate the one-user rule, to replay.
-- Inputs: nodes, kept_components, violating_kept (52_guarded_violating_kept.sql),
--         policy_components (over every usable link), alias_components
-- Output: violating_ids(node_id, identifier_type, identifier, component = its component over
--         every usable link, unit = its alias group)
-- Invariants: the usable component contains the kept one, so all ids of an event that are
--             replayed share it.
SELECT n.node_id, n.identifier_type, n.identifier, u.component, a.component AS unit
FROM nodes AS n
JOIN kept_components AS k ON k.node_id = n.node_id
JOIN violating_kept AS v ON v.component = k.component
JOIN policy_components AS u ON u.node_id = n.node_id
JOIN alias_components AS a ON a.node_id = n.node_id
