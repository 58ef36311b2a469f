-- Step: the report's largest persons (report.html, "Largest persons").
-- Inputs: persons; person_activity (81_person_activity.sql)
-- Output: at most {{top}} rows: person_id, user_id, identifier_count, event_count; the
--         largest first, ties by person_id.
-- Invariants: the values users has for these persons (90_users.sql: user_id is the anchor when
--             it is a user id; event_count 0 for a person without attributed events).
--             (identifier_count, person_id) is unique, so the rows never depend on threads.
SELECT
    p.person_id,
    CASE WHEN p.anchor_type = 'user_id' THEN p.anchor_id END AS user_id,
    p.identifier_count,
    coalesce(a.event_count, 0) AS event_count
FROM persons AS p
LEFT JOIN person_activity AS a ON a.component = p.component
ORDER BY p.identifier_count DESC, p.person_id
LIMIT {{top}}
