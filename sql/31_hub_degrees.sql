-- Step: find hubs: identifiers linked to far more identifiers of another type than one person
--       ever has (a kiosk, a hard-coded device id, a shared `guest-account` login).
-- Inputs: pairs; identifiers (quarantine_reason from the junk step)
-- Output: hub_degrees(identifier_type, identifier, linked_type, degree), one row per
--         (identifier, hub rule) whose threshold is exceeded.
-- Invariants: degree = number of distinct non-junk identifiers of linked_type seen on the same
--             events as the identifier; junk partners do not count, so one junk value cannot
--             make a real id a hub.
{{degree_queries}}
