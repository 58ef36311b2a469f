-- Step: one row per person with its ids, activity and latest traits.
-- Inputs: persons, id_map, person_activity, person_traits
-- Output: users(person_id, user_id, user_ids, anonymous_ids, identifier_count, first_seen_at,
--         last_seen_at, event_count, <traits>); each trait under its input name (lower
--         case), or trait_<name> where users already has that column (load.output_trait_names)
-- Invariants: one row per person; user_id is the anchor when the person has any user id, NULL
--             for anonymous-only people; the id lists are sorted, never NULL. Every join and
--             grouping is on the integer component.
WITH id_lists AS (
    SELECT
        component,
        list_sort(list(identifier) FILTER (WHERE identifier_type = 'user_id')) AS user_ids,
        list_sort(list(identifier) FILTER (WHERE identifier_type = 'anonymous_id'))
            AS anonymous_ids
    FROM id_map
    GROUP BY component
)
SELECT
    p.person_id,
    CASE WHEN p.anchor_type = 'user_id' THEN p.anchor_id END AS user_id,
    coalesce(l.user_ids, CAST([] AS VARCHAR[])) AS user_ids,
    coalesce(l.anonymous_ids, CAST([] AS VARCHAR[])) AS anonymous_ids,
    p.identifier_count,
    a.first_seen_at,
    a.last_seen_at,
    coalesce(a.event_count, 0) AS event_count
    {{trait_columns}}
FROM persons AS p
JOIN id_lists AS l ON l.component = p.component
LEFT JOIN person_activity AS a ON a.component = p.component
LEFT JOIN person_traits AS t ON t.component = p.component
