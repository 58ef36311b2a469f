-- Step (policy mixpanel-original): the $identified_ids of applied $identify events, the ids
--       a person is reported by.
-- Inputs: mixpanel_decisions (55_mixpanel_decisions.sql)
-- Output: mixpanel_identified(identifier_type, identifier)
-- Invariants: user ids only, each once.
SELECT DISTINCT 'user_id' AS identifier_type, to_id AS identifier
FROM mixpanel_decisions
WHERE kept AND rule = '$identify'
