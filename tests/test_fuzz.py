"""Property-based fuzzing of the whole run: small random event tables, checked invariants.

Ids come from small pools so the same id shows up in many rows and tables, mixed with nulls and
junk values; timestamps come from a handful of values (ties, missing times). Each example is
stitched twice, once with its rows shuffled, and checked against references written here:
the junk rule as the README states it, and a plain union-find.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from tempfile import TemporaryDirectory

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import read_output, run_cli

ANONYMOUS = [f"anon-{i}" for i in range(6)]
USERS = [f"user-{i}" for i in range(5)]
# Values the README calls junk (compared after trimming whitespace and quotes, any case).
JUNK = [
    "",
    " ",
    "null",
    "NULL",
    '"null"',
    " undefined ",
    "0",
    "0000-0000",
    "guest",
    "[object Object]",
]
TIMES = [None, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "1767398400"]

_README_JUNK = {
    "",
    "null",
    "undefined",
    "none",
    "nil",
    "nan",
    "0",
    "-1",
    "anonymous",
    "guest",
    "unknown",
    "n/a",
    "[object object]",
    "true",
    "false",
}


def is_junk(value: str) -> bool:
    key = value.strip().strip("\"'").strip().lower()
    return key in _README_JUNK or re.fullmatch(r"[0-]*", key) is not None


def ids(pool: list[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.sampled_from(pool), st.sampled_from(JUNK), st.none())


event_rows = st.lists(
    st.tuples(
        st.sampled_from(["tracks", "identifies"]),
        ids(ANONYMOUS),
        ids(USERS),
        st.sampled_from(TIMES),
    ),
    min_size=1,
    max_size=30,
)
alias_rows = st.lists(
    st.tuples(ids(USERS), ids(USERS), st.sampled_from(TIMES)),  # previous_id, user_id, time
    max_size=4,
)


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, x: tuple[str, str]) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: tuple[str, str]) -> tuple[str, str]:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        self.add(a)
        self.add(b)
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> set[frozenset[tuple[str, str]]]:
        found: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for x in self.parent:
            found.setdefault(self.find(x), set()).add(x)
        return {frozenset(g) for g in found.values()}


def usable(value: str | None) -> bool:
    return value is not None and not is_junk(value)


def write_tables(folder: Path, events: list[tuple], aliases: list[tuple], order: list[int]) -> None:
    """Write the rows in `order` (indexes into events + aliases); a row's message id and trait
    come from its index, so a shuffled copy holds exactly the same events."""
    folder.mkdir(parents=True)
    for table in ("tracks", "identifies"):
        mine = [(i, events[i]) for i in order if i < len(events) and events[i][0] == table]
        if not mine:
            continue
        columns: dict[str, list] = {
            "id": [f"{table}-{i}" for i, _ in mine],
            "anonymous_id": [r[1] for _, r in mine],
            "user_id": [r[2] for _, r in mine],
            "timestamp": [r[3] for _, r in mine],
        }
        if table == "identifies":
            columns["plan"] = [f"plan-{i % 3}" for i, _ in mine]
        pq.write_table(pa.table(columns, schema=_schema(columns)), folder / f"{table}.parquet")
    mine = [(i, aliases[i - len(events)]) for i in order if i >= len(events)]
    if mine:
        columns = {
            "id": [f"alias-{i}" for i, _ in mine],
            "previous_id": [r[0] for _, r in mine],
            "user_id": [r[1] for _, r in mine],
            "timestamp": [r[2] for _, r in mine],
        }
        pq.write_table(pa.table(columns, schema=_schema(columns)), folder / "aliases.parquet")


def _schema(columns: dict[str, list]) -> pa.Schema:
    return pa.schema([(name, pa.string()) for name in columns])


def stitch(folder: Path, output: Path, policy: str) -> Path:
    run_cli(
        "run",
        "--input",
        str(folder),
        "--output",
        str(output),
        "-q",
        "--no-report",
        "--no-hubs",
        "--policy",
        policy,
    )
    return output


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    events=event_rows,
    aliases=alias_rows,
    policy=st.sampled_from(["guarded", "connected"]),
    shuffle=st.randoms(use_true_random=False),
)
def test_random_tables_keep_the_invariants(
    events: list[tuple], aliases: list[tuple], policy: str, shuffle: object
) -> None:
    with TemporaryDirectory() as scratch:
        root = Path(scratch)
        order = list(range(len(events) + len(aliases)))
        write_tables(root / "in", events, aliases, order)
        out = stitch(root / "in", root / "out", policy)
        shuffle.shuffle(order)
        write_tables(root / "shuffled", events, aliases, order)
        again = stitch(root / "shuffled", root / "again", policy)

        # Row order never matters.
        for table in ("id_map", "users"):
            assert sha(out / f"{table}.parquet") == sha(again / f"{table}.parquet"), table

        id_map = read_output(out, "id_map")
        mapped = list(zip(id_map["identifier_type"], id_map["identifier"], strict=True))
        person = dict(zip(mapped, id_map["person_id"], strict=True))

        # Every identifier that is not junk is mapped, exactly once; junk never is.
        seen = {("anonymous_id", a) for _, a, _, _ in events if a is not None}
        seen |= {("user_id", u) for _, _, u, _ in events if u is not None}
        seen |= {("user_id", v) for p, u, _ in aliases for v in (p, u) if v is not None}
        expected = {x for x in seen if not is_junk(x[1])}
        assert len(mapped) == len(set(mapped))
        assert set(mapped) == expected
        quarantined = read_output(out, "quarantine")
        assert set(zip(quarantined["identifier_type"], quarantined["identifier"], strict=True)) == (
            seen - expected
        )

        links = UnionFind()
        aliased = UnionFind()
        for x in expected:
            links.add(x)
            if x[0] == "user_id":
                aliased.add(x)
        for _, a, u, _ in events:
            if usable(a) and usable(u):
                links.union(("anonymous_id", a), ("user_id", u))
        for p, u, _ in aliases:
            if usable(p) and usable(u) and p != u:
                links.union(("user_id", p), ("user_id", u))
                aliased.union(("user_id", p), ("user_id", u))

        persons: dict[str, set[tuple[str, str]]] = {}
        for x, pid in person.items():
            persons.setdefault(pid, set()).add(x)
        partition = {frozenset(g) for g in persons.values()}

        if policy == "connected":
            assert partition == links.groups()
        else:
            # Never finer than the alias links, never coarser than all links, and two user ids
            # share a person only when aliases join them.
            for group in aliased.groups():
                assert len({person[x] for x in group}) == 1
            coarse = {x: links.find(x) for x in expected}
            for members in persons.values():
                assert len({coarse[x] for x in members}) == 1
                user_ids = [x for x in members if x[0] == "user_id"]
                assert len({aliased.find(x) for x in user_ids}) <= 1, sorted(members)

        users = read_output(out, "users")
        assert users.height == len(persons)
        assert users["event_count"].sum() <= len(events) + len(aliases)
        assert users.filter(pl.col("identifier_count") < 1).height == 0
