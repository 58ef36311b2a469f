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
    plus `mixpanel_identified` for the distinct_id each person is reported by."""
    rows = engine.fetch_rows(render("55_mixpanel_merge_requests"))
    requests: list[MergeRequest] = []
    evidence: list[tuple] = []
    incomplete = 0
    for rule, from_id, to_id, ts, message_id, junk_refusal in rows:
        if from_id is None or to_id is None:
            incomplete += 1
            continue
        requests.append(MergeRequest(rule, from_id, to_id, junk_refusal))
        evidence.append((ts, message_id))
    if incomplete:
        log.warning(
            "%d special events name fewer than two ids ($identify without $anon_id or "
            "$identified_id, $create_alias without alias or distinct_id, $merge without "
            "exactly two $distinct_ids) and merge nothing",
            incomplete,
        )
    result = replay_original(requests, options.mixpanel_max_cluster_ids)
    refused = sum(r is not None for r in result.refusals)
    log.info("mixpanel-original: %d merge requests replayed, %d refused", len(requests), refused)
    engine.register_arrow(
        "mixpanel_decisions",
        pa.table(
            {
                "seq": pa.array(range(len(requests)), pa.int64()),
                "rule": pa.array([r.rule for r in requests], pa.string()),
                "from_id": pa.array([r.from_id for r in requests], pa.string()),
                "to_id": pa.array([r.to_id for r in requests], pa.string()),
                "ts": pa.array([e[0] for e in evidence], pa.timestamp("us")),
                "message_id": pa.array([e[1] for e in evidence], pa.string()),
                "kept": pa.array([r is None for r in result.refusals], pa.bool_()),
                "reason": pa.array(result.refusals, pa.string()),
            }
        ),
    )
    identified = sorted(result.identified)
    engine.register_arrow(
        "mixpanel_identified",
        pa.table(
            {
                "identifier_type": pa.array(["user_id"] * len(identified), pa.string()),
                "identifier": pa.array(identified, pa.string()),
            }
        ),
    )
    engine.create_table_as("classified_edges", render("52_policy_mixpanel_original"))
