"""Union-find with path compression over hashable ids: the merge state of the replays
(replay.py, mixpanel_replay.py), which keep their own data per root beside it. Standard
library only: Spark's executors run the replays."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

Id = TypeVar("Id", bound=Hashable)


class UnionFind(Generic[Id]):
    """Disjoint sets of ids; `parent` holds every id added. A subclass merges its own data
    per root when it `attach`es one root under another."""

    def __init__(self) -> None:
        self.parent: dict[Id, Id] = {}

    def add(self, x: Id) -> None:
        self.parent[x] = x

    def find(self, x: Id) -> Id:
        """The root of x's set (x must have been added); the path is compressed."""
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def attach(self, child: Id, root: Id) -> None:
        """Put root `child`'s set under root `root`."""
        self.parent[child] = root
