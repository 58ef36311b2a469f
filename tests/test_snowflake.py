"""`stitcher sql --dialect snowflake` run on fakesnow, a Snowflake emulator (PyPI: fakesnow).

fakesnow runs Snowflake SQL on DuckDB through the Snowflake Python connector's API. It pins
DuckDB and sqlglot versions of its own, so it lives in a virtualenv of its own: `.ci/run`
makes it (.venv-fakesnow), and tests/emulators/snowflake_driver.py runs there. The scripts are
generated here, the outputs compared here.

What is checked, on a schema that holds Segment's own `users` table beside the inputs:
- every fixture's script runs, and its id_map and users equal `stitcher run`'s on the files;
- the scripts of the rewritten aggregates give DuckDB's outputs, all five, on generated data;
- pointed at that schema, the script stops before touching Segment's `users`, naming it;
- a second run replaces the script's own outputs; Segment's tables are byte-for-byte the
  same, and no stitcher__ table is left.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from test_warehouse_sql import (
    GENERATED_TRAITS,
    OUTPUT_ORDER,
    SCENARIOS,
    TRAITS,
    load_generated,
    load_warehouse,
    run_outputs,
    script_options,
)

from stitcher.config import RunOptions
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.warehouse.script import OUTPUT_TABLES, OutputTables, build, render_script

from conftest import FIXTURES, read_output, run_cli, stitch, tool_bin

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).parent / "emulators" / "snowflake_driver.py"
VARIANTS = ("guarded", "connected_email", "dedupe", "mixpanel_simplified", "junk_patterns")


def _fakesnow_python() -> str:
    return str(
        tool_bin(
            ".venv-fakesnow", "STITCHER_FAKESNOW_PYTHON", "STITCHER_REQUIRE_EMULATORS",
            "README, Development (or set STITCHER_FAKESNOW_PYTHON)",
        )
        / "python"
    )  # fmt: skip


def _export(engine: DuckDBEngine, tables: dict[str, str], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, reference in tables.items():
        path = folder / f"{name}.parquet"
        engine.execute(f"COPY (SELECT * FROM {reference}) TO '{path}' (FORMAT parquet)")
        files[name] = str(path)
    return files


def _write_script(path: Path, tables: dict[str, str], items: list) -> str:
    path.write_text(render_script(items, "snowflake", tables), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case run on the emulator in one process; the folder of each case's dump."""
    python = _fakesnow_python()
    root = tmp_path_factory.mktemp("snowflake")
    cases, folders = [], {}
    identity = OutputTables("identity")
    for scenario in SCENARIOS:
        with DuckDBEngine() as engine:
            tables = load_warehouse(engine, FIXTURES / scenario)
            files = _export(engine, tables, root / "inputs" / scenario)
        traits = [t for t in TRAITS if "identifies" in tables]
        items = build(tables, RunOptions(Path("."), Path("out")), traits, "snowflake", identity)
        script = _write_script(root / f"{scenario}.sql", tables, items)
        folders[scenario] = root / "out" / scenario
        runs = [script, script] if scenario == "several_devices_several_logins" else [script]
        cases.append(
            {"tables": files, "segment_users": True, "schemas": ["identity"],
             "scripts": runs, "dump": str(folders[scenario])}
        )  # fmt: skip
    # The outputs' default place is the current schema: here Segment's, holding its `users`.
    scenario = "several_devices_several_logins"
    args = [a for name in tables for a in ("--table", f"{name}=analytics.{name}")]
    default = root / "default.sql"
    default.write_text(run_cli("sql", "--dialect", "snowflake", *args).output, encoding="utf-8")
    folders["default"] = root / "out" / "default"
    cases.append(
        {"tables": cases[SCENARIOS.index(scenario)]["tables"], "segment_users": True,
         "scripts": [str(default)], "dump": str(folders["default"])}
    )  # fmt: skip
    generated = root / "generated"
    run_cli(
        "generate", str(generated), "--events", "20000", "--hardcoded-device-people", "60", "-q"
    )
    with DuckDBEngine() as engine:
        tables = load_generated(engine, generated)
        files = _export(engine, tables, root / "inputs" / "generated")
    for variant in VARIANTS:
        options = script_options()[variant]
        items = build(tables, options, GENERATED_TRAITS, "snowflake", identity)
        script = _write_script(root / f"{variant}.sql", tables, items)
        folders[variant] = root / "out" / variant
        cases.append(
            {"tables": files, "segment_users": True, "schemas": ["identity"],
             "scripts": [script], "dump": str(folders[variant])}
        )  # fmt: skip
    job = root / "job.json"
    job.write_text(json.dumps({"cases": cases}), encoding="utf-8")
    done = subprocess.run(
        [python, str(DRIVER), str(job)], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folders["_root"] = root
    return folders


def _result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def _table(folder: Path, name: str) -> pl.DataFrame:
    return pl.from_arrow(pq.read_table(folder / f"{name}.parquet"))


def _as_expected(got: pl.DataFrame, expected: pl.DataFrame) -> pl.DataFrame:
    """The emulator's dump typed like `expected`: the connector returns an ARRAY as JSON text.
    Snowflake's ARRAY_AGG omits NULL values (docs.snowflake.com, functions/array_agg), which
    the script relies on; fakesnow keeps them, so they are dropped here."""
    columns = []
    for name, dtype in expected.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.List):
            column = column.str.json_decode(dtype).list.drop_nulls()
        columns.append(column.cast(dtype).alias(name))
    return got.select(columns)


