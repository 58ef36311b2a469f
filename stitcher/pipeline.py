"""The order of the steps, and nothing else: each step is a SQL file or a call into a module.

load → pairs (the one scan of the events) → identifiers (+ junk) → candidate edges → policy →
nodes → components → persons → id_map, users, edges, rejected_edges, quarantine → run.json,
all written into a temporary folder that replaces the output folder only when complete.
"""

from __future__ import annotations

import logging
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from stitcher import __version__
from stitcher.components import components_table, solve_in_sql
from stitcher.config import RunOptions
from stitcher.engines import Engine, EngineSettings, open_engine
from stitcher.engines.base import quote_identifier, quote_literal
from stitcher.errors import EngineError
from stitcher.graph import junk_pattern_match, junk_tables, sql_fragments
from stitcher.load import LoadedInput, find_tables, register_inputs
from stitcher.location import Url
from stitcher.mixpanel import add_distinct_ids
from stitcher.outputs import (
    check_output_location,
    check_temp_dir,
    spill_folder,
    write_batches,
    write_json,
)
from stitcher.policies import classify_edges
from stitcher.publish import OutputStage, staged_output
from stitcher.sql import render
from stitcher.thresholds import run_metrics

log = logging.getLogger("stitcher")

# Columns later steps join on (integers instead of id strings) that are not part of any output.
INTERNAL_COLUMNS = frozenset({"node_id", "component"})
# name in the output folder -> (relation, ORDER BY that makes the file deterministic); type
# columns in it are sorted by a rank instead (see _order_by)
OUTPUT_TABLES: dict[str, tuple[str, str]] = {
    "id_map": ("id_map", "identifier_type, identifier"),
    "users": ("users", "person_id"),
    "edges": ("edges", "from_type, from_id, to_type, to_id, rule"),
    "rejected_edges": ("rejected_edges", "from_type, from_id, to_type, to_id, rule"),
    "quarantine": ("quarantine", "identifier_type, identifier"),
}
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
# What the run record needs of `pairs`, `identifiers_checked` and `classified_edges`, kept when
# those are dropped.
_PAIR_TOTALS = (
    "SELECT source_table, CAST(sum(event_count) AS BIGINT) AS event_count, "
    "CAST(sum(events_without_ts) AS BIGINT) AS events_without_ts FROM pairs GROUP BY source_table"
)
_IDENTIFIER_TOTALS = (
    "SELECT identifier_type, quarantine_reason IS NOT NULL AS quarantined, "
    "count(*) AS identifiers FROM identifiers_checked GROUP BY identifier_type, "
    "quarantine_reason IS NOT NULL"
)
_EDGE_TOTALS = "SELECT kept, reason, count(*) AS edges FROM classified_edges GROUP BY kept, reason"
STEPS = (
    "load",
    "scan",
    "identifiers",
    "edges",
    "components",
    "persons",
    "write",
    "compare",
    "report",
)
ProgressCallback = Callable[[str], None]
# Output files written at once (engines with concurrent_streams); two keeps both cores busy
# without holding more than two sorted results in flight.
_WRITERS = 2


@dataclass
class RunResult:
    output_dir: Path | Url
    record: dict
    files: list[str] = field(default_factory=list)


class _Timer:
    def __init__(self, progress: ProgressCallback | None) -> None:
        self.seconds: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._progress:
            self._progress(name)
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed, 3)
        log.info("step %s: %.2f s", name, elapsed)


