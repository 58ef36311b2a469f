-- Step: each person's latest non-null trait values.
-- Inputs: pair_traits, id_map
-- Output: person_traits(person_id, <trait columns>)
-- Invariants: a pair belongs to the person of its user_id, else of its anonymous_id (the same
--             attribution as person_activity); identifies whose ids are all junk are dropped.
SELECT
    coalesce(u.person_id, a.person_id) AS person_id
    {{trait_latest}}
FROM pair_traits AS t
LEFT JOIN id_map AS u ON u.identifier_type = 'user_id' AND u.identifier = t.user_id
LEFT JOIN id_map AS a ON a.identifier_type = 'anonymous_id' AND a.identifier = t.anonymous_id
WHERE coalesce(u.person_id, a.person_id) IS NOT NULL
GROUP BY 1
