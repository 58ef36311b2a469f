"""Merge policies: each turns `checked_edges` into `classified_edges` (kept or refused, and why).

* `connected`, `guarded`: one SQL step each (sql/51_policy_*.sql), whole-graph, order-free;
  `guarded` adds a replay where extra identifier types could chain two user ids together.
* `segment`: Segment Unify's per-type limits and priority, an order-dependent replay
  (stitcher/graph/replay.py) run only inside the components that break a limit.
* `mixpanel-simplified`: SQL (sql/51_policy_mixpanel-simplified.sql); `mixpanel-original`: a
  replay of Mixpanel's special events (stitcher/graph/mixpanel_original.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pyarrow as pa

from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.engines.base import quote_identifier, quote_literal
from stitcher.graph.components import components_table, solve_in_sql
from stitcher.graph.identifiers import event_columns
from stitcher.graph.mixpanel_original import original_policy
from stitcher.graph.replay import GuardedReplay, SegmentReplay
from stitcher.sql import render

log = logging.getLogger("stitcher")


def _sql_policy(engine: Engine, options: RunOptions) -> None:
    engine.create_table_as("classified_edges", render(f"51_policy_{options.policy}"))


def _segment_policy(engine: Engine, options: RunOptions) -> None:
    """Components over every usable link; the ones holding more identifiers of some type than
    its limit are replayed, each on its own (engine.map_groups: in this process, or in
    parallel on Spark's executors); the others are one profile each and cost nothing."""
    engine.create_table_as("nodes", render("60_nodes"))
    _policy_components(engine, options, render("53_usable_node_edges"))
    limit = " ".join(
        f"WHEN {quote_literal(t)} THEN {options.limit_for(t)}" for t in options.type_names
    )
    engine.create_table_as(
        "violating_ids", _VIOLATING_IDS.format(limit=limit, default=options.default_limit)
    )
    violating = engine.fetch_rows("SELECT count(DISTINCT component), count(*) FROM violating_ids")[
        0
    ]
    log.info("%d components break a limit; replaying their %d identifiers", *violating)
    columns = [*event_columns(options), ("user_id", "previous_id")]
    engine.map_groups(
        "replayed_groups",
        _replay_input(columns),
        "component",
        SegmentReplay(
            types=tuple(t for t, _ in columns),
            limits=tuple((t, options.limit_for(t)) for t in options.type_names),
            default_limit=options.default_limit,
            priority=options.priority_order(),
        ),
        _REPLAYED_SCHEMA,
    )
    engine.create_table_as("replayed", _REPLAYED)
    engine.create_table_as(
        "policy_base", "SELECT *, CAST(NULL AS VARCHAR) AS base_refusal FROM checked_edges"
    )
    engine.create_table_as("classified_edges", render("52_policy_replayed"))
    _drop(engine, "policy_components", "violating_ids", "replayed_groups", "replayed")


# The identifiers of the components that break a limit: (node_id, identifier_type,
# identifier, component). Invariant: a component is listed whole or not at all.
_VIOLATING_IDS = """
WITH over_limit AS (
    SELECT DISTINCT c.component
    FROM policy_components AS c
    JOIN nodes AS n ON n.node_id = c.node_id
    GROUP BY c.component, n.identifier_type
    HAVING count(*) > CASE n.identifier_type {limit} ELSE {default} END
)
SELECT n.node_id, n.identifier_type, n.identifier, c.component
FROM nodes AS n
JOIN policy_components AS c ON c.node_id = n.node_id
JOIN over_limit AS o ON o.component = c.component
"""

# One row per identifier of a replayed component: its profile (the least node id of its
# profile; an identifier no event could add is a profile of its own) and the identifier type
# whose limit made some event drop it. Profiles are disjoint sets of nodes, so the least node
# id names one profile across all components.
_REPLAYED = """
SELECT v.identifier_type, v.identifier, coalesce(g.profile, v.node_id) AS profile,
       g.dropped_for
FROM violating_ids AS v
LEFT JOIN replayed_groups AS g
  ON g.identifier_type = v.identifier_type AND g.identifier = v.identifier
"""

_REPLAYED_SCHEMA = pa.schema(
    [
        ("identifier_type", pa.string()),
        ("identifier", pa.string()),
        ("profile", pa.int64()),
        ("dropped_for", pa.string()),
    ]
)


def _replay_input(columns: list[tuple[str, str]], units: bool = False) -> str:
    """The identifier sets to replay (sql/54_replay_events.sql), each tagged with its
    component; per column i: the value v{i}, the component c{i} and node n{i} of that value
    when it belongs to a replayed component (NULL otherwise: junk, hubs, other components),
    and with `units` its unit u{i} (violating_ids.unit)."""
    q, lit = quote_identifier, quote_literal
    touches = " OR ".join(
        f"p.{q(col)} IN (SELECT identifier FROM violating_ids WHERE identifier_type = {lit(t)})"
        for t, col in columns
    )
    selected = ", ".join(f"p.{q(col)}" for _, col in columns)
    events = render("54_replay_events", columns=selected, touches_violating=touches)
    joins = "".join(
        f" LEFT JOIN violating_ids AS v{i} ON v{i}.identifier_type = {lit(t)} "
        f"AND v{i}.identifier = r.{q(col)}"
        for i, (t, col) in enumerate(columns)
    )
    tagged = ", ".join(
        f"r.{q(col)} AS v{i}, v{i}.component AS c{i}, v{i}.node_id AS n{i}"
        + (f", v{i}.unit AS u{i}" if units else "")
        for i, (_, col) in enumerate(columns)
    )
    component = ", ".join(f"v{i}.component" for i in range(len(columns)))
    return (
        f"SELECT coalesce({component}) AS component, {tagged}, r.ts, r.message_id, "
        f"r.source_table FROM ({events}) AS r{joins} "
        f"WHERE coalesce({component}) IS NOT NULL"
    )


def _policy_components(
    engine: Engine, options: RunOptions, edges_sql: str, output: str = "policy_components"
) -> None:
    """`output`(node_id, component) of `nodes` over the (src, dst) links of `edges_sql`,
    component = the least node id in it: scipy in this process for embedded engines, SQL
    rounds inside the others (the graph may not fit this process)."""
    if engine.components_in_memory:
        engine.register_arrow(
            output, components_table(engine.count("nodes"), engine.fetch_arrow(edges_sql))
        )
        return
    engine.create_table_as("policy_edges", edges_sql)
    solve_in_sql(engine, edges="policy_edges", output=output, max_rounds=options.max_rounds)
    engine.drop("policy_edges")


def _drop(engine: Engine, *tables: str) -> None:
    for table in tables:
        engine.drop(table)


def _guarded_policy(engine: Engine, options: RunOptions) -> None:
    """The per-identifier rule in SQL; then, only where extra identifier types let a chain of
    non-user ids join two user ids (a1-u1, a1-email, email-u2), a time-ordered replay of those
    components that allows one user id per person, alias-joined user ids counting as one.

    The components are found by the engine's own solver (scipy here, SQL rounds on Spark) and
    the replay runs per group (engine.map_groups: in this process, or in parallel on Spark's
    executors). A group is a component over every usable link, so every event's ids fall in
    one group and each group's replay is exactly the global replay restricted to it."""
    _sql_policy(engine, options)
    if not replays_events(options):
        # No extra identifier types: anonymous -> one user id, user ids joined by aliases
        # only, so there is nothing to check (and the pipeline has freed `pairs` already).
        return
    engine.create_table_as("nodes", render("60_nodes"))
    _policy_components(engine, options, render("61_node_edges"), "kept_components")
    _policy_components(engine, options, render("55_alias_node_edges"), "alias_components")
    engine.create_table_as("violating_kept", _VIOLATING_KEPT)
    # Read as Arrow on purpose: `stitcher sql`'s script engine cannot know this count and
    # refuses (a replay cannot be a script), where fetch_rows would answer 0.
    if engine.fetch_arrow("SELECT count(*) AS n FROM violating_kept").column(0)[0].as_py() == 0:
        _drop(engine, "kept_components", "alias_components", "violating_kept")
        return
    _policy_components(engine, options, render("53_usable_node_edges"))
    engine.create_table_as("violating_ids", _GUARDED_VIOLATING_IDS)
    _drop(engine, "kept_components", "violating_kept")
    violating = engine.fetch_rows("SELECT count(DISTINCT component), count(*) FROM violating_ids")[
        0
    ]
    log.info("replaying %d identifiers in %d groups", violating[1], violating[0])
    columns = [*event_columns(options), ("user_id", "previous_id")]
    engine.map_groups(
        "replayed_groups",
        _replay_input(columns, units=True),
        "component",
        GuardedReplay(types=tuple(t for t, _ in columns), priority=options.priority_order()),
        _REPLAYED_SCHEMA,
    )
    engine.create_table_as("replayed", _REPLAYED)
    engine.create_table_as(
        "policy_base",
        "SELECT e.*, CASE WHEN NOT s.kept AND e.junk_refusal IS NULL THEN s.reason END "
        "AS base_refusal FROM checked_edges AS e JOIN classified_edges AS s "
        "ON s.from_type = e.from_type AND s.from_id = e.from_id AND s.to_type = e.to_type "
        "AND s.to_id = e.to_id AND s.rule = e.rule",
    )
    engine.create_table_as("classified_edges", render("52_policy_replayed"))
    _drop(
        engine,
        "policy_components",
        "alias_components",
        "violating_ids",
        "replayed_groups",
        "replayed",
    )


# The components over kept links that hold user ids of two or more alias groups: the ones a
# chain of non-user ids joins to two users. Invariant: one row per such component.
_VIOLATING_KEPT = """
SELECT k.component
FROM nodes AS n
JOIN kept_components AS k ON k.node_id = n.node_id
JOIN alias_components AS a ON a.node_id = n.node_id
WHERE n.identifier_type = 'user_id'
GROUP BY k.component
HAVING count(DISTINCT a.component) > 1
"""

# Every identifier of those components: (node_id, identifier_type, identifier, component =
# its component over every usable link, unit = its alias group). Invariant: the usable
# component contains the kept one, so all ids of an event that are replayed share it.
_GUARDED_VIOLATING_IDS = """
SELECT n.node_id, n.identifier_type, n.identifier, u.component, a.component AS unit
FROM nodes AS n
JOIN kept_components AS k ON k.node_id = n.node_id
JOIN violating_kept AS v ON v.component = k.component
JOIN policy_components AS u ON u.node_id = n.node_id
JOIN alias_components AS a ON a.node_id = n.node_id
"""


POLICIES: dict[str, Callable[[Engine, RunOptions], None]] = {
    "connected": _sql_policy,
    "guarded": _guarded_policy,
    "segment": _segment_policy,
    "mixpanel-simplified": _sql_policy,
    "mixpanel-original": original_policy,
}


def classify_edges(engine: Engine, options: RunOptions) -> None:
    POLICIES[options.policy](engine, options)


def runs_python(options: RunOptions) -> bool:
    """Whether the policy calls engine.map_groups (Python on Spark's executors): the replays
    of segment and guarded (stitcher/graph/replay.py) and mixpanel-original's
    (stitcher/graph/mixpanel_replay.py)."""
    return options.policy == "mixpanel-original" or replays_events(options)


def replays_events(options: RunOptions) -> bool:
    """Whether the policy may replay events (sql/54_replay_events.sql reads `pairs`): segment's
    limits, and guarded's check of chains through extra identifier types. The others decide
    on the links alone, so the pipeline frees `pairs` as soon as the links are read off it."""
    return options.policy == "segment" or (
        options.policy == "guarded" and bool(options.identifier_types)
    )