def run(options: RunOptions, progress: ProgressCallback | None = None) -> RunResult:
    """Stitch the events under options.input_dir into options.output_dir."""
    check_output_location(options.output_dir, options.input_dir)
    check_temp_dir(options.temp_dir)
    sources = find_tables(options.input_dir, options.input_format)
    timer = _Timer(progress)
    started = time.perf_counter()
    with (
        staged_output(options.output_dir, options.temp_dir) as output,
        spill_folder(options.temp_dir, output.folder) as spill,
    ):
        tmp = output.folder
        settings = EngineSettings(
            threads=options.threads,
            memory_limit=options.memory_limit,
            temp_dir=spill,
            spark_master=options.spark_master,
            spark_conf=options.spark_conf,
        )
        with open_engine(options.engine, settings) as engine:
            output.connect(engine)
            with timer.step("load"):
                loaded = register_inputs(engine, sources, options.identifier_types, options.policy)
            build_tables(engine, options, loaded, timer)
            # The record first: then only the output tables need to stay in memory to be
            # written, and each is freed once written.
            record = _run_record(engine, options, loaded, timer, started)
            _drop(engine, "person_activity", "id_map_base")
            with timer.step("write"):
                # Under a memory limit, one file at a time: two sorts in flight cost ~0.2 GB
                # more at 10M events for ~1 s less.
                files = _write_outputs(
                    engine,
                    tmp,
                    options.output_format,
                    OutputOrder.for_run(engine, options),
                    side_by_side=not options.memory_limit,
                )
            record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            record["outputs"] = files
            if output.publishes_through_engine:
                # A URL output is compared and published through the engine's file system.
                _finish(options, output, record, files, timer, started)
        if not output.publishes_through_engine:
            if spill.is_relative_to(tmp):
                shutil.rmtree(spill, ignore_errors=True)
            _finish(options, output, record, files, timer, started)
    return RunResult(output_dir=options.output_dir, record=record, files=files)


def _finish(
    options: RunOptions,
    output: OutputStage,
    record: dict,
    files: list[str],
    timer: _Timer,
    started: float,
) -> None:
    _compare_and_report(options, output, record, timer, started)
    write_json(output.folder / "run.json", record)
    files.append("run.json")
    output.publish(files)


def build_tables(
    engine: Engine, options: RunOptions, loaded: LoadedInput, timer: _Timer | None = None
) -> None:
    """Every step from the registered inputs to the output tables, in order. `stitcher sql`
    records these same calls as a script, so a warehouse runs exactly this pipeline."""
    timer = timer or _Timer(None)
    fragments = sql_fragments(options)
    order = OutputOrder.for_run(engine, options)
    with timer.step("load"):
        values, _ = junk_tables(options)
        engine.register_arrow("junk_values", values)
    with timer.step("scan"):
        events = "events"
        if options.dedupe and loaded.tables_without_message_ids:
            log.warning(
                "--dedupe cannot match duplicates in %s: no id/messageId column",
                ", ".join(loaded.tables_without_message_ids),
            )
        if options.dedupe:
            engine.create_table_as("duplicate_hashes", render("10_duplicate_hashes"))
            # Read by the one scan as a subquery, never materialized (10M rows at 10M events).
            events = f"({render('10_dedupe_events', **fragments)}) AS events_deduped"
        engine.create_table_as("pairs", render("20_pairs", events=events, **fragments))
        engine.drop("duplicate_hashes")
        # Intermediate tables are dropped as soon as no step reads them (see _drop): at 10M
        # events they held 2.9 GB by the end. The run record keeps these small totals instead.
        engine.create_table_as("pair_totals", _PAIR_TOTALS)
    with timer.step("identifiers"):
        # The junk patterns are bound parameters (see sql/30_identifiers.sql).
        pattern_match, pattern_params = junk_pattern_match(options)
        engine.drop("identifiers")
        engine.execute(
            "CREATE TABLE identifiers AS "
            + render("30_identifiers", junk_pattern_match=pattern_match, **fragments),
            pattern_params,
        )
        engine.create_table_as("hub_degrees", render("31_hub_degrees", **fragments))
        _number_nodes(engine)
        _drop(engine, "identifiers", "hub_degrees")
        engine.create_table_as("identifier_totals", _IDENTIFIER_TOTALS)
        create_output_table(engine, "quarantine", render("93_quarantine"), order)
        engine.create_table_as("reattributed_events", render("35_reattributed_events"))
    with timer.step("edges"):
        engine.create_table_as("candidate_edges", render("40_candidate_edges", **fragments))
        engine.create_table_as("checked_edges", render("50_check_edges"))
        _drop(engine, "candidate_edges")
        classify_edges(engine, options)
        # The policies were the last readers of the one scan's aggregate (replays read its
        # evidence): free it before persons are built (~0.5 GB at 10M events).
        _drop(engine, "checked_edges", "policy_base", "pairs")
    with timer.step("components"):
        _components(engine, options.max_rounds)
    with timer.step("persons"):
        _persons(engine, loaded.trait_columns, order)
        if loaded.input_format == "mixpanel":
            add_distinct_ids(
                engine,
                options.policy,
                lambda sql: create_output_table(engine, "id_map", sql, order),
            )


