"""`--fail-if`: a breached threshold exits 3 after writing the whole output; bad ones exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stitcher.errors import ConfigError
from stitcher.inspection.thresholds import METRICS, check_conditions, parse_condition, run_metrics

from conftest import FIXTURES, read_output, run_cli, stitch

SFC = FIXTURES / "shared_family_computer"
ALIAS = FIXTURES / "alias_from_old_user_id"
TABLES = ("id_map", "users", "edges", "rejected_edges", "quarantine")


def run(input_dir: Path, output_dir: Path, *extra: str, expect: int) -> object:
    return run_cli("run", "--input", str(input_dir), "--output", str(output_dir), *extra,
                   expect=expect)  # fmt: skip


def test_breach_exits_3_with_the_output_complete(tmp_path: Path) -> None:
    reference = stitch(SFC, tmp_path / "reference")
    out = tmp_path / "out"
    result = run(SFC, out, "--fail-if", "largest_person>1", "--fail-if", "persons>100", expect=3)
    assert "Threshold breached: largest_person=2 > 1" in result.stderr
    assert "persons" not in result.stderr.replace("largest_person", "")
    for table in TABLES:
        assert read_output(out, table).equals(read_output(reference, table)), table
    record = json.loads((out / "run.json").read_text())
    assert record["metrics"]["largest_person"] == 2
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "reference"]  # no temp left


def test_breach_replaces_the_previous_output(tmp_path: Path) -> None:
    out = stitch(FIXTURES / "junk_ids", tmp_path / "out")
    run(SFC, out, "--fail-if", "rejected_share>0.1", expect=3)
    users = read_output(out, "users")
    assert set(users["user_id"]) == {"user_1001", "user_1002"}


def test_quiet_still_reports_the_breach(tmp_path: Path) -> None:
    result = run(SFC, tmp_path / "out", "-q", "--fail-if", "rejected_share>=0.3", expect=3)
    assert result.stdout == ""
    assert "Threshold breached: rejected_share=0.333333 >= 0.3" in result.stderr


@pytest.mark.parametrize(
    "condition",
    ["largest_person<2", "persons<=1", "persons>=3", "rejected_share<0.3", "events>12"],
)
def test_conditions_not_breached_exit_0(tmp_path: Path, condition: str) -> None:
    result = run(SFC, tmp_path / "out", "--fail-if", condition, expect=0)
    assert "Threshold" not in result.stderr


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("largest_persn>5", "unknown metric 'largest_persn'"),
        ("largest_person=5", "cannot read condition"),
        ("largest_person>", "cannot read condition"),
        ("largest_person>five", "cannot read condition"),
        ("largest_person>1.2.3", "is not a number"),
    ],
)
def test_malformed_conditions_exit_2_before_running(
    tmp_path: Path, condition: str, message: str
) -> None:
    result = run(SFC, tmp_path / "out", "--fail-if", condition, expect=2)
    assert message in result.stderr
    if "unknown metric" in message:
        assert "valid metrics: " + ", ".join(METRICS) in result.stderr
    assert not (tmp_path / "out").exists()


def test_persons_changed_needs_a_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run(
        ALIAS.parent / "alias_from_old_user_id", out, "--fail-if", "persons_changed>0.02",
        expect=0,
    )  # fmt: skip
    assert "Threshold not checked: persons_changed" in first.stderr
    # Drop the alias: the one person splits in two, so every previous person changed.
    without = tmp_path / "without"
    shutil.copytree(ALIAS, without, ignore=shutil.ignore_patterns("expected_*", "golden"))
    (without / "aliases.csv").unlink()
    second = run(without, out, "--fail-if", "persons_changed>0.02", expect=3)
    assert "Threshold breached: persons_changed=1 > 0.02" in second.stderr
    assert read_output(out, "users").height == 2


def test_parse_condition() -> None:
    c = parse_condition(" rejected_share >= 0.05 ")
    assert (c.metric, c.op, c.limit) == ("rejected_share", ">=", 0.05)
    assert c.breached_by(0.05) and not c.breached_by(0.049)
    assert parse_condition("persons<1e3").limit == 1000
    with pytest.raises(ConfigError, match="valid metrics"):
        parse_condition("nope>1")


def test_every_metric_is_computed_and_documented(tmp_path: Path) -> None:
    out = stitch(SFC, tmp_path / "out")
    record = json.loads((out / "run.json").read_text())
    assert set(record["metrics"]) == set(METRICS)
    assert record["metrics"] == run_metrics(record)
    readme = (FIXTURES.parent / "README.md").read_text()
    for name in METRICS:
        assert f"`{name}`" in readme, f"metric {name} is not in the README"
    outcomes = check_conditions([parse_condition("persons_split>0")], record["metrics"])
    assert outcomes[0].value is None and not outcomes[0].breached
