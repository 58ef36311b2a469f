"""`stitcher sql`: the pipeline as a SQL script for a warehouse, and a driver that runs it.

The script is the pipeline's own statements (recorded by driving the pipeline against
`ScriptEngine`), translated from DuckDB's dialect by sqlglot. The components rounds are one
block between marker comments; `run_script` repeats it until its check returns 0, over any
DB-API connection (or anything with `cursor()`, `execute()` and `fetchone()`):

    -- stitcher:loop max_rounds=100
    ...statements...
    -- stitcher:until-zero
    SELECT ... ;
    -- stitcher:end-loop

Inputs are tables in the Segment warehouse schema (`id`, `anonymous_id`, `user_id`,
`timestamp`, aliases' `previous_id`, identifies' traits named with --trait).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlglot

from stitcher import __version__
from stitcher.config import RunOptions
from stitcher.engines.base import STRING, TIMESTAMP_TZ, Column, Engine
from stitcher.engines.script import WAREHOUSE_TABLE, Loop, ScriptEngine, Statement
from stitcher.errors import ConfigError, EngineError
from stitcher.load import EVENT_TABLES, InputTables, TableSource, register_inputs
from stitcher.warehouse_dialects import REWRITTEN_DIALECTS, WarehouseTranslator

log = logging.getLogger("stitcher")

DIALECTS = ("duckdb", "spark", "snowflake", "bigquery")
# Dialects of engines that spread a query over machines: there a window with ORDER BY and no
# PARTITION BY runs in one task, so node ids are numbered in buckets (Engine's
# distributed_numbering); DuckDB keeps its one ordered window, the fastest form there.
DISTRIBUTED_DIALECTS = frozenset({"spark", "snowflake", "bigquery"})
OUTPUT_TABLES = ("id_map", "users", "edges", "rejected_edges", "quarantine")
# The first file of a script folder, and how it opens: what marks a folder as one we wrote.
SCRIPT_README = "000_README.sql"
SCRIPT_MARK = "-- The stitcher "
ID_MAP_COLUMNS = (
    "identifier_type",
    "identifier",
    "person_id",
    "first_seen_at",
    "last_seen_at",
    "event_count",
)

_ENVELOPE = {
    "tracks": ("id", "anonymous_id", "user_id", "timestamp"),
    "pages": ("id", "anonymous_id", "user_id", "timestamp"),
    "screens": ("id", "anonymous_id", "user_id", "timestamp"),
    "identifies": ("id", "anonymous_id", "user_id", "timestamp"),
    "aliases": ("id", "previous_id", "user_id", "anonymous_id", "timestamp"),
}
_LOOP = re.compile(r"-- stitcher:loop max_rounds=(\d+)")
_UNTIL = "-- stitcher:until-zero"
_END = "-- stitcher:end-loop"


def declared_columns(table: str, traits: Sequence[str]) -> list[Column]:
    """The Segment warehouse columns of an input table (traits only on identifies)."""
    names = list(_ENVELOPE[table]) + (list(traits) if table == "identifies" else [])
    return [
        Column(n, TIMESTAMP_TZ, "TIMESTAMP") if n == "timestamp" else Column(n, STRING, "VARCHAR")
        for n in names
    ]


class Script(list):
    """The pipeline's recorded statements (Statement and Loop items, DuckDB dialect), and the
    declared columns of the input tables they read, by table reference."""

    def __init__(self, items: Sequence[Statement | Loop], inputs: dict[str, list[Column]]) -> None:
        super().__init__(items)
        self.inputs = inputs


def build(
    tables: dict[str, str],
    options: RunOptions,
    traits: Sequence[str] = (),
    dialect: str = "duckdb",
) -> Script:
    """The pipeline's statements (DuckDB dialect) over warehouse tables {name: reference},
    in the form meant for `dialect` (the node numbering differs: DISTRIBUTED_DIALECTS)."""
    from stitcher.pipeline import build_tables

    _check_dialect(dialect)

    unknown = sorted(set(tables) - set(EVENT_TABLES))
    if unknown:
        raise ConfigError(
            f"unknown input table {unknown[0]!r}; the tables are {', '.join(EVENT_TABLES)}"
        )
    if not tables:
        raise ConfigError("give at least one input table, e.g. --table tracks=analytics.tracks")
    inputs = {ref: declared_columns(name, traits) for name, ref in tables.items()}
    engine = ScriptEngine(
        inputs,
        needs_python=f"--policy {options.policy}",
        distributed_numbering=dialect in DISTRIBUTED_DIALECTS,
    )
    sources = InputTables(
        [
            TableSource(name, {WAREHOUSE_TABLE: [Path(tables[name])]})
            for name in EVENT_TABLES
            if name in tables
        ]
    )
    loaded = register_inputs(engine, sources, options.identifier_types, options.policy)
    build_tables(engine, options, loaded)
    # id_map carries integer join keys (node_id, component) for the steps after it; the
    # warehouse table gets the columns of the id_map file only.
    engine.create_table_as("id_map_with_keys", "SELECT * FROM id_map")
    engine.create_table_as("id_map", f"SELECT {', '.join(ID_MAP_COLUMNS)} FROM id_map_with_keys")
    engine.drop("id_map_with_keys")
    return Script(engine.items, inputs)


def translate(sql: str, dialect: str) -> str:
    """One statement, translated by sqlglot alone (DuckDB and Spark run the result as is)."""
    _check_dialect(dialect)
    try:
        return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0]
    except sqlglot.errors.SqlglotError as exc:
        raise EngineError(f"cannot translate SQL to {dialect}: {exc}", sql=sql) from exc


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}; valid dialects: {', '.join(DIALECTS)}")


def translator(items: list, dialect: str, form: str | None = None) -> Callable[[str], str]:
    """Translates the statements of `items` in order: sqlglot alone for DuckDB and Spark; for
    Snowflake and BigQuery also the rewrites of stitcher/warehouse_dialects.py, which type each
    statement against the tables the statements before it created. form="duckdb" renders a
    warehouse's rewrites as DuckDB SQL instead (the tests run that beside the original)."""
    _check_dialect(dialect)
    if dialect not in REWRITTEN_DIALECTS:
        return lambda sql: translate(sql, dialect)
    return WarehouseTranslator(dialect, getattr(items, "inputs", {}), form).translate


