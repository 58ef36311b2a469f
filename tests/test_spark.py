"""`--engine spark` against the embedded engine: the same files, byte for byte.

One local Spark session (local[2]) serves every test; each run opens its own session on it
(its temporary views never meet another run's). Settings for small data: few shuffle
partitions, no adaptive re-planning and no code generation, which cost more than the work here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stitcher.engines.base import INTEGER, STRING
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.errors import EngineError, OutputError
from stitcher.graph.components import solve_in_sql
from stitcher.graph.policies.mixpanel_original import original_policy
from stitcher.synthetic.generate import HARDCODED_ANONYMOUS_ID

from conftest import FIXTURES, read_output, require_spark, run_cli, run_command, stitch

pytestmark = pytest.mark.spark


require_spark()

from stitcher.engines.spark import SparkEngine, start_local_session  # noqa: E402

OUTPUTS = ("id_map", "users", "edges", "rejected_edges", "quarantine")
SEGMENT_SCENARIOS = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if (p / "expected_clusters.csv").exists() and not list(p.glob("*.json*"))
)


@pytest.fixture(scope="session", autouse=True)
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    session = start_local_session(
        2,
        {
            # Spark's default is ./spark-warehouse: never write into the working tree.
            "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("spark-warehouse")),
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
        },
    )
    yield session
    session.stop()


def _same_files(a: Path, b: Path, suffix: str) -> None:
    for table in OUTPUTS:
        left, right = a / f"{table}.{suffix}", b / f"{table}.{suffix}"
        if left.read_bytes() != right.read_bytes():
            # Say what differs before failing on the bytes.
            sort = list(read_output(a, table).columns[:2])
            assert read_output(a, table).sort(sort).equals(read_output(b, table).sort(sort)), table
        assert left.read_bytes() == right.read_bytes(), table


@pytest.mark.parametrize("scenario", SEGMENT_SCENARIOS)
def test_fixture_gives_the_same_files(scenario: str, tmp_path: Path) -> None:
    duck = stitch(FIXTURES / scenario, tmp_path / "duckdb", "--output-format", "csv", "--no-report")
    spark = stitch(
        FIXTURES / scenario,
        tmp_path / "spark",
        "--engine",
        "spark",
        "--output-format",
        "csv",
        "--no-report",
    )
    _same_files(duck, spark, "csv")


HUB_PEOPLE = ["--guest-login-people", "8", "--hardcoded-device-people", "5"]


@pytest.mark.parametrize(
    ("policy", "layout"),
    [
        # Both hubs found by contention (sql/31_hub_degrees.sql's windows and joins on Spark).
        ("guarded", ["--files-per-table", "3", *HUB_PEOPLE]),
        ("connected", ["--format", "csv", "--guest-login-people", "2"]),
        ("segment", []),
        # Every type but user_id limited to 2: 23 components break a limit, each replayed in
        # its own group on the executors.
        ("segment", ["limits"]),
    ],
)
def test_generated_data_gives_the_same_files(
    policy: str, layout: list[str], tmp_path: Path
) -> None:
    events = tmp_path / "events"
    args = ["--policy", policy, "--no-report"]
    if layout == ["limits"]:
        layout = []
        config = tmp_path / "stitcher.toml"
        config.write_text("[limits]\ndefault = 2\nuser_id = 1\n")
        args += ["--config", str(config)]
    run_cli("generate", str(events), "--events", "3000", "--seed", "17", "-q", *layout)
    duck = stitch(events, tmp_path / "duckdb", *args)
    spark = stitch(events, tmp_path / "spark", "--engine", "spark", *args)
    _same_files(duck, spark, "parquet")
    record = json.loads((spark / "run.json").read_text())
    assert record["versions"]["engine"].startswith("spark ")
    if layout[-len(HUB_PEOPLE) :] == HUB_PEOPLE:
        hubs = {(h["identifier"], h["rule"]) for h in record["quarantine"]["hubs"]}
        assert hubs == {("guest-account", "contention"), (HARDCODED_ANONYMOUS_ID, "contention")}


def test_local_workers_run_on_stitchers_python(tmp_path: Path) -> None:
    """`stitcher run --engine spark` started from a venv that is not activated: the `python3`
    first on PATH is not stitcher's interpreter, and the segment replay's Python workers must
    still run on it (they once failed with "No module named 'pyarrow'"). A fresh process, so
    that stitcher builds its own local session."""
    import subprocess
    import sys

    events = tmp_path / "events"
    run_cli("generate", str(events), "--events", "3000", "--seed", "17", "-q")
    wrong_python = tmp_path / "bin"
    wrong_python.mkdir()
    for name in ("python3", "python"):
        script = wrong_python / name
        script.write_text("#!/bin/sh\necho 'not the interpreter stitcher runs on' >&2\nexit 3\n")
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_PYTHON"}
    env["PATH"] = f"{wrong_python}{os.pathsep}{env.get('PATH', '')}"
    args = ["--input", str(events), "--policy", "segment", "--no-report", "-q"]
    spark = tmp_path / "spark"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stitcher",
            "run",
            *args,
            "--output",
            str(spark),
            "--engine",
            "spark",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    duck = stitch(events, tmp_path / "duckdb", "--policy", "segment", "--no-report")
    _same_files(duck, spark, "parquet")


def test_guarded_replay_with_extra_types_runs_per_group_on_spark(tmp_path: Path) -> None:
    """`guarded` with an extra identifier type (email): the components where a chain of
    non-user ids reaches two user ids are replayed per group (map_groups on the executors),
    and the files are the embedded engine's."""
    events = tmp_path / "events"
    run_cli(
        "generate", str(events), "--events", "6000", "--seed", "17", "--guest-login-people", "2"
    )
    config = tmp_path / "stitcher.toml"
    config.write_text('[identifiers.email]\ncolumns = ["email"]\nnormalize = "lower_trim"\n')
    args = ["--config", str(config), "--no-report"]
    duck = stitch(events, tmp_path / "duckdb", *args)
    result = run_cli(
        "run",
        "--input",
        str(events),
        "--output",
        str(tmp_path / "spark"),
        "--engine",
        "spark",
        "-v",
        *args,
    )
    groups = re.search(r"replaying (\d+) identifiers in (\d+) groups", result.stderr)
    assert groups is not None and int(groups.group(2)) > 1, result.stderr[-2000:]
    _same_files(duck, tmp_path / "spark", "parquet")
    reasons = read_output(duck, "rejected_edges")["reason"].to_list()
    assert reasons.count("limit_user_id") > 1


