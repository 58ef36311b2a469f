"""The seam between the pipeline and whatever runs its SQL.

The pipeline only speaks SQL (the files in `sql/`) and Arrow. An engine runs the SQL, moves
Arrow tables in and out, reads input files into named relations and writes result relations
to files. DuckDB is the embedded default; Spark or a warehouse implement the same interface.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from stitcher.errors import InputError, OutputError
from stitcher.location import Tree, Url, UrlFileSystem

# The coarse column kinds the loader needs to decide how to normalize a column.
STRING, INTEGER, FLOAT, DECIMAL, TIMESTAMP, TIMESTAMP_TZ, DATE, OTHER = (
    "string",
    "integer",
    "float",
    "decimal",
    "timestamp",
    "timestamptz",
    "date",
    "other",
)


# Seconds a Spark job may wait with no executor at all (a cluster whose workers are gone)
# before the run fails; long enough for a worker to restart or a cluster to scale up. The
# option's default everywhere (config, the CLI's help, the API) is this one.
DEFAULT_SPARK_EXECUTOR_TIMEOUT = 180.0


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    engine_type: str


@dataclass(frozen=True)
class EngineSettings:
    threads: int | None = None
    memory_limit: str | None = None
    temp_dir: Path | None = None
    # Spark only: the master URL (None: local[*], or spark-submit's) and extra session conf.
    spark_master: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = ()
    # Spark on a cluster: fail when jobs have waited this long with no executor at all.
    spark_executor_timeout: float = DEFAULT_SPARK_EXECUTOR_TIMEOUT


class Engine(ABC):
    name: str = "abstract"
    # True: the components solver may pull the node graph into this process (numpy); False:
    # components run as SQL rounds inside the engine (the graph may not fit this process).
    components_in_memory: bool = True
    # True: stream_arrow may be called from several threads at once, each stream running on
    # its own connection (the output files are then written side by side).
    concurrent_streams: bool = False
    # True: a table created by a query with ORDER BY is read back in that order by a plain
    # SELECT, so output tables can be created sorted and written without sorting again.
    ordered_tables: bool = False
    # False where MAX cannot order a MAP (Spark): a trait holding one has no "latest value".
    orders_maps: bool = True
    # True: node ids are numbered bucket by bucket (sql/33_node_ids_bucketed.sql), because
    # one ordered window with no PARTITION BY would run in a single task; False: in one
    # ordered window (sql/33_node_ids.sql), the fastest form on an embedded engine. Both give
    # the same numbers.
    distributed_numbering: bool = False
    # An expression for a row's 0-based position in a table created by a sorted query, where
    # the engine has one (DuckDB's rowid): node ids are then numbered by a parallel sort
    # (sql/33_node_ids_sorted.sql) instead of one ordered window. The same numbers again.
    # DuckDB offers it only without a memory limit (see DuckDBEngine.__init__).
    row_position: str | None = None

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        """Run a statement that returns nothing the caller needs."""

    @abstractmethod
    def fetch_rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple]:
        """Run a query and return its rows as Python tuples (small results only)."""

    @abstractmethod
    def fetch_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        """Run a query and return the result as one Arrow table."""

    @abstractmethod
    def stream_arrow(self, sql: str, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Run a query; return its schema and its result as record batches, in query order."""

    @abstractmethod
    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable under `name` (a table, so it may be read many times)."""

    @abstractmethod
    def register_files(self, name: str, files: Sequence[Path | Url], file_format: str) -> None:
        """Make input files (all of one format, schemas unioned by column name) a view `name`.
        Files are local paths, or URLs for an engine whose url_tree listed them. Only the
        files' own columns: `key=value` folders in their paths add none (the loader decides
        what a partition key means, see load.py)."""

    def union_view(self, name: str, views: Sequence[str]) -> None:
        """Create view `name`: the rows of every view, matched by column name (a column one
        view lacks is NULL there). Written in DuckDB's dialect; engines without UNION BY NAME
        override it."""
        self.execute(
            f"CREATE OR REPLACE VIEW {quote_identifier(name)} AS "
            + " UNION ALL BY NAME ".join(f"SELECT * FROM {quote_identifier(v)}" for v in views)
        )

    def fail(self, message: str) -> str:
        """A boolean SQL expression that stops the query with `message` where it is evaluated
        (in a CASE, on the rows that call for it); `input_error` turns the failure back into
        an InputError with that message."""
        return f"CAST(error({quote_literal(INPUT_FAILURE + message)}) AS BOOLEAN)"

    def id_text(self, column_sql: str, kind: str) -> str:
        """SQL reading one identifier column of the given kind as the text the user meant
        (README, "Input"): 1001, 1001.0, decimal 1001.00 and '1001.0' are all '1001'; NaN and
        infinities become 'nan', 'inf', '-inf', which are junk; a non-integral number keeps
        its shortest round-trip text; booleans are 'true'/'false' (junk). Written in DuckDB's
        dialect with functions that sqlglot carries to Spark and the warehouses."""
        c = column_sql
        if kind == STRING:
            # The cast is a no-op on text; it keeps the rule valid where a column declared as
            # text is a number in the warehouse (`stitcher sql` declares every id as text).
            return _integral_text(f"CAST({c} AS VARCHAR)")
        if kind == FLOAT:
            infinity = "CAST('inf' AS DOUBLE)"
            return (
                f"CASE WHEN isnan({c}) THEN 'nan' "
                f"WHEN {c} = {infinity} THEN 'inf' WHEN {c} = -{infinity} THEN '-inf' "
                # Whole numbers as plain digits (1e20 as 100000000000000000000, as an int64
                # column would hold it); past DECIMAL(38) only the float's own text fits.
                f"WHEN {c} = floor({c}) AND abs({c}) < 1e38 "
                f"THEN CAST(CAST({c} AS DECIMAL(38, 0)) AS VARCHAR) "
                f"ELSE CAST({c} AS VARCHAR) END"
            )
        if kind == DECIMAL:
            # A decimal's text has all its scale's digits (1001.50): drop the trailing zeros,
            # and the point when nothing is left after it.
            text = f"CAST({c} AS VARCHAR)"
            trimmed = f"regexp_replace({text}, '[.]?0+$', '', 'g')"
            return f"CASE WHEN {text} LIKE '%.%' THEN {trimmed} ELSE {text} END"
        return f"CAST({c} AS VARCHAR)"

    @abstractmethod
    def columns(self, relation: str) -> list[Column]:
        """The columns of a table or view, in order."""

    @abstractmethod
    def timestamp_expression(self, column_sql: str, kind: str) -> str:
        """SQL turning a column of the given kind into a UTC TIMESTAMP (NULL when unparseable).

        Strings may be ISO-8601 (with or without offset) or epoch seconds/milliseconds; numbers
        are epoch seconds, or milliseconds when too large to be seconds.
        """

    def json_string_list(self, json_sql: str) -> str:
        """SQL turning JSON text that holds an array into a list of its elements as text (a
        JSON number as its digits); NULL when the text is not JSON. Written in the pipeline's
        (DuckDB) dialect; this default is DuckDB's."""
        return f"CASE WHEN json_valid({json_sql}) THEN json_extract_string({json_sql}, '$[*]') END"

    @abstractmethod
    def version(self) -> str:
        """Name and version of the engine, for run.json."""

    @abstractmethod
    def close(self) -> None: ...

    def map_groups(
        self,
        name: str,
        sql: str,
        key: str,
        fn: Callable[[pa.Table], pa.Table],
        schema: pa.Schema,
    ) -> None:
        """Create table `name`: `fn` applied to each group of the rows of `sql` that share a
        value of column `key` (never NULL), the results put together.

        `fn` gets one group as an Arrow table (rows in no particular order) and returns rows of
        `schema`; it must be a picklable, pure function of its group, so that an engine may run
        the groups anywhere, in any order, in parallel (Spark runs them on its executors). This
        default runs them one after another in this process.
        """
        table = self.fetch_arrow(sql)
        results = [_conform(fn(group), schema) for group in arrow_groups(table, key)]
        self.register_arrow(name, pa.concat_tables(results) if results else schema.empty_table())

    def check_python_workers(self) -> None:
        """Before a policy that calls map_groups: fail now, with what to do, where the engine
        runs `fn` in processes that cannot (Spark executors whose Python lacks pyarrow),
        instead of after the work before it. Here `fn` runs in this process: nothing to do."""
        return

    def url_tree(self, url: Url) -> Tree:
        """A Tree that lists URLs (s3a://, hdfs://, file://...) for an input given as a URL.
        Engines that read only local paths refuse."""
        raise InputError(
            f"--input {url} is a URL, which the {self.name} engine cannot read; run with "
            "--engine spark, or copy the files to a local (or mounted) folder"
        )

    def url_files(self, url: Url) -> UrlFileSystem:
        """The files of the store `url` lives in (s3a://, hdfs://, file://...), to publish an
        --output given as a URL. Engines that write only local paths refuse."""
        raise OutputError(
            f"--output {url} is a URL, which the {self.name} engine cannot write; run with "
            "--engine spark, or give a local (or mounted) folder"
        )

    def create_table_as(self, name: str, sql: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")
        self.execute(f"CREATE TABLE {quote_identifier(name)} AS {sql}")

    def drop(self, name: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    def count(self, relation: str) -> int:
        return int(self.fetch_rows(f"SELECT count(*) FROM {quote_identifier(relation)}")[0][0])

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        try:
            self.close()
        except Exception as exc:
            if exc_type is None:
                raise
            # The error that stopped the run is the one to show (a Ctrl-C, a failed step), not
            # a close that failed because of it.
            logging.getLogger("stitcher").debug("closing the engine after an error: %s", exc)


def arrow_groups(table: pa.Table, key: str) -> Iterator[pa.Table]:
    """The rows of `table` sharing each value of column `key`, one table per value."""
    if table.num_rows == 0:
        return
    table = table.sort_by(key)
    keys = table.column(key).combine_chunks()
    changes = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    starts = [0, *(i + 1 for i in pc.indices_nonzero(changes).to_pylist()), len(keys)]
    for start, end in pairwise(starts):
        yield table.slice(start, end - start)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return table.select(schema.names).cast(schema)


def _integral_text(c: str) -> str:
    # Text that is a whole number written as a float ('1001.0', what pandas writes to CSV for
    # an integer column with nulls) is that number. LIKE first: it is cheap, and nearly every
    # id (UUIDs, emails) fails it, so the regex runs on few rows.
    return (
        f"CASE WHEN {c} LIKE '%.%0' AND regexp_matches({c}, '^-?[0-9]+[.]0+$') "
        f"THEN regexp_replace({c}, '[.]0+$', '', 'g') ELSE {c} END"
    )


# Marks the message of a failure that Engine.fail raised from inside a query.
INPUT_FAILURE = "stitcher input check: "


def input_error(text: str) -> InputError | None:
    """The InputError that Engine.fail raised inside a query, from the engine's error text."""
    start = text.find(INPUT_FAILURE)
    if start < 0:
        return None
    message = text[start + len(INPUT_FAILURE) :].splitlines()[0]
    # Engines append their own context after the message (Spark: ` SQLSTATE: ...`).
    return InputError(message.split(" SQLSTATE:")[0].rstrip(" .'\""))


def quote_identifier(name: str) -> str:
    """Quote a table or column name so that any text in it stays a name, never SQL."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string constant in the pipeline's (DuckDB) dialect, where a quote is doubled and
    nothing else is special; the Spark engine re-renders it through sqlglot. For names the code
    chose (table labels) and partition values from folder names."""
    return "'" + value.replace("'", "''") + "'"


def drop_tables(engine: Engine, *tables: str) -> None:
    """Free tables no later step reads (an in-memory engine holds every table until then)."""
    for table in tables:
        engine.drop(table)
