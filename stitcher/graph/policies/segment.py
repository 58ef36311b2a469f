"""Policy `segment`: Segment Unify's per-type limits and priority, an order-dependent replay
(stitcher/graph/replay.py) run only inside the components that break a limit."""

from __future__ import annotations

import logging

from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.engines.base import drop_tables, quote_literal
from stitcher.graph.nodes import create_nodes
from stitcher.graph.policies.replayed import replay_columns, run_replay, usable_components
from stitcher.graph.replay import SegmentReplay
from stitcher.sql import render

log = logging.getLogger("stitcher")


def segment_policy(engine: Engine, options: RunOptions) -> None:
    """Components over every usable link; the ones holding more identifiers of some type than
    its limit are replayed, each on its own (engine.map_groups: in this process, or in
    parallel on Spark's executors); the others are one profile each and cost nothing."""
    create_nodes(engine)
    usable_components(engine, options)
    limit = " ".join(
        f"WHEN {quote_literal(t)} THEN {options.limit_for(t)}" for t in options.type_names
    )
    engine.create_table_as(
        "violating_ids",
        render("52_segment_violating_ids", limit=limit, default=str(options.default_limit)),
    )
    violating = engine.fetch_rows("SELECT count(DISTINCT component), count(*) FROM violating_ids")[
        0
    ]
    log.info("%d components break a limit; replaying their %d identifiers", *violating)
    columns = replay_columns(options)
    replay = SegmentReplay(
        types=tuple(t for t, _ in columns),
        limits=tuple((t, options.limit_for(t)) for t in options.type_names),
        default_limit=options.default_limit,
        priority=options.priority_order(),
    )
    run_replay(engine, columns, replay)
    engine.create_table_as("policy_base", render("52_segment_policy_base"))
    engine.create_table_as("classified_edges", render("52_policy_replayed"))
    drop_tables(engine, "policy_components", "violating_ids", "replayed_groups", "replayed")
