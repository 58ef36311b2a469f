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

Whose tables are whose: every table and view the script makes while it works is named
`stitcher__<step>` (a prefix stitcher reserves) and is dropped by the script's end. The outputs
are built under such names too and published at the end (`Native` statements, written per
dialect): a guard stops the script, before it changes anything and again before it publishes,
when a table or view holds an output's name and was not made by `stitcher sql` (its comment
says who made it); only then is stitcher's own previous output dropped and the new one renamed
into place and marked.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from stitcher import __version__
from stitcher.config import RunOptions
from stitcher.engines.base import STRING, TIMESTAMP_TZ, Column, Engine
from stitcher.engines.script import WAREHOUSE_TABLE, Loop, ScriptEngine, Statement
from stitcher.errors import ConfigError, EngineError, UsageError
from stitcher.input.load import EVENT_TABLES, InputTables, TableSource, register_inputs
from stitcher.output.tables import OUTPUT_TABLES
from stitcher.warehouse import DIALECTS, DISTRIBUTED_DIALECTS, REWRITTEN_DIALECTS
from stitcher.warehouse.dialects import (
    SNOWFLAKE_PLAIN,
    WarehouseTranslator,
    finish,
)

log = logging.getLogger("stitcher")

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

# What the script names the tables it works with (reserved: dropped and replaced freely), and
# how the comment of an output table it published begins (how a later script knows it may
# replace that table).
SCRATCH_PREFIX = "stitcher__"
OUTPUT_COMMENT = "stitcher sql output"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class OutputTables:
    """Where the script's outputs go: `schema` ("schema" or "database.schema"; None: the
    session's current schema), and each output's table name there, by output name."""

    schema: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.names) - set(OUTPUT_TABLES))
        if unknown:
            raise ConfigError(
                f"--output-table {unknown[0]}=...: the outputs are {', '.join(OUTPUT_TABLES)}"
            )
        for name in self.names.values():
            if not _PLAIN_NAME.fullmatch(name) or name.lower().startswith(SCRATCH_PREFIX):
                raise ConfigError(
                    f"--output-table ...={name}: give a plain table name (letters, digits, _; "
                    f"not starting with {SCRATCH_PREFIX}); put the schema in --output-schema"
                )
        taken = [self.table(o) for o in OUTPUT_TABLES]
        if len({t.lower() for t in taken}) != len(taken):
            raise ConfigError(f"--output-table names two outputs alike: {', '.join(taken)}")
        parts = (self.schema or "x").split(".")
        if len(parts) > 2 or not all(_PLAIN_NAME.fullmatch(p) for p in parts):
            raise ConfigError(
                f"--output-schema {self.schema}: give schema or database.schema, plain names"
            )

    def table(self, output: str) -> str:
        """The output's table name (without the schema)."""
        return self.names.get(output, output)

    def qualified(self, name: str) -> exp.Table:
        """A table of that name in the output schema."""
        parts = self.schema.split(".") if self.schema else []
        return exp.Table(
            this=exp.to_identifier(name),
            db=exp.to_identifier(parts[-1]) if parts else None,
            catalog=exp.to_identifier(parts[0]) if len(parts) == 2 else None,
        )


@dataclass(frozen=True)
class Native:
    """Statements written for the target dialect directly (never translated): the guard over
    the output tables, their publishing, and the scratch tables' cleanup. `render(dialect)`
    gives their SQL; `creates` names the per-step file they go into."""

    render: Callable[[str], list[str]]
    creates: str


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
    outputs: OutputTables | None = None,
) -> Script:
    """The pipeline's statements (DuckDB dialect) over warehouse tables {name: reference},
    in the form meant for `dialect` (the node numbering differs: DISTRIBUTED_DIALECTS),
    writing `outputs` (default: the output names in the current schema)."""
    from stitcher.pipeline import build_tables

    _check_dialect(dialect)
    outputs = outputs or OutputTables()

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
    return Script(_placed(engine.items, outputs), inputs)