def _number_nodes(engine: Engine) -> None:
    """identifiers_checked: hubs marked (32), then node ids in anchor order (33)."""
    if engine.distributed_numbering:
        # The bucketed numbering reads the marked identifiers twice (bucket sizes, ranks): a
        # table, so that Spark does not join the hubs twice.
        engine.create_table_as("identifiers_quarantined", render("32_quarantine"))
        engine.create_table_as("identifiers_checked", render("33_node_ids_bucketed"))
        engine.drop("identifiers_quarantined")
        return
    # A view: the one ordered window reads it once, as the CTE it replaces (no extra table).
    engine.execute("CREATE OR REPLACE VIEW identifiers_quarantined AS " + render("32_quarantine"))
    engine.create_table_as("identifiers_checked", render("33_node_ids"))
    engine.execute("DROP VIEW IF EXISTS identifiers_quarantined")


def _components(engine: Engine, max_rounds: int) -> None:
    engine.create_table_as("nodes", render("60_nodes"))
    if not engine.components_in_memory:
        # The graph stays in the engine: SQL rounds, no trip through this process.
        engine.create_table_as("node_edges", render("61_node_edges"))
        solve_in_sql(engine, max_rounds=max_rounds)
        engine.drop("node_edges")
        return
    n_nodes = engine.count("nodes")
    edges = engine.fetch_arrow(render("61_node_edges"))
    engine.register_arrow("node_components", components_table(n_nodes, edges))
    del edges


def _persons(engine: Engine, traits: list[str], order: OutputOrder) -> None:
    engine.create_table_as("persons", render("70_persons"))
    persons, distinct_ids = engine.fetch_rows(
        "SELECT count(*), count(DISTINCT person_id) FROM persons"
    )[0]
    if persons != distinct_ids:
        # md5 is 128 bits: this would take ~1e19 persons by chance; fail loudly rather than merge.
        raise EngineError("two persons received the same person_id (md5 collision)")
    create_output_table(engine, "id_map", render("80_id_map"), order)
    engine.create_table_as("person_activity", render("81_person_activity"))
    _drop(engine, "nodes", "node_components", "identifiers_checked", "reattributed_events")
    create_output_table(engine, "edges", render("91_edges"), order)
    create_output_table(engine, "rejected_edges", render("92_rejected_edges"), order)
    engine.create_table_as("edge_totals", _EDGE_TOTALS)
    _drop(engine, "classified_edges")
    q = quote_identifier
    engine.create_table_as(
        "person_traits",
        render(
            "86_person_traits",
            trait_latest="".join(
                ", struct_extract(max(struct_pack("
                f"ts := coalesce(t.ts, TIMESTAMP '0001-01-01'), v := t.{q(t)})) "
                f"FILTER (WHERE t.{q(t)} IS NOT NULL), 'v') AS {q(t)}"
                for t in traits
            ),
        ),
    )
    create_output_table(
        engine,
        "users",
        render(
            "90_users",
            trait_columns="".join(
                f", t.{q(t)} AS {q('trait_' + t if t in USERS_COLUMNS else t)}" for t in traits
            ),
        ),
        order,
    )
    _drop(engine, "persons", "person_traits")


