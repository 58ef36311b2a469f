-- Step: what the run record needs of the identifiers, kept when they are freed.
-- Inputs: identifiers_quarantined (32_quarantine.sql)
-- Output: identifier_totals(identifier_type, quarantined, identifiers), one row per type and
--         quarantined or not.
-- Invariants: sum(identifiers) is the distinct typed identifiers of the run.
SELECT identifier_type, quarantine_reason IS NOT NULL AS quarantined, count(*) AS identifiers FROM identifiers_quarantined GROUP BY identifier_type, quarantine_reason IS NOT NULL
