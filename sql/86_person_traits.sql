-- Step: each person's latest non-null trait values, straight from the identify calls.
-- Inputs: identify_traits(anonymous_id, user_id, ts, <trait columns>), the traits under their
--         internal names __trait_0, __trait_1... (load.trait_column), so that no input name
--         can meet a column of ours; quarantine; id_map
-- Output: person_traits(component, <trait columns>), by the same internal names
-- Invariants: an identify call belongs to the person of its user_id, else of its anonymous_id
--             (the attribution of 35_reattributed_events.sql, decided against the small
--             quarantine table so each call is looked up in id_map once); calls whose ids are
--             all quarantined are dropped. "Latest" is by ts, an unknown ts counting as
--             oldest; equal times are broken by the greater value, so the choice never depends
--             on row order.
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
    FROM identify_traits AS t
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
