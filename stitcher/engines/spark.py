"""Apache Spark: the same SQL steps, translated from DuckDB's dialect by sqlglot, run by Spark.

Every statement the pipeline renders is DuckDB SQL; this engine transpiles it with sqlglot and
runs it with `spark.sql`. Tables the pipeline creates are checkpointed (materialized, lineage
cut) so a later step, or the next round of a loop, never recomputes the steps before it.

Install with `pip install 'identity-stitcher[spark]'`. Java 17+ must be on the PATH (or JAVA_HOME).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
import re
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

from stitcher import interrupts
from stitcher.engines.base import (
    DATE,
    DECIMAL,
    FLOAT,
    INPUT_FAILURE,
    INTEGER,
    OTHER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    Column,
    Engine,
    EngineSettings,
    input_error,
    quote_literal,
)
from stitcher.errors import ConfigError, EngineError, InputError, OutputError, StitcherError
from stitcher.input.csv_check import csv_header
from stitcher.location import ListedEntry, Tree, Url, UrlFileSystem, UrlTree
from stitcher.output.publish import HOST, process_alive

try:
    import pyspark
    from py4j.protocol import Py4JError, Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_schema
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ConfigError(
        "the spark engine needs pyspark: pip install 'identity-stitcher[spark]' (and Java 17+)"
    ) from exc

log = logging.getLogger("stitcher")

_SPARK_ERRORS = (PySparkException, Py4JError)

# Settings every stitcher session needs, whoever created the session: times are UTC, and
# column names are case-sensitive as in DuckDB (`Plan` and `plan` are two trait columns).
_SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.caseSensitive": "true",
}

# Epoch numbers at or above this are milliseconds (the same rule as the DuckDB engine).
_MILLISECONDS_FROM = 100_000_000_000
_EPOCH_MAX = 100_000_000_000_000
# The DuckDB engine keeps times that fit a nanosecond timestamp (1677-09-21 .. 2262-04-11) and
# makes every other time unknown; these are the same bounds in microseconds since the epoch.
_MICROS_MIN = -9_223_372_036_854_775
_MICROS_MAX = 9_223_372_036_854_775


@lru_cache(maxsize=1024)
def to_spark_sql(sql: str) -> str:
    """One DuckDB-dialect statement as Spark SQL."""
    try:
        statements = [s for s in sqlglot.transpile(sql, read="duckdb", write="spark") if s]
    except sqlglot.errors.SqlglotError as exc:
        raise EngineError(f"cannot translate SQL for Spark: {_first_line(exc)}", sql=sql) from exc
    if len(statements) != 1:
        raise EngineError("expected exactly one SQL statement", sql=sql)
    return statements[0]


def _apply_to_borrowed(spark: SparkSession, conf: Sequence[tuple[str, str]]) -> None:
    """--spark-conf on a session of a context that was already running (spark-submit, a
    notebook): a builder's settings would be ignored there without a word. SQL settings go to
    our own session, `spark.hadoop.*` to the context's Hadoop configuration (what URL inputs
    and outputs are opened with: credentials, endpoints); a setting the context fixed when it
    started (executor memory, jars) cannot change, and each one that differs is named."""
    for key, value in conf:
        if key.startswith("spark.hadoop."):
            hadoop = spark.sparkContext._jsc.hadoopConfiguration()
            hadoop.set(key.removeprefix("spark.hadoop."), value)
            continue
        try:
            spark.conf.set(key, value)
        except _SPARK_ERRORS:
            if spark.sparkContext.getConf().get(key, None) != value:
                log.warning(
                    "--spark-conf %s=%s not applied: the running Spark context fixed it when it "
                    "started; set it where that context is created (spark-submit --conf, the "
                    "notebook's session builder)",
                    key,
                    value,
                )


class SparkEngine(Engine):
    name = "spark"
    # Components run as SQL rounds inside Spark: the graph may not fit the driver's memory.
    components_in_memory = False
    # A window with ORDER BY and no PARTITION BY is one task on Spark: number in buckets.
    distributed_numbering = True
    orders_maps = False

    def __init__(self, settings: EngineSettings | None = None) -> None:
        settings = settings or EngineSettings()
        active = SparkSession.getActiveSession()
        try:
            if active is not None:
                # Inside spark-submit, a notebook or a test: borrow the context, but keep our
                # temporary views and settings in a session of our own.
                self._owns_context = False
                self._spark = active.newSession()
                _apply_to_borrowed(self._spark, settings.spark_conf)
            else:
                self._owns_context = True
                self._spark = _build_session(settings)
            for key, value in _SESSION_CONF.items():
                self._spark.conf.set(key, value)
        except (*_SPARK_ERRORS, OSError, RuntimeError) as exc:
            # No Java, a bad master URL or setting: pyspark says only that the JVM exited.
            raise EngineError(
                f"cannot start Spark ({_first_line(exc)}); check that Java 17+ is installed "
                "(JAVA_HOME) and the --spark-master and --spark-conf values"
            ) from exc
        self._views: set[str] = set()
        context = self._spark.sparkContext
        self._cluster = not context.master.startswith("local")
        self._checked_workers = not self._cluster
        self._checkpoints: _Checkpoints | None = None
        self._watch: _ExecutorWatch | None = None
        # Every job of this run carries the tag: the watch cancels ours, never a notebook's.
        self._tag = f"stitcher-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        context.addJobTag(self._tag)
        if self._cluster:
            try:
                _ship_package(context, settings.temp_dir if self._owns_context else None)
                self._checkpoints = _Checkpoints(self._spark, settings.temp_dir, self._owns_context)
                self._watch = _ExecutorWatch(context, self._tag, settings.spark_executor_timeout)
                self._watch.start()
            except BaseException:
                self.close()
                raise

    # -- running SQL -------------------------------------------------------------------------
    def _df(self, sql: str, params: Sequence[object] | None = None) -> DataFrame:
        return self._spark_df(to_spark_sql(sql), params)

    def _spark_df(self, spark_sql: str, params: Sequence[object] | None = None) -> DataFrame:
        try:
            return self._spark.sql(spark_sql, args=list(params) if params else None)
        except _SPARK_ERRORS as exc:
            self._check_watch()
            raise _engine_error(exc, spark_sql) from exc

    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        try:
            statement = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.SqlglotError as exc:
            raise EngineError(f"cannot parse SQL: {_first_line(exc)}", sql=sql) from exc
        if isinstance(statement, exp.Create) and statement.expression is not None:
            name = statement.this.name
            query = statement.expression.sql(dialect="spark")
            df = self._spark_df(query, params)
            if statement.kind == "VIEW":
                # A view of ours is a temporary view (a permanent one may not read temporary
                # ones, and would outlive the run in a shared metastore).
                self._register(name, df)
            else:
                self._register(name, self._run(lambda: self._materialize(df), query))
            return
        if isinstance(statement, exp.Drop):
            self.drop(statement.this.name)
            return
        df = self._df(sql, params)
        self._run(lambda: df.collect(), to_spark_sql(sql))

    def fetch_rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple]:
        df = self._df(sql, params)
        return [tuple(row) for row in self._run(df.collect, to_spark_sql(sql))]

    def fetch_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        df = self._df(sql, params)
        return _embedded_conventions(self._run(df.toArrow, to_spark_sql(sql)))

    def stream_arrow(self, sql: str, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        # Results pass through the driver, which writes the output files; the driver needs
        # memory for the largest output table (spark.driver.memory, spark.driver.maxResultSize).
        table = self.fetch_arrow(sql)
        return table.schema, iter(table.to_batches(max_chunksize=batch_rows))

    def create_table_as(self, name: str, sql: str) -> None:
        df = self._df(sql)
        self._register(name, self._run(lambda: self._materialize(df), to_spark_sql(sql)))

    def drop(self, name: str) -> None:
        if name in self._views:
            self._spark.catalog.dropTempView(name)
            self._views.discard(name)

    def map_groups(
        self,
        name: str,
        sql: str,
        key: str,
        fn: Callable[[pa.Table], pa.Table],
        schema: pa.Schema,
    ) -> None:
        # A grouped map (applyInArrow, the Arrow flavour of applyInPandas): each group is
        # shuffled to one executor and handed to `fn` there as an Arrow table, so the groups
        # run in parallel and no group passes through the driver. Arrow rather than pandas
        # keeps text, nullable integers and microsecond times exactly as they are.
        # Executors need stitcher installed (pip install identity-stitcher) to unpickle `fn`.
        df = self._df(sql)
        names = schema.names

        def apply(group: pa.Table) -> pa.Table:
            return fn(group).select(names).cast(schema)

        try:
            out = df.groupBy(key).applyInArrow(apply, schema=from_arrow_schema(schema))
        except _SPARK_ERRORS as exc:
            raise _engine_error(exc, to_spark_sql(sql)) from exc
        self._register(name, self._run(lambda: self._materialize(out), to_spark_sql(sql)))

    def register_arrow(self, name: str, table: pa.Table) -> None:
        df = self._run(lambda: self._spark.createDataFrame(table), f"<arrow table {name}>")
        for field in table.schema:
            # Arrow timestamps without a zone are wall-clock UTC, like the pipeline's TIMESTAMP.
            if pa.types.is_timestamp(field.type) and field.type.tz is None:
                df = df.withColumn(field.name, df[field.name].cast(T.TimestampNTZType()))
        self._register(name, self._run(lambda: self._materialize(df), f"<arrow table {name}>"))

    def register_files(self, name: str, files: Sequence[Path | Url], file_format: str) -> None:
        paths = [str(f) for f in files]
        # No basePath: with one, Spark discovers `key=value` folders as columns and lets the
        # folder's value replace a column the file has (tracks/user_id=u9/ made every row's
        # user u9). Given files and no basePath, it adds no partition columns; the loader
        # fills from folders (see load.py).
        reader = self._spark.read
        try:
            if file_format == "parquet":
                df = reader.option("mergeSchema", "true").parquet(*paths)
            elif file_format == "csv":
                df = self._read_csv(reader, files)
            elif file_format == "json":
                df = self._read_json_records(files)
            else:
                raise InputError(
                    f"the spark engine reads Parquet, CSV and JSON, not {file_format} "
                    f"({_describe_files(files)})"
                )
            # Read the schema now, so an unreadable file is named here, not in a later step.
            df.schema  # noqa: B018
        except _SPARK_ERRORS as exc:
            # Reading a schema runs a job: one the watch cancelled is no unreadable file.
            self._check_watch()
            raise InputError(f"cannot read {_describe_files(files)}: {_first_line(exc)}") from exc
        self._register(name, df)

    def union_view(self, name: str, views: Sequence[str]) -> None:
        # Spark SQL has no UNION BY NAME; its DataFrames do.
        frames = [self._spark.table(_backquote(v)) for v in views]
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other, allowMissingColumns=True)
        self._register(name, df)

    def _read_csv(self, reader: object, files: Sequence[Path | Url]) -> DataFrame:
        # Spark takes the first file's header for every file; files whose headers differ are
        # read separately and unioned by column name (as DuckDB's union_by_name does).
        groups: dict[tuple[str, ...], list[str]] = {}
        for f in files:
            header = _csv_header(f) if isinstance(f, Path) else self._url_csv_header(f)
            groups.setdefault(header, []).append(str(f))
        options = {
            "header": "true",
            "inferSchema": "false",  # ids that look numeric must stay text
            "sep": ",",
            "quote": '"',
            "escape": '"',
            "multiLine": "true",
            "mode": "FAILFAST",
            "encoding": "UTF-8",
        }
        frames = [reader.options(**options).csv(paths) for paths in groups.values()]
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other, allowMissingColumns=True)
        return df

    def _read_json_records(self, files: Sequence[Path | Url]) -> DataFrame:
        # One row per JSON record, whole, as text in a column `json` (as the DuckDB engine
        # reads them): Mixpanel's keys vary from event to event, so no schema is inferred and
        # the loader extracts the keys it needs with get_json_object. A file whose first
        # character is `[` holds one JSON array of records; any other file is JSON lines.
        # Hadoop decompresses .gz (and its other codecs) by suffix.
        arrays, lines = [], []
        for f in files:
            first = (
                _first_json_line(f)
                if isinstance(f, Path)
                else self._url_first_line(f, skip_blank=True)
            )
            (arrays if first.lstrip().startswith("[") else lines).append(str(f))
        frames = []
        if lines:
            text = self._spark.read.text(lines)
            frames.append(text.where("trim(value) <> ''").selectExpr("value AS json"))
        if arrays:
            # (text()'s own wholetext argument, not .option: text() would override the option.)
            whole = self._spark.read.text(arrays, wholetext=True)
            # from_json to array<string> keeps each element's JSON text (objects included).
            frames.append(whole.selectExpr("explode(from_json(value, 'array<string>')) AS json"))
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other)
        return df

    def json_string_list(self, json_sql: str) -> str:
        # Spark's from_json gives NULL for text that is not JSON, and each element's text (a
        # number as its digits); DuckDB's from_json has another signature, and sqlglot passes
        # this call through unchanged.
        return f"from_json({json_sql}, 'array<string>')"

    # -- URLs: inputs listed and opened, outputs published, through Hadoop's FileSystem API -----
    def url_tree(self, url: Url) -> Tree:
        files = HadoopFiles(self._spark)
        return UrlTree(files.status, files.listing)

    def url_files(self, url: Url) -> UrlFileSystem:
        return HadoopFiles(self._spark, writing=True)

    def _url_csv_header(self, url: Url) -> tuple[str, ...]:
        """The header of a CSV file at a URL."""
        return tuple(next(csv.reader(io.StringIO(self._url_first_line(url))), []))

    def _url_first_line(self, url: Url, skip_blank: bool = False) -> str:
        """The first line of a file at a URL (gzip and other Hadoop codecs by suffix), without
        a byte order mark; with skip_blank, the first line that is not blank."""
        fs, path = HadoopFiles(self._spark).locate(str(url))
        jvm = self._spark._jvm
        try:
            conf = self._spark._jsparkSession.sessionState().newHadoopConf()
            stream = fs.open(path)
            codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(path)
            if codec is not None:
                stream = codec.createInputStream(stream)
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            try:
                line = reader.readLine()
                while skip_blank and line is not None and not line.strip("\ufeff \t\r"):
                    line = reader.readLine()
            finally:
                reader.close()
        except _SPARK_ERRORS as exc:
            raise InputError(f"cannot read {url}: {_first_line(exc)}") from exc
        return (line or "").lstrip("\ufeff")

    def columns(self, relation: str) -> list[Column]:
        try:
            schema = self._spark.table(_backquote(relation)).schema
        except _SPARK_ERRORS as exc:
            raise _engine_error(exc, f"<schema of {relation}>") from exc
        return [
            Column(name=f.name, kind=_kind(f.dataType), engine_type=f.dataType.simpleString())
            for f in schema.fields
        ]

    def fail(self, message: str) -> str:
        return f"CAST(raise_error({quote_literal(INPUT_FAILURE + message)}) AS BOOLEAN)"

    def timestamp_expression(self, column_sql: str, kind: str) -> str:
        # Written in DuckDB's dialect like every other fragment; the functions DuckDB lacks
        # (bround, timestamp_micros, unix_micros) pass through sqlglot to Spark unchanged.
        t = self._timestamp(column_sql, kind)
        return (
            f"CASE WHEN unix_micros(CAST({t} AS TIMESTAMPTZ)) "
            f"BETWEEN {_MICROS_MIN} AND {_MICROS_MAX} THEN {t} END"
        )

    def _timestamp(self, c: str, kind: str) -> str:
        if kind in (TIMESTAMP, TIMESTAMP_TZ, DATE):
            return f"CAST({c} AS TIMESTAMP)"
        if kind in (INTEGER, FLOAT, DECIMAL):
            return _epoch_expression(f"CAST({c} AS DOUBLE)")
        if kind == STRING:
            number = f"TRY_CAST(trim({c}) AS DOUBLE)"
            # \z, not $: Java's $ also matches before a final newline. DuckDB refuses trailing
            # whitespace in a time where Spark's cast would trim it, so refuse it here too.
            return (
                f"CASE WHEN regexp_matches(trim({c}), '^-?[0-9]+(\\.[0-9]+)?\\z') "
                f"THEN {_epoch_expression(number)} "
                f"WHEN regexp_matches({c}, '\\s\\z') THEN NULL "
                f"ELSE CAST(TRY_CAST({c} AS TIMESTAMPTZ) AS TIMESTAMP) END"
            )
        return f"CAST(TRY_CAST(CAST({c} AS VARCHAR) AS TIMESTAMPTZ) AS TIMESTAMP)"

    def version(self) -> str:
        return f"spark {self._spark.version} (pyspark {pyspark.__version__})"

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        for name in list(self._views):
            self.drop(name)
        if self._checkpoints is not None:
            # Whatever the outcome: a failed run leaves no checkpoint files either.
            self._checkpoints.remove()
            self._checkpoints = None
        self._spark.sparkContext.removeJobTag(self._tag)
        if self._owns_context:
            self._spark.stop()

    # -- helpers -----------------------------------------------------------------------------
    def _register(self, name: str, df: DataFrame) -> None:
        df.createOrReplaceTempView(name)
        self._views.add(name)

    def _materialize(self, df: DataFrame) -> DataFrame:
        # A reliable checkpoint when the user configured a checkpoint directory (survives lost
        # executors); otherwise a local one, kept on the executors. Either computes the table
        # once and cuts its lineage, so later steps and later loop rounds start from it.
        if self._spark.sparkContext.getCheckpointDir():
            return df.checkpoint(eager=True)
        return df.localCheckpoint(eager=True)

    def _run(self, action: object, sql: str) -> object:
        self._check_watch()
        try:
            return action()  # type: ignore[operator]
        except _SPARK_ERRORS as exc:
            self._check_watch()
            if self._checkpoints is not None:
                self._checkpoints.check(exc)
            raise _engine_error(exc, sql) from exc

    def _check_watch(self) -> None:
        if self._watch is not None and self._watch.failure is not None:
            raise EngineError(self._watch.failure)

    def check_python_workers(self) -> None:
        if self._checked_workers:
            return
        # One task on an executor, a function shipped by value (not by reference to a
        # stitcher module, which the executor may not be able to import): which Python runs
        # there, and can it import what map_groups will unpickle?
        namespace: dict[str, object] = {"__name__": "stitcher_executor_probe"}
        exec(_PROBE_SOURCE, namespace)  # our own constant source, shipped by value
        probe = namespace["probe"]
        rdd = self._spark.sparkContext.parallelize([0], 1).mapPartitions(probe)  # type: ignore[arg-type]
        self._check_watch()
        try:
            executable, version, problem = rdd.collect()[0]
        except _SPARK_ERRORS as exc:
            self._check_watch()
            python = getattr(self._spark.sparkContext, "pythonExec", "python3")
            raise EngineError(
                f"Spark's executors cannot run Python {python}: {_python_failure(exc)}; "
                f"{_PYTHON_FIX}"
            ) from exc
        if problem:
            raise EngineError(
                f"Spark's executors cannot run this policy's replay: {problem} in their Python "
                f"{executable} ({version}); {_PYTHON_FIX}"
            )
        log.info("Spark's executors run Python %s (%s)", executable, version)
        self._checked_workers = True


class HadoopFiles:
    """Files named by URLs, through the session's Hadoop FileSystem (with its spark.hadoop.*
    settings, e.g. s3a credentials given with --spark-conf, as Spark's own reads use them): a
    UrlFileSystem. On the driver; no Spark job runs.

    `writing`: the files of an --output. Errors then say "cannot write", and a local file
    system is used raw: Hadoop's checksummed local file system would leave a hidden `.crc`
    file beside every output file, which a local --output does not have.
    """

    def __init__(self, spark: SparkSession, writing: bool = False) -> None:
        self._jvm = spark._jvm
        self._writing = writing
        try:
            self._conf = spark._jsparkSession.sessionState().newHadoopConf()
        except _SPARK_ERRORS as exc:
            raise EngineError(f"cannot read Spark's Hadoop settings: {_first_line(exc)}") from exc

    def locate(self, url: str) -> tuple[object, object]:
        """(FileSystem, Path) for a URL."""
        try:
            path = self._jvm.org.apache.hadoop.fs.Path(url)
            fs = path.getFileSystem(self._conf)
            checksummed = self._jvm.org.apache.hadoop.fs.ChecksumFileSystem._java_lang_class
            if self._writing and checksummed.isInstance(fs):
                fs = fs.getRawFileSystem()
            return fs, path
        except _SPARK_ERRORS as exc:
            raise self._error(exc, url) from exc

    def status(self, url: str) -> ListedEntry | None:
        fs, path = self.locate(url)
        try:
            status = fs.getFileStatus(path)
        except _SPARK_ERRORS as exc:
            if _java_class(exc) == "java.io.FileNotFoundException":
                return None
            raise self._error(exc, url) from exc
        return ListedEntry(path.getName(), bool(status.isDirectory()), int(status.getLen()))

    def listing(self, url: str) -> list[ListedEntry]:
        fs, path = self.locate(url)
        try:
            return [
                ListedEntry(s.getPath().getName(), bool(s.isDirectory()), int(s.getLen()))
                for s in fs.listStatus(path)
            ]
        except _SPARK_ERRORS as exc:
            raise self._error(exc, url) from exc

    def make_dirs(self, url: str) -> None:
        fs, path = self.locate(url)
        self._check(lambda: fs.mkdirs(path), url, "cannot create the folder")

    def upload(self, local: Path, url: str) -> None:
        fs, path = self.locate(url)
        self._check(
            lambda: fs.copyFromLocalFile(False, True, self._local(local), path) or True, url
        )

    def download(self, url: str, local: Path) -> None:
        fs, path = self.locate(url)
        # useRawLocalFileSystem: no `.crc` file beside the copy.
        self._check(
            lambda: fs.copyToLocalFile(False, path, self._local(local), True) or True,
            url,
            "cannot copy it down",
        )

    def rename(self, source: str, target: str) -> None:
        # Hadoop moves `source` *into* `target` when that is an existing folder: refuse instead.
        if self.status(target) is not None:
            raise OutputError(f"cannot rename {source} to {target}: {target} already exists")
        fs, path = self.locate(source)
        _, goal = self.locate(target)
        self._check(lambda: fs.rename(path, goal), source, f"cannot rename it to {target}")

    def delete(self, url: str) -> None:
        fs, path = self.locate(url)
        self._check(lambda: fs.delete(path, True) or True, url)

    def _local(self, local: Path) -> object:
        # Through java.io.File: a URI built from a local path quotes spaces and `%` correctly.
        return self._jvm.org.apache.hadoop.fs.Path(
            self._jvm.java.io.File(str(local.resolve())).toURI()
        )

    def _check(self, action: Callable[[], object], url: str, failed: str = "") -> None:
        """Run a Hadoop call that reports failure by returning false or by throwing."""
        try:
            ok = action()
        except _SPARK_ERRORS as exc:
            raise self._error(exc, url) from exc
        if not ok:
            raise OutputError(f"{failed or 'cannot write to'} {url}: the file system refused")

    def _error(self, exc: BaseException, url: str) -> StitcherError:
        if self._writing:
            return _url_error(exc, url, "write to", OutputError, "--output")
        return _url_error(exc, url)


# Run in one task on an executor by check_python_workers. Shipped by value: it must not name a
# stitcher module, which is what it checks the executor can import.
_PROBE_SOURCE = """
def probe(rows):
    import sys
    try:
        import pyarrow
        import stitcher.graph.mixpanel_replay
        import stitcher.graph.replay
        problem = ""
    except Exception as exc:
        problem = "%s: %s" % (type(exc).__name__, exc)
    yield (sys.executable, "%d.%d.%d" % tuple(sys.version_info[:3]), problem)
