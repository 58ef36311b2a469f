"""The benchmark harness runs end to end on a small dataset. Correctness only, never speed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import REPO

BENCH = REPO / "bench"


@pytest.mark.slow
def test_bench_harness_measures_every_step(tmp_path) -> None:
    steps = ["floor", "output_floor", "default", "nightly", "networkx"]
    if importlib.util.find_spec("splink") is not None:
        steps.append("splink")
    results = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--sizes",
            "20k",
            "--reps",
            "1",
            "--steps",
            ",".join(steps),
            "--data-dir",
            str(tmp_path / "data"),
            "--json",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = {r["step"]: r for r in json.loads(results.read_text())["results"]}
    assert set(rows) == set(steps)
    for step, row in rows.items():
        assert row["reps"] == 1, (step, row["errors"])
        assert row["median_max_rss_bytes"] > 0
        assert row["ratio_to_floor"] > 0
    assert rows["floor"]["ratio_to_floor"] == 1.0
    assert rows["output_floor"]["ratio_to_output_floor"] == 1.0
    assert rows["default"]["ratio_to_output_floor"] > 0
    # stitcher steps report the pipeline's own per-step timings from run.json
    assert "scan" in rows["default"]["median_timings_seconds"]
    # the nightly step found a previous output in place and compared with it
    assert rows["nightly"]["compared_with_previous"] == [True]
    assert rows["default"]["compared_with_previous"] == [False]
    assert "| 20k | default |" in done.stdout


def test_bench_sizes_parse() -> None:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["bench_run"]
    assert module.parse_size("20k") == 20_000
    assert module.parse_size("10M") == 10_000_000
    assert module.parse_size("1.5M") == 1_500_000
    assert module.size_label(100_000_000) == "100M"
    assert module.size_label(20_000) == "20k"


def test_step_times_times_every_step_of_a_run(tmp_path) -> None:
    """bench/step_times.py runs `stitcher run`'s own code with each step timed: every step is
    listed, and the output tables are the command's."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "step_times.py"), str(REPO / "fixtures" / "junk_ids"),
         str(tmp_path / "timed"), "--memory-limit", "1GB"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    names = [line[:28].strip() for line in done.stdout.splitlines()]
    assert names[:3] == ["imports", "junk_values", "pairs"]
    for step in ("identifiers_checked", "id_map", "users", "run.json: write", "total"):
        assert step in names, done.stdout
    subprocess.run(
        [sys.executable, "-m", "stitcher", "run", "--input", str(REPO / "fixtures" / "junk_ids"),
         "--output", str(tmp_path / "run"), "-q", "--memory-limit", "1GB"],
        check=True, timeout=300,
    )  # fmt: skip
    for table in ("users", "id_map", "edges", "rejected_edges", "quarantine"):
        written = (tmp_path / "timed" / f"{table}.parquet").read_bytes()
        assert written == (tmp_path / "run" / f"{table}.parquet").read_bytes(), table
