-- Step: each person's latest non-null trait values.
-- Inputs: pair_traits, quarantine, id_map
-- Output: person_traits(component, <trait columns>)
-- Invariants: a pair belongs to the person of its user_id, else of its anonymous_id (the same
--             attribution as person_activity, decided against the small quarantine table so
--             each pair is looked up in id_map once); identifies whose ids are all junk are
--             dropped.
WITH attributed AS (
    SELECT
        t.*,
        CASE
            WHEN t.user_id IS NOT NULL AND qu.identifier IS NULL THEN 'user_id'
            WHEN t.anonymous_id IS NOT NULL AND qa.identifier IS NULL THEN 'anonymous_id'
        END AS _attributed_type,
        CASE
            WHEN t.user_id IS NOT NULL AND qu.identifier IS NULL THEN t.user_id
            WHEN t.anonymous_id IS NOT NULL AND qa.identifier IS NULL THEN t.anonymous_id
        END AS _attributed_id
    FROM pair_traits AS t
    LEFT JOIN quarantine AS qu ON qu.identifier_type = 'user_id' AND qu.identifier = t.user_id
    LEFT JOIN quarantine AS qa
      ON qa.identifier_type = 'anonymous_id' AND qa.identifier = t.anonymous_id
)
SELECT
    m.component
    {{trait_latest}}
FROM attributed AS t
JOIN id_map AS m ON m.identifier_type = t._attributed_type AND m.identifier = t._attributed_id
GROUP BY m.component
