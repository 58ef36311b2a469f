-- Step: find hubs: identifiers that tie together identifiers of many people (a kiosk, a
--       hard-coded device id, a shared `guest-account` login), judged by the shape of the graph
--       rather than by one fixed count, so that small and large data get the same answer.
-- Inputs: pairs; identifiers (quarantine_reason from the junk step); from stitcher/graph.py:
--         hub_type_pairs (pair_no, a_type, b_type), one row per pair of types some rule links;
--         hub_links (pair_no, a, b), a SELECT over pairs per column of a_type and column of
--         b_type; hub_rules (rule_no, pair_no, side, identifier_type, linked_type, max_linked),
--         side = 'a' or 'b', the side of the pair the rule judges; min_contention and
--         outlier_factor, validated numbers from the run options.
-- Output: hub_degrees(identifier_type, identifier, linked_type, degree, contention,
--         typical_degree, hub_rule), one row per (identifier, hub rule) found to be a hub.
-- Invariants:
--   degree = distinct non-junk partners of linked_type seen on the same events as the
--     identifier;
--   contention = distinct other identifiers of the identifier's own type that its partners lead
--     to, at most one per partner (the partner's least owner, or its greatest when the least is
--     the identifier itself). A shared login's devices lead to their owners' own logins, one
--     owner each; a power user's cookies lead nowhere; a family of three sharing one computer
--     gives each of its logins a contention of at most 2 and the computer at most 3;
--   typical_degree = the 99th percentile (nearest rank) of degree over the identifiers of the
--     type that have a partner under the rule and a contention of 0 or 1: the data's own idea
--     of "many" (0 when there are none);
--   a hub breaks at least one rule, and hub_rule names the first it breaks:
--     'max_linked'  degree > max_linked (the fixed bound a user sets),
--     'contention'  contention >= min_contention,
--     'outlier'     contention >= 2 and degree above a bar that falls as contention nears
--                   min_contention: outlier_factor * greatest(typical_degree, 3)
--                   * (min_contention - contention) / (min_contention - 2). With the defaults
--                   (4, 2.0): twice the typical degree at contention 2, the typical degree at
--                   3. The floor of 3 keeps a family computer (3 users, contention 3) clear;
--   junk identifiers are neither hubs nor partners: one junk value cannot make a real id a hub.
-- Why by type pair: the default rules judge both ends of the (anonymous_id, user_id) links, so
--   one DISTINCT and one aggregate per end serve both (at 10M events this step took 0.64 s;
--   a DISTINCT and two aggregates per rule, 1.06 s).
WITH identifiers_junk AS (
    SELECT identifier_type, identifier FROM identifiers WHERE quarantine_reason IS NOT NULL
),
type_pairs AS (
    {{hub_type_pairs}}
),
hub_rules AS (
    {{hub_rules}}
),
distinct_edges AS (
    SELECT DISTINCT pair_no, a, b FROM ({{hub_links}}) AS l
),
edges AS (
    SELECT e.pair_no, e.a, e.b
    FROM distinct_edges AS e
    JOIN type_pairs AS t ON t.pair_no = e.pair_no
    -- Anti-joins with the junk identifiers only (a few rows), after the DISTINCT: half the
    -- probes of joining every pairs row.
    LEFT JOIN identifiers_junk AS ja ON ja.identifier_type = t.a_type AND ja.identifier = e.a
    LEFT JOIN identifiers_junk AS jb ON jb.identifier_type = t.b_type AND jb.identifier = e.b
    WHERE ja.identifier IS NULL AND jb.identifier IS NULL
),
-- Each end of each edge set: its degree, and the first and last identifier on the other end
-- (for a partner shared by two or more owners, the one it leads to). The two ends (here and in
-- leads) are spelled out as mirror halves: one UNION ALL of both orientations first, read by
-- both, held every edge twice and took 0.75-0.92 s at 10M events against 0.62-0.75 s.
ends AS (
    SELECT pair_no, 'a' AS side, a AS identifier, count(*) AS degree,
           min(b) AS first_other, max(b) AS last_other
    FROM edges
    GROUP BY pair_no, a
    UNION ALL
    SELECT pair_no, 'b' AS side, b AS identifier, count(*) AS degree,
           min(a) AS first_other, max(a) AS last_other
    FROM edges
    GROUP BY pair_no, b
),
-- Only partners with two or more owners add contention: a few percent of them.
shared_partners AS (
    SELECT pair_no, side, identifier AS partner, first_other, last_other
    FROM ends
    WHERE degree > 1
),
leads AS (
    SELECT r.rule_no, e.a AS identifier,
           CASE WHEN p.first_other <> e.a THEN p.first_other ELSE p.last_other END AS other
    FROM hub_rules AS r
    JOIN edges AS e ON e.pair_no = r.pair_no
    JOIN shared_partners AS p ON p.pair_no = e.pair_no AND p.side = 'b' AND p.partner = e.b
    WHERE r.side = 'a'
    UNION ALL
    SELECT r.rule_no, e.b AS identifier,
           CASE WHEN p.first_other <> e.b THEN p.first_other ELSE p.last_other END AS other
    FROM hub_rules AS r
    JOIN edges AS e ON e.pair_no = r.pair_no
    JOIN shared_partners AS p ON p.pair_no = e.pair_no AND p.side = 'a' AND p.partner = e.a
    WHERE r.side = 'b'
),
contentions AS (
    SELECT rule_no, identifier, count(DISTINCT other) AS contention
    FROM leads
    GROUP BY rule_no, identifier
),
scored AS (
    SELECT r.rule_no, x.identifier, x.degree, coalesce(c.contention, 0) AS contention
    FROM hub_rules AS r
    JOIN ends AS x ON x.pair_no = r.pair_no AND x.side = r.side
    LEFT JOIN contentions AS c ON c.rule_no = r.rule_no AND c.identifier = x.identifier
),
-- The percentile from a histogram of degrees (a few hundred rows), not a sort of every
-- identifier; integer arithmetic, so every engine picks the same degree. Only identifiers that
-- tie no one together (contention 0 or 1) say what is typical: on small data a hub would
-- otherwise be its own 99th percentile.
histogram AS (
    SELECT rule_no, degree, count(*) AS identifiers
    FROM scored
    WHERE contention < 2
    GROUP BY rule_no, degree
),
cumulative AS (
    SELECT rule_no, degree,
           sum(identifiers) OVER (
               PARTITION BY rule_no ORDER BY degree
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS at_most,
           sum(identifiers) OVER (PARTITION BY rule_no) AS total
    FROM histogram
),
typical AS (
    SELECT rule_no, min(degree) AS typical_degree
    FROM cumulative
    WHERE 100 * at_most >= 99 * total
    GROUP BY rule_no
),
judged AS (
    SELECT
        r.identifier_type, s.identifier, r.linked_type, s.degree, s.contention,
        coalesce(t.typical_degree, 0) AS typical_degree, r.max_linked
    FROM scored AS s
    JOIN hub_rules AS r ON r.rule_no = s.rule_no
    LEFT JOIN typical AS t ON t.rule_no = s.rule_no
)
SELECT
    identifier_type, identifier, linked_type, degree, contention, typical_degree,
    CASE
        WHEN degree > max_linked THEN 'max_linked'
        WHEN contention >= {{min_contention}} THEN 'contention'
        ELSE 'outlier'
    END AS hub_rule
FROM judged
WHERE degree > max_linked
   OR contention >= {{min_contention}}
   -- The bar, multiplied out so that integers compare exactly where they can:
   -- degree > outlier_factor * greatest(typical_degree, 3)
   --          * (min_contention - contention) / (min_contention - 2)
   OR (contention >= 2
       AND degree * ({{min_contention}} - 2)
           > {{outlier_factor}} * (CASE WHEN typical_degree > 3 THEN typical_degree ELSE 3 END)
             * ({{min_contention}} - contention))