def _placed(items: Sequence[Statement | Loop], outputs: OutputTables) -> list:
    """The recorded statements with every relation they make renamed to a scratch name in the
    output schema, between the guard over the outputs and their publishing."""
    made: dict[str, str] = {}  # name as the pipeline gave it -> TABLE or VIEW, while it exists
    ever: set[str] = set()

    def place(statement: Statement) -> Statement:
        tree = sqlglot.parse_one(statement.sql, read="duckdb")
        if isinstance(tree, exp.Create):
            target = tree.this
        elif isinstance(tree, exp.Drop):
            target = (tree.args.get("tables") or [tree.this])[0]
        else:
            target = None
        if isinstance(target, exp.Table):
            # The script makes and drops its own relations only: always a scratch name, so
            # even the DROP before a table's first CREATE cannot reach someone else's table.
            name = target.name
            if isinstance(tree, exp.Create):
                made[name] = str(tree.args.get("kind") or "TABLE").upper()
                ever.add(name)
            else:
                made.pop(name, None)
            target = target.replace(outputs.qualified(SCRATCH_PREFIX + name))
        local = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in list(tree.find_all(exp.Table)):
            if table is target or table.args.get("db") or table.name in local:
                continue
            if table.name not in ever:
                continue  # an input table the user named
            placed = outputs.qualified(SCRATCH_PREFIX + table.name)
            # Keep the old name as the alias: the statement's columns are qualified with it.
            placed.set("alias", exp.TableAlias(this=exp.to_identifier(table.alias_or_name)))
            table.replace(placed)
        return Statement(tree.sql(dialect="duckdb"), statement.creates)

    placed: list[Statement | Loop | Native] = [_guard(outputs)]
    for item in items:
        if isinstance(item, Loop):
            body = tuple(place(s) for s in item.body)
            check = place(Statement(item.check)).sql
            placed.append(Loop(body, check, item.max_rounds))
        else:
            placed.append(place(item))
    missing = [o for o in OUTPUT_TABLES if made.get(o) != "TABLE"]
    if missing:
        raise EngineError(f"the script does not build the output table {missing[0]}")
    leftovers = [(n, kind) for n, kind in reversed(made.items()) if n not in OUTPUT_TABLES]
    placed += [_guard(outputs), _publish(outputs, leftovers)]
    return placed


def _guard(outputs: OutputTables) -> Native:
    """A query that fails, naming the table, when an output's name is held by a table or
    view that `stitcher sql` did not publish (its comment does not say so)."""

    def render(dialect: str) -> list[str]:
        return [_guard_sql(outputs, dialect)]

    return Native(render, "check_outputs")


def _guard_sql(outputs: OutputTables, dialect: str) -> str:
    message = (
        "' exists and was not made by stitcher sql, so the script stops without touching it: "
        "rename or drop it yourself, or write the outputs elsewhere with stitcher sql "
        "--output-schema or --output-table'"
    )
    parts = outputs.schema.split(".") if outputs.schema else []
    if dialect == "spark":
        # Spark SQL has no catalog view a query can read (no information_schema): the
        # publishing renames without dropping, and a taken name makes the rename fail.
        return "-- Spark cannot check the output tables' owner in SQL: see the publishing step."
    if dialect == "bigquery":
        if not parts:
            raise ConfigError(
                "BigQuery reads a table's owner from a dataset's INFORMATION_SCHEMA: give "
                "--output-schema DATASET (or PROJECT.DATASET)"
            )
        names = ", ".join(_string(outputs.table(o)) for o in OUTPUT_TABLES)
        views = f"`{'.'.join(parts)}`.INFORMATION_SCHEMA"
        # TABLE_OPTIONS' option_value is the option's literal ('"text"' for a string).
        return (
            f"SELECT ERROR(CONCAT('stitcher: table ', t.table_schema, '.', t.table_name, "
            f"{message}))\nFROM {views}.TABLES AS t\nLEFT JOIN {views}.TABLE_OPTIONS AS o\n"
            "  ON o.table_name = t.table_name AND o.option_name = 'description'\n"
            f"WHERE t.table_name IN ({names})\n"
            f"  AND COALESCE(o.option_value, '') NOT LIKE '\"{OUTPUT_COMMENT}%'"
        )
    if dialect == "snowflake":
        # Snowflake has no error function in a query; a cast that fails shows its text. Names
        # are compared as Snowflake stores them (warehouse_dialects: upper case if plain).
        names = ", ".join(_string(_snowflake_stored(outputs.table(o))) for o in OUTPUT_TABLES)
        views = (
            f'"{_snowflake_stored(parts[0])}".INFORMATION_SCHEMA'
            if len(parts) == 2
            else ("INFORMATION_SCHEMA")
        )
        schema = _string(_snowflake_stored(parts[-1])) if parts else "CURRENT_SCHEMA()"
        return (
            f"SELECT TO_NUMBER('stitcher: table ' || table_schema || '.' || table_name || "
            f"{message})\nFROM {views}.TABLES\nWHERE table_schema = {schema}\n"
            f"  AND table_name IN ({names})\n"
            f"  AND COALESCE(comment, '') NOT LIKE '{OUTPUT_COMMENT}%'"
        )
    # DuckDB (and Spark's session catalog) resolve names without regard to case.
    names = ", ".join(_string(outputs.table(o).lower()) for o in OUTPUT_TABLES)
    catalog = _string(parts[0].lower()) if len(parts) == 2 else "lower(current_database())"
    schema = _string(parts[-1].lower()) if parts else "lower(current_schema())"
    return (
        f"SELECT error('stitcher: table ' || table_schema || '.' || table_name || {message})\n"
        f"FROM information_schema.tables\nWHERE lower(table_catalog) = {catalog} "
        f"AND lower(table_schema) = {schema}\n  AND lower(table_name) IN ({names})\n"
        f"  AND coalesce(table_comment, '') NOT LIKE '{OUTPUT_COMMENT}%'"
    )


