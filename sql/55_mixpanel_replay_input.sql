-- Step (policy mixpanel-original): the replay's input, each request that names two ids with
--       its group.
-- Inputs: mixpanel_requests, nodes, request_components(node_id, component)
-- Output: rows (component, seq, rule, from_id, to_id, junk_refusal), grouped by component for
--         the replay (stitcher/graph/mixpanel_replay.py)
-- Invariants: component = the component of the from id, or -1 when that id is no node (junk
--             or a hub: refused whatever the state, so it may go with any group).
SELECT coalesce(c.component, -1) AS component, r.seq, r.rule, r.from_id, r.to_id,
       r.junk_refusal
FROM mixpanel_requests AS r
LEFT JOIN nodes AS f ON f.identifier_type = 'user_id' AND f.identifier = r.from_id
LEFT JOIN request_components AS c ON c.node_id = f.node_id
WHERE r.from_id IS NOT NULL AND r.to_id IS NOT NULL
