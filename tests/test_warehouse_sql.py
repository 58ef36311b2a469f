"""`stitcher sql`: golden scripts per dialect, and the DuckDB script run against the fixtures.

The fixtures are loaded as warehouse tables (Segment schema, typed timestamps) into a DuckDB
database; the generated script runs there and must give the same id_map and users as
`stitcher run` on the files. The Spark script runs in tests/test_spark.py; the Snowflake and
BigQuery scripts are checked as text. Regenerate the goldens after an intended change with
STITCHER_UPDATE_GOLDENS=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from stitcher.config import RunOptions
from stitcher.engines.base import STRING
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.errors import EngineError
from stitcher.load import canonical
from stitcher.warehouse import DIALECTS, build, parse_script, render_script, run_script

from conftest import FIXTURES, read_output, run_cli, stitch

GOLDEN_SQL = Path(__file__).parent / "golden_sql"
TRAITS = ("email", "name", "plan")
GOLDEN_ARGS = [
    "--table",
    "tracks=analytics.tracks",
    "--table",
    "pages=analytics.pages",
    "--table",
    "identifies=analytics.identifies",
    "--table",
    "aliases=analytics.aliases",
    "--trait",
    "plan",
]
WAREHOUSE_NAMES = {
    "messageid": "id",
    "anonymousid": "anonymous_id",
    "userid": "user_id",
    "previousid": "previous_id",
}
SCENARIOS = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if (p / "expected_clusters.csv").exists() and not list(p.glob("*.json*"))
)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_script(dialect: str) -> None:
    produced = run_cli("sql", "--dialect", dialect, *GOLDEN_ARGS).output
    golden = GOLDEN_SQL / f"{dialect}.sql"
    if os.environ.get("STITCHER_UPDATE_GOLDENS") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"no golden {golden}; run with STITCHER_UPDATE_GOLDENS=1 and review"
    assert produced == golden.read_text(encoding="utf-8")


def test_the_script_has_one_bounded_loop_with_a_check() -> None:
    items = parse_script(run_cli("sql", *GOLDEN_ARGS, "--max-rounds", "7").output)
    loops = [i for i in items if isinstance(i, tuple)]
    assert len(loops) == 1
    body, check, max_rounds = loops[0]
    assert max_rounds == 7
    assert any("cc_large" in s for s in body) and "unsettled" in check


def load_warehouse(engine: DuckDBEngine, scenario: Path) -> dict[str, str]:
    """The scenario's CSV tables as typed warehouse tables analytics.<name>."""
    engine.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    tables = {}
    for csv in sorted(scenario.glob("*.csv")):
        name = csv.stem
        if name.startswith("expected"):
            continue
        engine.register_files(f"raw_{name}", [csv], "csv")
        ts = engine.timestamp_expression('"timestamp"', STRING)
        # The warehouse spelling of every column (a fixture may use the JSON one, userId).
        columns = [
            ts + ' AS "timestamp"'
            if c.name == "timestamp"
            else f'"{c.name}" AS "{WAREHOUSE_NAMES.get(canonical(c.name), c.name)}"'
            for c in engine.columns(f"raw_{name}")
        ]
        engine.execute(
            f'CREATE TABLE analytics."{name}" AS SELECT {", ".join(columns)} FROM "raw_{name}"'
        )
        tables[name] = f"analytics.{name}"
    return tables


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_duckdb_script_gives_the_same_id_map_and_users(scenario: str, tmp_path: Path) -> None:
    files_run = stitch(FIXTURES / scenario, tmp_path / "run", "--no-report")
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, FIXTURES / scenario)
        traits = [t for t in TRAITS if "identifies" in tables]
        script = render_script(
            build(tables, RunOptions(Path("."), Path("out")), traits), "duckdb", tables
        )
        run_script(script, engine)
        id_map = pl.from_arrow(
            engine.fetch_arrow("SELECT * FROM id_map ORDER BY identifier_type, identifier")
        )
        users = pl.from_arrow(engine.fetch_arrow("SELECT * FROM users ORDER BY person_id"))
    want_map = read_output(files_run, "id_map")
    assert id_map.equals(want_map.cast(id_map.schema)), scenario
    want_users = read_output(files_run, "users")
    assert users.select(want_users.columns).equals(
        want_users.cast(users.select(want_users.columns).schema)
    )


def test_script_folder_runs_like_the_script(tmp_path: Path) -> None:
    scenario = FIXTURES / "several_devices_several_logins"
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        args = [a for name, ref in tables.items() for a in ("--table", f"{name}={ref}")]
        run_cli("sql", *args, "--out", str(tmp_path / "steps"), "-q")
        names = sorted(p.name for p in (tmp_path / "steps").glob("*.sql"))
        assert names[0] == "000_README.sql" and any("_loop.sql" in n for n in names)
        rounds = run_script(tmp_path / "steps", engine)
        persons = engine.fetch_rows("SELECT count(DISTINCT person_id) FROM id_map")[0][0]
    assert rounds >= 1
    expected = pl.read_csv(scenario / "expected_clusters.csv")["cluster"].n_unique()
    assert persons == expected


def test_a_policy_that_replays_in_python_cannot_be_a_script() -> None:
    result = run_cli("sql", *GOLDEN_ARGS, "--policy", "segment", expect=1)
    assert "--policy segment" in result.output


def test_unknown_table_name_is_refused() -> None:
    result = run_cli("sql", "--table", "events=analytics.events", expect=1)
    assert "tracks, pages, screens, identifies, aliases" in result.output


def test_loop_that_never_converges_is_an_error() -> None:
    script = (
        "-- stitcher:loop max_rounds=2\nSELECT 1;\n-- stitcher:until-zero\nSELECT 1;\n"
        "-- stitcher:end-loop\n"
    )
    with DuckDBEngine() as engine, pytest.raises(EngineError, match="did not converge in 2"):
        run_script(script, engine)
