"""An engine that runs nothing: it writes down the statements the pipeline would run.

`stitcher sql` drives the pipeline's own steps against this engine, so the script it prints
is the pipeline (same SQL files, same order), never a second copy of it. Input "files" are
warehouse table names; their columns are declared, not read. Loops (the components rounds)
are recorded as loops. Steps that need data in Python (the replayed policies) cannot be a
script and say so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

from stitcher.engines.base import (
    DATE,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    Column,
    Engine,
    quote_identifier,
)
from stitcher.errors import ConfigError

# The table format the script engine accepts in register_files: the "file" is a table name.
WAREHOUSE_TABLE = "table"


@dataclass(frozen=True)
class Statement:
    sql: str  # DuckDB dialect, as the pipeline rendered it
    creates: str | None = None  # the table it creates, for naming one file per step


@dataclass(frozen=True)
class Loop:
    """Repeat `body` until `check` (one row) returns 0 in its first column."""

    body: tuple[Statement, ...]
    check: str
    max_rounds: int


class ScriptEngine(Engine):
    name = "script"
    components_in_memory = False

    def __init__(
        self,
        columns: dict[str, list[Column]],
        needs_python: str = "this step",
        distributed_numbering: bool = False,
    ) -> None:
        """`columns`: the declared columns of each input table, by table reference.
        `distributed_numbering`: record the bucketed node numbering (Engine's attribute of
        that name), for a dialect whose engine runs an unpartitioned window in one task."""
        self.distributed_numbering = distributed_numbering
        self.items: list[Statement | Loop] = []
        self._declared = columns
        self._views: dict[str, str] = {}
        # The columns of views the loader derived from an input table (its ids as text).
        self._derived: dict[str, list[Column]] = {}
        self._needs_python = needs_python

    # -- recording -------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        sql = _inline(sql, params)
        statement = sqlglot.parse_one(sql, read="duckdb")
        creates = None
        if isinstance(statement, exp.Create) and statement.expression is not None:
            creates = statement.this.name
            if statement.kind == "TABLE":
                # Re-runnable: a table of a previous run is replaced, as create_table_as does.
                self.items.append(Statement(f"DROP TABLE IF EXISTS {quote_identifier(creates)}"))
            elif statement.kind == "VIEW":
                self._derive_columns(creates, statement.expression)
        self.items.append(Statement(sql, creates))

    def _derive_columns(self, view: str, select: exp.Expression) -> None:
        """A view that selects from a known relation: a column passed through keeps its
        declared kind, a computed one is text (the loader's ids, Engine.id_text)."""
        source = select.args.get("from_") if isinstance(select, exp.Select) else None
        if source is None or not isinstance(source.this, exp.Table):
            return
        try:
            known = {c.name: c for c in self.columns(source.this.name)}
        except KeyError:
            return
        columns = []
        for expression in select.expressions:
            name = expression.alias_or_name
            if isinstance(expression, exp.Column) and name in known:
                columns.append(known[name])
            else:
                columns.append(Column(name, STRING, "VARCHAR"))
        self._derived[view] = columns

    def create_table_as(self, name: str, sql: str) -> None:
        self.execute(f"CREATE TABLE {quote_identifier(name)} AS {sql}")

    def drop(self, name: str) -> None:
        self.items.append(Statement(f"DROP TABLE IF EXISTS {quote_identifier(name)}"))

    def record_rounds(self, rounds: object) -> None:
        """Called by the components solver in place of running its rounds."""
        body: list[Statement] = []
        for name, sql in rounds.steps:  # type: ignore[attr-defined]
            body.append(Statement(f"DROP TABLE IF EXISTS {quote_identifier(name)}"))
            body.append(Statement(f"CREATE TABLE {quote_identifier(name)} AS {sql}", name))
        self.items.append(Loop(tuple(body), rounds.check, rounds.max_rounds))  # type: ignore[attr-defined]

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """A small table of settings (junk values) becomes literal rows in the script."""
        self.create_table_as(name, _literal_select(table))

    def register_files(self, name: str, files: Sequence[Path], file_format: str) -> None:
        if file_format != WAREHOUSE_TABLE or len(files) != 1:
            raise ConfigError("the script engine reads warehouse tables, not files")
        reference = str(files[0])
        self._views[name] = reference
        table = exp.to_table(reference)
        self.items.append(
            Statement(
                f"CREATE OR REPLACE VIEW {quote_identifier(name)} AS SELECT * FROM "
                f"{table.sql(dialect='duckdb', identify=True)}",
                name,
            )
        )

    def columns(self, relation: str) -> list[Column]:
        if relation in self._derived:
            return list(self._derived[relation])
        return list(self._declared[self._views[relation]])

    def timestamp_expression(self, column_sql: str, kind: str) -> str:
        if kind in (TIMESTAMP, TIMESTAMP_TZ, DATE):
            return f"CAST({column_sql} AS TIMESTAMP)"
        raise ConfigError("stitcher sql expects the event time column to be a TIMESTAMP")

    # -- what a script cannot do -----------------------------------------------------------
    def fetch_rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple]:
        # Only sanity checks read rows while the tables are built (e.g. no two persons share
        # an md5); a script skips them: one row of zeros, as wide as the query.
        select = sqlglot.parse_one(sql, read="duckdb")
        width = len(select.expressions) if isinstance(select, exp.Select) else 1
        return [(0,) * width]

    def fetch_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        raise ConfigError(
            f"{self._needs_python} needs the data in Python, which a SQL script cannot do; "
            "use a policy that is plain SQL (sql/51_policy_*.sql)"
        )

    def stream_arrow(self, sql: str, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        raise self._no_data()

    def _no_data(self) -> ConfigError:
        return ConfigError("a SQL script does not read results")

    def version(self) -> str:
        return "script"

    def close(self) -> None:
        pass


def _inline(sql: str, params: Sequence[object] | None) -> str:
    """Bound parameters as literals: a script has nobody to bind them. sqlglot quotes them."""
    if not params:
        return sql
    values = iter(params)

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            return _literal(next(values))
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(fill).sql(dialect="duckdb")


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
}


def _literal_select(table: pa.Table) -> str:
    columns = table.schema.names
    types = [_SQL_TYPES.get(f.type, "VARCHAR") for f in table.schema]
    rows = table.to_pylist()
    if not rows:
        nulls = ", ".join(
            f"CAST(NULL AS {t}) AS {quote_identifier(c)}"
            for c, t in zip(columns, types, strict=True)
        )
        return f"SELECT {nulls} WHERE 1 = 0"
    selects = []
    for row in rows:
        cells = ", ".join(
            f"CAST({_literal(row[c]).sql(dialect='duckdb')} AS {t}) AS {quote_identifier(c)}"
            for c, t in zip(columns, types, strict=True)
        )
        selects.append(f"SELECT {cells}")
    return " UNION ALL ".join(selects)
