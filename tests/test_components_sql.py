"""The SQL components solver (large-star / small-star rounds) against networkx, on DuckDB.

The same sql/cc_*.sql files run on Spark (tests/test_spark.py) and in `stitcher sql` scripts;
here they run on the embedded engine, where every shape is cheap to check exactly.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import networkx as nx
import pyarrow as pa
import pytest

from stitcher.engines.duckdb import DuckDBEngine
from stitcher.errors import EngineError
from stitcher.graph.components import solve_in_sql, sql_components

from conftest import FIXTURES, stitch

Edges = list[tuple[int, int]]


def _shapes() -> dict[str, tuple[int, Edges]]:
    rng = random.Random(11)
    order = list(range(20_000))
    rng.shuffle(order)
    shapes: dict[str, tuple[int, Edges]] = {
        "empty": (0, []),
        "single_node": (1, []),
        "isolated_nodes": (5, []),
        "self_loop": (2, [(1, 1)]),
        "chain_20000": (20_000, [(i, i + 1) for i in range(19_999)]),
        "reversed_chain_20000": (20_000, [(i + 1, i) for i in range(19_999)]),
        "shuffled_chain_20000": (20_000, [(order[i], order[i + 1]) for i in range(19_999)]),
        "star_5000": (5_001, [(0, i) for i in range(1, 5_001)]),
        "star_centre_last": (5_001, [(i, 5_000) for i in range(5_000)]),
        "two_blobs": (10, [(0, 1), (1, 2), (2, 0), (5, 6), (6, 7), (7, 9)]),
        "duplicate_edges": (4, [(0, 1), (1, 0), (0, 1), (2, 3)]),
        "binary_tree": (4_095, [((i - 1) // 2, i) for i in range(1, 4_095)]),
        "huge_ids": (3, [(0, 2)]),
    }
    for i in range(8):
        n = rng.randint(1, 3_000)
        m = rng.randint(0, 2 * n)
        shapes[f"random_{i}"] = (n, [(rng.randrange(n), rng.randrange(n)) for _ in range(m)])
    return shapes


SHAPES = _shapes()


def _sql_labels(engine: DuckDBEngine, n: int, edges: Edges, offset: int = 0) -> dict[int, int]:
    engine.register_arrow(
        "nodes", pa.table({"node_id": pa.array([i + offset for i in range(n)], pa.int64())})
    )
    engine.register_arrow(
        "node_edges",
        pa.table(
            {
                "src": pa.array([a + offset for a, _ in edges], pa.int64()),
                "dst": pa.array([b + offset for _, b in edges], pa.int64()),
            }
        ),
    )
    solve_in_sql(engine)
    return dict(engine.fetch_rows("SELECT node_id, component FROM node_components"))


def _groups(labels: dict[int, int]) -> dict[int, set[int]]:
    groups: dict[int, set[int]] = {}
    for node, label in labels.items():
        groups.setdefault(label, set()).add(node)
    return groups


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_sql_solver_matches_networkx(name: str) -> None:
    n, edges = SHAPES[name]
    # Node ids near 2**62 for one shape: nothing may overflow or lose precision.
    offset = 2**62 if name == "huge_ids" else 0
    with DuckDBEngine() as engine:
        labels = _sql_labels(engine, n, edges, offset)
        leftovers = engine.fetch_rows(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('cc_edges', 'cc_large')"
        )[0][0]
    graph = nx.Graph()
    graph.add_nodes_from(i + offset for i in range(n))
    graph.add_edges_from((a + offset, b + offset) for a, b in edges)
    want = {frozenset(c) for c in nx.connected_components(graph)}
    groups = _groups(labels)
    assert {frozenset(g) for g in groups.values()} == want
    # The label of a component is its least node id, whatever the solver's path.
    assert all(label == min(members) for label, members in groups.items())
    assert leftovers == 0


def test_a_long_chain_takes_about_log_n_rounds() -> None:
    n, edges = SHAPES["chain_20000"]
    with DuckDBEngine() as engine:
        engine.register_arrow("nodes", pa.table({"node_id": pa.array(range(n), pa.int64())}))
        engine.register_arrow(
            "node_edges",
            pa.table({"src": [a for a, _ in edges], "dst": [b for _, b in edges]}),
        )
        rounds = solve_in_sql(engine)
    # log2(20,000) is 14.3; min-label propagation would need 19,999 rounds.
    assert rounds <= 20


def test_max_rounds_is_an_error_not_a_truncated_answer() -> None:
    n, edges = SHAPES["chain_20000"]
    with DuckDBEngine() as engine:
        engine.register_arrow("nodes", pa.table({"node_id": pa.array(range(n), pa.int64())}))
        engine.register_arrow(
            "node_edges",
            pa.table({"src": [a for a, _ in edges], "dst": [b for _, b in edges]}),
        )
        with pytest.raises(EngineError, match="did not converge in 3 rounds"):
            solve_in_sql(engine, max_rounds=3)


def test_every_step_file_states_its_invariant() -> None:
    plan = sql_components()
    texts = [sql for _, sql in plan.setup + plan.rounds.steps + plan.finish] + [plan.rounds.check]
    assert len(texts) == 5
    for name in ("cc_large_star", "cc_small_star", "cc_converged", "cc_labels"):
        header = (FIXTURES.parent / "sql" / f"{name}.sql").read_text(encoding="utf-8")
        assert "-- Invariants:" in header, name


@pytest.mark.parametrize("policy", ["guarded", "connected"])
def test_pipeline_with_the_sql_solver_writes_the_same_files(
    policy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = FIXTURES / "several_devices_several_logins"
    in_memory_out = stitch(scenario, tmp_path / "in_memory", "--policy", policy, "--no-report")
    # The embedded engine told to keep its graph: the pipeline takes the SQL rounds instead.
    monkeypatch.setattr(DuckDBEngine, "components_in_memory", False)
    sql_out = stitch(scenario, tmp_path / "sql", "--policy", policy, "--no-report")
    for table in ("id_map", "users", "edges", "rejected_edges", "quarantine"):
        assert (sql_out / f"{table}.parquet").read_bytes() == (
            in_memory_out / f"{table}.parquet"
        ).read_bytes(), table
    shutil.rmtree(tmp_path)
