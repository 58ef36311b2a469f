"""The embedded engine: an in-process DuckDB database, spilling to a temp dir when it must."""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from stitcher import interrupts
from stitcher.config import size_bytes
from stitcher.engines.base import (
    DATE,
    DECIMAL,
    FLOAT,
    INTEGER,
    OTHER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    Column,
    Engine,
    EngineSettings,
    input_error,
    quote_identifier,
)
from stitcher.errors import EngineError, InputError, StitcherError
from stitcher.input.csv_check import (
    REENCODE_HINT,
    SECOND_HEADER,
    first_csv_problem,
    first_long_line,
    second_header_line,
)
from stitcher.input.json_check import first_json_problem

log = logging.getLogger("stitcher")

# Epoch numbers at or above this are milliseconds: 1e11 seconds is the year 5138, while 1e11 ms
# is March 1973, so any plausible event time is unambiguous.
_MILLISECONDS_FROM = 100_000_000_000
# Past this even milliseconds are out of any plausible range (year 5138); such values are NULL.
_EPOCH_MAX = 100_000_000_000_000
# --memory-limit bounds the whole process, as the operating system sees it. DuckDB's own limit
# covers its buffer manager only; the rest of the process (Arrow batches being written, the
# components arrays, DuckDB's allocations outside its buffers) measured up to ~1.3 GB at 100M
# events with DuckDB at its limit. So past the first GB, a share of the limit is kept out of
# DuckDB's (which then spills earlier). Small limits go to DuckDB whole: below ~50 MB some of
# its operators cannot run at all, and small limits come with small data.
_HEADROOM_SHARE = 0.3
_HEADROOM_FROM = 10**9
# The instants a TIMESTAMP_NS can hold (1677-09-21 .. 2262-04-11), in epoch microseconds.
_NS_RANGE_US = (-9_223_372_036_854_775, 9_223_372_036_854_775)

# CSV layout: the `.csv` files of warehouse exports are comma-separated with double quotes and
# start with their header. Fixing the dialect (instead of letting DuckDB's sniffer guess) makes a
# ragged row or a stray quote an error with a line number rather than a silently different
# reading of the file: left to guess, the sniffer takes a 5-field row near the top for the header
# and drops the lines above it.
_CSV_DIALECT = {"delimiter": ",", "quotechar": '"', "escapechar": '"', "skiprows": 0}
_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_FILE = re.compile(r"^\s*file = (.+)$", re.M)
_SNIFF_FILE = re.compile(r'Error when sniffing file "([^"]+)"')
_JSON_FILE = re.compile(r'Malformed JSON in file "([^"]+)"')
_LONG_LINE = re.compile(r"Maximum line size of (\d+) bytes exceeded")
_COLUMN_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_ERROR_KIND = re.compile(r"^[A-Z][A-Za-z ]* Error: ")
# Errors that mean our SQL or our resources are wrong, never an input file.
_NOT_FILE_ERRORS = (
    duckdb.OutOfMemoryException,
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.InterruptException,
)


def _allocator_purge() -> Callable[[], None] | None:
    """A function that hands the pages DuckDB has freed back to the operating system, or None.

    DuckDB's Linux builds allocate through a bundled jemalloc that keeps freed pages mapped
    ("dirty") for reuse. Tables dropped mid-run therefore stayed in the process's resident
    set: at 10M events ~0.65 GB of the 1.5 GB held before the outputs were written belonged to
    tables already gone. Purging after each drop costs ~15 ms and gives that back, so the
    peak is the working set rather than everything ever allocated. Setting the decay to zero
    instead (DUCKDB_JE_MALLOC_CONF) gave the same memory for ~25% more time.
    """
    module = sys.modules.get("_duckdb") or sys.modules.get("duckdb.duckdb")
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        mallctl = ctypes.CDLL(path).duckdb_je_mallctl
    except (OSError, AttributeError):
        return None  # another allocator (macOS, Windows, a custom build): nothing to do
    pointer = ctypes.c_void_p
    mallctl.argtypes = [ctypes.c_char_p, pointer, pointer, pointer, ctypes.c_size_t]
    mallctl.restype = ctypes.c_int
    # MALLCTL_ARENAS_ALL (4096): every arena, whichever thread freed the pages.
    command = b"arena.4096.purge"

    def purge() -> None:
        mallctl(command, None, None, None, 0)

    return purge


