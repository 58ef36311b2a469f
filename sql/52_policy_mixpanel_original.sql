-- Step: classify links after the replay of Original ID Merge's special events.
-- Inputs: mixpanel_decisions(seq, rule, from_id, to_id, ts, message_id, kept, reason), one row
--         per special event that named two ids, seq = its place in the replay order;
--         identifiers_checked (node_id)
-- Output: classified_edges = candidate_edges columns + (from_node, to_node, kept BOOLEAN,
--         reason VARCHAR), one row
--         per requested merge (from_id, to_id, rule); both ends typed user_id (distinct ids).
-- Invariants: a merge asked for several times is kept when any request was applied (later
--             requests of a merged pair change nothing); its evidence is the first applied
--             request, else the first request, whose refusal (Mixpanel's error name, or
--             junk_/hub_user_id) is the reason. Ordinary events' links play no part: in
--             Original only these events merge.
WITH grouped AS (
    SELECT
        rule, from_id, to_id,
        CAST(count(*) AS BIGINT) AS event_count,
        min(ts) AS first_ts,
        max(ts) AS last_ts,
        bool_or(kept) AS kept,
        min(seq) FILTER (WHERE kept) AS kept_seq,
        min(seq) AS first_seq
    FROM mixpanel_decisions
    GROUP BY rule, from_id, to_id
)
SELECT
    'user_id' AS from_type, g.from_id, 'user_id' AS to_type, g.to_id, g.rule,
    g.event_count, g.first_ts, g.last_ts,
    d.ts AS evidence_ts,
    d.message_id AS evidence_message_id,
    'mixpanel' AS evidence_table,
    f.node_id AS from_node,
    t.node_id AS to_node,
    g.kept,
    CASE WHEN g.kept THEN g.rule ELSE d.reason END AS reason
FROM grouped AS g
JOIN mixpanel_decisions AS d ON d.seq = coalesce(g.kept_seq, g.first_seq)
LEFT JOIN identifiers_checked AS f ON f.identifier_type = 'user_id' AND f.identifier = g.from_id
LEFT JOIN identifiers_checked AS t ON t.identifier_type = 'user_id' AND t.identifier = g.to_id
