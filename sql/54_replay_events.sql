-- Step: the identifier sets to replay: every distinct set of ids carried by events that touch a
--       component breaking a limit, with its first evidence.
-- Inputs: pairs; violating_ids(identifier_type, identifier)
-- Output: rows ({{columns}}, evidence ts, evidence message id, source_table), in replay order.
-- Invariants: the order is total (time, message id, table, then the ids), so the replay never
--             depends on how rows were stored.
SELECT {{columns}}, p.first_evidence.ts, p.first_evidence.message_id, p.source_table
FROM pairs AS p
WHERE p.first_evidence IS NOT NULL AND ({{touches_violating}})
ORDER BY p.first_evidence.ts NULLS LAST, p.first_evidence.message_id NULLS LAST,
         p.source_table
