"""Order-dependent merge rules, replayed event by event (Segment Unify's limits and priority).

Segment's identity resolution is a real-time profile API: each event looks up the profiles that
share any of its identifiers and merges them, unless the merged profile would hold more values
of some identifier type than that type's limit; then the event's lowest-priority identifier is
dropped and matching is retried, which can start a new profile. A batch run must give exactly the
partition that replay would, so this module replays.

It is only run inside connected components that break a limit: a component within every limit
is one profile whatever the order, since no merge inside it can break a limit.

Replaying each distinct identifier set once, at its earliest event, gives the same partition as
replaying every event: profiles only ever grow, so a set applied again later either changes
nothing or meets the same refusal (tests/test_segment.py checks this on random event streams).

SegmentReplay and GuardedReplay, the functions of one group, run on Spark's executors
(engine.map_groups), which may have pyspark's own dependencies and nothing else: this module
imports only the standard library and pyarrow (tests/test_spark_cluster.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from stitcher.graph.union_find import UnionFind

Identifier = tuple[str, str]  # (identifier_type, identifier)


@dataclass(frozen=True, order=True)
class ReplayEvent:
    order: tuple  # sort key: (has no time, time, message id, ...) — earlier first
    identifiers: tuple[Identifier, ...] = field(compare=False)


@dataclass
class ReplayResult:
    profile_of: dict[Identifier, int]
    # For identifiers that some event had to drop: the identifier type whose limit forced it.
    dropped_for: dict[Identifier, str]


class _Profiles(UnionFind[Identifier]):
    """Union-find over identifiers, with the set of units of each type per profile (a unit is
    what a limit counts: the identifier itself, or e.g. its group of alias-joined user ids)."""

    def __init__(self, unit_of: Callable[[Identifier], Hashable]) -> None:
        super().__init__()
        self.units: dict[Identifier, dict[str, set[Hashable]]] = {}
        self.unit_of = unit_of

    def add(self, x: Identifier) -> None:
        super().add(x)
        self.units[x] = {x[0]: {self.unit_of(x)}}

    def union(self, a: Identifier, b: Identifier) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if sum(map(len, self.units[ra].values())) < sum(map(len, self.units[rb].values())):
            ra, rb = rb, ra
        self.attach(rb, ra)
        for t, units in self.units.pop(rb).items():
            self.units[ra].setdefault(t, set()).update(units)


def _drop_index(ids: list[Identifier], profiles: _Profiles, keep_event_user: bool) -> int:
    if keep_event_user and ids[0][0] == "user_id":
        unit = profiles.unit_of(ids[0])
        for index in range(len(ids) - 1, 0, -1):
            if ids[index] in profiles.parent:
                owners = profiles.units[profiles.find(ids[index])].get("user_id", set())
                if owners and unit not in owners:
                    return index
    return len(ids) - 1


def _itself(identifier: Identifier) -> Hashable:
    return identifier


def replay(
    events: Iterable[ReplayEvent],
    limit_for: Callable[[str], int],
    priority: Sequence[str],
    unit_of: Callable[[Identifier], Hashable] = _itself,
    keep_event_user: bool = False,
) -> ReplayResult:
    """Apply events in order under per-type limits; return each identifier's profile.

    A limit counts distinct units of a type per profile; by default each identifier is its own
    unit (Segment's limits), `guarded` counts alias-joined user ids as one.

    Segment drops the event's lowest-priority identifier first. With `keep_event_user` (the
    `guarded` policy), an event that carries a user id first drops the identifiers already
    owned by another user's profile: they stay with the user they met first, and the event's
    other ids still join its user.
    """
    rank = {t: i for i, t in enumerate(priority)}
    profiles = _Profiles(unit_of)
    dropped_for: dict[Identifier, str] = {}
    for event in sorted(events):
        # Most trusted first; the last one is the first to be dropped.
        ids = sorted(set(event.identifiers), key=lambda i: (rank.get(i[0], len(rank)), i[1]))
        while ids:
            roots = {profiles.find(i) for i in ids if i in profiles.parent}
            units: dict[str, set[Hashable]] = {}
            for root in roots:
                for t, members in profiles.units[root].items():
                    units.setdefault(t, set()).update(members)
            for i in ids:
                if i not in profiles.parent:
                    units.setdefault(i[0], set()).add(unit_of(i))
            broken = sorted(t for t, members in units.items() if len(members) > limit_for(t))
            if not broken:
                for i in ids:
                    if i not in profiles.parent:
                        profiles.add(i)
                for i in ids[1:]:
                    profiles.union(ids[0], i)
                break
            dropped = ids.pop(_drop_index(ids, profiles, keep_event_user))
            dropped_for.setdefault(dropped, broken[0])
    labels: dict[Identifier, int] = {}
    profile_of: dict[Identifier, int] = {}
    for identifier in sorted(profiles.parent):
        root = profiles.find(identifier)
        profile_of[identifier] = labels.setdefault(root, len(labels))
    return ReplayResult(profile_of=profile_of, dropped_for=dropped_for)


# A timestamp later than any event, so events without a time replay last.
_NO_TIME = (1,)


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
        events, node_of, _ = _group_events(group, self.types)
        result = replay(events, self.limit_for, self.priority)
        return _profiles_table(result, node_of)


@dataclass(frozen=True)
class GuardedReplay:
    """The `guarded` replay of one group of _replay_input's rows (units=True): a user id per
    person, alias-joined user ids counting as one; an event carrying a user id first drops the
    ids another user's profile already owns. Picklable, a function of its group alone."""

    types: tuple[str, ...]  # identifier type of each column v0, v1, ...
    priority: tuple[str, ...]

    def __call__(self, group: pa.Table) -> pa.Table:
        events, node_of, unit_of = _group_events(group, self.types, with_units=True)
        result = replay(
            events,
            lambda t: 1 if t == "user_id" else 2**62,
            self.priority,
            unit_of=lambda i: unit_of[i] if i[0] == "user_id" else i,
            keep_event_user=True,
        )
        return _profiles_table(result, node_of)


