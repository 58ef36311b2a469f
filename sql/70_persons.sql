-- Step: one person per component, named after its anchor identifier.
-- Inputs: nodes, node_components(node_id, component)
-- Output: persons(component, person_id, anchor_type, anchor_id, identifier_count)
-- Invariants: the anchor is the component's earliest-seen user_id, else its earliest-seen
--             anonymous_id; ties (and unknown times) are broken by the identifier's value.
--             person_id = md5('<anchor_type>:<anchor_id>'), so it depends on the anchor only:
--             events that do not touch a person never change its id.
WITH anchors AS (
    SELECT
        c.component,
        count(*) AS identifier_count,
        min(struct_pack(
            type_rank := CASE n.identifier_type WHEN 'user_id' THEN 0 ELSE 1 END,
            -- unknown times last, spelled out: engines differ on NULLs inside structs
            first_seen_unknown := n.first_seen IS NULL,
            first_seen := n.first_seen,
            identifier := n.identifier,
            identifier_type := n.identifier_type
        )) AS anchor
    FROM nodes AS n
    JOIN node_components AS c ON c.node_id = n.node_id
    GROUP BY c.component
)
SELECT
    component,
    md5(anchor.identifier_type || ':' || anchor.identifier) AS person_id,
    anchor.identifier_type AS anchor_type,
    anchor.identifier AS anchor_id,
    identifier_count
FROM anchors