_PURGE = _allocator_purge()


def _kind(engine_type: str) -> str:
    t = engine_type.upper()
    if t in ("VARCHAR", "STRING", "TEXT") or t.startswith("VARCHAR"):
        return STRING
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"):
        return INTEGER
    if t in ("UINTEGER", "UBIGINT", "UHUGEINT"):
        return INTEGER
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return FLOAT
    if t.startswith("DECIMAL"):
        return DECIMAL
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return TIMESTAMP_TZ
    if t.startswith("TIMESTAMP"):
        return TIMESTAMP
    if t == "DATE":
        return DATE
    return OTHER


class DuckDBEngine(Engine):
    name = "duckdb"
    concurrent_streams = True
    # preserve_insertion_order (set below): a table scan returns rows in insertion order.
    ordered_tables = True
    # A table created by a sorted query is stored in that order, so rowid counts it from 0.
    row_position = "rowid"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        settings = settings or EngineSettings()
        config: dict[str, str] = {}
        # Output order must not depend on scheduling; every result we write is ORDER BY'd, and
        # insertion order keeps intermediate tables reproducible too.
        config["preserve_insertion_order"] = "true"
        if settings.threads:
            config["threads"] = str(settings.threads)
        if settings.memory_limit:
            config["memory_limit"] = _buffer_limit(settings.memory_limit)
        if settings.temp_dir:
            config["temp_directory"] = str(settings.temp_dir)
        if settings.memory_limit:
            # Under a limit, node ids come from the ordered window again: a sorted CREATE TABLE
            # holds more while it spills (600k identifiers under 60 MB: 2 of 10 runs out of
            # memory, the window 0 of 10), as for the output tables (output/tables.py, OutputOrder).
            self.row_position = None
        # Parquet files registered so far: when a query fails on a corrupt page, these are
        # re-read one by one to name the broken file.
        self._parquet_files: list[Path] = []
        self._json_files: list[Path] = []
        # CSV files, searched for a second header line when a query stops on one.
        self._csv_files: list[Path] = []
        try:
            self._con = duckdb.connect(":memory:", config=config)
        except duckdb.Error as exc:
            raise EngineError(f"cannot start DuckDB: {_first_line(exc)}") from exc
        self._cursor_lock = threading.Lock()
        # Timestamps are compared and written in UTC whatever the machine's zone is.
        self._con.execute("SET TimeZone = 'UTC'")
        # Progress belongs to the CLI (stitcher's own bar), never DuckDB's on stderr.
        self._con.execute("SET enable_progress_bar = false")
        # The tool reads local files only; never let a query reach the network.
        self._con.execute("SET autoinstall_known_extensions = false")
        self._con.execute("SET autoload_known_extensions = false")

    # -- running SQL -------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        try:
            self._con.execute(sql, params)
        except duckdb.Error as exc:
            raise self._error(exc, sql) from exc
        except RuntimeError as exc:
            _raise_the_stop(exc)
            raise

    def fetch_rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple]:
        try:
            return self._con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise self._error(exc, sql) from exc
        except RuntimeError as exc:
            _raise_the_stop(exc)
            raise

    def fetch_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        try:
            if params:
                return self._con.execute(sql, params).to_arrow_table()
            return self._con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise self._error(exc, sql) from exc
        except RuntimeError as exc:
            _raise_the_stop(exc)
            raise

    def stream_arrow(self, sql: str, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        # Each stream gets its own cursor (a connection to the same database), so that several
        # streams can be read at once from different threads (see output/tables.py, OutputWriter).
        with self._cursor_lock:
            cursor = self._con.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute("SET enable_progress_bar = false")
            reader = cursor.sql(sql).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            cursor.close()
            raise self._error(exc, sql) from exc
        except RuntimeError as exc:
            cursor.close()
            _raise_the_stop(exc)
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except (duckdb.Error, pa.ArrowException) as exc:
                raise self._error(exc, sql) from exc
            except RuntimeError as exc:
                _raise_the_stop(exc)
                raise
            finally:
                cursor.close()

        return reader.schema, batches()

    def register_arrow(self, name: str, table: pa.Table) -> None:
        view = f"__arrow_{name}"
        # DuckDB scans a registered Arrow table through calls back into Python, and turns a
        # Ctrl-C raised in one into its own "Invalid Input Error: ... KeyboardInterrupt", which
        # read as a failed run: signals wait for the copy (a fraction of a second) instead.
        with interrupts.deferred():
            try:
                self._con.register(view, table)
                self.create_table_as(name, f"SELECT * FROM {quote_identifier(view)}")
            finally:
                self._con.unregister(view)

    def register_files(self, name: str, files: Sequence[Path], file_format: str) -> None:
        paths = [str(f) for f in files]
        # No hive_partitioning: DuckDB's would replace a column the file has with the folder's
        # value (tracks/user_id=u9/ made every row's user u9). The loader fills from folders.
        try:
            if file_format == "parquet":
                relation = self._con.read_parquet(
                    paths, union_by_name=True, hive_partitioning=False
                )
            elif file_format == "csv":
                # Every CSV column is read as text: ids that look numeric must stay strings
                # (leading zeros, 20-digit ids), and the loader parses timestamps itself.
                relation = self._con.read_csv(
                    paths,
                    header=True,
                    all_varchar=True,
                    union_by_name=True,
                    hive_partitioning=False,
                    **_CSV_DIALECT,
                )
            elif file_format == "json":
                # Each record whole, as one JSON value (JSON lines or one array per file): the
                # keys of Mixpanel's `properties` vary from event to event, so no schema is
                # inferred; the loader extracts the keys it needs.
                relation = self._con.read_json(
                    paths, columns={"json": "JSON"}, records="false", format="auto"
                )
            else:
                raise InputError(f"unsupported file format {file_format!r}")
            relation.create_view(name, replace=True)
        except RuntimeError as exc:
            # Ctrl-C while DuckDB reads the files' schemas (tests/test_scheduler_safety.py).
            _raise_the_stop(exc)
            raise
        except duckdb.Error as exc:
            if isinstance(exc, _NOT_FILE_ERRORS):
                # Out of memory while sniffing a file is the limit's fault, not the file's.
                raise _engine_error(exc, f"read {_describe_files(files)}") from exc
            csv_error = _csv_error(exc)
            if csv_error is not None:
                raise csv_error from exc
            raise _read_error(exc, files) from exc
        if file_format == "parquet":
            self._parquet_files.extend(files)
        if file_format == "csv":
            self._csv_files.extend(files)
        if file_format == "json":
            self._json_files.extend(files)

    def drop(self, name: str) -> None:
        super().drop(name)
        if _PURGE is not None:
            _PURGE()

    def columns(self, relation: str) -> list[Column]:
        rows = self.fetch_rows(f"DESCRIBE {quote_identifier(relation)}")
        return [Column(name=r[0], kind=_kind(r[1]), engine_type=r[1]) for r in rows]

    def timestamp_expression(self, column_sql: str, kind: str) -> str:
        # Times outside 1677-2262 (what every common reader, pandas included, can hold) are
        # sentinels (0001-01-01) or clock garbage (year 294247): unknown, never the earliest
        # evidence, and never a value that breaks a reader of the output.
        if kind == TIMESTAMP_TZ:
            # The same value as the casts below: an instant's UTC wall clock is its epoch
            # microseconds, and reading them skips ICU's per-row calendar work in the casts
            # (~0.6 s of the ~3 s scan of 10M events).
            micros = f"epoch_us({column_sql})"
            low, high = _NS_RANGE_US
            return f"CASE WHEN {micros} BETWEEN {low} AND {high} THEN make_timestamp({micros}) END"
        return f"CAST(TRY_CAST({self._timestamp(column_sql, kind)} AS TIMESTAMP_NS) AS TIMESTAMP)"

    def _timestamp(self, column_sql: str, kind: str) -> str:
        c = column_sql
        if kind in (TIMESTAMP, TIMESTAMP_TZ, DATE):
            return f"CAST({c} AS TIMESTAMP)"
        if kind in (INTEGER, FLOAT, DECIMAL):
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

    # -- errors ------------------------------------------------------------------------------
    def _error(self, exc: Exception, sql: str) -> StitcherError:
        """The error to show for a failed query: name the input file when one is at fault."""
        if isinstance(exc, duckdb.OutOfMemoryException):
            return _engine_error(exc, sql)  # the limit's fault, whatever file was being read
        failed = input_error(str(exc))
        if failed is not None:
            return _second_header(failed, self._csv_files)
        csv_error = _csv_error(exc)
        if csv_error is not None:
            return csv_error
        json_error = _json_error(exc)
        if json_error is not None:
            return json_error
        if any(str(f) in str(exc) for f in self._json_files):
            # JSON files are only opened when first queried (a broken gzip shows up here).
            return _read_error(exc, self._json_files)
        if isinstance(exc, duckdb.Error) and not isinstance(exc, _NOT_FILE_ERRORS):
            broken = self._broken_parquet_file()
            if broken is not None:
                return broken
        return _engine_error(exc, sql)

    def _broken_parquet_file(self) -> InputError | None:
        # Only on the error path: decode every column of every file until one fails.
        for path in self._parquet_files:
            try:
                self._con.execute(
                    "SELECT count(*) FROM read_parquet($1) WHERE hash(COLUMNS(*)) IS NOT NULL",
                    [str(path)],
                ).fetchall()
            except duckdb.Error as exc:
                return InputError(
                    f"{path}: corrupt Parquet file ({_first_line(exc)}); re-export it or move "
                    "it out of the input folder"
                )
        return None

    def close(self) -> None:
        self._con.close()


@functools.cache
def _regex_connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def regex_problem(pattern: str) -> str | None:
    """Why DuckDB's regex library cannot compile `pattern`, or None."""
    try:
        _regex_connection().execute("SELECT regexp_full_match('', $1)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return _ERROR_KIND.sub("", _first_line(exc))
    return None


def _epoch_expression(number_sql: str) -> str:
    seconds = (
        f"CASE WHEN abs({number_sql}) >= {_MILLISECONDS_FROM} "
        f"THEN {number_sql} / 1000.0 ELSE {number_sql} END"
    )
    return (
        f"CASE WHEN abs({number_sql}) < {_EPOCH_MAX} "
        f"THEN CAST(to_timestamp({seconds}) AS TIMESTAMP) END"
    )


def _buffer_limit(process_limit: str) -> str:
    """DuckDB's memory_limit for a process limit such as '6GB' (see _HEADROOM_SHARE)."""
    limit = size_bytes(process_limit)
    if limit is None:
        return process_limit  # not a size we know: let DuckDB judge it
    headroom = min(_HEADROOM_SHARE * limit, max(0.0, limit - _HEADROOM_FROM))
    return f"{int(limit - headroom)}B"


def _raise_the_stop(exc: RuntimeError) -> None:
    """DuckDB stops a query when a signal handler raises (Ctrl-C's KeyboardInterrupt, or
    stitcher.interrupts' Interrupted) and raises `RuntimeError: Query interrupted` in its place:
    raise what the signal meant instead, so a caller never sees it as a failure."""
    if str(exc) != "Query interrupted":
        return
    signum = interrupts.received()
    raise (interrupts.Interrupted(signum) if signum else KeyboardInterrupt()) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _json_error(exc: Exception) -> InputError | None:
    """A malformed JSON record as one line naming the file and its first bad line."""
    found = _JSON_FILE.search(str(exc))
    if not found:
        return None
    path = Path(found.group(1))
    problem = first_json_problem(path) or "holds a record that is not valid JSON"
    return InputError(f"{path}: {problem}; fix or remove that line (one JSON object per line)")


def _second_header(failed: InputError, files: Sequence[Path]) -> InputError:
    """Name the file and line of a second header line out of order (load._header_lines)."""
    if SECOND_HEADER not in str(failed):
        return failed
    for path in files:
        line = second_header_line(path)
        if line is not None:
            return InputError(f"{path}: line {line} is {SECOND_HEADER}")
    return failed


def _csv_error(exc: Exception) -> InputError | None:
    """DuckDB's multi-line CSV errors as one line: file, line number, what is wrong, what to do."""
    text = str(exc)
    sniffed = _SNIFF_FILE.search(text)
    if sniffed:
        path = Path(sniffed.group(1))
        problem = first_csv_problem(path) or (
            "not a comma-separated file with a header row; check its delimiter and quoting"
        )
        return InputError(f"{path}: {problem}")
    line = _CSV_LINE.search(text)
    file = _CSV_FILE.search(text)
    if not line or not file:
        return None
    where = f"{file.group(1).strip()}: line {line.group(1)}"
    columns = _COLUMN_COUNT.search(text)
    if columns:
        expected, found = columns.groups()
        return InputError(
            f"{where} has {found} fields but the header has {expected} (a ragged row); fix or "
            "remove that line"
        )
    long_line = _LONG_LINE.search(text)
    if long_line:
        limit = int(long_line.group(1))
        path = Path(file.group(1).strip())
        number = first_long_line(path, limit) or line.group(1)
        return InputError(
            f"{path}: line {number} is longer than {limit:,} bytes, the most the CSV reader "
            "takes in one row; shorten or drop the long field there, or export the table "
            "as Parquet"
        )
    if "unterminated quote" in text:
        return InputError(
            f"{where} opens a quoted field that is never closed; close the quote or double "
            'the " inside the value'
        )
    if "Invalid unicode" in text or "not utf-8" in text.lower():
        return InputError(f"{where} is not UTF-8 text; {REENCODE_HINT}")
    detail = next(
        (
            row.strip()
            for row in text.splitlines()[1:]
            if row.strip() and not row.startswith(("Original Line", "Possible"))
        ),
        _first_line(exc),
    )
    return InputError(f"{where}: {detail}")


def _read_error(exc: Exception, files: Sequence[Path]) -> InputError:
    """A file DuckDB could not open (no Parquet footer, broken gzip...), named once, with a fix."""
    detail = _ERROR_KIND.sub("", _first_line(exc))
    named = [f for f in files if str(f) in detail]
    culprit = named[0] if named else (files[0] if len(files) == 1 else None)
    if culprit is None:
        return InputError(f"cannot read {_describe_files(files)}: {detail}")
    detail = detail.replace(f"'{culprit}'", "").replace(str(culprit), "").strip(" :")
    if "magic bytes" in detail:
        detail = "not a Parquet file, or a truncated one (it has no Parquet footer)"
    return InputError(f"{culprit}: {detail}; re-export it or move it out of the input folder")


def _describe_files(files: Sequence[Path]) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"{files[0]} (and {len(files) - 1} more files)"


def _engine_error(exc: Exception, sql: str) -> EngineError:
    message = _first_line(exc)
    if isinstance(exc, duckdb.OutOfMemoryException):
        message += " (raise --memory-limit or give --temp-dir a disk with more free space)"
    return EngineError(f"DuckDB failed: {message}", sql=sql)
