-- Step: attribute every event to one person and total each person's activity.
-- Inputs: pairs, id_map
-- Output: person_activity(person_id, event_count, first_seen_at, last_seen_at); person_id is
--         NULL for the events whose every id is junk.
-- Invariants: an event belongs to the person of its user_id when that is usable, else of its
--             anonymous_id, else of its previous_id; so events are counted once, never once per
--             identifier, and an event whose link was refused still counts for its user.
SELECT
    coalesce(u.person_id, a.person_id, pv.person_id) AS person_id,
    CAST(sum(pr.event_count) AS BIGINT) AS event_count,
    min(pr.first_ts) AS first_seen_at,
    max(pr.last_ts) AS last_seen_at
FROM pairs AS pr
LEFT JOIN id_map AS u ON u.identifier_type = 'user_id' AND u.identifier = pr.user_id
LEFT JOIN id_map AS a ON a.identifier_type = 'anonymous_id' AND a.identifier = pr.anonymous_id
LEFT JOIN id_map AS pv ON pv.identifier_type = 'user_id' AND pv.identifier = pr.previous_id
GROUP BY 1
