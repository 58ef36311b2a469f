"""Mixpanel's Original ID Merge, replayed: which `$identify`, `$create_alias` and `$merge`
events merge distinct-id clusters, and which are refused, under Mixpanel's own error names.

Original ID Merge is order-dependent: whether an `$identify` merges depends on what earlier
events merged. The special events are few (one per login or explicit merge), so they are
replayed one by one in time order here; ordinary events only contribute identifiers.

The rules, as Mixpanel documents them (identifying-users-original, the Identity API reference):

* `$identify` merges `$anon_id` into `$identified_id` only when the two differ
  (`errSameIDs`), the anon id is a UUIDv4 (`errAnonDistinctIdNonGUIDForm`) and the anon id is
  not already merged with an identified id (`errAnonDistinctIdAssignedAlready`). Here "merged
  with an identified id" means: its cluster holds an id that was the `$identified_id` of an
  applied `$identify`. Asking for a merge that already holds is not refused: it changes nothing.
* `$create_alias` merges `alias` into `distinct_id`'s cluster; an alias maps to one distinct
  id only, so an alias already applied to another cluster is refused (`errAliasAlreadyExists`).
* `$merge` merges the clusters of its two `$distinct_ids`, whatever they hold.
* No cluster grows past `max_cluster_ids` ids (Mixpanel: 500); a merge that would is refused
  (`errManyIDs`).
* A request naming a junk or hub id is refused with stitcher's reason (`junk_user_id`,
  `hub_user_id`) before any of these checks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from stitcher.components import components_table, solve_in_sql
from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.sql import render

log = logging.getLogger("stitcher")

IDENTIFY, CREATE_ALIAS, MERGE = "$identify", "$create_alias", "$merge"
ERR_SAME_IDS = "errSameIDs"
ERR_NON_GUID = "errAnonDistinctIdNonGUIDForm"
ERR_ASSIGNED_ALREADY = "errAnonDistinctIdAssignedAlready"
ERR_ALIAS_EXISTS = "errAliasAlreadyExists"
ERR_MANY_IDS = "errManyIDs"

# RFC 4122 version 4: the version nibble is 4 and the variant bits are 10 (8, 9, a or b).
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.I)


def is_uuid4(value: str) -> bool:
    return _UUID4.fullmatch(value) is not None


@dataclass(frozen=True)
class MergeRequest:
    """One special event's request: merge from_id into to_id's cluster."""

    rule: str  # the event name: $identify, $create_alias or $merge
    from_id: str
    to_id: str
    refusal: str | None = None  # set when an end is junk or a hub: refused whatever the state


@dataclass
class OriginalResult:
    # Per request, in order: None when applied (or already true), else the refusal reason.
    refusals: list[str | None]
    # The $identified_ids of applied $identify events: the ids a person is reported by.
    identified: set[str] = field(default_factory=set)


class _Clusters:
    """Union-find over distinct ids, with each cluster's size and whether it holds an
    identified id."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.size: dict[str, int] = {}
        self.identified: dict[str, bool] = {}

    def find(self, x: str) -> str:
        if x not in self.parent:
            self.parent[x] = x
            self.size[x] = 1
            self.identified[x] = False
            return x
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size.pop(rb)
        self.identified[ra] = self.identified[ra] or self.identified.pop(rb)
        return ra


def replay_original(requests: Iterable[MergeRequest], max_cluster_ids: int) -> OriginalResult:
    """Apply the requests in the order given (the caller sorts them by time)."""
    clusters = _Clusters()
    aliased: set[str] = set()
    result = OriginalResult(refusals=[])
    for request in requests:
        refusal = _refusal(request, clusters, aliased, max_cluster_ids)
        result.refusals.append(refusal)
        if refusal is not None:
            continue
        root = clusters.union(request.from_id, request.to_id)
        if request.rule == IDENTIFY:
            clusters.identified[root] = True
            result.identified.add(request.to_id)
        elif request.rule == CREATE_ALIAS:
            aliased.add(request.from_id)
    return result


def _refusal(
    request: MergeRequest, clusters: _Clusters, aliased: set[str], max_cluster_ids: int
) -> str | None:
    if request.refusal is not None:
        return request.refusal
    # Checks of the request itself come first: Mixpanel validates before it looks anything up.
    if request.from_id == request.to_id:
        return ERR_SAME_IDS
    if request.rule == IDENTIFY and not is_uuid4(request.from_id):
        return ERR_NON_GUID
    root_from, root_to = clusters.find(request.from_id), clusters.find(request.to_id)
    if root_from == root_to:
        return None  # already one cluster: nothing to merge, nothing to refuse
    if request.rule == IDENTIFY and clusters.identified[root_from]:
        return ERR_ASSIGNED_ALREADY
    if request.rule == CREATE_ALIAS and request.from_id in aliased:
        return ERR_ALIAS_EXISTS
    if clusters.size[root_from] + clusters.size[root_to] > max_cluster_ids:
        return ERR_MANY_IDS
    return None


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
    engine.create_table_as("nodes", render("60_nodes"))
    _request_components(engine, options)
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


def _request_components(engine: Engine, options: RunOptions) -> None:
    if engine.components_in_memory:
        engine.register_arrow(
            "request_components",
            components_table(engine.count("nodes"), engine.fetch_arrow(_REQUEST_EDGES)),
        )
        return
    engine.create_table_as("request_edges", _REQUEST_EDGES)
    solve_in_sql(
        engine, edges="request_edges", output="request_components", max_rounds=options.max_rounds
    )
    engine.drop("request_edges")


@dataclass(frozen=True)
class OriginalReplay:
    """The replay of one group of requests (a picklable function of the group alone)."""

    max_cluster_ids: int

    def __call__(self, group: pa.Table) -> pa.Table:
        rows = sorted(group.to_pylist(), key=lambda r: r["seq"])
        requests = [
            MergeRequest(r["rule"], r["from_id"], r["to_id"], r["junk_refusal"]) for r in rows
        ]
        refusals = replay_original(requests, self.max_cluster_ids).refusals
        return pa.table(
            {
                "seq": pa.array([r["seq"] for r in rows], pa.int64()),
                "kept": pa.array([r is None for r in refusals], pa.bool_()),
                "reason": pa.array(refusals, pa.string()),
            }
        )