"""

_PYTHON_FIX = (
    f"give them a Python {sys.version_info[0]}.{sys.version_info[1]} with pyarrow, pandas and "
    "numpy (what pyspark needs; stitcher's own code ships with the job): install them there, "
    "or name such a Python with --spark-conf spark.pyspark.python=/path/on/the/workers (or a "
    "packed environment with spark.archives)"
)


def _python_failure(exc: BaseException) -> str:
    """The line of a failed Python task that says why: the Python exception's own line in the
    traceback Spark carries (ModuleNotFoundError: ..., pyspark's version mismatch), else the
    deepest Java cause (java.io.IOException: Cannot run program ...), else the first line."""
    lines = [line.strip() for line in str(exc).splitlines()]
    python = re.compile(r"(pyspark\.[\w.]+\.)?[A-Z]\w*(Error|Exception)(\[\w+\])?: ")
    for line in reversed(lines):
        if python.match(line):
            return line
    for line in reversed(lines):
        if line.startswith("Caused by: "):
            return line.removeprefix("Caused by: ")
    return _java_message(exc)


def _ship_package(context: object, folder: Path | None) -> None:
    """Add stitcher's own Python code to the context as a zip (SparkContext.addPyFile), so the
    executors import it from there: on a cluster they need only what pyspark itself needs.

    The zip is named by its content. In a context of our own it lives in the run's spill
    folder and goes with it; in a borrowed one (spark-submit, a notebook) it lives in the
    system's temporary folder, where the next run finds the same path: Spark refuses a second
    file of the same name from another path for the context's whole life."""
    root = Path(__file__).resolve().parents[1]
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"stitcher-pyfiles-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"stitcher-{digest.hexdigest()[:16]}.zip"
    if not target.exists():
        partial = folder / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(root.parent).as_posix())
        partial.replace(target)
    try:
        context.addPyFile(str(target))  # type: ignore[attr-defined]
    except _SPARK_ERRORS as exc:
        raise EngineError(f"cannot ship stitcher's code to Spark: {_first_line(exc)}") from exc


