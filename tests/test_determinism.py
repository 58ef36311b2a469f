"""Determinism and idempotence: the same events give byte-identical id_map and users files.

The events come from the project's generator (with junk ids, shared devices, aliases and
identifies traits), then are rewritten in other layouts: split into a different number of files,
rows and files shuffled, CSV instead of Parquet, Hive partitions, one or two engine threads.
Every layout must give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from stitcher.synthetic.generate import TABLES, GeneratorConfig, generate

from conftest import run_cli

N_EVENTS = 30_000
COMPARED = ("id_map", "users")


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    folder = tmp_path_factory.mktemp("generated")
    generate(
        folder,
        GeneratorConfig(
            n_events=N_EVENTS,
            seed=2026,
            shared_device_rate=0.05,
            alias_rate=0.2,
            junk_anonymous_rate=0.02,
            guest_login_people=3,
            hardcoded_device_people=3,
        ),
    )
    return {t: pl.read_parquet(folder / f"{t}.parquet") for t in TABLES}


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    # Full microseconds and an explicit UTC offset: the CSV holds exactly the Parquet instant.
    return frame.with_columns(
        pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ")
        for c, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime)
    )


def _write(frame: pl.DataFrame, path: Path, file_format: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        _csv_ready(frame).write_csv(path)
    else:
        frame.write_parquet(path)


def _split(frame: pl.DataFrame, parts: int, rng: random.Random) -> list[pl.DataFrame]:
    order = list(range(frame.height))
    rng.shuffle(order)
    shuffled = frame[order]
    size = -(-frame.height // parts)
    return [shuffled[i * size : (i + 1) * size] for i in range(parts)]


Layout = Callable[[dict[str, pl.DataFrame], Path], None]


def one_file_per_table(file_format: str) -> Layout:
    def write(events: dict[str, pl.DataFrame], folder: Path) -> None:
        for table, frame in events.items():
            _write(frame, folder / f"{table}.{file_format}", file_format)

    return write


def shuffled_parts(parts: int, file_format: str, seed: int) -> Layout:
    def write(events: dict[str, pl.DataFrame], folder: Path) -> None:
        rng = random.Random(seed)
        for table, frame in events.items():
            for i, part in enumerate(_split(frame, parts, rng)):
                # Names in random order too: file listing order must not matter.
                name = f"part-{rng.randrange(10**6):06d}-{i}.{file_format}"
                _write(part, folder / table / name, file_format)

    return write


def reversed_rows(file_format: str) -> Layout:
    def write(events: dict[str, pl.DataFrame], folder: Path) -> None:
        for table, frame in events.items():
            _write(frame.reverse(), folder / f"{table}.{file_format}", file_format)

    return write


def hive_by_day(events: dict[str, pl.DataFrame], folder: Path) -> None:
    for table, frame in events.items():
        day = frame["timestamp"].dt.strftime("%Y-%m-%d").fill_null("unknown")
        for (value,), part in frame.with_columns(day.alias("__day")).group_by(
            "__day", maintain_order=True
        ):
            _write(part.drop("__day"), folder / table / f"dt={value}" / "part-0.parquet", "parquet")


def mixed_formats(events: dict[str, pl.DataFrame], folder: Path) -> None:
    rng = random.Random(99)
    for table, frame in events.items():
        for i, part in enumerate(_split(frame, 4, rng)):
            file_format = "csv" if i % 2 else "parquet"
            _write(part, folder / table / f"p{i}.{file_format}", file_format)


# (name, layout, threads): at least six different ways to present the same events.
PERMUTATIONS: list[tuple[str, Layout, int]] = [
    ("parquet-1-file-1-thread", one_file_per_table("parquet"), 1),
    ("parquet-1-file-2-threads", one_file_per_table("parquet"), 2),
    ("csv-1-file-2-threads", one_file_per_table("csv"), 2),
    ("parquet-7-shuffled-files-2-threads", shuffled_parts(7, "parquet", seed=1), 2),
    ("parquet-3-shuffled-files-1-thread", shuffled_parts(3, "parquet", seed=2), 1),
    ("csv-5-shuffled-files-2-threads", shuffled_parts(5, "csv", seed=3), 2),
    ("csv-reversed-rows-1-thread", reversed_rows("csv"), 1),
    ("parquet-hive-by-day-2-threads", hive_by_day, 2),
    ("parquet-and-csv-mixed-2-threads", mixed_formats, 2),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stitch_layout(
    events: dict[str, pl.DataFrame],
    root: Path,
    name: str,
    layout: Layout,
    threads: int,
    *extra: str,
) -> Path:
    input_dir, output_dir = root / name / "in", root / name / "out"
    layout(events, input_dir)
    run_cli(
        "run",
        "--input",
        str(input_dir),
        "--output",
        str(output_dir),
        "-q",
        "--no-report",
        "--threads",
        str(threads),
        *extra,
    )
    return output_dir


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["guarded", "connected"])
def test_same_events_same_bytes_whatever_the_layout(
    events: dict[str, pl.DataFrame], tmp_path: Path, policy: str
) -> None:
    digests: dict[str, dict[str, str]] = {}
    for name, layout, threads in PERMUTATIONS:
        out = stitch_layout(events, tmp_path, name, layout, threads, "--policy", policy)
        digests[name] = {t: sha256(out / f"{t}.parquet") for t in COMPARED}
    reference = digests[PERMUTATIONS[0][0]]
    different = {name: d for name, d in digests.items() if d != reference}
    assert not different, f"layouts that changed the output: {sorted(different)}"
    assert len(digests) >= 6
    # The data was not trivial: persons were actually formed.
    users = pl.read_parquet(tmp_path / PERMUTATIONS[0][0] / "out" / "users.parquet")
    assert users.height > 100 and (users["identifier_count"] > 1).sum() > 50


def test_csv_output_is_deterministic_too(events: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    csv_out = ("--output-format", "csv")
    a = stitch_layout(events, tmp_path, "a", shuffled_parts(4, "parquet", 5), 2, *csv_out)
    b = stitch_layout(events, tmp_path, "b", reversed_rows("parquet"), 1, *csv_out)
    c = stitch_layout(events, tmp_path, "c", reversed_rows("csv"), 1, *csv_out)
    for table in (*COMPARED, "edges", "rejected_edges", "quarantine"):
        assert sha256(a / f"{table}.csv") == sha256(b / f"{table}.csv"), table
    # A CSV input cannot tell an empty id from a missing one (both read as NULL), so the junk
    # empty-string ids of the Parquet input are absent, not quarantined: only the tables that
    # hold no junk are compared across input formats.
    for table in (*COMPARED, "edges"):
        assert sha256(a / f"{table}.csv") == sha256(c / f"{table}.csv"), table


# What depends on when a run ends, not on its input.
VOLATILE = {"finished_at", "timings_seconds", "previous_finished_at", "hours_since_last_event"}


def _stable(record: object) -> object:
    if isinstance(record, dict):
        return {k: _stable(v) for k, v in record.items() if k not in VOLATILE}
    if isinstance(record, list):
        return [_stable(v) for v in record]
    return record


def test_second_run_changes_nothing(events: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    input_dir = tmp_path / "in"
    one_file_per_table("parquet")(events, input_dir)
    out = tmp_path / "out"

    def again() -> tuple[dict[str, str], dict]:
        run_cli("run", "--input", str(input_dir), "--output", str(out), "-q")
        files = {p.name: sha256(p) for p in sorted(out.iterdir()) if p.suffix == ".parquet"}
        return files, json.loads((out / "run.json").read_text())

    first_files, _ = again()
    second_files, second = again()
    third_files, third = again()
    assert first_files == second_files == third_files
    assert sorted(first_files) == sorted(
        f"{t}.parquet" for t in ("id_map", "users", "edges", "rejected_edges", "quarantine")
    )
    assert _stable(second) == _stable(third)
    changes = second.get("changes_since_previous", {}).get("counts", {})
    moved = {k: v for k, v in changes.items() if k.endswith(("_added", "_removed", "_moved"))}
    assert moved and not any(moved.values()), changes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


@pytest.mark.parametrize("seed", range(5))
def test_output_sort_by_type_rank_is_the_type_string_order(seed: int) -> None:
    """Output files sort type columns by a rank (cheaper than the strings); the order must be
    exactly the strings' order for the configured type names (the only ones a run produces),
    and still total for any other type: after them, by type and identifier."""
    from stitcher.engines.duckdb import DuckDBEngine
    from stitcher.output.tables import order_by as _order_by

    rng = random.Random(seed)
    names = ("anonymous_id", "user_id", "email", "Device-ID", "zz_ü")
    rows = [
        (rng.choice((*names, "unlisted")), f"{rng.choice('aAbB0_é')}{rng.randrange(50)}")
        for _ in range(400)
    ]
    engine = DuckDBEngine()
    try:
        import pyarrow as pa

        table = pa.table(
            {"identifier_type": [t for t, _ in rows], "identifier": [i for _, i in rows]}
        )
        engine.register_arrow("ids", table)
        by_rank = engine.fetch_rows(
            "SELECT * FROM ids ORDER BY " + _order_by("identifier_type, identifier", names)
        )
        by_string = engine.fetch_rows("SELECT * FROM ids ORDER BY identifier_type, identifier")
    finally:
        engine.close()
    assert by_string == sorted(rows)
    listed = sorted(r for r in rows if r[0] in names)
    unlisted = sorted((r for r in rows if r[0] not in names), key=lambda r: (r[1], r[0]))
    assert by_rank == listed + unlisted
