"""Policy 'mixpanel-original': the special events of a Mixpanel export replayed per group of
requests that touch the same ids (the rules themselves: stitcher/graph/mixpanel_replay.py,
which runs on Spark's executors)."""

from __future__ import annotations

import logging

import pyarrow as pa

from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.graph.components import solve
from stitcher.graph.mixpanel_replay import OriginalReplay
from stitcher.graph.nodes import create_nodes
from stitcher.sql import render

log = logging.getLogger("stitcher")


def original_policy(engine: Engine, options: RunOptions) -> None:
    """Policy 'mixpanel-original': `classified_edges` from the replay of the special events,
    plus `mixpanel_identified` for the distinct_id each person is reported by.

    A request only reads and changes the clusters of its own two ids, so requests fall into
    independent groups: the components of the graph whose links are the requests. Each group
    is replayed on its own (engine.map_groups: in this process, or in parallel on Spark's
    executors), in the global order. Requests naming a junk or hub id are refused whatever
    the state and change nothing, so they may go with any group."""
    engine.create_table_as(
        "mixpanel_requests",
        render("55_mixpanel_requests", requests=render("55_mixpanel_merge_requests")),
    )
    total, incomplete = engine.fetch_rows(
        "SELECT count(*), count(*) FILTER (WHERE from_id IS NULL OR to_id IS NULL) "
        "FROM mixpanel_requests"
    )[0]
    if incomplete:
        log.warning(
            "%d special events name fewer than two ids ($identify without $anon_id or "
            "$identified_id, $create_alias without alias or distinct_id, $merge without "
            "exactly two $distinct_ids) and merge nothing",
            incomplete,
        )
    create_nodes(engine)
    solve(
        engine,
        render("55_mixpanel_request_edges"),
        "request_components",
        "request_edges",
        options.max_rounds,
    )
    engine.map_groups(
        "mixpanel_replayed",
        render("55_mixpanel_replay_input"),
        "component",
        OriginalReplay(options.mixpanel_max_cluster_ids),
        _DECISION_SCHEMA,
    )
    engine.create_table_as("mixpanel_decisions", render("55_mixpanel_decisions"))
    refused = engine.fetch_rows("SELECT count(*) FROM mixpanel_decisions WHERE NOT kept")[0][0]
    log.info(
        "mixpanel-original: %d merge requests replayed, %d refused", total - incomplete, refused
    )
    engine.create_table_as("mixpanel_identified", render("55_mixpanel_identified"))
    engine.create_table_as("classified_edges", render("52_policy_mixpanel_original"))
    for table in (
        "mixpanel_requests",
        "request_components",
        "mixpanel_replayed",
        "mixpanel_decisions",
    ):
        engine.drop(table)


_DECISION_SCHEMA = pa.schema([("seq", pa.int64()), ("kept", pa.bool_()), ("reason", pa.string())])