class _Checkpoints:
    """Reliable checkpoints for the run's tables on a cluster, in a folder of the run's own
    that is removed when the run ends.

    Local checkpoints live in the executors' block managers: a lost executor loses them and
    the run fails. A reliable checkpoint is a file in a folder every executor reads, so Spark
    recomputes nothing and a replaced executor reads the table back. The run's folder,
    `stitcher-HOST-PID-RANDOM`, is made in spark.checkpoint.dir where the user named one;
    else, where Hadoop's default file system is a cluster's (HDFS on YARN), in
    `stitcher-checkpoints` in the user's home there; else in `checkpoints` in the run's spill
    folder (inside the temporary output folder, or --temp-dir), which every node must see at
    the same path. Folders that dead runs of this host left there (a driver killed with -9)
    are removed first; those of other hosts are left: their runs may be alive."""

    def __init__(self, spark: SparkSession, spill: Path | None, owned: bool) -> None:
        self._spark = spark
        self._context = spark.sparkContext
        self._files = HadoopFiles(spark, writing=True)
        self._previous = self._context.getCheckpointDir()
        self._owned = owned
        base = self._base(spill)
        if owned and self._previous:
            # Our own context, started with spark.checkpoint.dir: Spark made an empty folder
            # there, which nothing else uses.
            self._files.delete(self._previous)
        self._remove_dead_runs(base)
        self.folder = f"{base.rstrip('/')}/stitcher-{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Spark makes a folder named by a UUID inside the one given, and checkpoints there.
        self._context.setCheckpointDir(self.folder)
        log.debug("Spark checkpoints in %s", self._context.getCheckpointDir())

    def _base(self, spill: Path | None) -> str:
        if self._previous:
            return self._previous.rstrip("/").rsplit("/", 1)[0]
        hadoop = self._context._jsc.hadoopConfiguration()  # type: ignore[union-attr]
        default_fs = str(hadoop.get("fs.defaultFS") or "file:///")
        if not default_fs.startswith("file:"):
            return "stitcher-checkpoints"
        folder = (spill or Path(tempfile.gettempdir())) / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        return folder.resolve().as_uri()

    def _remove_dead_runs(self, base: str) -> None:
        if self._files.status(base) is None:
            return
        for entry in self._files.listing(base):
            found = re.fullmatch(r"stitcher-(.+)-(\d+)-[0-9a-f]{8}", entry.name)
            if found and found.group(1) == HOST and not process_alive(int(found.group(2))):
                log.info("removing the checkpoints of a run that died: %s", entry.name)
                self._files.delete(f"{base.rstrip('/')}/{entry.name}")

    def check(self, exc: BaseException) -> None:
        """A checkpoint that the driver cannot read back: the folder is not shared."""
        text = str(exc)
        if "Checkpoint RDD has a different number of partitions" in text or (
            "FileNotFoundException" in text and "/rdd-" in text
        ):
            raise EngineError(
                f"Spark's checkpoint folder {self.folder} is not the same folder on every node; "
                "name one they all see: --spark-conf spark.checkpoint.dir=hdfs:///tmp/stitcher "
                "(or a shared mount)"
            ) from exc

    def remove(self) -> None:
        try:
            self._files.delete(self.folder)
        except StitcherError as exc:
            log.warning("could not remove Spark's checkpoint folder %s: %s", self.folder, exc)
        if not self._owned:
            # The borrowed context goes on with the folder it had (Spark has no call to put a
            # folder back without making a new one inside it).
            previous = self._previous
            jvm = self._context._jvm  # type: ignore[attr-defined]
            option = jvm.scala.Option.apply(previous)
            try:
                getattr(self._context._jsc.sc(), "checkpointDir_$eq")(option)  # type: ignore[union-attr]
            except _SPARK_ERRORS as exc:
                log.debug("could not restore the context's checkpoint folder: %s", exc)


