"""Merge policies: each turns `checked_edges` into `classified_edges` (kept or refused, and why).

* `connected`, `guarded`: one SQL step each (sql/51_policy_*.sql), whole-graph, order-free;
  `guarded` adds a replay where extra identifier types could chain two user ids together.
* `segment`: Segment Unify's per-type limits and priority, an order-dependent replay
  (stitcher/replay.py) run only inside the components that break a limit.
* `mixpanel-simplified`: SQL (sql/51_policy_mixpanel-simplified.sql); `mixpanel-original`: a
  replay of Mixpanel's special events (stitcher/mixpanel_original.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from stitcher.components import component_labels, components_table, solve_in_sql
from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.engines.base import quote_identifier, quote_literal
from stitcher.graph import event_columns
from stitcher.mixpanel_original import original_policy
from stitcher.replay import ReplayEvent, ReplayResult, replay
from stitcher.sql import render

log = logging.getLogger("stitcher")

# A timestamp later than any event, so events without a time replay last.
_NO_TIME = (1,)


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


def _replay_input(columns: list[tuple[str, str]]) -> str:
    """The identifier sets to replay (sql/54_replay_events.sql), each tagged with its
    component; per column i: the value v{i}, the component c{i} and node n{i} of that value
    when it belongs to a replayed component (NULL otherwise: junk, hubs, other components)."""
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
        for i, (_, col) in enumerate(columns)
    )
    component = ", ".join(f"v{i}.component" for i in range(len(columns)))
    return (
        f"SELECT coalesce({component}) AS component, {tagged}, r.ts, r.message_id, "
        f"r.source_table FROM ({events}) AS r{joins} "
        f"WHERE coalesce({component}) IS NOT NULL"
    )


@dataclass(frozen=True)
class SegmentReplay:
    """The replay of one component (a group of _replay_input's rows), as a picklable function
    of the group alone so that engines may run components in parallel anywhere."""

    types: tuple[str, ...]  # identifier type of each column v0, v1, ...
    limits: tuple[tuple[str, int], ...]
    default_limit: int
    priority: tuple[str, ...]

    def limit_for(self, identifier_type: str) -> int:
        return dict(self.limits).get(identifier_type, self.default_limit)

    def __call__(self, group: pa.Table) -> pa.Table:
        events = []
        node_of: dict[tuple[str, str], int] = {}
        for row in group.to_pylist():
            ids = []
            for i, t in enumerate(self.types):
                value = row[f"v{i}"]
                # Only the ids of this component (an event's usable ids are always in one).
                if value is not None and row[f"c{i}"] == row["component"]:
                    ids.append((t, value))
                    node_of[(t, value)] = row[f"n{i}"]
            if len(set(ids)) < 2:
                continue
            ts = row["ts"]
            order = (
                _NO_TIME if ts is None else (0, ts),
                row["message_id"] or "",
                row["source_table"],
                tuple(ids),
            )
            events.append(ReplayEvent(order=order, identifiers=tuple(ids)))
        result = replay(events, self.limit_for, self.priority)
        least: dict[int, int] = {}
        for identifier, profile in result.profile_of.items():
            least[profile] = min(least.get(profile, node_of[identifier]), node_of[identifier])
        ids = sorted(set(result.profile_of) | set(result.dropped_for))
        profiles = [result.profile_of.get(i) for i in ids]
        return pa.table(
            {
                "identifier_type": pa.array([i[0] for i in ids], pa.string()),
                "identifier": pa.array([i[1] for i in ids], pa.string()),
                "profile": pa.array(
                    [None if p is None else least[p] for p in profiles], pa.int64()
                ),
                "dropped_for": pa.array([result.dropped_for.get(i) for i in ids], pa.string()),
            }
        )


def _policy_components(engine: Engine, options: RunOptions, edges_sql: str) -> None:
    """`policy_components`(node_id, component) of `nodes` over the (src, dst) links of
    `edges_sql`: scipy in this process for embedded engines, SQL rounds inside the others
    (the graph may not fit this process)."""
    if engine.components_in_memory:
        engine.register_arrow(
            "policy_components",
            components_table(engine.count("nodes"), engine.fetch_arrow(edges_sql)),
        )
        return
    engine.create_table_as("policy_edges", edges_sql)
    solve_in_sql(
        engine, edges="policy_edges", output="policy_components", max_rounds=options.max_rounds
    )
    engine.drop("policy_edges")


def _drop(engine: Engine, *tables: str) -> None:
    for table in tables:
        engine.drop(table)


def _guarded_policy(engine: Engine, options: RunOptions) -> None:
    """The per-identifier rule in SQL; then, only where extra identifier types let a chain of
    non-user ids join two user ids (a1-u1, a1-email, email-u2), a time-ordered replay of those
    components that allows one user id per person, alias-joined user ids counting as one."""
    _sql_policy(engine, options)
    if not options.identifier_types:
        return  # anonymous -> one user id, user ids joined by aliases only: nothing to check
    engine.create_table_as("nodes", render("60_nodes"))
    labels = _labels(engine, render("61_node_edges"))
    alias_groups = _labels(engine, render("55_alias_node_edges"))
    types = engine.fetch_arrow("SELECT identifier_type FROM nodes ORDER BY node_id")
    is_user = np.array(types.column("identifier_type").to_pylist()) == "user_id"
    # Components holding more than one alias group of user ids.
    pairs = np.unique(np.stack([labels[is_user], alias_groups[is_user]]), axis=1)
    groups_per_component = np.bincount(pairs[0], minlength=labels.max(initial=-1) + 1)
    bad = np.flatnonzero(groups_per_component > 1)
    if len(bad) == 0:
        return
    violating = _nodes_where(engine, labels, bad)
    group_of = dict(
        zip(
            zip(
                violating.column("identifier_type").to_pylist(),
                violating.column("identifier").to_pylist(),
                strict=True,
            ),
            alias_groups[violating.column("node_id").to_numpy()].tolist(),
            strict=True,
        )
    )
    result = replay(
        _replay_events(engine, options, violating),
        lambda t: 1 if t == "user_id" else 2**62,
        options.priority_order(),
        unit_of=lambda i: group_of[i] if i[0] == "user_id" else i,
        keep_event_user=True,
    )
    engine.create_table_as(
        "policy_base",
        "SELECT e.*, CASE WHEN NOT s.kept AND e.junk_refusal IS NULL THEN s.reason END "
        "AS base_refusal FROM checked_edges AS e JOIN classified_edges AS s "
        "ON s.from_type = e.from_type AND s.from_id = e.from_id AND s.to_type = e.to_type "
        "AND s.to_id = e.to_id AND s.rule = e.rule",
    )
    _classify_replayed(engine, violating, result)


def _labels(engine: Engine, edges_sql: str) -> np.ndarray:
    """Component label of every node (node_id order) over the given (src, dst) edges."""
    n_nodes = engine.count("nodes")
    edges = engine.fetch_arrow(edges_sql)
    return component_labels(
        n_nodes,
        edges.column("src").to_numpy().astype(np.int64, copy=False),
        edges.column("dst").to_numpy().astype(np.int64, copy=False),
    )


def _nodes_where(engine: Engine, labels: np.ndarray, components: np.ndarray) -> pa.Table:
    """(node_id, identifier_type, identifier) of every node in the given components."""
    bad_nodes = np.flatnonzero(np.isin(labels, components))
    log.info("replaying %d identifiers", len(bad_nodes))
    engine.register_arrow("violating_nodes", pa.table({"node_id": pa.array(bad_nodes)}))
    return engine.fetch_arrow(
        "SELECT n.node_id, n.identifier_type, n.identifier FROM nodes AS n "
        "JOIN violating_nodes AS v ON v.node_id = n.node_id ORDER BY n.node_id"
    )


def _classify_replayed(engine: Engine, violating: pa.Table, result: ReplayResult) -> None:
    # Identifiers every event had to drop belong to no profile yet: each is its own.
    profile_of = dict(result.profile_of)
    for identifier in zip(
        violating.column("identifier_type").to_pylist(),
        violating.column("identifier").to_pylist(),
        strict=True,
    ):
        profile_of.setdefault(identifier, len(profile_of))
    ids = sorted(profile_of)
    engine.register_arrow(
        "replayed",
        pa.table(
            {
                "identifier_type": pa.array([i[0] for i in ids], pa.string()),
                "identifier": pa.array([i[1] for i in ids], pa.string()),
                "profile": pa.array([profile_of[i] for i in ids], pa.int64()),
                "dropped_for": pa.array([result.dropped_for.get(i) for i in ids], pa.string()),
            }
        ),
    )
    engine.create_table_as("classified_edges", render("52_policy_replayed"))


def _replay_events(engine: Engine, options: RunOptions, violating: pa.Table) -> list[ReplayEvent]:
    engine.register_arrow("violating_ids", violating)
    keep = set(
        zip(
            violating.column("identifier_type").to_pylist(),
            violating.column("identifier").to_pylist(),
            strict=True,
        )
    )
    if not keep:
        return []
    q, lit = quote_identifier, quote_literal
    columns = [*event_columns(options), ("user_id", "previous_id")]
    touches = " OR ".join(
        f"p.{q(col)} IN (SELECT identifier FROM violating_ids WHERE identifier_type = {lit(t)})"
        for t, col in columns
    )
    selected = ", ".join(f"p.{q(col)}" for _, col in columns)
    rows = engine.fetch_rows(
        render("54_replay_events", columns=selected, touches_violating=touches)
    )
    events = []
    for row in rows:
        *values, ts, message_id, source_table = row
        ids = tuple(
            (t, v)
            for (t, _), v in zip(columns, values, strict=True)
            if v is not None and (t, v) in keep
        )
        if len(set(ids)) < 2:
            continue
        order = (_NO_TIME if ts is None else (0, ts), message_id or "", source_table, ids)
        events.append(ReplayEvent(order=order, identifiers=ids))
    return events


POLICIES: dict[str, Callable[[Engine, RunOptions], None]] = {
    "connected": _sql_policy,
    "guarded": _guarded_policy,
    "segment": _segment_policy,
    "mixpanel-simplified": _sql_policy,
    "mixpanel-original": original_policy,
}


def classify_edges(engine: Engine, options: RunOptions) -> None:
    POLICIES[options.policy](engine, options)
