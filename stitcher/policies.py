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

import numpy as np
import pyarrow as pa

from stitcher.components import component_labels
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
    engine.create_table_as("nodes", render("60_nodes"))
    labels = _labels(engine, render("53_usable_node_edges"))
    violating = _nodes_where(engine, labels, _over_limit(engine, options, labels))
    result = replay(
        _replay_events(engine, options, violating), options.limit_for, options.priority_order()
    )
    engine.create_table_as(
        "policy_base", "SELECT *, CAST(NULL AS VARCHAR) AS base_refusal FROM checked_edges"
    )
    _classify_replayed(engine, violating, result)


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


def _over_limit(engine: Engine, options: RunOptions, labels: np.ndarray) -> np.ndarray:
    """Components holding more identifiers of some type than that type's limit."""
    types = engine.fetch_arrow("SELECT identifier_type FROM nodes ORDER BY node_id")
    type_names = options.type_names
    codes = np.array(
        [type_names.index(t) for t in types.column("identifier_type").to_pylist()],
        dtype=np.int64,
    )
    width = len(type_names)
    counts = np.bincount(labels * width + codes, minlength=(labels.max(initial=-1) + 1) * width)
    counts = counts.reshape(-1, width)
    limits = np.array([options.limit_for(t) for t in type_names])
    bad = np.flatnonzero((counts > limits).any(axis=1))
    log.info("%d of %d components break a limit", len(bad), counts.shape[0])
    return bad


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
