-- Step: find the message ids that may have been delivered more than once (only with --dedupe).
-- Inputs: events (message_id)
-- Output: duplicate_hashes(message_hash), one row per hash of a message id seen on two or
--         more events.
-- Invariants: every message id that occurs twice has its hash here; a hash collision only
--             adds a unique id, which the next step then checks exactly. Grouping 64-bit
--             hashes instead of the id strings, and ranking only the few rows they point at,
--             is what keeps --dedupe near one extra pass over the ids (ranking every event by
--             message id cost more than the rest of the run at 10M events).
SELECT hash(message_id) AS message_hash
FROM events
WHERE message_id IS NOT NULL
GROUP BY hash(message_id)
HAVING count(*) > 1
