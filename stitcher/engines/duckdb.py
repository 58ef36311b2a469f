"""The embedded engine: an in-process DuckDB database, spilling to a temp dir when it must."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from stitcher.engines.base import (
    DATE,
    FLOAT,
    INTEGER,
    OTHER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    Column,
    Engine,
    EngineSettings,
    quote_identifier,
)
from stitcher.errors import EngineError, InputError

log = logging.getLogger("stitcher")

_HIVE_DIR = re.compile(r"[^/\\]+=[^/\\]*")

# Epoch numbers at or above this are milliseconds: 1e11 seconds is the year 5138, while 1e11 ms
# is March 1973, so any plausible event time is unambiguous.
_MILLISECONDS_FROM = 100_000_000_000
# Past this even milliseconds are out of any plausible range (year 5138); such values are NULL.
_EPOCH_MAX = 100_000_000_000_000


def _kind(engine_type: str) -> str:
    t = engine_type.upper()
    if t in ("VARCHAR", "STRING", "TEXT") or t.startswith("VARCHAR"):
        return STRING
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"):
        return INTEGER
    if t in ("UINTEGER", "UBIGINT", "UHUGEINT"):
        return INTEGER
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return FLOAT
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return TIMESTAMP_TZ
    if t.startswith("TIMESTAMP"):
        return TIMESTAMP
    if t == "DATE":
        return DATE
    return OTHER


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        settings = settings or EngineSettings()
        config: dict[str, str] = {}
        # Output order must not depend on scheduling; every result we write is ORDER BY'd, and
        # insertion order keeps intermediate tables reproducible too.
        config["preserve_insertion_order"] = "true"
        if settings.threads:
            config["threads"] = str(settings.threads)
        if settings.memory_limit:
            config["memory_limit"] = settings.memory_limit
        if settings.temp_dir:
            config["temp_directory"] = str(settings.temp_dir)
        try:
            self._con = duckdb.connect(":memory:", config=config)
        except duckdb.Error as exc:
            raise EngineError(f"cannot start DuckDB: {_first_line(exc)}") from exc
        # Timestamps are compared and written in UTC whatever the machine's zone is.
        self._con.execute("SET TimeZone = 'UTC'")
        # The tool reads local files only; never let a query reach the network.
        self._con.execute("SET autoinstall_known_extensions = false")
        self._con.execute("SET autoload_known_extensions = false")

    # -- running SQL -------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        try:
            self._con.execute(sql, params)
        except duckdb.Error as exc:
            raise _engine_error(exc, sql) from exc

    def fetch_rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple]:
        try:
            return self._con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise _engine_error(exc, sql) from exc

    def fetch_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        try:
            if params:
                return self._con.execute(sql, params).to_arrow_table()
            return self._con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise _engine_error(exc, sql) from exc

    def stream_arrow(self, sql: str, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        try:
            reader = self._con.sql(sql).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise _engine_error(exc, sql) from exc

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except (duckdb.Error, pa.ArrowException) as exc:
                raise _engine_error(exc, sql) from exc

        return reader.schema, batches()

    def register_arrow(self, name: str, table: pa.Table) -> None:
        view = f"__arrow_{name}"
        try:
            self._con.register(view, table)
            self.create_table_as(name, f"SELECT * FROM {quote_identifier(view)}")
        finally:
            self._con.unregister(view)

    def register_files(self, name: str, files: Sequence[Path], file_format: str) -> None:
        paths = [str(f) for f in files]
        hive = any(_HIVE_DIR.fullmatch(part) for f in files for part in f.parent.parts)
        try:
            if file_format == "parquet":
                relation = self._con.read_parquet(paths, union_by_name=True, hive_partitioning=hive)
            elif file_format == "csv":
                # Every CSV column is read as text: ids that look numeric must stay strings
                # (leading zeros, 20-digit ids), and the loader parses timestamps itself.
                relation = self._con.read_csv(
                    paths,
                    header=True,
                    all_varchar=True,
                    union_by_name=True,
                    hive_partitioning=hive,
                )
            else:
                raise InputError(f"unsupported file format {file_format!r}")
            relation.create_view(name, replace=True)
        except duckdb.Error as exc:
            raise InputError(f"cannot read {_describe_files(files)}: {_first_line(exc)}") from exc

    def columns(self, relation: str) -> list[Column]:
        rows = self.fetch_rows(f"DESCRIBE {quote_identifier(relation)}")
        return [Column(name=r[0], kind=_kind(r[1]), engine_type=r[1]) for r in rows]

    def timestamp_expression(self, column_sql: str, kind: str) -> str:
        c = column_sql
        if kind in (TIMESTAMP, TIMESTAMP_TZ, DATE):
            return f"CAST({c} AS TIMESTAMP)"
        if kind in (INTEGER, FLOAT):
            return _epoch_expression(f"CAST({c} AS DOUBLE)")
        if kind == STRING:
            number = f"TRY_CAST(trim({c}) AS DOUBLE)"
            return (
                f"CASE WHEN regexp_full_match(trim({c}), '-?[0-9]+(\\.[0-9]+)?') "
                f"THEN {_epoch_expression(number)} "
                f"ELSE CAST(TRY_CAST({c} AS TIMESTAMPTZ) AS TIMESTAMP) END"
            )
        return f"CAST(TRY_CAST(CAST({c} AS VARCHAR) AS TIMESTAMPTZ) AS TIMESTAMP)"

    def version(self) -> str:
        return f"duckdb {duckdb.__version__}"

    def close(self) -> None:
        self._con.close()


def _epoch_expression(number_sql: str) -> str:
    seconds = (
        f"CASE WHEN abs({number_sql}) >= {_MILLISECONDS_FROM} "
        f"THEN {number_sql} / 1000.0 ELSE {number_sql} END"
    )
    return (
        f"CASE WHEN abs({number_sql}) < {_EPOCH_MAX} "
        f"THEN CAST(to_timestamp({seconds}) AS TIMESTAMP) END"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _describe_files(files: Sequence[Path]) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"{files[0]} (and {len(files) - 1} more files)"


def _engine_error(exc: Exception, sql: str) -> EngineError:
    message = _first_line(exc)
    if isinstance(exc, duckdb.OutOfMemoryException):
        message += " (raise --memory-limit or give --temp-dir a disk with more free space)"
    return EngineError(f"DuckDB failed: {message}", sql=sql)