class _ExecutorWatch(threading.Thread):
    """Watches a cluster context's executors while the run's jobs wait on them.

    Spark's own warnings (an executor lost, a job that gets no resources) are silenced with
    its log level; this says them at WARNING on stitcher's log. A job that has had no
    executor for `timeout` seconds (the only worker died, or none can give what is asked)
    would wait for ever: the watch cancels the run's jobs and sets `failure`, which the
    engine raises as one line."""

    def __init__(self, context: object, tag: str, timeout: float, interval: float = 1.0) -> None:
        super().__init__(name="stitcher-executor-watch", daemon=True)
        self._context = context
        self._tag = tag
        self._timeout = timeout
        self._interval = interval
        self._stopped = threading.Event()
        self._master = str(context.master)  # type: ignore[attr-defined]
        self.failure: str | None = None

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=10)

    def run(self) -> None:
        known: set[str] = set()
        had_executors = False
        waiting_since: float | None = None
        while not self._stopped.wait(self._interval):
            try:
                executors = self._executors()
                busy = bool(self._context.statusTracker().getActiveJobsIds())  # type: ignore[attr-defined]
            except Exception as exc:  # the context stopping under us
                log.debug("executor watch: %s", exc)
                continue
            for lost in sorted(known - executors):
                log.warning(
                    "Spark lost executor %s (%d left)%s",
                    lost,
                    len(executors),
                    "" if executors else f"; waiting up to {self._timeout:g} s for another",
                )
            known = executors
            had_executors = had_executors or bool(executors)
            if executors or not busy:
                waiting_since = None
                continue
            now = time.monotonic()
            if waiting_since is None:
                waiting_since = now
                if not had_executors:
                    log.warning(
                        "Spark gives this run no executors yet (%s); waiting up to %g s "
                        "(--spark-executor-timeout)",
                        self._master,
                        self._timeout,
                    )
            if now - waiting_since >= self._timeout and self.failure is None:
                self.failure = (
                    f"no Spark executors for {self._timeout:g} s: {self._master} gave this run "
                    "none (its workers are down or lost, or none has the cores and memory "
                    "asked: spark.executor.cores, spark.executor.memory); start or fix the "
                    "workers, or raise --spark-executor-timeout"
                )
            if self.failure is not None:
                self._context.cancelJobsWithTag(self._tag)  # type: ignore[attr-defined]

    def _executors(self) -> set[str]:
        ids = self._context._jsc.sc().getExecutorIds()  # type: ignore[attr-defined]
        return {str(ids.apply(i)) for i in range(ids.size())}


