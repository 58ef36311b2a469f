-- Step (policy mixpanel-original): each replayed request with the replay's decision.
-- Inputs: mixpanel_requests, mixpanel_replayed(seq, kept, reason) from the replay
-- Output: mixpanel_decisions(seq, rule, from_id, to_id, ts, message_id, kept, reason)
-- Invariants: one row per request that names two ids.
SELECT r.seq, r.rule, r.from_id, r.to_id, r.ts, r.message_id, d.kept, d.reason
FROM mixpanel_requests AS r
JOIN mixpanel_replayed AS d ON d.seq = r.seq
