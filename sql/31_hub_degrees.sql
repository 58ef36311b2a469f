-- Step: find hubs: identifiers linked to far more identifiers of another type than one person
--       ever has (a kiosk, a hard-coded device id, a shared `guest-account` login).
-- Inputs: pairs; identifiers (quarantine_reason from the junk step); degree_queries, one
--         SELECT per hub rule over pairs and identifiers_junk (stitcher/graph.py)
-- Output: hub_degrees(identifier_type, identifier, linked_type, degree), one row per
--         (identifier, hub rule) whose threshold is exceeded.
-- Invariants: degree = number of distinct non-junk identifiers of linked_type seen on the same
--             events as the identifier; junk partners do not count, so one junk value cannot
--             make a real id a hub.
WITH identifiers_junk AS (
    SELECT identifier_type, identifier FROM identifiers WHERE quarantine_reason IS NOT NULL
)
{{degree_queries}}