def _build_session(settings: EngineSettings) -> SparkSession:
    builder = SparkSession.builder.appName("stitcher")
    master = settings.spark_master
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Not under spark-submit (which sets the master itself): run in this process.
        master = f"local[{settings.threads}]" if settings.threads else "local[*]"
    if master is not None:
        builder = builder.master(master)
    if settings.memory_limit and master and master.startswith("local"):
        # In local mode the driver does all the work: the limit is the driver's heap.
        builder = builder.config("spark.driver.memory", _jvm_size(settings.memory_limit))
    local = master is not None and master.startswith("local")
    if settings.temp_dir:
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
        if local:
            # On a cluster the executors spill where their worker says (SPARK_LOCAL_DIRS), and
            # Spark warns that this setting is overridden.
            builder = builder.config("spark.local.dir", str(settings.temp_dir))
        builder = builder.config("spark.sql.warehouse.dir", str(settings.temp_dir / "warehouse"))
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if local:
        _workers_use_this_python()
        # 200 shuffle partitions (the cluster default) cost more than the work on one machine.
        cores = master.removeprefix("local[").rstrip("]").split(",")[0]
        cores = os.cpu_count() or 2 if cores in ("*", "local") else int(cores)
        builder = builder.config("spark.sql.shuffle.partitions", str(max(4, 2 * cores)))
    for key, value in settings.spark_conf:
        builder = builder.config(key, value)
    # The JVM starts here and writes its start-up warnings to our stderr until the log level
    # is set: a SIGTERM or Ctrl-C taken meanwhile would print the run's last line before
    # them. Held until the session is up (seconds), the stop then comes after them.
    with interrupts.deferred(), _workers_python(dict(settings.spark_conf)):
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("FATAL" if not log.isEnabledFor(logging.DEBUG) else "WARN")
    return spark


