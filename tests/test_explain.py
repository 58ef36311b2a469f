"""`stitcher explain`: evidence for one id, chains between two, checked against the graph.

Chains are checked against networkx over the written edges: every link of a chain must exist in
`edges` (kept) or `rejected_edges` (refused), consecutive links must share an identifier, a kept
chain must be as short as networkx's shortest path, and a refused route must use as few refused
links as a 0/1-weighted shortest path (kept links free, refused links cost 1).
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import networkx as nx
import polars as pl
import pytest

from stitcher.inspection.explanations import explain_identifier, explain_pair

from conftest import FIXTURES, read_output, run_cli, stitch, write_csv

SFC_DEVICE = "anonymous_id:5e7a9c1b-3d2f-4a6e-b8c0-9f1e2d3c4b5a"
SFC_PHONE = "anonymous_id:B7D3E1F0-2A4C-4E6B-8D0F-1C3E5A7B9D24"
AFO_LAPTOP = "anonymous_id:0e5d3b1f-9a7c-4e2d-b4f6-8a0c2e4d6f19"
AFO_PHONE = "anonymous_id:AC31F7E9-5B2D-4C8A-9E0F-3D6B1A4C7E58"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explain")
    made = {}
    for name in ("shared_family_computer", "alias_from_old_user_id", "junk_ids"):
        made[name] = stitch(FIXTURES / name, root / name)
        made[f"{name}.csv"] = stitch(
            FIXTURES / name, root / f"{name}.csv", "--output-format", "csv"
        )
    made["several"] = stitch(FIXTURES / "several_devices_several_logins", root / "several")
    return made


def explain_json(*args: str) -> dict:
    return json.loads(run_cli("explain", *args, "--json").stdout)


# --- graph checks -----------------------------------------------------------------------------


def link_key(link: dict) -> tuple:
    return (link["from_type"], link["from_id"], link["to_type"], link["to_id"], link["rule"])


def table_keys(output: Path, name: str) -> set[tuple]:
    frame = read_output(output, name)
    return set(frame.select("from_type", "from_id", "to_type", "to_id", "rule").iter_rows())


def graphs(output: Path) -> tuple[nx.Graph, nx.Graph]:
    """(kept-edge graph, kept+refused graph with weight 0 for kept and 1 for refused)."""
    kept, both = nx.Graph(), nx.Graph()
    for name, weight in (("rejected_edges", 1), ("edges", 0)):
        for ft, fi, tt, ti in (
            read_output(output, name).select("from_type", "from_id", "to_type", "to_id").iter_rows()
        ):
            a, b = f"{ft}:{fi}", f"{tt}:{ti}"
            if weight == 0:
                kept.add_edge(a, b)
            # a kept link between the same ids wins over a refused one (a cheaper route)
            both.add_edge(a, b, weight=weight)
    return kept, both


def check_chain(path: list[str], chain: list[dict], output: Path) -> None:
    kept, refused = table_keys(output, "edges"), table_keys(output, "rejected_edges")
    assert len(path) == len(chain) + 1
    for (here, there), link in zip(itertools.pairwise(path), chain, strict=True):
        ends = {f"{link['from_type']}:{link['from_id']}", f"{link['to_type']}:{link['to_id']}"}
        assert ends == {here, there}
        assert link_key(link) in (refused if link["refused"] else kept)


# --- one identifier ---------------------------------------------------------------------------


def test_one_id_shows_person_identifiers_links_and_refusals(outputs: dict[str, Path]) -> None:
    out = outputs["shared_family_computer"]
    result = explain_json(str(out), "user_1001")
    id_map = read_output(out, "id_map")
    person = id_map.filter(pl.col("identifier") == "user_1001")["person_id"][0]
    assert result["identifier"] == "user_id:user_1001"
    assert result["person_id"] == person
    assert {(r["identifier_type"], r["identifier"]) for r in result["identifiers"]} == {
        ("user_id", "user_1001"),
        ("anonymous_id", SFC_DEVICE.split(":", 1)[1]),
    }
    assert all(r["first_seen_at"] and r["last_seen_at"] for r in result["identifiers"])
    [link] = result["links"]
    assert (link["evidence_table"], link["evidence_message_id"]) == ("identifies", "sfc-i1")
    [refused] = result["refused_links"]
    assert refused["to_id"] == "user_1002"
    assert refused["reason"] == "anonymous_id_has_earlier_user_id"
    assert refused["evidence_message_id"] == "sfc-t2"


def test_one_id_text(outputs: dict[str, Path]) -> None:
    text = run_cli("explain", str(outputs["shared_family_computer"]), "user_id:user_1001").stdout
    assert "is in person" in text
    assert "identifies message sfc-i1" in text
    assert "refused: anonymous_id_has_earlier_user_id" in text


def test_junk_id_is_explained_as_quarantined(outputs: dict[str, Path]) -> None:
    result = explain_json(str(outputs["junk_ids"]), "user_id:guest")
    assert result["person_id"] is None
    assert result["quarantine"]["reason"]
    assert result["refused_count"] > 0
    assert all("guest" in (r["from_id"], r["to_id"]) for r in result["refused_links"])
    assert "quarantined" in run_cli("explain", str(outputs["junk_ids"]), "user_id:guest").stdout


def test_ambiguous_bare_id_lists_the_choices(outputs: dict[str, Path]) -> None:
    result = run_cli("explain", str(outputs["several"]), "4821", expect=1)
    assert "ambiguous" in result.stderr
    assert "anonymous_id:4821" in result.stderr and "user_id:4821" in result.stderr
    typed = explain_json(str(outputs["several"]), "anonymous_id:4821")
    assert typed["identifier"] == "anonymous_id:4821"


def test_unknown_id_and_missing_folder_are_one_line_errors(
    outputs: dict[str, Path], tmp_path: Path
) -> None:
    result = run_cli("explain", str(outputs["several"]), "user_id:nobody", expect=1)
    assert result.stderr.startswith("Error: no identifier")
    result = run_cli("explain", str(tmp_path), "user_id:x", expect=1)
    assert "id_map" in result.stderr
    run_cli("explain", str(outputs["several"]), "a", "b", "c", expect=2)


def test_limit_truncates_text_lists(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_csv(
        events / "identifies.csv",
        ["id", "anonymous_id", "user_id", "timestamp"],
        [(f"m{i}", f"dev{i}", "u1", f"2026-01-01T00:00:{i:02d}Z") for i in range(30)],
    )
    out = stitch(events, tmp_path / "out")
    text = run_cli("explain", str(out), "u1", "--limit", "5").stdout
    assert "… and 26 more" in text  # 31 identifiers, 5 shown
    assert explain_json(str(out), "u1")["identifier_count"] == 31
    assert len(explain_json(str(out), "u1")["identifiers"]) == 31


# --- two identifiers --------------------------------------------------------------------------


def test_alias_chain_between_two_devices(outputs: dict[str, Path]) -> None:
    out = outputs["alias_from_old_user_id"]
    result = explain_json(str(out), AFO_LAPTOP, AFO_PHONE)
    assert result["same_person"]
    assert result["path"] == [
        AFO_LAPTOP,
        "user_id:jordan.lee@oldmail.example.com",
        "user_id:usr_8810",
        AFO_PHONE,
    ]
    assert [link["rule"] for link in result["chain"]] == ["same_event", "alias", "same_event"]
    assert result["chain"][1]["evidence_message_id"] == "afo-a1"
    check_chain(result["path"], result["chain"], out)
    text = run_cli("explain", str(out), AFO_LAPTOP, AFO_PHONE).stdout
    assert "chain of 3 links" in text and "aliases message afo-a1" in text


def test_different_persons_show_the_refused_link(outputs: dict[str, Path]) -> None:
    out = outputs["shared_family_computer"]
    result = explain_json(str(out), SFC_DEVICE, "user_id:user_1002")
    assert not result["same_person"]
    nearest = result["nearest_refused"]
    assert nearest["refused_links"] == 1
    [link] = nearest["chain"]
    assert link["refused"] and link["reason"] == "anonymous_id_has_earlier_user_id"
    assert link["evidence_message_id"] == "sfc-t2"
    # the other device of B is one kept link further
    result = explain_json(str(out), SFC_DEVICE, SFC_PHONE)
    assert result["nearest_refused"]["path"] == [SFC_DEVICE, "user_id:user_1002", SFC_PHONE]
    check_chain(result["nearest_refused"]["path"], result["nearest_refused"]["chain"], out)
    text = run_cli("explain", str(out), SFC_DEVICE, SFC_PHONE).stdout
    assert "different persons" in text and "REFUSED (anonymous_id_has_earlier_user_id)" in text


def test_route_through_a_junk_id(outputs: dict[str, Path]) -> None:
    out = outputs["junk_ids"]
    result = explain_json(str(out), "user_id:user_501", "user_id:user_502")
    nearest = result["nearest_refused"]
    assert nearest["refused_links"] == 2  # user_501 - junk id - user_502
    assert all(link["refused"] for link in nearest["chain"])
    check_chain(nearest["path"], nearest["chain"], out)


def test_unconnected_persons(outputs: dict[str, Path]) -> None:
    out = outputs["several"]
    result = explain_json(str(out), "user_id:4821", "user_id:user_7310")
    assert not result["same_person"] and result["nearest_refused"] is None
    assert (
        "nothing in the input connects them"
        in run_cli("explain", str(out), "user_id:4821", "user_id:user_7310").stdout
    )


@pytest.mark.parametrize(
    "args",
    [
        ("user_id:user_1001",),
        (SFC_DEVICE, SFC_PHONE),
        ("user_id:user_1001", SFC_DEVICE),
    ],
)
def test_csv_and_parquet_outputs_explain_alike(outputs: dict[str, Path], args: tuple) -> None:
    parquet = explain_json(str(outputs["shared_family_computer"]), *args)
    csv = explain_json(str(outputs["shared_family_computer.csv"]), *args)
    assert parquet == csv


# --- generated graphs: chains are valid and shortest ------------------------------------------


def random_events(folder: Path, seed: int, people: int = 60) -> Path:
    """Random anonymous/user co-occurrences with shared devices and aliases: many refusals."""
    rng = random.Random(seed)
    rows, aliases = [], []
    for i in range(people * 4):
        anon = f"a{rng.randrange(people * 2)}"
        user = f"u{rng.randrange(people)}" if rng.random() < 0.7 else None
        rows.append((f"t{i}", anon, user, f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"))
    for i in range(people // 6):
        aliases.append(
            (f"al{i}", f"u{rng.randrange(people)}", f"u{rng.randrange(people)}", "2026-02-01")
        )
    write_csv(folder / "tracks.csv", ["id", "anonymous_id", "user_id", "timestamp"], rows)
    write_csv(folder / "aliases.csv", ["id", "previous_id", "user_id", "timestamp"], aliases)
    return folder


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_chains_are_shortest(tmp_path: Path, seed: int) -> None:
    out = stitch(random_events(tmp_path / "events", seed), tmp_path / "out")
    kept, both = graphs(out)
    id_map = read_output(out, "id_map")
    person_of = {
        f"{t}:{i}": p
        for t, i, p in id_map.select("identifier_type", "identifier", "person_id").iter_rows()
    }
    ids = sorted(person_of)
    rng = random.Random(seed)
    # pairs inside one person: the biggest persons have the longest chains
    by_person: dict[str, list[str]] = {}
    for ident, person in person_of.items():
        by_person.setdefault(person, []).append(ident)
    big = sorted(by_person.values(), key=len, reverse=True)[:5]
    same_pairs = [tuple(rng.sample(members, 2)) for members in big if len(members) > 1]
    other_pairs = [tuple(rng.sample(ids, 2)) for _ in range(15)]
    checked_refused = 0
    for a, b in same_pairs + other_pairs:
        result = explain_pair(out, a, b).as_record()
        if person_of[a] == person_of[b]:
            assert result["same_person"]
            check_chain(result["path"], result["chain"], out)
            assert len(result["chain"]) == nx.shortest_path_length(kept, a, b)
            continue
        assert not result["same_person"]
        nearest = result["nearest_refused"]
        if not (a in both and b in both and nx.has_path(both, a, b)):
            assert nearest is None
            continue
        check_chain(nearest["path"], nearest["chain"], out)
        fewest = nx.shortest_path_length(both, a, b, weight="weight")
        assert nearest["refused_links"] == fewest
        checked_refused += 1
    assert same_pairs and checked_refused


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    run_cli(
        "generate", str(root / "events"), "--events", "20000", "--seed", "7",
        "--guest-login-people", "5", "--hardcoded-device-people", "5", "-q",
    )  # fmt: skip
    return stitch(root / "events", root / "out")


def test_generated_data_chains(generated: Path) -> None:
    out = generated
    kept, both = graphs(out)
    edges = read_output(out, "edges")
    sizes = edges.group_by("person_id").len().sort(["len", "person_id"], descending=[True, False])
    id_map = read_output(out, "id_map")
    for person in sizes["person_id"].head(5):
        members = sorted(
            f"{t}:{i}"
            for t, i in id_map.filter(pl.col("person_id") == person)
            .select("identifier_type", "identifier")
            .iter_rows()
        )
        a, b = members[0], members[-1]
        result = explain_pair(out, a, b).as_record()
        check_chain(result["path"], result["chain"], out)
        assert len(result["chain"]) == nx.shortest_path_length(kept, a, b)
    rejected = read_output(out, "rejected_edges").filter(
        pl.col("from_person_id").is_not_null()
        & pl.col("to_person_id").is_not_null()
        & (pl.col("from_person_id") != pl.col("to_person_id"))
    )
    for ft, fi, tt, ti in (
        rejected.select("from_type", "from_id", "to_type", "to_id").head(5).iter_rows()
    ):
        a, b = f"{ft}:{fi}", f"{tt}:{ti}"
        nearest = explain_pair(out, a, b).nearest_refused
        assert nearest["refused_links"] == 1 == nx.shortest_path_length(both, a, b, weight="weight")
        check_chain(nearest["path"], nearest["chain"], out)
    biggest = sizes["person_id"][0]
    member = id_map.filter(pl.col("person_id") == biggest).row(0, named=True)
    one = explain_identifier(out, f"{member['identifier_type']}:{member['identifier']}").as_record()
    assert one["person_id"] == biggest
    assert one["identifier_count"] == id_map.filter(pl.col("person_id") == biggest).height
    assert one["link_count"] == sizes["len"][0]
