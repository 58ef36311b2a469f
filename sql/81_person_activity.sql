-- Step: attribute every event to one person and total each person's activity.
-- Inputs: pairs, quarantine, id_map
-- Output: person_activity(component, event_count, first_seen_at, last_seen_at); component is
--         NULL for the events whose every id is junk.
-- Invariants: an event belongs to the person of its user_id when that is usable, else of its
--             anonymous_id, else of its previous_id; so events are counted once, never once per
--             identifier, and an event whose link was refused still counts for its user.
--             Usable means not quarantined, and every usable identifier is in id_map: so the
--             choice is made against the (small) quarantine table and each pair is then looked
--             up in id_map once, not once per id column.
WITH attributed AS (
    SELECT
        pr.event_count,
        pr.first_ts,
        pr.last_ts,
        CASE
            WHEN pr.user_id IS NOT NULL AND qu.identifier IS NULL THEN 'user_id'
            WHEN pr.anonymous_id IS NOT NULL AND qa.identifier IS NULL THEN 'anonymous_id'
            WHEN pr.previous_id IS NOT NULL AND qp.identifier IS NULL THEN 'user_id'
        END AS identifier_type,
        CASE
            WHEN pr.user_id IS NOT NULL AND qu.identifier IS NULL THEN pr.user_id
            WHEN pr.anonymous_id IS NOT NULL AND qa.identifier IS NULL THEN pr.anonymous_id
            WHEN pr.previous_id IS NOT NULL AND qp.identifier IS NULL THEN pr.previous_id
        END AS identifier
    FROM pairs AS pr
    LEFT JOIN quarantine AS qu ON qu.identifier_type = 'user_id' AND qu.identifier = pr.user_id
    LEFT JOIN quarantine AS qa
      ON qa.identifier_type = 'anonymous_id' AND qa.identifier = pr.anonymous_id
    LEFT JOIN quarantine AS qp
      ON qp.identifier_type = 'user_id' AND qp.identifier = pr.previous_id
)
SELECT
    m.component,
    CAST(sum(a.event_count) AS BIGINT) AS event_count,
    min(a.first_ts) AS first_seen_at,
    max(a.last_ts) AS last_seen_at
FROM attributed AS a
LEFT JOIN id_map AS m ON m.identifier_type = a.identifier_type AND m.identifier = a.identifier
GROUP BY m.component
