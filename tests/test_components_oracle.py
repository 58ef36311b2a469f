"""Connected components against networkx on named shapes and random graphs.

Checks both the solver alone and the whole pipeline under `--policy connected`, feeding each
graph edge as an alias (user_id -> user_id), a link every policy keeps.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stitcher.graph.components import component_labels, components_table

from conftest import partition, read_output, stitch, write_csv


def _nx_partition(n: int, edges: list[tuple[int, int]]) -> set[frozenset[int]]:
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    return {frozenset(c) for c in nx.connected_components(g)}


def _labels_partition(labels: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for node, label in enumerate(labels.tolist()):
        groups.setdefault(label, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def _shapes() -> dict[str, tuple[int, list[tuple[int, int]]]]:
    rng = random.Random(7)
    shapes: dict[str, tuple[int, list[tuple[int, int]]]] = {
        "empty": (0, []),
        "single_node": (1, []),
        "self_loop": (1, [(0, 0)]),
        "chain_20000": (20_000, [(i, i + 1) for i in range(19_999)]),
        "reversed_chain": (5_000, [(i + 1, i) for i in range(4_999)]),
        "star_5000": (5_001, [(0, i) for i in range(1, 5_001)]),
        "two_blobs": (10, [(0, 1), (1, 2), (2, 0), (5, 6), (6, 7), (7, 9)]),
        "duplicate_edges": (4, [(0, 1), (1, 0), (0, 1), (2, 3)]),
    }
    # The in-memory solver's hard cases: a chain in random node order takes the most rounds
    # (each round only absorbs the trees whose root is not a local minimum), and a chain
    # numbered downwards builds the deepest trees to shortcut.
    order = list(range(30_000))
    random.Random(3).shuffle(order)
    shapes["chain_random_order"] = (30_000, list(itertools.pairwise(order)))
    shapes["chain_downwards"] = (30_000, [(i, i - 1) for i in range(29_999, 0, -1)])
    shapes["comb"] = (
        2_001,
        [(i, i + 1) for i in range(0, 1_000)] + [(i, i - 1_000) for i in range(1_001, 2_001)],
    )
    for i in range(6):
        n = rng.randint(1, 400)
        m = rng.randint(0, 2 * n)
        shapes[f"random_{i}"] = (n, [(rng.randrange(n), rng.randrange(n)) for _ in range(m)])
    return shapes


SHAPES = _shapes()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_solver_matches_networkx(name: str) -> None:
    n, edges = SHAPES[name]
    src = np.array([a for a, _ in edges], dtype=np.int64)
    dst = np.array([b for _, b in edges], dtype=np.int64)
    assert _labels_partition(component_labels(n, src, dst)) == _nx_partition(n, edges)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_component_label_is_its_least_node(name: str) -> None:
    """persons rely on it: the label is the least node id, i.e. the anchor (70_persons.sql)."""
    n, edges = SHAPES[name]
    table = components_table(
        n,
        pa.table(
            {
                "src": pa.array([a for a, _ in edges], pa.int64()),
                "dst": pa.array([b for _, b in edges], pa.int64()),
            }
        ),
    )
    assert table.column("node_id").to_pylist() == list(range(n))
    expected = [0] * n
    for component in _nx_partition(n, edges):
        least = min(component)
        for node in component:
            expected[node] = least
    assert table.column("component").to_pylist() == expected


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=90),
        )
    )
)
def test_solver_labels_each_node_with_its_components_least_node(graph) -> None:
    n, edges = graph
    labels = component_labels(
        n,
        np.array([a for a, _ in edges], dtype=np.int64),
        np.array([b for _, b in edges], dtype=np.int64),
    )
    expected = [0] * n
    for component in _nx_partition(n, edges):
        least = min(component)
        for node in component:
            expected[node] = least
    assert labels.tolist() == expected


def test_solver_refuses_endpoints_outside_the_nodes() -> None:
    for src, dst in (([0], [3]), ([-1], [0])):
        with pytest.raises(ValueError, match="node ids"):
            component_labels(3, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64))


def _alias_input(folder: Path, n: int, edges: list[tuple[int, int]]) -> None:
    # Node ids become user ids; every node also appears in a track so isolated nodes exist.
    write_csv(
        folder / "aliases.csv",
        ["id", "previous_id", "user_id", "timestamp"],
        [(f"a{i}", f"u{a}", f"u{b}", "2026-11-01T00:00:00Z") for i, (a, b) in enumerate(edges)],
    )
    write_csv(
        folder / "tracks.csv",
        ["id", "anonymous_id", "user_id", "timestamp"],
        [(f"t{i}", None, f"u{i}", "2026-11-01T00:00:00Z") for i in range(n)],
    )


@pytest.mark.parametrize(
    "name", ["chain_20000", "star_5000", "two_blobs", "self_loop", "random_0", "random_3"]
)
@pytest.mark.parametrize("policy", ["connected", "guarded"])
def test_pipeline_matches_networkx(name: str, policy: str, tmp_path: Path) -> None:
    n, edges = SHAPES[name]
    _alias_input(tmp_path / "in", n, edges)
    out = stitch(tmp_path / "in", tmp_path / "out", "--policy", policy)
    got = {
        frozenset(int(identifier[1:]) for _, identifier in person)
        for person in partition(read_output(out, "id_map"))
    }
    assert got == _nx_partition(n, edges)


def test_bipartite_random_graph_connected_policy(tmp_path: Path) -> None:
    """anonymous_id -- user_id links from events, with heavy reuse, against networkx."""
    rng = random.Random(11)
    rows = []
    g = nx.Graph()
    for i in range(3_000):
        a = f"anon{rng.randrange(800)}" if rng.random() < 0.9 else None
        u = f"user{rng.randrange(500)}" if rng.random() < 0.6 else None
        if a is None and u is None:
            continue
        rows.append((f"m{i}", a, u, f"2026-11-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"))
        if a:
            g.add_node(("anonymous_id", a))
        if u:
            g.add_node(("user_id", u))
        if a and u:
            g.add_edge(("anonymous_id", a), ("user_id", u))
    write_csv(tmp_path / "in" / "tracks.csv", ["id", "anonymous_id", "user_id", "timestamp"], rows)
    # Random reuse makes nearly every id tie many others together, which the hub rules rightly
    # quarantine (tests/test_hubs.py); this test is about the components alone.
    out = stitch(tmp_path / "in", tmp_path / "out", "--policy", "connected", "--no-hubs")
    want = {frozenset(c) for c in nx.connected_components(g)}
    assert partition(read_output(out, "id_map")) == want