def test_spark_settings_reach_the_run_but_not_their_values(tmp_path: Path) -> None:
    out = stitch(
        FIXTURES / "shared_family_computer",
        tmp_path / "out",
        "--engine",
        "spark",
        "--spark-conf",
        "spark.hadoop.fs.s3a.secret.key=hunter2",
        "--no-report",
    )
    text = (out / "run.json").read_text()
    assert "spark.hadoop.fs.s3a.secret.key" in text
    assert "hunter2" not in text


def test_bad_spark_conf_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--input",
        str(FIXTURES / "shared_family_computer"),
        "--output",
        str(tmp_path / "out"),
        "--engine",
        "spark",
        "--spark-conf",
        "no-equals-sign",
        expect=2,
    )
    assert "KEY=VALUE" in result.output


# -- Mixpanel exports ----------------------------------------------------------------------

MIXPANEL_POLICIES = ("mixpanel-simplified", "mixpanel-original")


def _both_engines(export: Path, out: Path, *args: str) -> None:
    """Stitch `export` on both engines and require the same files."""
    common = ["--output-format", "csv", "--no-report", *args]
    duck = stitch(export, out / "duckdb", *common)
    spark = stitch(export, out / "spark", "--engine", "spark", *common)
    _same_files(duck, spark, "csv")
    assert (spark / "id_map.csv").read_text().count("\n") > 1


@pytest.mark.parametrize("policy", MIXPANEL_POLICIES)
def test_mixpanel_fixture_gives_the_same_files(policy: str, tmp_path: Path) -> None:
    _both_engines(FIXTURES / "mixpanel_export", tmp_path, "--policy", policy)


@pytest.mark.parametrize("shape", ["json", "csv"])
@pytest.mark.parametrize("policy", MIXPANEL_POLICIES)
def test_mixpanel_peer_cases_give_the_same_files(policy: str, shape: str, tmp_path: Path) -> None:
    """Mixpanel's documented examples (../shared/peers/mixpanel-docs) as the conformance
    tests build them: JSON lines (a plain and a gzipped file) or a flattened events.csv."""
    from test_conformance_mixpanel import (
        Names,
        _original_records,
        _rows,
        _simplified_records,
        _write_export,
    )

    if policy == "mixpanel-simplified":
        records = _simplified_records(_rows("simplified_events.csv"), Names(uuid_like=False))
    else:
        records, _ = _original_records(Names(uuid_like=True))
    export = _write_export(tmp_path / "export", records, shape)
    _both_engines(export, tmp_path / "out", "--policy", policy)


def _mixpanel_records(seed: int, people: int = 40) -> list[dict]:
    """Mixpanel-shaped events: devices shared between people, logins, distinct_id-only events,
    $identify / $create_alias / $merge (some naming one or three ids), junk ids, numbers as
    ids, times as seconds, milliseconds and ISO text (and missing), records without
    `properties`, keys in any order."""
    import random
    import uuid

    rng = random.Random(seed)
    t0 = 1_767_225_600  # 2026-01-01
    devices = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(people * 2)]
    records: list[dict] = []

    def event(name: str, **props: object) -> None:
        n = len(records)
        seconds = t0 + rng.randrange(86_400 * 30)
        time: object = [seconds, seconds * 1000, f"2026-01-{1 + n % 28:02d}T10:00:{n % 60:02d}Z"][
            n % 3
        ]
        properties = {"time": time, "$insert_id": f"i{seed}-{n:05d}", **props}
        if n % 37 == 0:
            del properties["time"]
        items = list(properties.items())
        rng.shuffle(items)
        if n % 29 == 0:
            records.append({"event": name, **dict(items)})  # already flat
        else:
            records.append({"event": name, "properties": dict(items)})

    for p in range(people):
        user: object = 900_000 + p if p % 7 == 0 else f"user-{p}"
        mine = rng.sample(devices, 2)
        for device in mine:
            event("Page View", distinct_id=f"$device:{device}", **{"$device_id": device})
            event("Signed In", distinct_id=user, **{"$device_id": device, "$user_id": user})
            event("$identify", distinct_id=user, **{"$anon_id": device, "$identified_id": user})
        if rng.random() < 0.3:
            event("Old Event", distinct_id=f"legacy-{p}")
            event("$create_alias", distinct_id=user, alias=f"legacy-{p}")
        if rng.random() < 0.2:
            other = f"user-{rng.randrange(people)}"
            ids = [user, other] if rng.random() < 0.8 else [user, other, "user-0"]
            event("$merge", distinct_id=user, **{"$distinct_ids": ids})
        if rng.random() < 0.1:
            event("Tapped", distinct_id="undefined", **{"$device_id": "undefined"})
            event(
                "$identify", distinct_id=user, **{"$anon_id": "not-a-uuid", "$identified_id": user}
            )
    return records


def _flat(record: dict) -> dict:
    props = record.get("properties", record)
    return {**props, "event": record["event"]}


