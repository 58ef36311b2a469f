-- Step: the usable identifiers, by the dense integer id the components solver works on.
-- Inputs: identifiers_checked (node_id numbered by 33_node_ids*.sql)
-- Output: nodes(node_id, identifier_type, identifier, first_seen, last_seen, event_count,
--         attributed_event_count, attributed_first_ts, attributed_last_ts), node_id = 0 .. n-1.
-- Invariants: junk identifiers and hubs are not nodes (they are in quarantine instead); node
--             ids are in anchor order (see 33_node_ids.sql).
SELECT node_id, identifier_type, identifier, first_seen, last_seen, event_count,
       attributed_event_count, attributed_first_ts, attributed_last_ts
FROM identifiers_checked
WHERE node_id IS NOT NULL
