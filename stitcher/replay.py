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

from collections.abc import Callable, Iterable, Sequence
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
    """Union-find over identifiers, with per-profile counts of each identifier type."""

    def __init__(self) -> None:
        self.parent: dict[Identifier, Identifier] = {}
        self.counts: dict[Identifier, dict[str, int]] = {}

    def find(self, x: Identifier) -> Identifier:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def add(self, x: Identifier) -> None:
        self.parent[x] = x
        self.counts[x] = {x[0]: 1}

    def union(self, a: Identifier, b: Identifier) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if sum(self.counts[ra].values()) < sum(self.counts[rb].values()):
            ra, rb = rb, ra
        self.parent[rb] = ra
        for t, n in self.counts.pop(rb).items():
            self.counts[ra][t] = self.counts[ra].get(t, 0) + n


def replay(
    events: Iterable[ReplayEvent],
    limit_for: Callable[[str], int],
    priority: Sequence[str],
) -> ReplayResult:
    """Apply events in order under per-type limits; return each identifier's profile."""
    rank = {t: i for i, t in enumerate(priority)}
    profiles = _Profiles()
    dropped_for: dict[Identifier, str] = {}
    for event in sorted(events):
        # Most trusted first; the last one is the first to be dropped.
        ids = sorted(set(event.identifiers), key=lambda i: (rank.get(i[0], len(rank)), i[1]))
        while ids:
            roots = {profiles.find(i) for i in ids if i in profiles.parent}
            counts: dict[str, int] = {}
            for root in roots:
                for t, n in profiles.counts[root].items():
                    counts[t] = counts.get(t, 0) + n
            for i in ids:
                if i not in profiles.parent:
                    counts[i[0]] = counts.get(i[0], 0) + 1
            broken = sorted(t for t, n in counts.items() if n > limit_for(t))
            if not broken:
                for i in ids:
                    if i not in profiles.parent:
                        profiles.add(i)
                for i in ids[1:]:
                    profiles.union(ids[0], i)
                break
            dropped = ids.pop()
            dropped_for.setdefault(dropped, broken[0])
    labels: dict[Identifier, int] = {}
    profile_of: dict[Identifier, int] = {}
    for identifier in sorted(profiles.parent):
        root = profiles.find(identifier)
        profile_of[identifier] = labels.setdefault(root, len(labels))
    return ReplayResult(profile_of=profile_of, dropped_for=dropped_for)