@contextmanager
def _workers_python(conf: dict[str, str]) -> Iterator[None]:
    """spark.pyspark.python (Spark's setting for the executors' Python) in effect for a context
    started here. pyspark reads only the environment variable PYSPARK_PYTHON when the context
    starts (spark-submit turns the setting into it), so `--spark-conf
    spark.pyspark.python=...` was silently ignored. Set for the start only: a later run in
    the same process (Airflow's worker) starts from the environment it had."""
    python = conf.get("spark.pyspark.python")
    if python is None:
        yield
        return
    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = python
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = previous


def _workers_use_this_python() -> None:
    """Run a local session's Python workers (the replays, the solvers in mapInArrow) on this
    interpreter, which has stitcher and pyarrow installed. pyspark otherwise starts whatever
    `python3` is first on PATH: `.venv/bin/stitcher --engine spark` without the venv activated
    failed in the workers with "No module named 'pyarrow'". An operator's PYSPARK_PYTHON is
    kept. Local mode only: on a cluster, this path may not exist on the executors."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _jvm_size(size: str) -> str:
    """6GB -> 6144m: the JVM's spelling of a size given as --memory-limit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B\s*", size, re.I)
    if not match:
        return size
    power = " KMGT".index(match.group(2).upper() or " ")
    return f"{max(1, int(float(match.group(1)) * 1024**power / 1024**2))}m"


