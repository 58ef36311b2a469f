-- Step: one large-star step of connected components in SQL (Kiveris et al., "Connected
--       Components in MapReduce and Beyond", 2014); used by engines that keep the graph
--       (Spark, warehouses). Repeated with cc_small_star.sql until cc_converged.sql says done.
-- Inputs: {{edges}}(src, dst) BIGINT node ids: an undirected graph, either orientation,
--         duplicates and self loops allowed.
-- Output: (src, dst), distinct.
-- Invariants: src > dst after this step. Each node u finds m(u), the least of u and its
--   neighbours, and every neighbour v > u is re-linked to m(u): v and m(u) were both linked to
--   u, so no component gains or loses a node. The least node of a component stays in it, and
--   every other node points to a smaller one.
WITH neighbours AS (
    SELECT src AS u, dst AS v FROM {{edges}} WHERE src <> dst
    UNION ALL
    SELECT dst AS u, src AS v FROM {{edges}} WHERE src <> dst
),
least_around AS (
    SELECT u, least(u, min(v)) AS m
    FROM neighbours
    GROUP BY u
)
SELECT DISTINCT n.v AS src, l.m AS dst
FROM neighbours AS n
JOIN least_around AS l ON l.u = n.u
WHERE n.v > n.u