def _publish(outputs: OutputTables, leftovers: list[tuple[str, str]]) -> Native:
    """Each output built under its scratch name replaces stitcher's previous one (the guard
    just checked that is what the name holds) and is marked; then the scratch is dropped."""

    def render(dialect: str) -> list[str]:
        statements = []
        for output in OUTPUT_TABLES:
            final = outputs.qualified(outputs.table(output))
            scratch = outputs.qualified(SCRATCH_PREFIX + output)
            # Snowflake and Spark place an unqualified new name in the current schema;
            # DuckDB and BigQuery take only a bare name and keep the table's schema.
            qualified = dialect in ("snowflake", "spark")
            renamed = final.copy() if qualified else exp.Table(this=final.this.copy())
            if dialect != "spark":
                statements.append(exp.Drop(tables=[final], kind="TABLE", exists=True))
            statements.append(
                exp.Alter(this=scratch, kind="TABLE", actions=[exp.AlterRename(this=renamed)])
            )
            comment = f"{OUTPUT_COMMENT}: {output} (stitcher {__version__})"
            if dialect == "bigquery":
                statements.append(
                    f"ALTER TABLE {final.sql(dialect='bigquery')} SET OPTIONS "
                    f"(description = {_string(comment)})"
                )
            else:
                statements.append(
                    exp.Comment(this=final, kind="TABLE", expression=exp.Literal.string(comment))
                )
        for name, kind in leftovers:
            table = outputs.qualified(SCRATCH_PREFIX + name)
            statements.append(exp.Drop(tables=[table], kind=kind, exists=True))
        return [
            s if isinstance(s, str) else finish(s.copy(), dialect).sql(dialect=dialect)
            for s in statements
        ]

    return Native(render, "publish")


def _string(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="duckdb")


def _snowflake_stored(name: str) -> str:
    """How Snowflake stores a name the script writes (warehouse_dialects' identifier rule)."""
    return name.upper() if SNOWFLAKE_PLAIN.fullmatch(name) else name


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
    Snowflake and BigQuery also the rewrites of stitcher/warehouse/dialects.py, which type each
    statement against the tables the statements before it created. form="duckdb" renders a
    warehouse's rewrites as DuckDB SQL instead (the tests run that beside the original)."""
    _check_dialect(dialect)
    if dialect not in REWRITTEN_DIALECTS:
        return lambda sql: translate(sql, dialect)
    return WarehouseTranslator(dialect, getattr(items, "inputs", {}), form).translate


