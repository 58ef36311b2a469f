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
nothing or meets the same refusal (tests/test_replay.py checks this on random event streams).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

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


class _Profiles:
    """Union-find over identifiers, with the set of units of each type per profile (a unit is
    what a limit counts: the identifier itself, or e.g. its group of alias-joined user ids)."""

    def __init__(self, unit_of: Callable[[Identifier], Hashable]) -> None:
        self.parent: dict[Identifier, Identifier] = {}
        self.units: dict[Identifier, dict[str, set[Hashable]]] = {}
        self.unit_of = unit_of

    def find(self, x: Identifier) -> Identifier:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def add(self, x: Identifier) -> None:
        self.parent[x] = x
        self.units[x] = {x[0]: {self.unit_of(x)}}

    def union(self, a: Identifier, b: Identifier) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if sum(map(len, self.units[ra].values())) < sum(map(len, self.units[rb].values())):
            ra, rb = rb, ra
        self.parent[rb] = ra
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