def render_script(
    items: list, dialect: str, tables: dict[str, str], form: str | None = None
) -> str:
    """The whole pipeline as one script (`form`: see `translator`)."""
    render = translator(items, dialect, form)
    return _header(dialect, tables) + "".join(_render_item(item, render) for item in items)


def render_files(items: list, dialect: str, tables: dict[str, str]) -> dict[str, str]:
    """One file per step (a table's DROP + CREATE together; the loop in one file)."""
    render = translator(items, dialect)
    files: dict[str, str] = {SCRIPT_README: _header(dialect, tables)}
    pending = ""
    for item in items:
        pending += _render_item(item, render)
        name = "loop" if isinstance(item, Loop) else item.creates
        if name is None:
            continue  # a DROP: goes with the CREATE that follows
        files[f"{len(files):03d}_{name}.sql"] = pending
        pending = ""
    if pending:
        files[f"{len(files):03d}_cleanup.sql"] = pending
    return files


def _header(dialect: str, tables: dict[str, str]) -> str:
    inputs = ", ".join(f"{k} = {v}" for k, v in tables.items())
    return (
        f"{SCRIPT_MARK}{__version__} identity pipeline as {dialect} SQL (`stitcher sql`).\n"
        f"-- Inputs: {inputs}.\n"
        f"-- Outputs: tables {', '.join(OUTPUT_TABLES)} (and scratch tables) in the current "
        "schema; times are read as UTC.\n"
        "-- Run the statements in order. The block between `stitcher:loop` and "
        "`stitcher:end-loop`\n"
        "-- repeats until the query after `stitcher:until-zero` returns 0 (at most max_rounds "
        "times);\n"
        "-- stitcher.warehouse.run_script(path, connection) does this over a DB-API "
        "connection.\n" + _DIALECT_NOTES.get(dialect, "") + "\n"
    )


