-- Step (policy mixpanel-original): the links of the request graph, whose components are the
--       groups replayed independently.
-- Inputs: mixpanel_requests (55_mixpanel_requests.sql), nodes (60_nodes.sql)
-- Output: request_edges(src, dst) node ids
-- Invariants: only requests naming two usable ids (junk and hubs are no nodes).
SELECT f.node_id AS src, t.node_id AS dst
FROM mixpanel_requests AS r
JOIN nodes AS f ON f.identifier_type = 'user_id' AND f.identifier = r.from_id
JOIN nodes AS t ON t.identifier_type = 'user_id' AND t.identifier = r.to_id
WHERE r.junk_refusal IS NULL
