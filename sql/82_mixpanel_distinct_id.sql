-- Step: the distinct_id Mixpanel would report for each identifier's person (Mixpanel input).
-- Inputs: id_map_base (id_map as built by sql/80_id_map.sql); {{preferred}}(identifier_type,
--         identifier): the ids a person is reported by when it has one (Simplified: its
--         $user_id; Original: the $identified_ids of applied $identify events).
-- Output: id_map = id_map_base + distinct_id.
-- Invariants: one distinct_id per person: its earliest-seen preferred id, else its
--             earliest-seen device, else its earliest-seen id, unknown times last, ties by
--             value; a device is written `$device:<device_id>` as Simplified ID Merge writes
--             it, every other id as is.
WITH picked AS (
    SELECT
        m.person_id,
        min(struct_pack(
            not_preferred := p.identifier IS NULL,
            not_device := m.identifier_type <> 'anonymous_id',
            first_seen_unknown := m.first_seen_at IS NULL,
            first_seen := m.first_seen_at,
            distinct_id := CASE
                WHEN m.identifier_type = 'anonymous_id' THEN '$device:' || m.identifier
                ELSE m.identifier
            END
        )) AS pick
    FROM id_map_base AS m
    LEFT JOIN {{preferred}} AS p
      ON p.identifier_type = m.identifier_type AND p.identifier = m.identifier
    GROUP BY m.person_id
)
SELECT m.*, p.pick.distinct_id AS distinct_id
FROM id_map_base AS m
JOIN picked AS p ON p.person_id = m.person_id