@dataclass(frozen=True)
class OutputOrder:
    """How the output tables get their file order.

    `in_tables`: each output table is created sorted and written by a plain scan, for engines
    that read tables back in insertion order. At 10M events that moved ~1.2 s of sorting out of
    the write step, where two sorts ran beside two Parquet writers. Not under --memory-limit:
    there the sorts stay in the write, where they stream and spill one file at a time (a sorted
    CREATE TABLE ran out of memory at 40 MB where the write's sort spilled).
    """

    type_names: tuple[str, ...]
    in_tables: bool = False

    @classmethod
    def for_run(cls, engine: Engine, options: RunOptions) -> OutputOrder:
        return cls(options.type_names, engine.ordered_tables and not options.memory_limit)

    def of(self, relation: str) -> str:
        """The ORDER BY list of output table `relation`."""
        return _order_by(OUTPUT_TABLES[relation][1], self.type_names)


def create_output_table(engine: Engine, relation: str, sql: str, order: OutputOrder) -> None:
    """Create output table `relation` from `sql`, sorted already where `order` says so."""
    if order.in_tables:
        sql = f"SELECT * FROM (\n{sql}\n) AS unsorted ORDER BY {order.of(relation)}"
    engine.create_table_as(relation, sql)


def _drop(engine: Engine, *tables: str) -> None:
    """Free tables no later step reads (an in-memory engine holds every table until then)."""
    for table in tables:
        engine.drop(table)


def _order_by(order: str, type_names: tuple[str, ...]) -> str:
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


def _write_outputs(
    engine: Engine,
    folder: Path,
    file_format: str,
    order: OutputOrder,
    side_by_side: bool = True,
) -> list[str]:
    """Write every output table, sorted, into `folder`; returns the file names in order.

    `order` says whether the tables were created sorted already, or each query sorts.

    With `side_by_side`, where the engine can stream several results at once, two files are
    written side by side: one table's sort runs in the engine while another's rows are
    compressed (pyarrow's writer uses one core per file), which took the write step at 10M
    events from 3.8 s to ~2.5 s.
    """

    def write(name: str, relation: str) -> str:
        path = folder / f"{name}.{file_format}"
        # Tables created sorted (create_output_table) are read back as they are.
        order_by = "" if order.in_tables else f" ORDER BY {order.of(relation)}"
        schema, batches = engine.stream_arrow(
            f"SELECT {columns[relation]} FROM {quote_identifier(relation)}{order_by}", 100_000
        )
        rows = write_batches(batches, schema, path, file_format)
        log.info("wrote %s (%d rows)", path.name, rows)
        return path.name

    jobs = [(name, relation) for name, (relation, _) in OUTPUT_TABLES.items()]
    columns = {relation: public_columns(engine, relation) for _, relation in jobs}
    if not (side_by_side and engine.concurrent_streams):
        files = []
        for name, relation in jobs:
            files.append(write(name, relation))
            _drop(engine, relation)
        return files
    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="stitcher-write") as pool:
        futures = [pool.submit(write, *job) for job in jobs]
        files = []
        try:
            for future, (_, relation) in zip(futures, jobs, strict=True):
                files.append(future.result())
                _drop(engine, relation)
        finally:
            for future in futures:
                future.cancel()
    return files


def public_columns(engine: Engine, relation: str) -> str:
    """The select list of an output table: its columns minus the internal join keys."""
    return ", ".join(
        quote_identifier(c.name) for c in engine.columns(relation) if c.name not in INTERNAL_COLUMNS
    )


