"""Policy `segment`: Segment Unify's per-type limits and priority, an order-dependent replay
(stitcher/graph/replay.py) run only inside the components that break a limit."""

from __future__ import annotations

import logging

from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.engines.base import drop_tables, quote_literal
from stitcher.graph.components import solve
from stitcher.graph.identifiers import event_columns
from stitcher.graph.nodes import create_nodes
from stitcher.graph.policies.replayed import REPLAYED, REPLAYED_SCHEMA, replay_input
from stitcher.graph.replay import SegmentReplay
from stitcher.sql import render

log = logging.getLogger("stitcher")


def segment_policy(engine: Engine, options: RunOptions) -> None:
    """Components over every usable link; the ones holding more identifiers of some type than
    its limit are replayed, each on its own (engine.map_groups: in this process, or in
    parallel on Spark's executors); the others are one profile each and cost nothing."""
    create_nodes(engine)
    solve(
        engine,
        render("53_usable_node_edges"),
        "policy_components",
        "policy_edges",
        options.max_rounds,
    )
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
        replay_input(columns),
        "component",
        SegmentReplay(
            types=tuple(t for t, _ in columns),
            limits=tuple((t, options.limit_for(t)) for t in options.type_names),
            default_limit=options.default_limit,
            priority=options.priority_order(),
        ),
        REPLAYED_SCHEMA,
    )
    engine.create_table_as("replayed", REPLAYED)
    engine.create_table_as(
        "policy_base", "SELECT *, CAST(NULL AS VARCHAR) AS base_refusal FROM checked_edges"
    )
    engine.create_table_as("classified_edges", render("52_policy_replayed"))
    drop_tables(engine, "policy_components", "violating_ids", "replayed_groups", "replayed")


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
