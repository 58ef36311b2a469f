"""Tests of the synthetic data generator and the pairwise scorer."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from stitcher.synthetic import generate as gen
from stitcher.synthetic.generate import (
    GUEST_USER_ID,
    HARDCODED_ANONYMOUS_ID,
    JUNK_ANONYMOUS_IDS,
    TABLES,
    GeneratorConfig,
    generate,
    pairwise_scores,
)

EVENT_TABLES = TABLES[:4]
HUBS = {GUEST_USER_ID, HARDCODED_ANONYMOUS_ID}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _events(out: Path) -> pl.DataFrame:
    """All rows of all tables as (table, id, anonymous_id, user_id, timestamp)."""
    frames = []
    for name in EVENT_TABLES:
        df = pl.read_parquet(out / f"{name}.parquet")
        frames.append(
            df.select("id", "anonymous_id", "user_id", "timestamp").with_columns(table=pl.lit(name))
        )
    aliases = pl.read_parquet(out / "aliases.parquet")
    frames.append(
        aliases.select("id", "anonymous_id", "user_id", "timestamp").with_columns(
            table=pl.lit("aliases")
        )
    )
    return pl.concat(frames)


def _typed_ids(out: Path) -> set[tuple[str, str]]:
    ev = _events(out)
    aliases = pl.read_parquet(out / "aliases.parquet")
    anon = set(ev["anonymous_id"].drop_nulls().to_list())
    users = set(ev["user_id"].drop_nulls().to_list()) | set(aliases["previous_id"].to_list())
    return {("anonymous_id", a) for a in anon} | {("user_id", u) for u in users}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen")
    config = GeneratorConfig(
        n_events=20_000,
        seed=7,
        shared_device_rate=0.05,
        guest_login_people=4,
        hardcoded_device_people=4,
        alias_rate=0.05,
        junk_anonymous_rate=0.01,
    )
    return out, generate(out, config)


def test_same_seed_is_byte_identical(tmp_path: Path) -> None:
    config = GeneratorConfig(n_events=3_000, seed=3, guest_login_people=2)
    generate(tmp_path / "a", config)
    generate(tmp_path / "b", config)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(a) >= {f"{t}.parquet" for t in TABLES} | {"truth.parquet", "generator.json"}
    assert a == b


def test_different_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", GeneratorConfig(n_events=3_000, seed=1))
    generate(tmp_path / "b", GeneratorConfig(n_events=3_000, seed=2))
    for name in ("tracks.parquet", "truth.parquet"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_counts_and_schema(small: tuple[Path, dict]) -> None:
    out, summary = small
    assert summary == json.loads((out / "generator.json").read_text())
    assert summary["events"] == 20_000
    rows = {t: pl.read_parquet(out / f"{t}.parquet").height for t in TABLES}
    assert rows == summary["events_per_table"]
    assert sum(rows[t] for t in EVENT_TABLES) == 20_000
    # events_per_identifier is honoured to within a few percent.
    assert summary["identifiers"] == pytest.approx(20_000 / 6.3, rel=0.03)
    tracks = pq.read_table(out / "tracks.parquet")
    assert tracks.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    ids = _events(out)["id"]
    assert ids.n_unique() == ids.len()
    identifies = pl.read_parquet(out / "identifies.parquet")
    assert {"email", "name", "plan"} <= set(identifies.columns)
    # Plans change over a person's lifetime, so "latest non-null" differs from "first non-null".
    per_user = (
        identifies.drop_nulls(["user_id", "plan"])
        .sort("timestamp")
        .group_by("user_id")
        .agg(first=pl.col("plan").first(), last=pl.col("plan").last())
    )
    assert (per_user["first"] != per_user["last"]).any()


def test_truth_covers_every_real_identifier_once(small: tuple[Path, dict]) -> None:
    out, summary = small
    truth = pl.read_parquet(out / "truth.parquet")
    keys = list(zip(truth["identifier_type"], truth["identifier"], strict=True))
    assert len(keys) == len(set(keys))
    present = _typed_ids(out)
    junk = set(JUNK_ANONYMOUS_IDS)
    real = {(t, v) for t, v in present if v not in junk and v not in HUBS}
    assert set(keys) == real
    assert ("anonymous_id", HARDCODED_ANONYMOUS_ID) in present
    assert ("user_id", GUEST_USER_ID) in present
    assert len({v for _, v in present if v in junk}) >= 5
    assert summary["identifiers"] == len(present)


def test_junk_comes_from_many_people(small: tuple[Path, dict]) -> None:
    out, _ = small
    ev = _events(out)
    junk_users = ev.filter(pl.col("anonymous_id").is_in(list(JUNK_ANONYMOUS_IDS)))["user_id"]
    assert junk_users.drop_nulls().n_unique() >= 10


def test_linkable_groups_match_the_honest_links_in_the_data(small: tuple[Path, dict]) -> None:
    """Recompute linkable groups independently: components of same-person links in the data."""
    out, _ = small
    truth = pl.read_parquet(out / "truth.parquet")
    person = {
        (t, v): p
        for t, v, p in zip(
            truth["identifier_type"], truth["identifier"], truth["true_person"], strict=True
        )
    }
    graph = nx.Graph()
    graph.add_nodes_from(person)
    links = _events(out).drop_nulls(["anonymous_id", "user_id"]).select("anonymous_id", "user_id")
    aliases = pl.read_parquet(out / "aliases.parquet")
    pairs = [(("anonymous_id", a), ("user_id", u)) for a, u in links.unique().iter_rows()]
    pairs += [
        (("user_id", p), ("user_id", u))
        for p, u in aliases.select("previous_id", "user_id").iter_rows()
    ]
    for x, y in pairs:
        if x in person and y in person and person[x] == person[y]:
            graph.add_edge(x, y)
    expected = {frozenset(c) for c in nx.connected_components(graph)}
    groups: dict[int, set] = {}
    for t, v, g in zip(
        truth["identifier_type"], truth["identifier"], truth["linkable_group"], strict=True
    ):
        groups.setdefault(g, set()).add((t, v))
    assert {frozenset(g) for g in groups.values()} == expected
    # Some people have anonymous ids they never logged in with: groups finer than people.
    assert len(groups) > truth["true_person"].n_unique()


def test_shared_devices_belong_to_their_first_user(small: tuple[Path, dict]) -> None:
    out, summary = small
    truth = pl.read_parquet(out / "truth.parquet")
    owner = truth.select(
        identifier="identifier", owner="true_person", typ="identifier_type"
    ).filter(pl.col("typ") == "anonymous_id")
    users = truth.filter(pl.col("identifier_type") == "user_id").select(
        user_id="identifier", user_person="true_person"
    )
    firsts = (
        _events(out)
        .drop_nulls(["anonymous_id", "user_id"])
        .join(owner, left_on="anonymous_id", right_on="identifier")  # drops junk and hub anons
        .join(users, on="user_id")  # drops guest-account
        .group_by("anonymous_id", "user_person")
        .agg(pl.col("timestamp").min(), pl.col("owner").first())
        .sort("anonymous_id", "timestamp")
    )
    shared = firsts.filter(pl.col("anonymous_id").is_duplicated())
    assert summary["shared_devices"] > 0
    assert shared["anonymous_id"].n_unique() == summary["shared_devices"]
    first_user = shared.group_by("anonymous_id", maintain_order=True).first()
    assert (first_user["user_person"] == first_user["owner"]).all()
    # And strictly earlier: the second person's first event there comes later.
    second = shared.group_by("anonymous_id", maintain_order=True).agg(pl.col("timestamp").sort())
    assert all(ts[0] < ts[1] for ts in second["timestamp"].to_list())


def test_login_follows_anonymous_browsing(small: tuple[Path, dict]) -> None:
    out, _ = small
    ev = _events(out).filter(pl.col("table") != "aliases")
    truth = pl.read_parquet(out / "truth.parquet").filter(
        pl.col("identifier_type") == "anonymous_id"
    )
    # On an anonymous id with both kinds of events, the anonymous-only ones come first.
    order = (
        ev.join(truth, left_on="anonymous_id", right_on="identifier")
        .group_by("anonymous_id")
        .agg(
            last_anon=pl.col("timestamp").filter(pl.col("user_id").is_null()).max(),
            first_user=pl.col("timestamp").filter(pl.col("user_id").is_not_null()).min(),
        )
        .drop_nulls()
    )
    assert order.height > 50
    assert (order["last_anon"] <= order["first_user"]).mean() > 0.95


def test_pairwise_scores_on_truth_is_perfect(small: tuple[Path, dict]) -> None:
    out, _ = small
    truth = pq.read_table(out / "truth.parquet")
    id_map = truth.append_column("person_id", truth.column("true_person"))
    scores = pairwise_scores(id_map, truth)
    assert scores["precision"] == 1.0
    assert scores["recall"] == 1.0
    assert scores["true_pairs"] >= scores["linkable_pairs"] > 0
    assert scores["missing_from_id_map"] == 0


def test_pairwise_scores_hand_computed() -> None:
    truth = pa.table(
        {
            "identifier_type": [
                "anonymous_id",
                "user_id",
                "anonymous_id",
                "anonymous_id",
                "user_id",
            ],
            "identifier": ["a1", "u1", "a2", "a3", "u3"],
            "true_person": [0, 0, 0, 1, 1],
            "linkable_group": [10, 10, 11, 12, 12],
        }
    )
    # One predicted person for a1, u1, a3, u3; a2 missing (a singleton); hubs are ignored.
    id_map = pa.table(
        {
            "identifier_type": ["anonymous_id", "user_id", "anonymous_id", "user_id", "user_id"],
            "identifier": ["a1", "u1", "a3", "u3", GUEST_USER_ID],
            "person_id": ["P", "P", "P", "P", "P"],
        }
    )
    scores = pairwise_scores(id_map, truth)
    assert scores["predicted_pairs"] == 6
    assert scores["correct_pairs"] == 2
    assert scores["precision"] == pytest.approx(2 / 6)
    assert scores["linkable_pairs"] == 2
    assert scores["recall"] == 1.0
    assert scores["true_pairs"] == 4
    assert scores["true_recall"] == pytest.approx(2 / 4)
    assert scores["missing_from_id_map"] == 1
    # Splitting everything apart: nothing predicted, nothing recalled.
    alone = pairwise_scores(id_map.slice(0, 0), truth)
    assert alone["predicted_pairs"] == 0 and alone["precision"] == 1.0 and alone["recall"] == 0.0


def test_pairwise_scores_rejects_conflicting_id_map() -> None:
    truth = pa.table(
        {
            "identifier_type": ["user_id"],
            "identifier": ["u1"],
            "true_person": [0],
            "linkable_group": [0],
        }
    )
    id_map = pa.table(
        {"identifier_type": ["user_id"] * 2, "identifier": ["u1", "u1"], "person_id": [1, 2]}
    )
    with pytest.raises(ValueError):
        pairwise_scores(id_map, truth)


def test_csv_mode_is_readable(tmp_path: Path) -> None:
    summary = generate(tmp_path, GeneratorConfig(n_events=2_000, seed=5, file_format="csv"))
    for name in TABLES:
        table = pacsv.read_csv(tmp_path / f"{name}.csv")
        assert table.num_rows == summary["events_per_table"][name]
        if table.num_rows:
            # ISO-8601 with a T and a Z parses as a UTC timestamp.
            ts_type = table.schema.field("timestamp").type
            assert pa.types.is_timestamp(ts_type) and ts_type.tz == "UTC"
        df = pl.read_csv(tmp_path / f"{name}.csv", try_parse_dates=True)
        assert df.height == summary["events_per_table"][name]
    assert (tmp_path / "truth.parquet").exists()


def test_partitioned_mode_is_readable(tmp_path: Path) -> None:
    summary = generate(tmp_path, GeneratorConfig(n_events=3_000, seed=6, files_per_table=3))
    for name in TABLES:
        folder = tmp_path / name
        files = sorted(folder.glob("dt=*/part-*.parquet"))
        assert files, name
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        assert dataset.count_rows() == summary["events_per_table"][name]
        df = pl.scan_parquet(folder / "**" / "*.parquet", hive_partitioning=True).collect()
        assert df.height == summary["events_per_table"][name]
    tracks = tmp_path / "tracks"
    assert len(list(tracks.glob("dt=*"))) > 20
    assert max(len(list(d.glob("part-*"))) for d in tracks.glob("dt=*")) == 3
    # Rows sit in the partition of their own day.
    df = pl.scan_parquet(tracks / "**" / "*.parquet", hive_partitioning=True).collect()
    assert (df["timestamp"].dt.date().cast(pl.Utf8) == df["dt"].cast(pl.Utf8)).all()
    # Regenerating in single-file layout removes the partitioned output.
    generate(tmp_path, GeneratorConfig(n_events=500, seed=6))
    assert not (tmp_path / "tracks").exists()
    assert (tmp_path / "tracks.parquet").exists()


def test_partitioned_csv(tmp_path: Path) -> None:
    summary = generate(
        tmp_path, GeneratorConfig(n_events=1_000, seed=8, file_format="csv", files_per_table=2)
    )
    dataset = ds.dataset(tmp_path / "identifies", format="csv", partitioning="hive")
    assert dataset.count_rows() == summary["events_per_table"]["identifies"]


def test_several_chunks_keep_ids_unique(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen, "_CHUNK_EVENTS", 2_000)
    summary = generate(tmp_path, GeneratorConfig(n_events=7_000, seed=9, hardcoded_device_people=3))
    assert summary["chunks"] == 4
    assert summary["events"] == 7_000
    assert summary["hardcoded_device_people"] == 3
    truth = pl.read_parquet(tmp_path / "truth.parquet")
    assert truth.select("identifier_type", "identifier").is_unique().all()
    present = _typed_ids(tmp_path)
    real = {(t, v) for t, v in present if v not in set(JUNK_ANONYMOUS_IDS) and v not in HUBS}
    assert set(zip(truth["identifier_type"], truth["identifier"], strict=True)) == real
    assert _events(tmp_path)["id"].is_unique().all()


def test_cli_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen._main([str(tmp_path), "--events", "500", "--seed", "2", "--format", "csv"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["events"] == 500
    assert (tmp_path / "tracks.csv").exists()


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(file_format="json")
    with pytest.raises(ValueError):
        GeneratorConfig(login_rate=1.5)
    with pytest.raises(ValueError):
        GeneratorConfig(n_events=0)
