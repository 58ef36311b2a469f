"""Policy `guarded`: the per-identifier rule in SQL (sql/51_policy_guarded.sql), and where extra
identifier types could chain two user ids together, a replay of those components
(stitcher/graph/replay.py)."""

from __future__ import annotations

import logging

from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.engines.base import drop_tables
from stitcher.graph.components import solve
from stitcher.graph.nodes import create_nodes
from stitcher.graph.policies import replays_events
from stitcher.graph.policies.replayed import replay_columns, run_replay, usable_components
from stitcher.graph.policies.sql_rules import sql_policy
from stitcher.graph.replay import GuardedReplay
from stitcher.sql import render

log = logging.getLogger("stitcher")


def guarded_policy(engine: Engine, options: RunOptions) -> None:
    """The per-identifier rule in SQL; then, only where extra identifier types let a chain of
    non-user ids join two user ids (a1-u1, a1-email, email-u2), a time-ordered replay of those
    components that allows one user id per person, alias-joined user ids counting as one.

    The components are found by the engine's own solver (numpy here, SQL rounds on Spark) and
    the replay runs per group (engine.map_groups: in this process, or in parallel on Spark's
    executors). A group is a component over every usable link, so every event's ids fall in
    one group and each group's replay is exactly the global replay restricted to it."""
    sql_policy(engine, options)
    if not replays_events(options):
        # No extra identifier types: anonymous -> one user id, user ids joined by aliases
        # only, so there is nothing to check (and the pipeline has freed `pairs` already).
        return
    create_nodes(engine)
    solve(engine, render("61_node_edges"), "kept_components", "policy_edges", options.max_rounds)
    solve(
        engine,
        render("55_alias_node_edges"),
        "alias_components",
        "policy_edges",
        options.max_rounds,
    )
    engine.create_table_as("violating_kept", render("52_guarded_violating_kept"))
    # Read as Arrow on purpose: `stitcher sql`'s script engine cannot know this count and
    # refuses (a replay cannot be a script), where fetch_rows would answer 0.
    if engine.fetch_arrow("SELECT count(*) AS n FROM violating_kept").column(0)[0].as_py() == 0:
        drop_tables(engine, "kept_components", "alias_components", "violating_kept")
        return
    usable_components(engine, options)
    engine.create_table_as("violating_ids", render("52_guarded_violating_ids"))
    drop_tables(engine, "kept_components", "violating_kept")
    violating = engine.fetch_rows("SELECT count(DISTINCT component), count(*) FROM violating_ids")[
        0
    ]
    log.info("replaying %d identifiers in %d groups", violating[1], violating[0])
    columns = replay_columns(options)
    replay = GuardedReplay(types=tuple(t for t, _ in columns), priority=options.priority_order())
    run_replay(engine, columns, replay, units=True)
    engine.create_table_as("policy_base", render("52_guarded_policy_base"))
    engine.create_table_as("classified_edges", render("52_policy_replayed"))
    drop_tables(
        engine,
        "policy_components",
        "alias_components",
        "violating_ids",
        "replayed_groups",
        "replayed",
    )