@pytest.mark.parametrize("policy", MIXPANEL_POLICIES)
def test_generated_mixpanel_exports_give_the_same_files(policy: str, tmp_path: Path) -> None:
    """One export in every raw shape at once (JSON lines, gzipped JSON lines, a JSON array
    file, and a flattened events/ folder of Parquet with $distinct_ids as a list column), and
    one flattened events.csv with $distinct_ids as JSON text."""
    import csv
    import gzip

    import pyarrow.parquet as pq

    records = _mixpanel_records(seed=7)
    parts = [records[i::4] for i in range(4)]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "part-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in parts[0]))
    (raw / "2026-01").mkdir()
    with gzip.open(raw / "2026-01" / "part-2.json.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n\n" for r in parts[1])
    (raw / "part-3.json").write_text(json.dumps(parts[2], indent=1))
    columns = ["event", "time", "distinct_id", "$device_id", "$user_id", "$anon_id"]
    columns += ["$identified_id", "alias", "$distinct_ids", "$insert_id"]
    flat = [_flat(r) for r in parts[3]]

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    table = pa.table(
        {
            c: pa.array(
                [f.get(c) for f in flat]
                if c == "$distinct_ids"
                else [text(f.get(c)) for f in flat],
                pa.list_(pa.string()) if c == "$distinct_ids" else pa.string(),
            )
            for c in columns
            if c != "time"
        }
        | {"time": pa.array([_seconds(f.get("time")) for f in flat], pa.int64())}
    )
    (raw / "events").mkdir()
    pq.write_table(table, raw / "events" / "part-0.parquet")
    _both_engines(raw, tmp_path / "raw-out", "--policy", policy)

    csv_export = tmp_path / "csv"
    csv_export.mkdir()
    with (csv_export / "events.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in map(_flat, records):
            ids = r.get("$distinct_ids")
            r = {**r, "$distinct_ids": json.dumps(ids) if ids else None}
            writer.writerow(["" if r.get(c) is None else r[c] for c in columns])
    _both_engines(csv_export, tmp_path / "csv-out", "--policy", policy)


def _seconds(time: object) -> int | None:
    """A generated time as epoch seconds (the Parquet column is one integer type)."""
    from datetime import datetime

    if time is None:
        return None
    if isinstance(time, str):
        return int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    return int(time) // 1000 if int(time) > 100_000_000_000 else int(time)


def test_sql_components_on_spark_match_duckdb() -> None:
    import random

    import pyarrow as pa

    rng = random.Random(5)
    n = 600
    edges = [(i, i + 1) for i in range(0, 300)]  # a chain: many rounds
    edges += [(rng.randrange(300, n), rng.randrange(300, n)) for _ in range(250)]
    nodes = pa.table({"node_id": pa.array(range(n), pa.int64())})
    links = pa.table(
        {"src": pa.array([a for a, _ in edges], pa.int64()), "dst": [b for _, b in edges]}
    )
    results = []
    for engine in (DuckDBEngine(), SparkEngine()):
        with engine:
            engine.register_arrow("nodes", nodes)
            engine.register_arrow("node_edges", links)
            rounds = solve_in_sql(engine)
            rows = engine.fetch_rows("SELECT node_id, component FROM node_components")
            results.append((rounds, sorted(rows)))
    assert results[0] == results[1]


def test_max_rounds_stops_spark_with_an_error() -> None:
    import pyarrow as pa

    with SparkEngine() as engine:
        engine.register_arrow("nodes", pa.table({"node_id": pa.array(range(64), pa.int64())}))
        engine.register_arrow(
            "node_edges",
            pa.table({"src": pa.array(range(63), pa.int64()), "dst": pa.array(range(1, 64))}),
        )
        with pytest.raises(EngineError, match="did not converge in 1 rounds"):
            solve_in_sql(engine, max_rounds=1)


TIME_TEXTS = [
    "2026-11-10T12:01:10Z",
    "2026-11-10 12:01:10.123456+02:00",
    "2026-11-10T12:01:10.5-05:30",
    "2026-11-10",
    "2026-11-10 12:01",
    " 2026-11-10",
    "2026-11-10 ",
    "2026-11-10\n",
    "20261110",
    "not a time",
    "",
    "1793729560123",
    "1793729560",
    "1793729560.5",
    "-1.5",
    "0",
    "1e9",
    "123\n",
    "99999999999999999",
    "1677-09-21 00:12:43.145224",
    "1677-09-21 00:12:43.145225",
    "2262-04-11 23:47:16.854775",
    "2262-04-11 23:47:16.854776",
    None,
]
TIME_NUMBERS = [0, 1, -1, 1_700_000_000, 1_700_000_000_123, 100_000_000_000, 99_999_999_999, None]


@pytest.mark.parametrize(("kind", "values"), [(STRING, TIME_TEXTS), (INTEGER, TIME_NUMBERS)])
def test_timestamps_parse_the_same_on_both_engines(kind: str, values: list[object]) -> None:
    import pyarrow as pa

    column = pa.array(values, pa.string() if kind == STRING else pa.int64())
    table = pa.table({"i": pa.array(range(len(values)), pa.int64()), "v": column})
    parsed = []
    for engine in (DuckDBEngine(), SparkEngine()):
        with engine:
            engine.register_arrow("times", table)
            ts = engine.timestamp_expression('"v"', kind)
            rows = engine.fetch_rows(f"SELECT i, {ts} AS ts FROM times ORDER BY i")
            parsed.append(rows)
    assert parsed[0] == parsed[1]


def test_ids_stay_text_and_traits_keep_their_case(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    pl.DataFrame(
        {
            "id": ["m1", "m2"],
            "anonymous_id": ["007", "007"],
            "user_id": ["00123", None],
            "timestamp": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"],
            "Plan": ["pro", None],
            "plan": [None, "free"],
        }
    ).write_csv(folder / "identifies.csv")
    duck = stitch(folder, tmp_path / "duckdb", "--output-format", "csv", "--no-report")
    spark = stitch(
        folder, tmp_path / "spark", "--engine", "spark", "--output-format", "csv", "--no-report"
    )
    _same_files(duck, spark, "csv")
    assert "00123" in (spark / "id_map.csv").read_text()


def test_partition_keys_and_numeric_ids_read_the_same_on_both_engines(tmp_path: Path) -> None:
    # The cases of test_read_as_meant.py in one input: a folder key the files have as a
    # column (ignored), one they lack (fills), and one id in every numeric kind, NaN included.
    tracks = tmp_path / "in" / "tracks"
    times = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    own = tracks / "user_id=u9"
    own.mkdir(parents=True)
    pl.DataFrame(
        {"anonymous_id": ["a1", "a2"], "user_id": ["u1", "u2"], "timestamp": times}
    ).write_csv(own / "own.csv")
    lacking = tracks / "user_id=o'b%3Ax"
    lacking.mkdir()
    pl.DataFrame({"anonymous_id": ["a3"], "timestamp": times[:1]}).write_csv(lacking / "l.csv")
    kinds = {
        "float": pa.array([1001.0, float("nan")]),
        "int": pa.array([1001, 2**60 + 1]),
        "decimal": pa.array([Decimal("1001.00"), Decimal("1.50")], pa.decimal128(10, 2)),
        "float32": pa.array([1001.0, 0.5], pa.float32()),
    }
    for number, (name, array) in enumerate(kinds.items()):
        anonymous = [f"{name}{i}" for i in range(2)]
        table = pa.table({"anonymous_id": anonymous, "user_id": array, "timestamp": times})
        pq.write_table(table, tracks / f"part-{number}.parquet")
    _both_engines(tmp_path / "in", tmp_path / "out")
    id_map = read_output(tmp_path / "out" / "spark", "id_map")
    users = set(id_map.filter(pl.col("identifier_type") == "user_id")["identifier"].to_list())
    assert users == {"u1", "u2", "o'b:x", "1001", str(2**60 + 1), "1.5", "0.5"}


def test_twins_traits_and_id_columns_read_the_same_on_both_engines(tmp_path: Path) -> None:
    # Spelling twins that disagree, traits named like stitcher's own columns, and an
    # identifier type read from two columns.
    folder = tmp_path / "in"
    folder.mkdir()
    pl.DataFrame(
        {
            "anonymous_id": ["a1", "a2", "a3"],
            "userId": ["U1", None, "u3"],
            "user_id": ["u1", "u2", None],
            "timestamp": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", None],
            "em1": ["x@a.com", None, "z@c.com"],
            "em2": ["y@b.com", "y@b.com", "z@c.com"],
            "ts": ["t1", "t2", "t3"],
            "component": ["c1", "c2", "c3"],
            "person_id": ["p1", "p2", "p3"],
        }
    ).write_csv(folder / "identifies.csv")
    config = tmp_path / "stitcher.toml"
    config.write_text('[identifiers.email]\ncolumns = ["em1", "em2"]\n', encoding="utf-8")
    _both_engines(folder, tmp_path / "out", "--config", str(config))
    users = read_output(tmp_path / "out" / "spark", "users")
    assert {"ts", "component", "trait_person_id"} <= set(users.columns)


class _SparkSQL:
    """The little of DB-API that run_script uses, over a Spark session."""

    def __init__(self, session: object) -> None:
        self._session = session
        self._rows: list = []

    def cursor(self) -> _SparkSQL:
        return self

    def execute(self, sql: str) -> None:
        self._rows = self._session.sql(sql).collect()  # type: ignore[attr-defined]

    def fetchone(self) -> tuple:
        return tuple(self._rows[0])


def test_generated_spark_script_runs_on_spark(spark_session: object, tmp_path: Path) -> None:
    from test_warehouse_sql import load_warehouse

    from stitcher.config import RunOptions
    from stitcher.warehouse.script import (
        OUTPUT_TABLES,
        OutputTables,
        build,
        render_script,
        run_script,
    )

    scenario = FIXTURES / "several_devices_several_logins"
    session = spark_session
    database = "stitcher_test_warehouse"
    session.sql(f"CREATE DATABASE IF NOT EXISTS {database} LOCATION '{tmp_path / 'db'}'")
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        for name in tables:
            engine.execute(
                f"COPY analytics.\"{name}\" TO '{tmp_path / name}.parquet' (FORMAT parquet)"
            )
    refs = {}
    for name in tables:
        path = tmp_path / f"{name}.parquet"
        session.sql(
            f"CREATE TABLE {database}.{name} USING parquet AS SELECT * FROM parquet.`{path}`"
        )
        refs[name] = f"{database}.{name}"
    # Segment's own `users` table, beside the inputs in the current database.
    session.sql(f"CREATE TABLE {database}.users USING parquet AS SELECT 'u-1' AS id")
    output = f"{database}_out"
    session.sql(f"CREATE DATABASE IF NOT EXISTS {output} LOCATION '{tmp_path / 'out_db'}'")
    session.sql(f"USE {database}")
    try:
        items = build(refs, RunOptions(Path("."), Path("out")), dialect="spark")
        assert "PARTITION BY bucket_later_type" in render_script(items, "spark", refs)
        # Outputs in the current database: Spark SQL cannot read whose `users` is, so the
        # script never drops it: its rename onto that name fails.
        with pytest.raises(Exception, match="TABLE_OR_VIEW_ALREADY_EXISTS"):
            run_script(render_script(items, "spark", refs), _SparkSQL(session))
        assert [tuple(r) for r in session.sql(f"SELECT * FROM {database}.users").collect()] == [
            ("u-1",)
        ]
        options = RunOptions(Path("."), Path("out"))
        items = build(refs, options, dialect="spark", outputs=OutputTables(output))
        script = render_script(items, "spark", refs)
        run_script(script, _SparkSQL(session))
        rows = session.sql(f"SELECT identifier_type, identifier, person_id FROM {output}.id_map")
        rows = rows.collect()
        made = {r.tableName for r in session.sql(f"SHOW TABLES IN {output}").collect()}
        assert made == set(OUTPUT_TABLES)  # no stitcher__ table left
    finally:
        session.sql("USE default")
        session.sql(f"DROP DATABASE {database} CASCADE")
        session.sql(f"DROP DATABASE IF EXISTS {output} CASCADE")
    got = pl.DataFrame(
        [tuple(r) for r in rows], schema=["identifier_type", "identifier", "p"], orient="row"
    )
    want = read_output(stitch(scenario, tmp_path / "run", "--no-report"), "id_map")
    joined = want.join(got, on=["identifier_type", "identifier"], how="full", coalesce=True)
    assert joined.height == want.height == got.height
    assert (joined["person_id"] == joined["p"]).all()


def test_url_input_gives_the_same_files_as_a_local_path(tmp_path: Path) -> None:
    """An --input given as a URL is listed through Hadoop's FileSystem API and read by Spark
    by URL (file:// here: the real Hadoop local file system), by the same discovery rules."""
    events = tmp_path / "events"
    run_cli(
        "generate", str(events), "--events", "2000", "--seed", "3", "--format", "csv",
        "--files-per-table", "3", "-q",
    )  # fmt: skip
    # What discovery must skip or list: Spark's marker files, hidden files, an empty file,
    # a file that is no table, and a gzipped CSV whose header differs from its siblings'.
    (events / "tracks" / "_SUCCESS").write_text("")
    (events / "tracks" / ".part-0.csv.crc").write_text("junk")
    (events / "notes.txt").write_text("not a table")
    empty = events / "pages" / "dt=2026-12-31" / "part-9.csv"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    import gzip

    extra = sorted((events / "aliases").iterdir())[0] / "extra.csv.gz"
    with gzip.open(extra, "wt", encoding="utf-8") as f:
        f.write("previousId,userId,timestamp,id\nold-1,new-1,2026-11-05T10:00:00Z,al-x\n")
    args = ["--output-format", "csv", "--no-report"]
    duck = stitch(events, tmp_path / "duckdb", *args)
    spark = stitch(f"file://{events}/", tmp_path / "spark", "--engine", "spark", *args)
    _same_files(duck, spark, "csv")
    record = json.loads((spark / "run.json").read_text())
    assert record["options"]["input_dir"] == f"file://{events}"
    duck_skipped = json.loads((duck / "run.json").read_text())["input"]["skipped_files"]
    assert {"path": str(empty), "reason": "empty (0 bytes)"} in duck_skipped

    def seen(skipped: list[dict[str, str]]) -> list[dict[str, str]]:
        # Hadoop's local file system hides its own .crc files from a listing.
        return sorted((s for s in skipped if not s["path"].endswith(".crc")), key=str)

    assert seen(record["input"]["skipped_files"]) == seen(
        [{**s, "path": "file://" + s["path"]} for s in duck_skipped]
    )
    assert (
        record["input"]["events"] == json.loads((duck / "run.json").read_text())["input"]["events"]
    )


def test_url_input_of_a_fixture(tmp_path: Path) -> None:
    fixture = FIXTURES / "several_devices_several_logins"
    plain = stitch(fixture, tmp_path / "plain", "--engine", "spark", "--no-report")
    url = stitch(f"file://{fixture}", tmp_path / "url", "--engine", "spark", "--no-report")
    for table in ("id_map", "users"):
        assert (plain / f"{table}.parquet").read_bytes() == (url / f"{table}.parquet").read_bytes()


def test_url_input_problems_are_one_line(tmp_path: Path) -> None:
    missing = run_cli(
        "run", "--input", f"file://{tmp_path}/nowhere", "--output", str(tmp_path / "o"),
        "--engine", "spark", expect=1,
    )  # fmt: skip
    assert missing.stderr == f"Error: input folder file://{tmp_path}/nowhere does not exist\n"
    no_fs = run_cli(
        "run", "--input", "nofs://bucket/events", "--output", str(tmp_path / "o"),
        "--engine", "spark", expect=1,
    )  # fmt: skip
    assert no_fs.stderr.startswith("Error: cannot list nofs://bucket/events: Spark has no file")
    assert "spark.jars" in no_fs.stderr and len(no_fs.stderr.splitlines()) == 1
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.md").write_text("x")
    nothing = run_cli(
        "run", "--input", f"file://{tmp_path}/in", "--output", str(tmp_path / "o"),
        "--engine", "spark", expect=1,
    )  # fmt: skip
    assert nothing.stderr.startswith(f"Error: no event tables in file://{tmp_path}/in: ")
    assert "(found: readme.md)" in nothing.stderr
    assert not (tmp_path / "o").exists()


def _merge_requests(seed: int, people: int = 60) -> tuple[pa.Table, pa.Table]:
    """`mixpanel_special` and `identifiers_checked` as sql/05 and sql/32 make them: random
    $identify / $create_alias / $merge requests over shared devices and reused aliases, so
    that every refusal happens, in many independent groups."""
    import random
    import uuid
    from datetime import datetime, timedelta

    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1)
    devices = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(people * 2)]
    rows: list[tuple] = []

    def ask(event: str, merge_from: str | None, merge_to: str | None, same_time: bool = False):
        ts = rows[-1][3] if same_time and rows else t0 + timedelta(seconds=rng.randrange(9999))
        rows.append((event, merge_from, merge_to, ts, f"m{len(rows):04d}"))

    for p in range(people):
        user = f"user-{p}"
        for device in rng.sample(devices, 2):
            ask("$identify", device, user)
        if rng.random() < 0.3:
            ask("$create_alias", f"alias-{rng.randrange(people // 3)}", user)
        if rng.random() < 0.2:
            ask("$merge", user, f"user-{rng.randrange(people)}", same_time=True)
        if rng.random() < 0.1:
            ask("$identify", "not-a-uuid", user)
    ask("$identify", "undefined", "user-0")  # junk
    ask("$merge", "user-1", None)  # names one id only
    special = pa.table(
        {
            "event": [r[0] for r in rows],
            "merge_from": [r[1] for r in rows],
            "merge_to": [r[2] for r in rows],
            "ts": pa.array([r[3] for r in rows], pa.timestamp("us")),
            "message_id": [r[4] for r in rows],
        }
    )
    ids = sorted({i for r in rows for i in r[1:3] if i is not None})
    checked = pa.table(
        {
            "identifier_type": ["user_id"] * len(ids),
            "identifier": ids,
            "first_seen": pa.array([t0] * len(ids), pa.timestamp("us")),
            "last_seen": pa.array([t0] * len(ids), pa.timestamp("us")),
            "event_count": pa.array([1] * len(ids), pa.int64()),
            "attributed_event_count": pa.array([1] * len(ids), pa.int64()),
            "attributed_first_ts": pa.array([t0] * len(ids), pa.timestamp("us")),
            "attributed_last_ts": pa.array([t0] * len(ids), pa.timestamp("us")),
            "quarantine_reason": ["junk" if i == "undefined" else None for i in ids],
            # sql/32 numbers the usable identifiers 0..n-1 (all first seen at t0: by value)
            "node_id": pa.array(
                [None if i == "undefined" else n - (i > "undefined") for n, i in enumerate(ids)],
                pa.int64(),
            ),
        }
    )
    return special, checked


