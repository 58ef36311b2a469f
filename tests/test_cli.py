"""The command line end to end: help texts, exit codes, output files, input shapes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stitcher.cli import cli

from conftest import FIXTURES, partition, read_output, run_cli, stitch, write_csv


def _commands() -> list[str]:
    return sorted(cli.commands)


def test_top_level_help_lists_every_command() -> None:
    out = run_cli("--help").stdout
    for name in _commands():
        assert name in out


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_complete_help(command: str) -> None:
    result = run_cli(command, "--help")
    text = result.stdout
    assert len(text.splitlines()) > 5
    assert cli.commands[command].help, f"{command} has no docstring"
    for param in cli.commands[command].params:
        if param.param_type_name == "option" and not param.hidden:
            assert param.help, f"{command} {param.opts} has no help text"


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stitcher", "--version"], capture_output=True, text=True, check=True
    )
    assert "stitcher" in result.stdout


def test_summary_and_quiet(tmp_path: Path) -> None:
    args = ["run", "--input", str(FIXTURES / "shared_family_computer")]
    loud = run_cli(*args, "--output", str(tmp_path / "a"))
    assert "Stitched 12 events into 2 persons" in loud.stdout
    assert "id_map.parquet" in loud.stdout
    quiet = run_cli(*args, "--output", str(tmp_path / "b"), "-q")
    assert quiet.stdout == "" and quiet.stderr == ""
    # A trailing slash on --output (as the README's example has it) is not doubled.
    slashed = run_cli(*args, "--output", f"{tmp_path / 'c'}/")
    assert f"Wrote {tmp_path / 'c'}/: id_map.parquet" in slashed.stdout


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = run_cli("run", "--output", str(tmp_path / "o"), expect=2)
    assert "--input" in result.stderr
    result = run_cli("run", "--input", ".", "--output", "o", "--policy", "nope", expect=2)
    assert "nope" in result.stderr


def test_csv_output_and_run_json(tmp_path: Path) -> None:
    out = stitch(FIXTURES / "junk_ids", tmp_path / "o", "--output-format", "csv")
    names = sorted(p.name for p in out.iterdir())
    for table in ("id_map", "users", "edges", "rejected_edges", "quarantine"):
        assert f"{table}.csv" in names
    record = json.loads((out / "run.json").read_text())
    assert record["input"]["events"] == sum(record["input"]["events_per_table"].values())
    assert record["options"]["policy"] == "guarded"
    assert record["input"]["dedupe"] is False
    assert set(record["timings_seconds"]) >= {"load", "scan", "components", "write", "total"}
    assert record["persons"]["count"] == read_output(out, "users").height
    users = read_output(out, "users")
    assert json.loads(users["user_ids"][0])  # lists are JSON arrays in CSV


def test_a_failed_run_leaves_the_previous_output(tmp_path: Path) -> None:
    out = stitch(FIXTURES / "shared_family_computer", tmp_path / "o")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad"
    write_csv(bad / "tracks.csv", ["id", "nothing_useful", "timestamp"], [("m1", "x", "2026")])
    result = run_cli("run", "--input", str(bad), "--output", str(out), expect=1)
    assert result.stderr.startswith("Error: tracks.csv has no anonymous_id or user_id column")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if "stitcher-tmp" in p.name] == []


@pytest.mark.parametrize(
    "url", ["s3a://bucket/events/", "hdfs://namenode:8020/events", "file:///tmp/events"]
)
def test_url_input_needs_the_spark_engine(url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--input", url, "--output", "out", expect=1)
    line = url.rstrip("/")
    assert result.stderr == (
        f"Error: --input {line} is a URL, which only --engine spark reads; add --engine "
        "spark, or copy the files to a local (or mounted) folder\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_url_output_needs_the_spark_engine(tmp_path: Path, monkeypatch) -> None:
    # Path("s3a://bucket/out") would be the local folder `s3a:/bucket/out`: refuse instead.
    # (--engine spark writes URLs: tests/test_spark.py.)
    monkeypatch.chdir(tmp_path)
    result = run_cli(
        "run", "--input", str(FIXTURES / "shared_family_computer"),
        "--output", "s3a://bucket/out/", expect=1,
    )  # fmt: skip
    assert result.stderr == (
        "Error: --output s3a://bucket/out is a URL, which only --engine spark writes; add "
        "--engine spark, or give a local (or mounted) folder\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_rerun_replaces_output_identically(tmp_path: Path) -> None:
    first = stitch(FIXTURES / "alias_from_old_user_id", tmp_path / "o")
    before = {p.name: p.read_bytes() for p in first.iterdir() if p.suffix == ".parquet"}
    stitch(FIXTURES / "alias_from_old_user_id", tmp_path / "o")
    after = {p.name: p.read_bytes() for p in first.iterdir() if p.suffix == ".parquet"}
    assert before == after


def _events(n_tables: int = 1) -> list[tuple]:
    return [
        ("m1", "a1", None, "2026-11-01T10:00:00Z"),
        ("m2", "a1", "u1", "2026-11-01T10:05:00Z"),
        ("m3", "a2", "u1", "2026-11-02T08:00:00Z"),
    ]


def test_timestamp_formats_agree(tmp_path: Path) -> None:
    """ISO strings, epoch seconds, epoch milliseconds and native timestamps: one instant."""
    header = ["id", "anonymous_id", "user_id", "timestamp"]
    iso = tmp_path / "iso"
    write_csv(iso / "tracks.csv", header, _events())
    seconds = tmp_path / "seconds"
    write_csv(
        seconds / "tracks.csv",
        header,
        [
            ("m1", "a1", None, 1793527200),
            ("m2", "a1", "u1", 1793527500),
            ("m3", "a2", "u1", 1793606400),
        ],
    )
    millis = tmp_path / "millis"
    write_csv(
        millis / "tracks.csv",
        header,
        [
            ("m1", "a1", None, 1793527200000),
            ("m2", "a1", "u1", 1793527500000),
            ("m3", "a2", "u1", 1793606400000),
        ],
    )
    native = tmp_path / "native"
    native.mkdir()
    table = pl.DataFrame(_events(), schema=header, orient="row").with_columns(
        pl.col("timestamp").str.to_datetime(time_zone="UTC")
    )
    table.write_parquet(native / "tracks.parquet")
    maps = [
        read_output(stitch(folder, tmp_path / f"out_{folder.name}"), "id_map")
        for folder in (iso, seconds, millis, native)
    ]
    for other in maps[1:]:
        assert other.equals(maps[0])
    assert str(maps[0]["first_seen_at"][0]).startswith("2026-11-01 10:00:00")


def test_hive_partitions_camel_case_and_schema_drift(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    write_csv(
        inp / "identifies" / "dt=2026-11-01" / "part-0.csv",
        ["messageId", "anonymousId", "userId", "timestamp", "name"],
        [("i1", "a1", None, "2026-11-01T10:00:00Z", "Ann")],
    )
    later = inp / "identifies" / "dt=2026-11-02"
    later.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": ["i2"],
                "anonymous_id": ["a1"],
                "user_id": ["u1"],
                "timestamp": pa.array([1793613600000], pa.int64()),
                "plan": ["pro"],  # a trait added later
            }
        ),
        later / "part-0.parquet",
    )
    out = stitch(inp, tmp_path / "out")
    assert partition(read_output(out, "id_map")) == {
        frozenset({("anonymous_id", "a1"), ("user_id", "u1")})
    }
    users = read_output(out, "users")
    assert users["name"][0] == "Ann" and users["plan"][0] == "pro"
    assert "dt" not in users.columns  # partition keys are layout, not traits


def test_dedupe_counts_each_message_once(tmp_path: Path) -> None:
    header = ["id", "anonymous_id", "user_id", "timestamp"]
    rows = _events()
    write_csv(tmp_path / "in" / "tracks" / "part-0.csv", header, rows)
    write_csv(tmp_path / "in" / "tracks" / "part-1.csv", header, rows[1:])  # redelivered
    plain = stitch(tmp_path / "in", tmp_path / "plain")
    deduped = stitch(tmp_path / "in", tmp_path / "dedup", "--dedupe")
    assert json.loads((plain / "run.json").read_text())["input"]["events"] == 5
    record = json.loads((deduped / "run.json").read_text())
    assert record["input"]["events"] == 3
    assert record["input"]["dedupe"] is True
    assert record["input"]["duplicates_removed"] == 2
    counts = dict(
        zip(*read_output(deduped, "id_map").select("identifier", "event_count"), strict=True)
    )
    assert counts == {"a1": 2, "a2": 1, "u1": 2}
    assert partition(read_output(plain, "id_map")) == partition(read_output(deduped, "id_map"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dedupe_keeps_each_messages_earliest_delivery(seed: int, tmp_path: Path) -> None:
    """Against a reference in Python: redeliveries whose content differs (another time, another
    id, or no time at all) keep the delivery the documented order picks, in every table."""
    rng = random.Random(seed)
    header = ["id", "anonymous_id", "user_id", "timestamp"]
    tables: dict[str, list[tuple]] = {"tracks": [], "pages": []}
    for _ in range(300):
        message = f"m{rng.randrange(120)}" if rng.random() < 0.9 else None
        row = (
            message,
            rng.choice([f"a{rng.randrange(40)}", None]),
            rng.choice([f"u{rng.randrange(15)}", None, None]),
            rng.choice([f"2026-01-{rng.randrange(1, 29):02d}T00:00:00Z", None]),
        )
        tables[rng.choice(list(tables))].append(row)
    for table, rows in tables.items():
        write_csv(tmp_path / "in" / f"{table}.csv", header, rows)
    out = stitch(tmp_path / "in", tmp_path / "out", "--dedupe")

    def order(item: tuple[str, tuple]) -> tuple:
        table, (_, anonymous_id, user_id, ts) = item
        # ts NULLS LAST, then source table, then ids NULLS LAST (sql/11_first_deliveries.sql)
        return (ts is None, ts or "", table, anonymous_id is None, anonymous_id or "",
                user_id is None, user_id or "")  # fmt: skip

    kept: list[tuple] = []
    by_message: dict[str, list[tuple[str, tuple]]] = {}
    for table, rows in tables.items():
        for row in rows:
            if row[0] is None:
                kept.append(row)
            else:
                by_message.setdefault(row[0], []).append((table, row))
    kept += [min(deliveries, key=order)[1] for deliveries in by_message.values()]
    expected: dict[tuple[str, str], int] = {}
    for _, anonymous_id, user_id, _ in kept:
        for kind, value in (("anonymous_id", anonymous_id), ("user_id", user_id)):
            if value is not None:
                expected[(kind, value)] = expected.get((kind, value), 0) + 1
    id_map = read_output(out, "id_map")
    got = {
        (t, i): n
        for t, i, n in id_map.select("identifier_type", "identifier", "event_count").iter_rows()
    }
    assert got == expected
    record = json.loads((out / "run.json").read_text())
    assert record["input"]["events"] == len(kept)
