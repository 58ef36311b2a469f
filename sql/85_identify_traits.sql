-- Step: the latest non-null value of every trait, per (anonymous_id, user_id) of identifies.
-- Inputs: identify_traits(anonymous_id, user_id, ts, <trait columns>)
-- Output: pair_traits(anonymous_id, user_id, <trait>: STRUCT(ts, v)) per pair.
-- Invariants: "latest" is by ts, an unknown ts counting as oldest; equal times are broken by
--             the greater value, so the choice never depends on row order.
SELECT
    anonymous_id,
    user_id
    {{trait_aggregates}}
FROM identify_traits
GROUP BY anonymous_id, user_id