def render_script(
    items: list,
    dialect: str,
    tables: dict[str, str],
    form: str | None = None,
    outputs: OutputTables | None = None,
) -> str:
    """The whole pipeline as one script (`form`: see `translator`; `outputs`: as built, for
    the header)."""
    render = translator(items, dialect, form)
    return _header(dialect, tables, outputs) + "".join(
        _render_item(item, render, form or dialect) for item in items
    )


def render_files(
    items: list, dialect: str, tables: dict[str, str], outputs: OutputTables | None = None
) -> dict[str, str]:
    """One file per step (a table's DROP + CREATE together; the loop in one file)."""
    render = translator(items, dialect)
    files: dict[str, str] = {SCRIPT_README: _header(dialect, tables, outputs)}
    pending = ""
    for item in items:
        pending += _render_item(item, render, dialect)
        name = "loop" if isinstance(item, Loop) else item.creates
        if name is None:
            continue  # a DROP: goes with the CREATE that follows
        files[f"{len(files):03d}_{name}.sql"] = pending
        pending = ""
    if pending:
        files[f"{len(files):03d}_cleanup.sql"] = pending
    return files


def _header(dialect: str, tables: dict[str, str], outputs: OutputTables | None) -> str:
    outputs = outputs or OutputTables()
    inputs = ", ".join(f"{k} = {v}" for k, v in tables.items())
    names = ", ".join(outputs.table(o) for o in OUTPUT_TABLES)
    where = f"schema {outputs.schema}" if outputs.schema else "the current schema"
    return (
        f"{SCRIPT_MARK}{__version__} identity pipeline as {dialect} SQL (`stitcher sql`).\n"
        f"-- Inputs: {inputs}.\n"
        f"-- Outputs: tables {names} in {where}; times are read as UTC.\n"
        f"-- The script works in tables named {SCRATCH_PREFIX}* there and drops them at the "
        "end. It\n-- replaces an output table only if an earlier `stitcher sql` script made it "
        "(the table's\n-- comment says so): it stops, before changing anything, on any other "
        "table of that name.\n"
        "-- Run the statements in order. The block between `stitcher:loop` and "
        "`stitcher:end-loop`\n"
        "-- repeats until the query after `stitcher:until-zero` returns 0 (at most max_rounds "
        "times);\n"
        "-- stitcher.warehouse.run_script(path, connection) does this over a DB-API "
        "connection.\n" + DIALECTS[dialect].note + "\n"
    )


def _render_item(item: Statement | Loop | Native, render: Callable[[str], str], form: str) -> str:
    if isinstance(item, Native):
        # A comment stands alone; a statement ends with its semicolon.
        return "".join(
            sql + ("\n\n" if sql.startswith("--") else ";\n\n") for sql in item.render(form)
        )
    if isinstance(item, Statement):
        return render(item.sql) + ";\n\n"
    body = "".join(_render_item(s, render, form) for s in item.body)
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


def _script_text(script: str | os.PathLike[str]) -> str:
    """A path's script, or `script` itself when it is SQL text. A str of one line without a
    `;` is a path: run as SQL, a folder's name would fail inside the warehouse with a syntax
    error, so a missing one is refused here."""
    if isinstance(script, os.PathLike):
        return read_script(Path(script))
    if "\n" in script or ";" in script:
        return script
    if not Path(script).exists():
        raise UsageError(
            f"run_script: no script file or folder {script!r}; give the path of a script "
            "`stitcher sql` wrote (a file, or its --out folder), or the script's text"
        )
    return read_script(Path(script))


def read_script(path: Path) -> str:
    """A script file, or a folder of per-step files (run in name order)."""
    if path.is_dir():
        return "".join(p.read_text(encoding="utf-8") for p in sorted(path.glob("*.sql")))
    return path.read_text(encoding="utf-8")


def run_script(script: str | os.PathLike[str], connection: Any) -> int:
    """Run a generated script over a DB-API connection (or a stitcher Engine of the script's
    dialect); returns the rounds its loop took. `script` is a Path (or str path) to a script
    file or a `--out` folder, or the script's text itself."""
    text = _script_text(script)
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
