-- Step: which identifier each event is attributed to, totalled per identifier, so that `pairs`
--       can be freed long before persons exist.
-- Inputs: pairs; quarantine (junk values and hubs)
-- Output: attributed_events(identifier_type, identifier, event_count, first_ts, last_ts), one
--         row per identifier that events are attributed to, plus one row with NULL type and
--         identifier for the events whose every id is quarantined.
-- Invariants: an event is attributed to its user_id when that is usable (not quarantined),
--             else to its anonymous_id, else to its previous_id; so each event is counted
--             exactly once (sum(event_count) = number of events), never once per identifier,
--             and an event whose link is refused later still counts for its user. Every
--             usable identifier is a node, so persons are found by one lookup per row here
--             (81_person_activity.sql). The choice is made against the small quarantine
--             table, not the whole identifier list.
SELECT
    CASE
        WHEN pr.user_id IS NOT NULL AND qu.identifier IS NULL THEN 'user_id'
        WHEN pr.anonymous_id IS NOT NULL AND qa.identifier IS NULL THEN 'anonymous_id'
        WHEN pr.previous_id IS NOT NULL AND qp.identifier IS NULL THEN 'user_id'
    END AS identifier_type,
    CASE
        WHEN pr.user_id IS NOT NULL AND qu.identifier IS NULL THEN pr.user_id
        WHEN pr.anonymous_id IS NOT NULL AND qa.identifier IS NULL THEN pr.anonymous_id
        WHEN pr.previous_id IS NOT NULL AND qp.identifier IS NULL THEN pr.previous_id
    END AS identifier,
    CAST(sum(pr.event_count) AS BIGINT) AS event_count,
    min(pr.first_ts) AS first_ts,
    max(pr.last_ts) AS last_ts
FROM pairs AS pr
LEFT JOIN quarantine AS qu ON qu.identifier_type = 'user_id' AND qu.identifier = pr.user_id
LEFT JOIN quarantine AS qa
  ON qa.identifier_type = 'anonymous_id' AND qa.identifier = pr.anonymous_id
LEFT JOIN quarantine AS qp ON qp.identifier_type = 'user_id' AND qp.identifier = pr.previous_id
GROUP BY 1, 2