def _run_record(
    engine: Engine, options: RunOptions, loaded: LoadedInput, timer: _Timer, started: float
) -> dict:
    def rows(sql: str) -> list[tuple]:
        return engine.fetch_rows(sql)

    per_table = {
        table: int(count)
        for table, count in rows(
            "SELECT source_table, event_count FROM pair_totals ORDER BY source_table"
        )
    }
    events, without_ts = rows(
        "SELECT coalesce(sum(event_count), 0), coalesce(sum(events_without_ts), 0) FROM pair_totals"
    )[0]
    identifiers = {
        f"{t}{'' if quarantined is None else '_quarantined'}": int(n)
        for t, quarantined, n in rows(
            "SELECT identifier_type, quarantined OR NULL, identifiers FROM identifier_totals "
            "ORDER BY 1, 2"
        )
    }
    quarantined = dict(rows("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 1"))
    hubs = [
        {
            "identifier_type": t,
            "identifier": i,
            "linked_type": lt,
            "degree": int(d),
            "event_count": int(n),
        }
        for t, i, lt, d, n in rows(
            "SELECT identifier_type, identifier, hub_linked_type, hub_degree, event_count "
            "FROM quarantine WHERE reason = 'hub' ORDER BY hub_degree DESC, identifier_type, "
            "identifier LIMIT 50"
        )
    ]
    kept = dict(rows("SELECT reason, edges FROM edge_totals WHERE kept"))
    rejected = dict(rows("SELECT reason, edges FROM edge_totals WHERE NOT kept"))
    n_persons, with_user, multi_user = rows(
        "SELECT count(*), count(user_id), count(*) FILTER (WHERE array_length(user_ids) > 1) "
        "FROM users"
    )[0]
    largest = rows(
        "SELECT person_id, identifier_count FROM users "
        "ORDER BY identifier_count DESC, person_id LIMIT 1"
    )
    unattributed = rows(
        "SELECT coalesce(sum(event_count), 0) FROM person_activity WHERE component IS NULL"
    )[0][0]
    record = {
        "stitcher_version": __version__,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": options.as_record(),
        "input": {
            "tables": loaded.tables,
            "events_per_table": per_table,
            "events": int(events),
            "events_without_timestamp": int(without_ts),
            "events_unattributed": int(unattributed),
            "skipped_files": loaded.skipped_files,
            "dedupe": options.dedupe,
            "tables_without_message_ids": loaded.tables_without_message_ids,
            "trait_columns": loaded.trait_columns,
        },
        "identifiers": identifiers,
        "quarantine": {
            "by_reason": {k: int(v) for k, v in quarantined.items()},
            "hubs": hubs,
        },
        "edges": {
            "kept": int(sum(kept.values())),
            "rejected": int(sum(rejected.values())),
            "kept_by_rule": {k: int(v) for k, v in sorted(kept.items())},
            "rejected_by_reason": {k: int(v) for k, v in sorted(rejected.items())},
        },
        "persons": {
            "count": int(n_persons),
            "with_user_id": int(with_user),
            "anonymous_only": int(n_persons - with_user),
            "with_several_user_ids": int(multi_user),
            "largest": (
                {"person_id": largest[0][0], "identifier_count": int(largest[0][1])}
                if largest
                else None
            ),
        },
        "timings_seconds": dict(timer.seconds),
        "versions": {
            "stitcher": __version__,
            "engine": engine.version(),
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
        },
    }
    record["timings_seconds"]["total"] = round(time.perf_counter() - started, 3)
    if options.dedupe:
        raw = rows("SELECT count(*) FROM events")[0][0]
        record["input"]["duplicates_removed"] = int(raw) - int(events)
    return record


def _compare_and_report(
    options: RunOptions, output: OutputStage, record: dict, timer: _Timer, started: float
) -> None:
    """The steps that read the tables just written in `output.folder`, before they replace the
    output.

    The previous output is still in place here, so this is where a run can compare with it.
    """
    # Imported here: they bring polars (~50 MB resident), needed only once the engine is done.
    from stitcher.diff import compare_with_previous
    from stitcher.report import REPORT_FILE, write_report

    tmp = output.folder
    with timer.step("compare"):
        previous = output.previous()
        changes = None if previous is None else compare_with_previous(previous, tmp)
    if changes is not None:
        record["changes_since_previous"] = changes
    record["metrics"] = run_metrics(record)
    if options.report:
        with timer.step("report"):
            write_report(tmp, record)
        record["outputs"].append(REPORT_FILE)
    record["timings_seconds"] = {
        **timer.seconds,
        "total": round(time.perf_counter() - started, 3),
    }
