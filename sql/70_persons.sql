-- Step: one person per component, named after its anchor identifier.
-- Inputs: nodes, node_components(node_id, component), component = the least node id in it
-- Output: persons(component, person_id, anchor_type, anchor_id, identifier_count)
-- Invariants: the anchor is the component's earliest-seen user_id, else its earliest-seen
--             identifier of another type; ties (and unknown times) are broken by the
--             identifier's value. Node ids are numbered in exactly that order
--             (33_node_ids.sql), so the anchor is the node whose id is the component label:
--             no ordering aggregate over the identifiers is needed here.
--             person_id = md5('<anchor_type>:<anchor_id>'), so it depends on the anchor only:
--             events that do not touch a person never change its id.
WITH sizes AS (
    SELECT component, count(*) AS identifier_count
    FROM node_components
    GROUP BY component
)
SELECT
    s.component,
    md5(n.identifier_type || ':' || n.identifier) AS person_id,
    n.identifier_type AS anchor_type,
    n.identifier AS anchor_id,
    s.identifier_count
FROM sizes AS s
JOIN nodes AS n ON n.node_id = s.component
