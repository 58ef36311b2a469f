"""The output tables: their registry, the order that makes each file deterministic, and the
writer that writes each one as soon as no later step reads it.

A new output table is one entry in OUTPUT_TABLES, the SQL step that builds it (sql/9x_*.sql,
called from the pipeline) and its tests; the writer, the files a run may replace, `stitcher
sql`'s outputs and the run's listing all read the registry.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from stitcher.config import OUTPUT_FORMATS, RunOptions
from stitcher.engines import Engine
from stitcher.engines.base import drop_tables, quote_identifier, quote_literal
from stitcher.output.files import REPORT_FILE, write_batches

log = logging.getLogger("stitcher")

RUN_RECORD = "run.json"


@dataclass(frozen=True)
class OutputTable:
    """One output table: its name (the relation the pipeline builds, and the file's stem), the
    ORDER BY that makes its file deterministic (identifier type columns in it are sorted by a
    rank instead, see order_by), and the columns later steps join on that are not written."""

    name: str
    order_by: str
    internal_columns: frozenset[str] = frozenset()


# In the order the files are written and listed. Only id_map carries internal columns (integer
# join keys instead of id strings): users' columns are its own and the traits, whose names (a
# trait may be called `component`) must all reach the file.
OUTPUT_TABLES: dict[str, OutputTable] = {
    table.name: table
    for table in (
        OutputTable("id_map", "identifier_type, identifier", frozenset({"node_id", "component"})),
        OutputTable("users", "person_id"),
        OutputTable("edges", "from_type, from_id, to_type, to_id, rule"),
        OutputTable("rejected_edges", "from_type, from_id, to_type, to_id, rule"),
        OutputTable("quarantine", "identifier_type, identifier"),
    )
}
# Every name a run writes into --output, in either format: a folder holding anything else is
# not replaced without --force (files.check_replaceable).
OUTPUT_NAMES = frozenset(
    {RUN_RECORD, REPORT_FILE}
    | {f"{name}.{file_format}" for name in OUTPUT_TABLES for file_format in OUTPUT_FORMATS}
)
_TYPE_COLUMNS = frozenset({"identifier_type", "from_type", "to_type"})
USERS_COLUMNS = {
    "person_id",
    "user_id",
    "user_ids",
    "anonymous_ids",
    "identifier_count",
    "first_seen_at",
    "last_seen_at",
    "event_count",
}

# Output files written at once (engines with concurrent_streams); two keeps both cores busy
# without holding more than two sorted results in flight.
_WRITERS = 2


@dataclass(frozen=True)
class OutputOrder:
    """How the output tables get their file order.

    `in_tables`: each output table is created sorted and written by a plain scan, for engines
    that read tables back in insertion order. At 10M events that moved ~1.2 s of sorting out of
    the write step, where two sorts ran beside two Parquet writers. Not under --memory-limit:
    there the sorts stay in the write, where they stream and spill one file at a time (a sorted
    CREATE TABLE ran out of memory at 40 MB where the write's sort spilled).

    `users` is the exception, sorted as it is written: its sort carries every person's id
    lists, and done in the CREATE TABLE it made that step the run's peak (~0.15 GB more at
    10M events), where in the write it runs beside the id_map writer.
    """

    type_names: tuple[str, ...]
    in_tables: bool = False

    def sorted_in_table(self, relation: str) -> bool:
        """Whether output table `relation` is created sorted (else its write sorts it)."""
        return self.in_tables and relation != "users"

    @classmethod
    def for_run(cls, engine: Engine, options: RunOptions) -> OutputOrder:
        return cls(options.type_names, engine.ordered_tables and not options.memory_limit)

    def of(self, relation: str) -> str:
        """The ORDER BY list of output table `relation`."""
        return order_by(OUTPUT_TABLES[relation].order_by, self.type_names)


def create_output_table(engine: Engine, relation: str, sql: str, order: OutputOrder) -> None:
    """Create output table `relation` from `sql`, sorted already where `order` says so."""
    if order.sorted_in_table(relation):
        sql = f"SELECT * FROM (\n{sql}\n) AS unsorted ORDER BY {order.of(relation)}"
    engine.create_table_as(relation, sql)


def order_by(order: str, type_names: tuple[str, ...]) -> str:
    """`order` with each identifier type column sorted by its rank among the type names.

    The same order as the type strings, for a fraction of the cost: a type such as
    'anonymous_id' fills the engine's fixed-size string key prefix, so every comparison went on
    to the full id strings (sorting id_map at 10M events took ~1.5 CPU-s, ~1.1 with ranks).
    The type columns come last as well, so an unexpected type still sorts deterministically.
    """
    columns = [c.strip() for c in order.split(",")]
    typed = [c for c in columns if c in _TYPE_COLUMNS]
    if not typed or not type_names:
        return order
    ranks = " ".join(
        f"WHEN {quote_literal(name)} THEN {rank}"
        for rank, name in enumerate(sorted(set(type_names)))
    )
    keys = [
        f"CASE {quote_identifier(c)} {ranks} ELSE {len(type_names)} END" if c in typed else c
        for c in columns
    ]
    return ", ".join(keys + typed)


class OutputWriter:
    """Writes the output tables into `folder`, each once no later step reads it, and frees each
    table as soon as its file is written.

    `order` says whether the tables were created sorted already, or each query sorts.

    With `side_by_side`, where the engine can stream several results at once, files are
    written on up to _WRITERS threads while the pipeline goes on: one table's sort runs in the
    engine while another's rows are compressed (pyarrow's writer uses one core per file), which
    took the write step at 10M events from 3.8 s to ~2.5 s. The edges are written while the
    users are built, and freed before that step, the run's peak. Otherwise (a --memory-limit
    run, an engine without concurrent streams) each file is written at once, one at a time.
    """

    def __init__(
        self,
        engine: Engine,
        folder: Path,
        file_format: str,
        order: OutputOrder,
        side_by_side: bool = True,
    ) -> None:
        self._engine = engine
        self._folder = folder
        self._format = file_format
        self._order = order
        # A name of this writer's own: close() finds its threads by it (see there).
        self._thread_prefix = f"stitcher-write-{id(self):x}"
        self._pool = (
            ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix=self._thread_prefix)
            if side_by_side and engine.concurrent_streams
            else None
        )
        self._writing: dict[str, Future[str]] = {}
        self._files: dict[str, str] = {}

    def ready(self, *relations: str) -> None:
        """No later step reads these output tables: write them (in the background where the
        writer can) and free them."""
        for relation in relations:
            # Column lists are read here, on the caller's thread: the engine's connection
            # serves one thread; the writing threads use streams of their own.
            columns = public_columns(self._engine, relation)
            if self._pool is None:
                self._files[relation] = self._write(relation, columns)
                drop_tables(self._engine, relation)
            else:
                self._writing[relation] = self._pool.submit(self._write, relation, columns)

    def make_room(self) -> None:
        """Wait for the files being written and free their tables (before a step that needs
        the memory)."""
        for relation, future in list(self._writing.items()):
            self._files[relation] = future.result()
            del self._writing[relation]
            drop_tables(self._engine, relation)
        # pyarrow's allocator keeps the written batches' pages for reuse otherwise (~50 MB).
        pa.default_memory_pool().release_unused()

    def finish(self) -> list[str]:
        """Write every output table not written yet; returns all file names in output order."""
        pending = [r for r in OUTPUT_TABLES if r not in self._files]
        self.ready(*(r for r in pending if r not in self._writing))
        # Freed in output order as each is done (the two largest come first).
        self.make_room()
        return [self._files[relation] for relation in OUTPUT_TABLES]

    def close(self) -> None:
        """Stop: pending files are not started, running ones finish before the engine closes."""
        if self._pool is None:
            return
        self._pool.shutdown(wait=True, cancel_futures=True)
        # A Ctrl-C that lands inside submit(), while the pool starts a thread, leaves that thread
        # running a write the pool never recorded (it adds a thread to its set after start()
        # returns), so shutdown() does not wait for it, and closing the engine under its query
        # failed with "connection is busy" instead of the KeyboardInterrupt.
        for thread in threading.enumerate():
            if thread.name.startswith(self._thread_prefix + "_"):
                thread.join()

    def _write(self, relation: str, columns: str) -> str:
        path = self._folder / f"{relation}.{self._format}"
        # Tables created sorted (create_output_table) are read back as they are.
        order_by = (
            "" if self._order.sorted_in_table(relation) else f" ORDER BY {self._order.of(relation)}"
        )
        schema, batches = self._engine.stream_arrow(
            f"SELECT {columns} FROM {quote_identifier(relation)}{order_by}", 100_000
        )
        rows = write_batches(batches, schema, path, self._format)
        log.info("wrote %s (%d rows)", path.name, rows)
        return path.name


def public_columns(engine: Engine, relation: str) -> str:
    """The select list of an output table: its columns minus the internal join keys."""
    internal = OUTPUT_TABLES[relation].internal_columns
    return ", ".join(
        quote_identifier(c.name) for c in engine.columns(relation) if c.name not in internal
    )