def test_mixpanel_original_replays_each_group_on_the_executors() -> None:
    """The Original ID Merge policy on Spark (grouped map over the request graph's
    components) decides every request as the embedded engine does, and as one replay of all
    requests in order does."""
    from stitcher.config import RunOptions
    from stitcher.graph.mixpanel_replay import MergeRequest, replay_original

    special, checked = _merge_requests(seed=4)
    options = RunOptions(Path("."), Path("out"), policy="mixpanel-original")
    options = dataclasses.replace(options, mixpanel_max_cluster_ids=4)
    decided = []
    for engine in (DuckDBEngine(), SparkEngine()):
        with engine:
            engine.register_arrow("mixpanel_special", special)
            engine.register_arrow("identifiers_checked", checked)
            original_policy(engine, options)
            decided.append(
                (
                    engine.fetch_rows(
                        "SELECT from_id, to_id, rule, kept, reason, evidence_message_id "
                        "FROM classified_edges ORDER BY 1, 2, 3"
                    ),
                    engine.fetch_rows(
                        "SELECT identifier FROM mixpanel_identified ORDER BY identifier"
                    ),
                )
            )
    assert decided[0] == decided[1]
    # The oracle: one replay of every request, in the order sql/55 gives them.
    order = sorted(
        (r for r in special.to_pylist() if r["merge_from"] and r["merge_to"]),
        key=lambda r: (r["ts"], r["message_id"]),
    )
    requests = [
        MergeRequest(
            r["event"],
            r["merge_from"],
            r["merge_to"],
            "junk_user_id" if "undefined" in (r["merge_from"], r["merge_to"]) else None,
        )
        for r in order
    ]
    oracle = replay_original(requests, 4)
    first: dict[tuple, tuple] = {}
    for request, refusal, row in zip(requests, oracle.refusals, order, strict=True):
        key = (request.from_id, request.to_id, request.rule)
        kept, reason, evidence = first.get(key, (False, None, None))
        if not kept:
            first[key] = (
                (True, request.rule, row["message_id"])
                if refusal is None
                else (False, reason or refusal, evidence or row["message_id"])
            )
    assert [(*k, *v) for k, v in sorted(first.items())] == [tuple(r) for r in decided[0][0]]
    assert [(i,) for i in sorted(oracle.identified)] == [tuple(r) for r in decided[0][1]]
    reasons = {r[4] for r in decided[0][0]}
    assert reasons >= {
        "errAnonDistinctIdAssignedAlready",
        "errAliasAlreadyExists",
        "errAnonDistinctIdNonGUIDForm",
        "errManyIDs",
        "junk_user_id",
        "$identify",
        "$merge",
    }


