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

# Runs on Spark's executors (engine.map_groups): import only the standard library, pyarrow
# and stitcher modules that do the same (tests/test_spark_cluster.py checks it).

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from stitcher.graph.union_find import UnionFind

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


class _Clusters(UnionFind[str]):
    """Union-find over distinct ids, with each cluster's size and whether it holds an
    identified id; an id is added the first time it is looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.size: dict[str, int] = {}
        self.identified: dict[str, bool] = {}

    def find(self, x: str) -> str:
        if x not in self.parent:
            self.add(x)
            self.size[x] = 1
            self.identified[x] = False
            return x
        return super().find(x)

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.attach(rb, ra)
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