def _profiles_table(result: ReplayResult, node_of: dict[tuple[str, str], int]) -> pa.Table:
    """One row per identifier the replay placed or dropped: its profile, named by the least
    node id of the profile (profiles are disjoint sets of nodes, so names never collide
    across groups), and the type whose limit made some event drop it."""
    least: dict[int, int] = {}
    for identifier, profile in result.profile_of.items():
        least[profile] = min(least.get(profile, node_of[identifier]), node_of[identifier])
    ids = sorted(set(result.profile_of) | set(result.dropped_for))
    profiles = [result.profile_of.get(i) for i in ids]
    return pa.table(
        {
            "identifier_type": pa.array([i[0] for i in ids], pa.string()),
            "identifier": pa.array([i[1] for i in ids], pa.string()),
            "profile": pa.array([None if p is None else least[p] for p in profiles], pa.int64()),
            "dropped_for": pa.array([result.dropped_for.get(i) for i in ids], pa.string()),
        }
    )


def _group_events(
    group: pa.Table, types: tuple[str, ...], with_units: bool = False
) -> tuple[list[ReplayEvent], dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """One component's replay events (columns v<i>/c<i>/n<i>[/u<i>] per identifier type), in
    no particular order (replay sorts them), with each id's node (and alias unit)."""
    events = []
    node_of: dict[tuple[str, str], int] = {}
    unit_of: dict[tuple[str, str], int] = {}
    for row in group.to_pylist():
        ids = []
        for i, t in enumerate(types):
            value = row[f"v{i}"]
            # Only the ids of this component (an event's usable ids are always in one).
            if value is not None and row[f"c{i}"] == row["component"]:
                ids.append((t, value))
                node_of[(t, value)] = row[f"n{i}"]
                if with_units:
                    unit_of[(t, value)] = row[f"u{i}"]
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
    return events, node_of, unit_of
