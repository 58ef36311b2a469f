"""Every hand-written fixture: the hand-derived partition, the refused links, and golden files.

The partition (`expected_clusters.csv`) and refusals (`expected_refused.csv`) were derived by hand
from the rules; the golden id_map/users CSVs pin every other column (ids, counts, times, traits).
Regenerate goldens after an intended change with STITCHER_UPDATE_GOLDENS=1 and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from conftest import FIXTURES, partition, read_output, stitch

SCENARIOS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected_clusters.csv").exists())
GOLDEN_TABLES = ("id_map", "users", "rejected_edges", "quarantine")


def test_every_scenario_is_present() -> None:
    assert len(SCENARIOS) >= 10


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fixtures")
    return {
        name: stitch(FIXTURES / name, root / name, "--output-format", "csv") for name in SCENARIOS
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_partition_matches_hand_derivation(scenario: str, outputs: dict[str, Path]) -> None:
    expected = pl.read_csv(FIXTURES / scenario / "expected_clusters.csv", infer_schema=False)
    want = {
        frozenset(zip(g["identifier_type"], g["identifier"], strict=True))
        for _, g in expected.group_by("cluster")
    }
    assert partition(read_output(outputs[scenario], "id_map")) == want


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_refused_links_match_hand_derivation(scenario: str, outputs: dict[str, Path]) -> None:
    rejected = read_output(outputs[scenario], "rejected_edges").filter(
        pl.col("reason") == "anonymous_id_has_earlier_user_id"
    )
    got = set(zip(rejected["from_id"], rejected["to_id"], strict=True))
    refused_file = FIXTURES / scenario / "expected_refused.csv"
    want: set[tuple[str, str]] = set()
    if refused_file.exists():
        refused = pl.read_csv(refused_file, infer_schema=False)
        want = set(zip(refused["anonymous_id"], refused["user_id"], strict=True))
    assert got == want


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("table", GOLDEN_TABLES)
def test_golden_files(scenario: str, table: str, outputs: dict[str, Path]) -> None:
    produced = outputs[scenario] / f"{table}.csv"
    golden = FIXTURES / scenario / "golden" / f"{table}.csv"
    if os.environ.get("STITCHER_UPDATE_GOLDENS") == "1":
        golden.parent.mkdir(exist_ok=True)
        shutil.copyfile(produced, golden)
    assert golden.exists(), f"no golden {golden}; run with STITCHER_UPDATE_GOLDENS=1 and review"
    assert produced.read_text(encoding="utf-8") == golden.read_text(encoding="utf-8")


def test_junk_values_are_quarantined_not_mapped(outputs: dict[str, Path]) -> None:
    quarantine = read_output(outputs["junk_ids"], "quarantine")
    junk = set(quarantine["identifier"].to_list())
    assert {"undefined", "null", "0", "[object Object]", "guest", "N/A", "-1"} <= junk
    assert "00000000-0000-0000-0000-000000000000" in junk
    id_map = read_output(outputs["junk_ids"], "id_map")
    assert not junk & set(id_map["identifier"].to_list())
    assert (quarantine["event_count"].cast(pl.Int64) > 0).all()


def test_traits_are_latest_non_null(outputs: dict[str, Path]) -> None:
    users = read_output(outputs["anonymous_then_signup"], "users")
    assert users.height == 1
    row = users.row(0, named=True)
    assert row["plan"] == "pro"
    assert row["email"] == "alice.martin@example.com"
    assert row["user_id"] == "user_123"


def test_soft_registration_keeps_traits_on_anonymous_person(outputs: dict[str, Path]) -> None:
    users = read_output(outputs["soft_registration"], "users")
    with_email = users.filter(pl.col("email").is_not_null())
    assert with_email.height == 1
    assert with_email["user_id"][0] is None