_DIALECT_NOTES = {
    "bigquery": (
        "-- BigQuery: the tables are created in the default dataset: run the script as one\n"
        "-- multi-statement query after SET @@dataset_id = '<dataset>'; (or give each job a\n"
        "-- default dataset). Checked as text only: never run against BigQuery by the tests.\n"
    ),
    "snowflake": (
        "-- Snowflake: lower-case names are written as Snowflake stores unquoted names (upper\n"
        "-- case), so ANALYTICS.TRACKS and its TIMESTAMP column match analytics.tracks and\n"
        "-- timestamp; other names are kept exactly. Checked as text only: never run against\n"
        "-- Snowflake by the tests.\n"
    ),
}


def _render_item(item: Statement | Loop, render: Callable[[str], str]) -> str:
    if isinstance(item, Statement):
        return render(item.sql) + ";\n\n"
    body = "".join(_render_item(s, render) for s in item.body)
    return (
        f"-- stitcher:loop max_rounds={item.max_rounds}\n{body}{_UNTIL}\n"
        f"{render(item.check)};\n{_END}\n\n"
    )


def parse_script(text: str) -> list[str | tuple[list[str], str, int]]:
    """Statements in order; a loop as (body statements, check query, max_rounds)."""
    items: list[Any] = []
    loop: list[Any] | None = None
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        marker = _LOOP.fullmatch(stripped)
        if marker:
            loop = [[], None, int(marker.group(1))]
            continue
        if stripped == _UNTIL:
            if loop is None:
                raise ConfigError(f"{_UNTIL} outside a loop")
            loop[1] = ""
            continue
        if stripped == _END:
            if loop is None or not loop[1]:
                raise ConfigError(f"{_END} without a loop and its check")
            items.append((loop[0], loop[1], loop[2]))
            loop = None
            continue
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        if stripped.endswith(";"):
            statement = "\n".join(current).rstrip().rstrip(";")
            current = []
            if loop is None:
                items.append(statement)
            elif loop[1] is None:
                loop[0].append(statement)
            else:
                loop[1] = statement
    if current or loop is not None:
        raise ConfigError("the script ends inside a statement or a loop")
    return items


def read_script(path: Path) -> str:
    """A script file, or a folder of per-step files (run in name order)."""
    if path.is_dir():
        return "".join(p.read_text(encoding="utf-8") for p in sorted(path.glob("*.sql")))
    return path.read_text(encoding="utf-8")


def run_script(script: str | Path, connection: Any) -> int:
    """Run a generated script over a DB-API connection (or a stitcher Engine of the script's
    dialect); returns the rounds its loop took."""
    text = read_script(script) if isinstance(script, Path) else script
    if isinstance(connection, Engine):
        execute = connection.execute

        def first_value(sql: str) -> Any:
            return connection.fetch_rows(sql)[0][0]

    else:
        cursor = connection.cursor()
        execute = cursor.execute

        def first_value(sql: str) -> Any:
            cursor.execute(sql)
            return cursor.fetchone()[0]

    rounds = 0
    for item in parse_script(text):
        if isinstance(item, str):
            execute(item)
            continue
        body, check, max_rounds = item
        for number in range(1, max_rounds + 1):
            started = time.perf_counter()
            for statement in body:
                execute(statement)
            left = first_value(check)
            log.info("loop round %d: %s left (%.2f s)", number, left, time.perf_counter() - started)
            if int(left) == 0:
                rounds = number
                break
        else:
            raise EngineError(f"the loop did not converge in {max_rounds} rounds", sql=check)
    return rounds
