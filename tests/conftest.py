"""Shared test helpers: run the CLI in-process, read outputs, find ../shared/peers."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from stitcher.cli import cli

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
PEERS = REPO.parent / "shared" / "peers"


def run_cli(*args: str, expect: int | None = 0) -> object:
    """Invoke `stitcher ARGS` through click's CliRunner; check the exit code when given."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, (result.exit_code, result.output, result.stderr)
    return result


def run_command(input_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """`stitcher run ... -q` as a subprocess's arguments: for tests that kill, signal or
    overlap real runs."""
    return [
        sys.executable,
        "-m",
        "stitcher",
        "run",
        "--input",
        str(input_dir),
        "--output",
        str(output_dir),
        "-q",
        *extra,
    ]


# Big enough that a run takes a second or more (so a kill or a signal lands in the middle of
# the work), small enough for CI.
BIG_EVENTS = 300_000


@pytest.fixture(scope="session")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stitcher.synthetic.generate import GeneratorConfig, generate

    folder = tmp_path_factory.mktemp("big") / "events"
    generate(folder, GeneratorConfig(n_events=BIG_EVENTS, seed=11))
    return folder


def stitch(input_dir: Path, output_dir: Path, *extra: str) -> Path:
    run_cli("run", "--input", str(input_dir), "--output", str(output_dir), "-q", *extra)
    return output_dir


def read_output(output_dir: Path, name: str) -> pl.DataFrame:
    parquet = output_dir / f"{name}.parquet"
    if parquet.exists():
        return pl.read_parquet(parquet)
    return pl.read_csv(output_dir / f"{name}.csv", infer_schema=False)


def partition(id_map: pl.DataFrame) -> set[frozenset[tuple[str, str]]]:
    """The persons of an id_map as a set of sets of (identifier_type, identifier)."""
    return {
        frozenset(zip(group["identifier_type"], group["identifier"], strict=True))
        for _, group in id_map.group_by("person_id")
    }


def partition_of(labels: Iterable[tuple[object, object]]) -> set[frozenset[object]]:
    """{(member, label)} -> set of frozensets of members sharing a label."""
    groups: dict[object, set[object]] = {}
    for member, label in labels:
        groups.setdefault(label, set()).add(member)
    return {frozenset(g) for g in groups.values()}


def write_csv(path: Path, header: list[str], rows: Iterable[Iterable[object]]) -> Path:
    """Write a small CSV (None = empty field) for tests that build their own input."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def require_peers(name: str) -> Path:
    folder = PEERS / name
    if not folder.is_dir():
        pytest.skip(
            f"{folder} is absent: the peer conformance data ships beside the repo, not in it"
        )
    return folder


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: compare before and after to show a run left
    it as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def tool_bin(venv: str, override: str, require: str, make: str, *commands: str) -> Path:
    """The bin folder of a tool's own virtualenv (REPO/`venv`, or the folder of the Python in
    environment variable `override`), holding python and `commands`. Missing, the test skips
    with how to make it (`make`), or fails when environment variable `require` is 1 (.ci/run
    sets it, so CI cannot pass by skipping)."""
    configured = os.environ.get(override)
    python = Path(configured) if configured else REPO / venv / "bin" / "python"
    if all((python.parent / name).exists() for name in ("python", *commands)):
        return python.parent
    holding = f" holding {', '.join(commands)}" if commands else ""
    why = f"no virtualenv at {python.parent}{holding}; make it as .ci/run does: {make}"
    if os.environ.get(require) == "1":
        pytest.fail(why)
    pytest.skip(why)


def require_spark() -> None:
    """Skip the calling test module where Spark cannot run (a user's clone without Java), but
    fail it where the Spark tests must run: CI sets STITCHER_REQUIRE_SPARK=1 (.ci/run), so a CI
    machine without Java or pyspark cannot pass with the Spark engine untested."""
    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed: pip install -e '.[dev]'"
    if reason is None and not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        reason = "no Java on this machine (Spark needs Java 17+)"
    if reason is None:
        return
    if os.environ.get("STITCHER_REQUIRE_SPARK") == "1":
        pytest.fail(f"{reason}; STITCHER_REQUIRE_SPARK=1 requires the Spark tests", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
