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
        "mixpanel_requests", _REQUESTS.format(requests=render("55_mixpanel_merge_requests"))
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
    solve(engine, _REQUEST_EDGES, "request_components", "request_edges", options.max_rounds)
    engine.map_groups(
        "mixpanel_replayed",
        _REPLAY_INPUT,
        "component",
        OriginalReplay(options.mixpanel_max_cluster_ids),
        _DECISION_SCHEMA,
    )
    engine.create_table_as("mixpanel_decisions", _DECISIONS)
    refused = engine.fetch_rows("SELECT count(*) FROM mixpanel_decisions WHERE NOT kept")[0][0]
    log.info(
        "mixpanel-original: %d merge requests replayed, %d refused", total - incomplete, refused
    )
    engine.create_table_as("mixpanel_identified", _IDENTIFIED)
    engine.create_table_as("classified_edges", render("52_policy_mixpanel_original"))
    for table in (
        "mixpanel_requests",
        "request_components",
        "mixpanel_replayed",
        "mixpanel_decisions",
    ):
        engine.drop(table)


# Every special event with its place in the replay order: seq numbers sql/55's order (time,
# $insert_id, event, ids; unknown times last), which is total up to identical requests.
_REQUESTS = """
SELECT
    CAST(row_number() OVER (
        ORDER BY ts NULLS LAST, message_id NULLS LAST, rule, from_id NULLS LAST,
                 to_id NULLS LAST
    ) - 1 AS BIGINT) AS seq,
    rule, from_id, to_id, ts, message_id, junk_refusal
FROM ({requests}) AS r
"""

# The links of the request graph: requests naming two usable ids (junk and hubs are no nodes).
_REQUEST_EDGES = """
SELECT f.node_id AS src, t.node_id AS dst
FROM mixpanel_requests AS r
JOIN nodes AS f ON f.identifier_type = 'user_id' AND f.identifier = r.from_id
JOIN nodes AS t ON t.identifier_type = 'user_id' AND t.identifier = r.to_id
WHERE r.junk_refusal IS NULL
"""

# Each request that names two ids, with its group: the component of its from id, or -1 when
# that id is no node (junk or a hub: refused whatever the state).
_REPLAY_INPUT = """
SELECT coalesce(c.component, -1) AS component, r.seq, r.rule, r.from_id, r.to_id,
       r.junk_refusal
FROM mixpanel_requests AS r
LEFT JOIN nodes AS f ON f.identifier_type = 'user_id' AND f.identifier = r.from_id
LEFT JOIN request_components AS c ON c.node_id = f.node_id
WHERE r.from_id IS NOT NULL AND r.to_id IS NOT NULL
"""

_DECISIONS = """
SELECT r.seq, r.rule, r.from_id, r.to_id, r.ts, r.message_id, d.kept, d.reason
FROM mixpanel_requests AS r
JOIN mixpanel_replayed AS d ON d.seq = r.seq
"""

# The $identified_ids of applied $identify events: the ids a person is reported by.
_IDENTIFIED = """
SELECT DISTINCT 'user_id' AS identifier_type, to_id AS identifier
FROM mixpanel_decisions
WHERE kept AND rule = '$identify'
"""

_DECISION_SCHEMA = pa.schema([("seq", pa.int64()), ("kept", pa.bool_()), ("reason", pa.string())])
