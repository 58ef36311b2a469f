-- Step: the events whose attributed identifier (30_identifiers.sql) turned out to be
--       quarantined, attributed again to the next usable id they carry, so that `pairs` can be
--       freed long before persons exist.
-- Inputs: pairs; quarantine (junk values and hubs)
-- Output: reattributed_events(identifier_type, identifier, event_count, first_ts, last_ts),
--         one row per identifier that such events go to, plus one row with NULL type and
--         identifier for the events whose every id is quarantined (or that carry none).
-- Invariants: an event is attributed to its user_id when that is usable (not quarantined),
--             else to its anonymous_id, else to its previous_id. 30_identifiers.sql counted
--             every event for its user_id, else anonymous_id, else previous_id; this step
--             takes exactly the events whose id so chosen is quarantined or absent, so with
--             the usable identifiers' attributed_* columns each event counts exactly once
--             (sum = number of events), and an event whose link is refused later still
--             counts for its user. Only the few quarantined ids are looked up: the pairs are
--             filtered against the small quarantine table before anything is grouped.
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
WHERE (pr.user_id IS NOT NULL AND qu.identifier IS NOT NULL)
   OR (pr.user_id IS NULL AND pr.anonymous_id IS NOT NULL AND qa.identifier IS NOT NULL)
   OR (pr.user_id IS NULL AND pr.anonymous_id IS NULL
       AND (pr.previous_id IS NULL OR qp.identifier IS NOT NULL))
GROUP BY 1, 2
