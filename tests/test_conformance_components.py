"""Plain connected components (`--policy connected`) on the peer graphs in ../shared/peers.

* LDBC Graphalytics WCC validation graphs: weakly connected components, direction ignored,
  isolated vertices kept as singletons (LD1 has sinks, LD4 has no vertex 1).
* SNAP ca-AstroPh: 18,772 ids, largest component 17,903 ids holding 197,031 of the edges, 290
  components (networkx); 60 self-loops, one node with only a self-loop must stay a singleton.

Each edge is fed as an alias (user_id -> user_id), each vertex as a user-only track, so the whole
pipeline (load, junk, policy, components, id_map) is exercised, not just the solver.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from conftest import partition_of, read_output, require_peers, stitch, write_csv

TS = "2026-11-01T00:00:00Z"


def _graph_input(folder: Path, vertices: list[str], edges: list[tuple[str, str]]) -> None:
    write_csv(
        folder / "aliases.csv",
        ["id", "previous_id", "user_id", "timestamp"],
        [(f"e{i}", a, b, TS) for i, (a, b) in enumerate(edges)],
    )
    write_csv(
        folder / "tracks.csv",
        ["id", "anonymous_id", "user_id", "timestamp"],
        [(f"v{i}", None, v, TS) for i, v in enumerate(vertices)],
    )


def _ldbc_cases() -> list[str]:
    folder = Path(__file__).resolve().parent.parent.parent / "shared/peers/ldbc-wcc"
    if not folder.is_dir():
        return ["absent"]
    with (folder / "vertices.csv").open() as f:
        return sorted({row["case_id"] for row in csv.DictReader(f)})


@pytest.mark.conformance
@pytest.mark.parametrize("case", _ldbc_cases())
def test_ldbc_wcc(case: str, tmp_path: Path) -> None:
    folder = require_peers("ldbc-wcc")
    vertices = pl.read_csv(folder / "vertices.csv", infer_schema=False).filter(
        pl.col("case_id") == case
    )
    edges = pl.read_csv(folder / "edges.csv", infer_schema=False).filter(pl.col("case_id") == case)
    expected = pl.read_csv(folder / "expected_components.csv", infer_schema=False).filter(
        pl.col("case_id") == case
    )
    _graph_input(
        tmp_path / "in",
        vertices["vertex"].to_list(),
        list(zip(edges["src"], edges["dst"], strict=True)),
    )
    out = stitch(tmp_path / "in", tmp_path / "out", "--policy", "connected")
    id_map = read_output(out, "id_map")
    got = partition_of(zip(id_map["identifier"], id_map["person_id"], strict=True))
    want = partition_of(zip(expected["vertex"], expected["component"], strict=True))
    assert got == want
    # Stricter: the component label is the minimum vertex id (LDBC's convention).
    labels = {v: c for v, c in zip(expected["vertex"], expected["component"], strict=True)}
    for members in got:
        assert {labels[m] for m in members} == {min(members, key=int)}


@pytest.mark.conformance
@pytest.mark.slow
def test_snap_ca_astroph(tmp_path: Path) -> None:
    folder = require_peers("snap-ca-astroph")
    edges = []
    with (folder / "ca-AstroPh.edges.txt").open() as f:
        for line in f:
            a, b = line.split()
            edges.append((a, b))
    vertices = sorted({v for e in edges for v in e})
    _graph_input(tmp_path / "in", vertices, edges)
    out = stitch(tmp_path / "in", tmp_path / "out", "--policy", "connected")
    id_map = read_output(out, "id_map")
    assert id_map.height == 18_772
    sizes = id_map.group_by("person_id").len()
    assert sizes.height == 290  # networkx's count, a second-implementation cross-check
    largest = sizes.sort("len", descending=True).row(0, named=True)
    assert largest["len"] == 17_903  # SNAP: nodes in largest WCC
    person_of = dict(zip(id_map["identifier"], id_map["person_id"], strict=True))
    in_largest = sum(1 for a, _ in edges if person_of[a] == largest["person_id"])
    assert in_largest == 197_031  # SNAP: edges in largest WCC (self-loops included)
    histogram = {}
    for size in sizes["len"].to_list():
        histogram[size] = histogram.get(size, 0) + 1
    published = pl.read_csv(folder / "networkx_component_size_histogram.csv")
    assert histogram == dict(
        zip(*[published[c].to_list() for c in published.columns[:2]], strict=True)
    )