def _segment_tables_untouched(folder: Path, inputs: dict[str, str]) -> None:
    users = _table(folder, "ANALYTICS.USERS")
    assert users["id"].to_list() == ["u-1", "u-2"]
    assert users["email"].to_list() == ["a@example.com", None]
    for name, path in inputs.items():
        got = _table(folder, f"ANALYTICS.{name.upper()}")
        want = pl.from_arrow(pq.read_table(path))
        assert got.height == want.height and got.columns == want.columns, name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_snowflake_script_on_the_emulator_gives_stitcher_runs_outputs(
    emulated: dict[str, Path], scenario: str, tmp_path: Path
) -> None:
    folder = emulated[scenario]
    result = _result(folder)
    assert result["error"] is None, result["error"]
    inputs = {p.stem: str(p) for p in (emulated["_root"] / "inputs" / scenario).glob("*.parquet")}
    want_names = {f"ANALYTICS.{n.upper()}" for n in inputs} | {"ANALYTICS.USERS"}
    want_names |= {f"IDENTITY.{n.upper()}" for n in OUTPUT_TABLES}
    assert set(result["tables"]) == want_names  # no stitcher__ table left behind
    _segment_tables_untouched(folder, inputs)
    files_run = stitch(FIXTURES / scenario, tmp_path / "run", "--no-report")
    for name, keys in (("id_map", ["identifier_type", "identifier"]), ("users", ["person_id"])):
        want = read_output(files_run, name).sort(keys)
        got = _as_expected(_table(folder, f"IDENTITY.{name.upper()}"), want).sort(keys)
        assert got.equals(want), (scenario, name)


def test_snowflake_script_stops_before_touching_segments_users_table(
    emulated: dict[str, Path],
) -> None:
    folder = emulated["default"]
    result = _result(folder)
    assert "stitcher: table ANALYTICS.USERS exists and was not made by stitcher sql" in (
        result["error"] or ""
    )
    inputs = {
        p.stem: str(p)
        for p in (emulated["_root"] / "inputs" / "several_devices_several_logins").glob("*.parquet")
    }
    assert set(result["tables"]) == {f"ANALYTICS.{n.upper()}" for n in inputs} | {"ANALYTICS.USERS"}
    _segment_tables_untouched(folder, inputs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_snowflake_script_on_the_emulator_gives_duckdbs_outputs_on_generated_data(
    emulated: dict[str, Path], variant: str
) -> None:
    folder = emulated[variant]
    result = _result(folder)
    assert result["error"] is None, result["error"]
    want = run_outputs(
        emulated["_root"] / "generated", script_options()[variant], "duckdb", "duckdb"
    )
    for name, order in OUTPUT_ORDER.items():
        keys = [k.strip() for k in order.split(",")]
        expected = pl.from_arrow(want[name]).sort(keys)
        got = _as_expected(_table(folder, f"IDENTITY.{name.upper()}"), expected).sort(keys)
        assert got.height == expected.height, (variant, name)
        assert got.equals(expected), (variant, name)