def test_engine_and_spark_settings_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "stitcher.toml"
    config.write_text(
        'engine = "spark"\n[spark_conf]\n"spark.hadoop.fs.s3a.secret.key" = "hunter2"\n'
    )
    fixture = FIXTURES / "shared_family_computer"
    out = stitch(f"file://{fixture}", tmp_path / "out", "--config", str(config), "--no-report")
    text = (out / "run.json").read_text()
    record = json.loads(text)
    assert record["versions"]["engine"].startswith("spark ")
    assert record["options"]["spark_conf"] == {"spark.hadoop.fs.s3a.secret.key": "***"}
    assert "hunter2" not in text
    plain = stitch(fixture, tmp_path / "duckdb", "--no-report")
    for table in ("id_map", "users"):
        assert (out / f"{table}.parquet").read_bytes() == (plain / f"{table}.parquet").read_bytes()


# -- --output given as a URL: written locally, published through Hadoop's FileSystem --------
# file:// URLs go through the real Hadoop local file system (the same code path as s3a://,
# hdfs://...); the folder they name is then checked with plain file reads.

TABLES = tuple(f"{t}.parquet" for t in OUTPUTS)


def _url(folder: Path) -> str:
    return f"file://{folder}"


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_url_output_gives_the_same_files_as_a_local_output(tmp_path: Path) -> None:
    fixture = FIXTURES / "several_devices_several_logins"
    local = stitch(fixture, tmp_path / "local")
    stage = tmp_path / "stage"
    out = tmp_path / "published" / "out"
    result = run_cli(
        "run", "--input", str(fixture), "--output", _url(out), "--engine", "spark",
        "--temp-dir", str(stage),
    )  # fmt: skip
    assert f"Wrote {_url(out)}/: " in result.stdout
    # The same files (no Hadoop `.crc` beside them), the tables byte for byte.
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in local.iterdir())
    for name in TABLES:
        assert (out / name).read_bytes() == (local / name).read_bytes(), name
    record = json.loads((out / "run.json").read_text())
    assert record["options"]["output_dir"] == _url(out)
    assert record["outputs"] == [*TABLES, "report.html"]
    assert "changes_since_previous" not in record  # a first run
    # The input's time range (read in the one scan) and every step's time, as DuckDB's.
    local_record = json.loads((local / "run.json").read_text())
    for key in ("first_event_at", "last_event_at"):
        assert record["input"][key] == local_record["input"][key] is not None, key
    assert set(record["timings_seconds"]) == set(local_record["timings_seconds"])
    # Nothing beside the output, nothing left in the staging folder.
    assert [p.name for p in out.parent.iterdir()] == ["out"]
    assert list(stage.iterdir()) == []