def _epoch_expression(number_sql: str) -> str:
    seconds = (
        f"CASE WHEN abs({number_sql}) >= {_MILLISECONDS_FROM} "
        f"THEN {number_sql} / 1000.0 ELSE {number_sql} END"
    )
    # DuckDB's to_timestamp rounds seconds * 1e6 half to even; bround does the same.
    return (
        f"CASE WHEN abs({number_sql}) < {_EPOCH_MAX} "
        f"THEN CAST(timestamp_micros(CAST(bround(({seconds}) * 1000000) AS BIGINT)) "
        "AS TIMESTAMP) END"
    )


def _kind(data_type: T.DataType) -> str:
    if isinstance(data_type, T.StringType | T.VarcharType | T.CharType):
        return STRING
    if isinstance(data_type, T.ByteType | T.ShortType | T.IntegerType | T.LongType):
        return INTEGER
    if isinstance(data_type, T.FloatType | T.DoubleType):
        return FLOAT
    if isinstance(data_type, T.DecimalType):
        return DECIMAL
    if isinstance(data_type, T.TimestampNTZType):
        return TIMESTAMP
    if isinstance(data_type, T.TimestampType):
        return TIMESTAMP_TZ
    if isinstance(data_type, T.DateType):
        return DATE
    return OTHER


