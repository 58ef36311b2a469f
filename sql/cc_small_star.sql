-- Step: one small-star step of connected components in SQL (Kiveris et al. 2014), run after
--       cc_large_star.sql in every round.
-- Inputs: {{edges}}(src, dst) BIGINT node ids, either orientation (normally src > dst).
-- Output: (src, dst), distinct.
-- Invariants: src > dst after this step. Each node u takes its smaller neighbours N(u) and
--   their least member m; u and every other member of N(u) are re-linked to m. All of them
--   were linked to u, so components are unchanged, and each node's pointer only decreases.
WITH down AS (
    SELECT DISTINCT greatest(src, dst) AS u, least(src, dst) AS v
    FROM {{edges}}
    WHERE src <> dst
),
least_below AS (
    SELECT u, min(v) AS m
    FROM down
    GROUP BY u
)
SELECT DISTINCT src, dst
FROM (
    SELECT d.v AS src, l.m AS dst
    FROM down AS d
    JOIN least_below AS l ON l.u = d.u
    WHERE d.v <> l.m
    UNION ALL
    SELECT u AS src, m AS dst
    FROM least_below
) AS relinked
