-- Step: has the components loop converged? Checked after every large-star/small-star round.
-- Inputs: {{edges}}(src, dst), distinct, src > dst (the output of cc_small_star.sql).
-- Output: one row (unsettled, edges): unsettled = nodes with two parents plus parents that
--         have a parent themselves; edges = the edge count, for the log.
-- Invariants: unsettled = 0 <=> the edges form a star forest: every node points to one node
--   that points nowhere. As src > dst and the rounds never change a component, each star is
--   a whole component and its centre is the component's least node id.
WITH parents AS (
    SELECT src, count(*) AS n
    FROM {{edges}}
    GROUP BY src
),
unsettled AS (
    SELECT src FROM parents WHERE n > 1
    UNION ALL
    SELECT DISTINCT e.dst FROM {{edges}} AS e JOIN parents AS p ON p.src = e.dst
)
SELECT
    (SELECT count(*) FROM unsettled) AS unsettled,
    (SELECT count(*) FROM {{edges}}) AS edges