def _embedded_conventions(table: pa.Table) -> pa.Table:
    """Spark's Arrow in the embedded engine's conventions (every field nullable, list items
    named `l`), so the output files are byte-identical whichever engine produced them."""
    schema = pa.schema([_nullable(f) for f in table.schema])
    return table if schema == table.schema else table.cast(schema)


def _nullable(field: pa.Field) -> pa.Field:
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        item = _nullable(t.value_field).with_name("l")
        t = pa.large_list(item) if pa.types.is_large_list(t) else pa.list_(item)
    elif pa.types.is_struct(t):
        t = pa.struct([_nullable(f) for f in t])
    return pa.field(field.name, t, nullable=True)


def _csv_header(path: Path) -> tuple[str, ...]:
    try:
        return csv_header(path)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def _first_json_line(path: Path) -> str:
    """The first line of a local file that is not blank (gzip by suffix), decoded."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            for raw in f:
                line = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
                if line.strip():
                    return line
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    return ""


def _backquote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _describe_files(files: Sequence[Path | Url]) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"{files[0]} (and {len(files) - 1} more files)"


def _java_class(exc: BaseException) -> str | None:
    if isinstance(exc, Py4JJavaError):
        try:
            return str(exc.java_exception.getClass().getName())
        except _SPARK_ERRORS:
            return None
    return None


def _url_error(
    exc: BaseException,
    url: str,
    verb: str = "list",
    error: type[StitcherError] = InputError,
    option: str = "--input",
) -> StitcherError:
    text = str(exc)
    if "No FileSystem for scheme" in text or "ClassNotFoundException" in text:
        scheme = url.split("://", 1)[0]
        return error(
            f"cannot {verb} {url}: Spark has no file system for {scheme}:// "
            f"({_java_message(exc)}); put its connector (e.g. hadoop-aws for s3a://, "
            "hadoop-azure for abfss://, gcs-connector for gs://) on Spark's classpath with "
            "--spark-conf spark.jars=..."
        )
    if _java_class(exc) == "java.nio.file.AccessDeniedException" or "Permission denied" in text:
        return error(
            f"cannot {verb} {url}: permission denied ({_java_message(exc)}); check the "
            f"credentials in --spark-conf, or choose another {option}"
        )
    return error(f"cannot {verb} {url}: {_java_message(exc)}")


def _java_message(exc: BaseException) -> str:
    """The Java exception's own one-line message, without py4j's framing."""
    if isinstance(exc, Py4JJavaError):
        try:
            return str(exc.java_exception.toString()).splitlines()[0]
        except _SPARK_ERRORS:
            pass
    return _first_line(exc)


def _engine_error(exc: BaseException, sql: str) -> StitcherError:
    failed = input_error(str(exc))
    if failed is not None:
        return failed
    if "No module named" in str(exc):
        # A Python task on an executor: the reason is deep in Spark's message.
        return EngineError(
            f"Spark's executors cannot run this step: {_python_failure(exc)}; {_PYTHON_FIX}",
            sql=sql,
        )
    message = _first_line(exc)
    if "OutOfMemoryError" in str(exc) or "Java heap space" in str(exc):
        message += " (raise spark.driver.memory / spark.executor.memory with --spark-conf)"
    return EngineError(f"Spark failed: {message}", sql=sql)


def start_local_session(cores: int = 2, conf: dict[str, str] | None = None) -> SparkSession:
    """A local Spark session for tests and notebooks; engines opened while it is active share
    it (each in a session of its own). The caller stops it."""
    _workers_use_this_python()
    builder = SparkSession.builder.master(f"local[{cores}]").appName("stitcher")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    builder = builder.config("spark.ui.enabled", "false")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")
    return spark