def test_second_run_into_the_same_url_replaces_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = FIXTURES / "anonymous_then_signup"
    second = FIXTURES / "several_devices_several_logins"
    stitch(first, _url(out), "--engine", "spark", "--output-format", "csv", "--no-report")
    finished = json.loads((out / "run.json").read_text())["finished_at"]
    # --fail-if reads the changes measured against the URL's previous output; breached, the
    # run still publishes, then exits 3.
    breached = run_cli(
        "run", "--input", str(second), "--output", _url(out), "--engine", "spark",
        "--no-report", "-q", "--fail-if", "identifiers_added>0", expect=3,
    )  # fmt: skip
    assert breached.stderr.startswith("Threshold breached: identifiers_added=")
    # The same two runs into a local folder: the oracle for the files and for `compare`.
    local = stitch(first, tmp_path / "local", "--output-format", "csv", "--no-report")
    stitch(second, local, "--no-report")
    # Replaced as a whole: the first run's CSV files are gone, not overwritten one by one.
    assert sorted(p.name for p in out.iterdir()) == sorted([*TABLES, "run.json"])
    for name in TABLES:
        assert (out / name).read_bytes() == (local / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local", "out"]
    # compare read the previous output (the first run's id_map.csv) through the file system.
    changes = json.loads((out / "run.json").read_text())["changes_since_previous"]
    assert changes["previous_finished_at"] == finished
    local_changes = json.loads((local / "run.json").read_text())["changes_since_previous"]
    assert changes["counts"] == local_changes["counts"]
    assert changes["samples"] == local_changes["samples"]
    assert changes["counts"]["identifiers_added"] > 0


def _previous_output(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """An output already at the URL (written by a local run: any finished output will do),
    and its files' bytes."""
    out = stitch(FIXTURES / "shared_family_computer", tmp_path / "out", "--no-report")
    return out, _contents(out)


def _bad_input(tmp_path: Path) -> Path:
    from conftest import write_csv

    bad = tmp_path / "bad"
    write_csv(bad / "tracks.csv", ["id", "nothing_useful", "timestamp"], [("m1", "x", "2026")])
    return bad


def test_failed_run_leaves_the_previous_url_output(tmp_path: Path) -> None:
    out, before = _previous_output(tmp_path)
    stage = tmp_path / "stage"
    result = run_cli(
        "run", "--input", str(_bad_input(tmp_path)), "--output", _url(out), "--engine", "spark",
        "--temp-dir", str(stage), expect=1,
    )  # fmt: skip
    assert result.stderr.startswith("Error: tracks.csv has no anonymous_id or user_id column")
    assert len(result.stderr.splitlines()) == 1
    assert _contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "out", "stage"]
    assert list(stage.iterdir()) == []


def test_a_url_folder_that_is_not_ours_is_refused_and_kept(tmp_path: Path) -> None:
    """As a local --output (tests/test_scheduler_safety.py): the swap replaces the URL whole,
    so a folder holding files stitcher did not write is refused unless --force."""
    out = tmp_path / "out"
    (out / "q3").mkdir(parents=True)
    (out / "important.txt").write_text("do not lose me\n")
    before = {
        str(p.relative_to(tmp_path)): p.is_dir() or p.read_bytes() for p in tmp_path.rglob("*")
    }
    args = ("run", "--input", str(FIXTURES / "shared_family_computer"), "--output", _url(out),
            "--engine", "spark", "-q")  # fmt: skip
    result = run_cli(*args, expect=1)
    assert result.stderr.splitlines() == [
        f"Error: --output {_url(out)} is not a stitcher output (no run.json of ours) and holds "
        "important.txt, q3/; a run replaces the whole folder, so give a new or empty folder, or "
        "pass --force to replace it"
    ]
    after = {
        str(p.relative_to(tmp_path)): p.is_dir() or p.read_bytes() for p in tmp_path.rglob("*")
    }
    assert after == before
    run_cli(*args, "--force")
    assert sorted(p.name for p in out.iterdir()) == sorted([*TABLES, "report.html", "run.json"])


class _FailingFiles:
    """The engine's real file system, with one call failing as a store's can (a dropped
    connection mid-copy, a refused rename): a fault injected below the publishing code."""

    def __init__(self, real: object, fails: object) -> None:
        self._real = real
        self._fails = fails
        self.calls: list[tuple] = []

    def __getattr__(self, name: str) -> object:
        method = getattr(self._real, name)

        def call(*args: object) -> object:
            self.calls.append((name, *args))
            if self._fails(name, args, self.calls):  # type: ignore[operator]
                raise OutputError(f"cannot write to {args[-1]}: injected failure")
            return method(*args)

        return call


@pytest.mark.parametrize("fault", ["second upload", "rename into place"])
def test_publishing_failure_leaves_the_previous_url_output(
    fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, before = _previous_output(tmp_path)
    url = _url(out)

    def fails(name: str, args: tuple, calls: list[tuple]) -> bool:
        if fault == "second upload":
            return name == "upload" and sum(c[0] == "upload" for c in calls) == 2
        # The previous output has been renamed aside: the new one cannot take its place.
        return name == "rename" and args[1] == url and ".out.stitcher-tmp-" in args[0]

    files: list[_FailingFiles] = []
    real_url_files = SparkEngine.url_files

    def failing_url_files(engine: SparkEngine, location: object) -> _FailingFiles:
        files.append(_FailingFiles(real_url_files(engine, location), fails))
        return files[-1]

    monkeypatch.setattr(SparkEngine, "url_files", failing_url_files)
    result = run_cli(
        "run", "--input", str(FIXTURES / "several_devices_several_logins"), "--output", url,
        "--engine", "spark", expect=1,
    )  # fmt: skip
    assert result.stderr.endswith(": injected failure\n"), result.stderr
    # The fixture's expected answers beside its events draw one warning line; then the error.
    assert [line for line in result.stderr.splitlines() if not line.startswith("WARNING")] == [
        result.stderr.splitlines()[-1]
    ]
    assert _contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no tmp or old folder left
    renames = [c for c in files[0].calls if c[0] == "rename"]
    if fault == "rename into place":
        # old output aside, new one refused, old one back
        assert [c[2] == url for c in renames] == [False, True, True]
    else:
        assert renames == []


@pytest.mark.parametrize("failing", ["bad", "empty"])
def test_a_swap_interrupted_by_a_kill_is_recovered(failing: str, tmp_path: Path) -> None:
    """What a run killed mid-swap leaves beside a URL output: the previous output renamed
    aside, and its temporary folder. The next run (here one that fails on bad input, or on an
    empty one before any file is read) puts the previous output back and removes the dead
    run's folder."""
    import subprocess
    import sys

    from stitcher.output.publish import HOST

    out, before = _previous_output(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    leftover = tmp_path / f".out.stitcher-tmp-{HOST}-{dead}-0123abcd"
    leftover.mkdir()
    (leftover / "id_map.parquet").write_bytes(b"half a file")
    other_host = tmp_path / ".out.stitcher-tmp-elsewhere-1-0123abcd"
    other_host.mkdir()
    out.rename(tmp_path / ".out.stitcher-old-89abcdef")
    events = _bad_input(tmp_path) if failing == "bad" else tmp_path / "bad"
    events.mkdir(exist_ok=True)
    result = run_cli(
        "run", "--input", str(events), "--output", _url(out), "--engine", "spark", "-v",
        expect=1,
    )  # fmt: skip
    assert f"restoring {_url(out)} from an interrupted run" in result.stderr
    assert _contents(out) == before
    # A live run on another host may own its folder: left, and named.
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_host.name, "bad", "out"]
    assert f"leaving {_url(other_host)}" in result.stderr


@pytest.mark.parametrize(
    ("input_url", "output_url", "problem"),
    [
        ("file://{tmp}/events", "file://{tmp}/events/out", "is inside --input"),
        ("{tmp}/events", "file://{tmp}/events", "is inside --input"),
        ("file://{tmp}/events/", "file://{tmp}/", "contains --input"),
        ("s3a://bucket/events", "s3://bucket/events/stitched", "is inside --input"),
        ("s3a://bucket/events", "s3a://bucket", "is the root of its store"),
    ],
)
def test_an_output_url_that_overlaps_the_input_is_refused(
    input_url: str, output_url: str, problem: str, tmp_path: Path
) -> None:
    (tmp_path / "events").mkdir()
    shutil.copy(FIXTURES / "shared_family_computer" / "tracks.csv", tmp_path / "events")
    before = sorted(tmp_path.rglob("*"))
    result = run_cli(
        "run", "--input", input_url.format(tmp=tmp_path), "--output",
        output_url.format(tmp=tmp_path), "--engine", "spark", expect=1,
    )  # fmt: skip
    assert result.stderr.startswith("Error: --output "), result.stderr
    assert problem in result.stderr and len(result.stderr.splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_an_output_url_without_a_connector_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(
        "run", "--input", str(FIXTURES / "shared_family_computer"), "--output",
        "s3a://bucket/out", "--engine", "spark", expect=1,
    )  # fmt: skip
    assert result.stderr.startswith(
        "Error: cannot write to s3a://bucket/out: Spark has no file system for s3a://"
    )
    assert "spark.jars" in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# -- Node numbering: buckets on Spark, the ordered window's ids --------------------------------


@pytest.fixture(scope="module")
def node_id_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    from test_node_ids import generated_cases

    folder = tmp_path_factory.mktemp("node_ids") / "events"
    run_cli("generate", str(folder), "--events", "6000", "--seed", "3", "-q")
    return generated_cases(folder)


def test_spark_numbers_nodes_in_buckets_with_the_ordered_ids(
    node_id_cases: dict[str, pa.Table],
) -> None:
    """Every case of tests/test_node_ids.py (generated data; one instant, one minute or no
    time for every identifier; quarantined ones; ties; empty): Spark's bucketed numbering,
    and its ordered window, give DuckDB's ordered ids."""
    from test_node_ids import BUCKETED, ORDERED, anchor_order, number

    assert SparkEngine.distributed_numbering
    with DuckDBEngine() as duck, SparkEngine() as spark:
        for case, table in node_id_cases.items():
            want = number(duck, table, ORDERED)
            assert want == anchor_order(table), case
            assert number(spark, table, BUCKETED) == want, case
            assert number(spark, table, ORDERED) == want, case


def _exchange_below_row_number(plan: str) -> str:
    """The first exchange under the (one) window that computes row_number(): what decides
    how its rows are spread over the tasks."""
    windows = [m.end() for m in re.finditer(r"Window \[row_number\(\)", plan)]
    assert len(windows) == 1, plan
    exchange = re.search(r"Exchange [^\n]*", plan[windows[0] :])
    assert exchange is not None, plan
    return exchange.group(0)


def _executed_plan(engine: SparkEngine, step: str) -> str:
    from stitcher.sql import render

    return engine._df(render(step))._jdf.queryExecution().executedPlan().toString()


def test_spark_plan_numbers_identifiers_in_partitioned_windows(
    node_id_cases: dict[str, pa.Table],
) -> None:
    """The ordered window moves every identifier into one partition (Spark's "No Partition
    Defined for Window operation"); the bucketed one partitions the numbering by bucket. Its
    only single-partition exchange carries the per-bucket counts (one row per bucket) to the
    running sum of the offsets."""
    with SparkEngine() as engine:
        engine.register_arrow("identifiers_quarantined", node_id_cases["generated"])
        ordered = _executed_plan(engine, "33_node_ids")
        bucketed = _executed_plan(engine, "33_node_ids_bucketed")
    assert _exchange_below_row_number(ordered).startswith("Exchange SinglePartition"), ordered
    below = _exchange_below_row_number(bucketed)
    assert below.startswith("Exchange hashpartitioning(bucket_later_type#"), bucketed
    singles = [m.start() for m in re.finditer("Exchange SinglePartition", bucketed)]
    assert len(singles) == 1, bucketed
    # What the single partition receives: the per-bucket counts (a count aggregate).
    below = bucketed[singles[0] :].split("\n")[1]
    assert "HashAggregate" in below and "count(" in below, bucketed


def test_spark_conf_reaches_a_borrowed_session(caplog: pytest.LogCaptureFixture) -> None:
    """The tests' session stands for spark-submit's or a notebook's: --spark-conf still sets
    SQL settings on stitcher's session and Hadoop settings on the context, and names in a
    warning each context setting it cannot change."""
    from stitcher.engines.base import EngineSettings

    settings = EngineSettings(
        spark_conf=(
            ("spark.sql.shuffle.partitions", "7"),
            ("spark.hadoop.fs.stitcher-test.setting", "from-the-flag"),
            ("spark.executor.memory", "3g"),
        )
    )
    with caplog.at_level("WARNING", logger="stitcher"), SparkEngine(settings) as engine:
        spark = engine._spark
        assert spark.conf.get("spark.sql.shuffle.partitions") == "7"
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        assert hadoop.get("fs.stitcher-test.setting") == "from-the-flag"
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("spark.executor.memory=3g not applied" in m for m in warned), warned
    assert not any("shuffle.partitions" in m or "stitcher-test" in m for m in warned), warned
    # stitcher's session is its own: the borrowed one keeps its settings.
    from pyspark.sql import SparkSession

    assert SparkSession.getActiveSession().conf.get("spark.sql.shuffle.partitions") == "2"


# -- A header line never becomes data ---------------------------------------------------------


def test_joined_csv_headers_on_spark(tmp_path: Path) -> None:
    """Gzip members each with a header (`cat a.csv.gz b.csv.gz`): the same files as DuckDB's,
    no `anonymous_id` person; a second header in another order stops the run on the table."""
    import gzip

    header = "id,anonymous_id,user_id,timestamp\n"
    parts = [header + "m1,a1,u1,2026-01-01\n", header + "m2,a2,u2,2026-01-02\n", header]
    joined = tmp_path / "joined"
    joined.mkdir()
    (joined / "tracks.csv.gz").write_bytes(b"".join(gzip.compress(p.encode()) for p in parts))
    _both_engines(joined, tmp_path)
    assert '"anonymous_id","anonymous_id"' not in (tmp_path / "spark" / "id_map.csv").read_text()
    reordered = tmp_path / "reordered"
    reordered.mkdir()
    (reordered / "tracks.csv").write_text(parts[0] + "user_id,id,timestamp,anonymous_id\n")
    result = run_cli(
        "run", "--input", str(reordered), "--output", str(tmp_path / "out"), "--engine", "spark",
        expect=1,
    )  # fmt: skip
    assert result.stderr.startswith(
        "Error: a CSV file of table tracks holds a second header line with the columns in "
        "another order"
    ), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_nested_traits_on_spark(tmp_path: Path) -> None:
    """Struct, list and bytes traits: the same CSV files as DuckDB's. A map trait,
    which Spark cannot order, is one error line naming the column."""
    from test_bad_input import segment_nested_identifies

    table = segment_nested_identifies()
    events = tmp_path / "events"
    events.mkdir()
    pq.write_table(table.drop_columns(["props"]), events / "identifies.parquet")
    _both_engines(events, tmp_path / "csv")
    with_map = tmp_path / "with_map"
    with_map.mkdir()
    pq.write_table(table, with_map / "identifies.parquet")
    result = run_cli(
        "run", "--input", str(with_map), "--output", str(tmp_path / "out"), "--engine", "spark",
        expect=1,
    )  # fmt: skip
    assert result.stderr.startswith(
        "Error: identifies.parquet: trait column 'props' holds a map (map<string,string>)"
    ), result.stderr
    assert len(result.stderr.splitlines()) == 1


def _has_java_child(pid: int) -> bool:
    """Whether the process has started its JVM (the Spark driver) yet."""
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and b"java" in (entry / "cmdline").read_bytes():
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


@pytest.mark.parametrize("moment", ["jvm_starting", "spark_working"])
def test_sigterm_mid_run_on_spark_stops_cleanly(
    big_input: Path, tmp_path: Path, moment: str
) -> None:
    """As on DuckDB (tests/test_scheduler_safety.py): SIGTERM while Spark works stops the run
    with one line and exit 143, the previous output intact, nothing left beside it, and the
    Spark driver's JVM gone with the process. A SIGTERM a second after the JVM started (the
    session still being made) used to hang the run, its JVM left running."""
    import signal
    import subprocess
    import time

    out = stitch(FIXTURES / "shared_family_computer", tmp_path / "out")
    before = _contents(out)
    process = subprocess.Popen(
        run_command(big_input, out, "--engine", "spark"),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, to kill the JVM with it if it hangs
    )
    deadline = time.monotonic() + 120
    if moment == "jvm_starting":
        while not _has_java_child(process.pid):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(1)
    else:
        while not any(".stitcher-tmp-" in p.name for p in tmp_path.iterdir()):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        time.sleep(4)  # into the Spark jobs
    assert process.poll() is None, "the run ended before the signal"
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        # The JVM holds stderr open too: kill the whole group, or communicate() waits on it.
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError("the run did not stop within 90 s of SIGTERM") from None
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == (
        "Error: stopped by SIGTERM; nothing was written, the previous output is unchanged"
    )
    assert "Traceback" not in stderr
    assert _contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
