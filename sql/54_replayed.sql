-- Step (the replaying policies): the replay's result, one row per identifier of a replayed
--       component.
-- Inputs: violating_ids (52_*_violating_ids.sql), replayed_groups(identifier_type,
--         identifier, profile, dropped_for) from the replay (stitcher/graph/replay.py)
-- Output: replayed(identifier_type, identifier, profile, dropped_for): profile = the least
--         node id of its profile (an identifier no event could add is a profile of its own);
--         dropped_for = the identifier type whose limit made some event drop it.
-- Invariants: profiles are disjoint sets of nodes, so the least node id names one profile
--             across all components.
SELECT v.identifier_type, v.identifier, coalesce(g.profile, v.node_id) AS profile,
       g.dropped_for
FROM violating_ids AS v
LEFT JOIN replayed_groups AS g
  ON g.identifier_type = v.identifier_type AND g.identifier = v.identifier
