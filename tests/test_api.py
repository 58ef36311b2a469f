"""The Python API (stitcher.run, stitcher.explain, stitcher.diff): paths as str or Path, the
config file applied as the command applies it, one exception class per exit code, and results
that are data, the same data the command prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import stitcher
from stitcher.inspection.changes import OutputDiff
from stitcher.inspection.explanations import IdentifierExplanation, PairExplanation

from conftest import FIXTURES, file_bytes, run_cli

SFC = FIXTURES / "shared_family_computer"
RESET = FIXTURES / "reset_after_logout"


def _record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", [str, Path])
def test_run_takes_str_or_path_and_returns_what_it_wrote(tmp_path: Path, kind: type) -> None:
    result = stitcher.run(kind(SFC), kind(tmp_path / "out"))
    record = _record(tmp_path / "out")
    assert result.record == record
    assert result.metrics == record["metrics"]
    assert result.metrics["persons"] == 2
    assert result.thresholds == [] and result.breached == []
    assert set(result.paths) == set(result.files) == {p.name for p in (tmp_path / "out").iterdir()}
    assert result.paths["users.parquet"] == tmp_path / "out" / "users.parquet"
    assert all(path.is_file() for path in result.paths.values())


def test_run_matches_the_command(tmp_path: Path) -> None:
    stitcher.run(SFC, tmp_path / "api", policy="connected", dedupe=True)
    run_cli("run", "--input", str(SFC), "--output", str(tmp_path / "cli"), "-q",
            "--policy", "connected", "--dedupe")  # fmt: skip
    for name in ("id_map", "users", "edges", "rejected_edges", "quarantine"):
        assert (tmp_path / "api" / f"{name}.parquet").read_bytes() == (
            tmp_path / "cli" / f"{name}.parquet"
        ).read_bytes(), name
    api_options, cli_options = (
        _record(tmp_path / "api")["options"],
        _record(tmp_path / "cli")["options"],
    )
    assert {k: v for k, v in api_options.items() if not k.endswith("_dir")} == {
        k: v for k, v in cli_options.items() if not k.endswith("_dir")
    }


def test_config_file_applies_with_the_commands_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "stitcher.toml").write_text('policy = "connected"\ndedupe = true\n')
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('policy = "segment"\n')
    monkeypatch.chdir(project)
    # ./stitcher.toml, as the command finds it
    found = stitcher.run(str(SFC), "out-found").record["options"]
    assert (found["policy"], found["dedupe"]) == ("connected", True)
    assert found["config_file"] == str(Path.cwd() / "stitcher.toml")
    # an argument beats the file; the file beats the default
    argued = stitcher.run(SFC, "out-argued", policy="guarded").record["options"]
    assert (argued["policy"], argued["dedupe"]) == ("guarded", True)
    # an explicit config file replaces the one found in the folder
    explicit = stitcher.run(SFC, "out-explicit", config=elsewhere).record["options"]
    assert (explicit["policy"], explicit["dedupe"]) == ("segment", False)
    assert explicit["config_file"] == str(elsewhere)
    # the command reads the same
    run_cli("run", "--input", str(SFC), "--output", "out-cli", "-q", "--policy", "guarded")
    assert _record(project / "out-cli")["options"] == {**argued, "output_dir": "out-cli"}


def test_one_exception_class_per_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stitcher.run(SFC, out)
    before = file_bytes(out)
    # exit 2: a bad argument, before anything runs
    for bad in (
        {"policy": "bogus"},
        {"fail_if": ["largest_person >> 5"]},
        {"fail_if": ["no_such_metric>1"]},
        {"threads": 0},
        {"wait": -1},
        {"memory_limit": "lots"},
        {"engine": "postgres"},
        {"spark_executor_timeout": 0},
        {"spark_executor_timeout": float("nan")},
        {"spark_executor_timeout": "3m"},
    ):
        with pytest.raises(stitcher.UsageError) as caught:
            stitcher.run(SFC, out, **bad)
        assert caught.value.exit_code == 2, bad
        assert next(iter(bad)) in str(caught.value), (bad, str(caught.value))
    # exit 1: a failed run, nothing written
    with pytest.raises(stitcher.InputError) as failed:
        stitcher.run(tmp_path / "no-such-folder", out)
    assert failed.value.exit_code == 1 and "no-such-folder" in str(failed.value)
    with pytest.raises(stitcher.ConfigError) as config:
        stitcher.run(SFC, out, config=tmp_path / "missing.toml")
    assert config.value.exit_code == 1 and "missing.toml" in str(config.value)
    assert file_bytes(out) == before
    # exit 3: written, then a condition breached; the result comes with the exception
    with pytest.raises(stitcher.ThresholdBreached) as breached:
        stitcher.run(RESET, out, fail_if=["persons>0", "largest_person>1000"])
    assert breached.value.exit_code == 3
    assert "persons=" in str(breached.value)
    result = breached.value.result
    assert [o.condition.text for o in result.breached] == ["persons>0"]
    assert file_bytes(out) != before and result.record == _record(out)
    assert isinstance(breached.value, stitcher.StitcherError)


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        (["--policy", "bogus"], 2),
        (["--fail-if", "no_such_metric>1"], 2),
        (["--config", "missing.toml"], 1),
        (["--fail-if", "persons>0"], 3),
    ],
)
def test_the_command_exits_with_the_classes_codes(
    tmp_path: Path, arguments: list[str], code: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stitcher", "run", "--input", str(SFC), "--output",
         str(tmp_path / "out"), "-q", *arguments],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr


def test_explain_returns_the_data_the_command_prints(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stitcher.run(SFC, out)
    one = stitcher.explain(str(out), "user_id:user_1001")
    assert isinstance(one, IdentifierExplanation)
    assert one.person_id and one.identifier_count == len(one.identifiers) >= 2
    printed = run_cli("explain", str(out), "user_id:user_1001", "--json").output
    assert json.loads(printed) == one.as_record()
    assert run_cli("explain", str(out), "user_id:user_1001").output == one.text() + "\n"
    pair = stitcher.explain(out, "user_id:user_1001", "user_id:user_1002")
    assert isinstance(pair, PairExplanation)
    assert not pair.same_person and pair.nearest_refused["refused_links"] == 1
    printed = run_cli("explain", str(out), "user_id:user_1001", "user_id:user_1002", "--json")
    assert json.loads(printed.output) == pair.as_record()
    limited = stitcher.explain(out, "user_id:user_1001", limit=1)
    assert len(limited.identifiers) == 1 and limited.identifier_count == one.identifier_count
    with pytest.raises(stitcher.InputError):
        stitcher.explain(out, "user_id:nobody")
    with pytest.raises(stitcher.UsageError):
        stitcher.explain(out, "user_id:user_1001", limit=-1)


def test_diff_returns_the_data_the_command_prints(tmp_path: Path) -> None:
    stitcher.run(RESET, tmp_path / "old")
    stitcher.run(SFC, tmp_path / "new")
    changes = stitcher.diff(str(tmp_path / "old"), tmp_path / "new", sample=2)
    assert isinstance(changes, OutputDiff)
    assert changes.counts["identifiers_added"] > 0 and changes.counts["identifiers_removed"] > 0
    printed = run_cli("diff", str(tmp_path / "old"), str(tmp_path / "new"), "--json",
                      "--sample", "2").output  # fmt: skip
    assert json.loads(printed) == changes.as_record()
    text = run_cli("diff", str(tmp_path / "old"), str(tmp_path / "new"), "--sample", "2").output
    assert text == changes.text(str(tmp_path / "old"), str(tmp_path / "new")) + "\n"
    with pytest.raises(stitcher.InputError):
        stitcher.diff(tmp_path / "old", tmp_path / "nothing")


def test_import_stitcher_loads_no_engine() -> None:
    """`import stitcher` (and so the command's start) does not pull in DuckDB or polars."""
    code = (
        "import sys, stitcher\n"
        "assert callable(stitcher.run) and callable(stitcher.diff)\n"
        "print(sorted(m for m in ('duckdb', 'polars', 'pyspark') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
