"""The order of the steps, and nothing else: each step is a SQL file or a call into a module.

load → pairs (the one scan of the events) → identifiers (+ junk) → candidate edges → policy →
nodes → components → persons → id_map, users, edges, rejected_edges, quarantine → run.json,
all written into a temporary folder that replaces the output folder only when complete.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stitcher import interrupts
from stitcher.config import RunOptions
from stitcher.engines import Engine, EngineSettings, open_engine
from stitcher.engines.base import drop_tables, quote_identifier, quote_literal
from stitcher.errors import EngineError
from stitcher.graph.components import solve
from stitcher.graph.identifiers import junk_pattern_match, junk_tables, sql_fragments
from stitcher.graph.nodes import create_node_ids, create_nodes, drop_node_ids, numbering_form
from stitcher.graph.policies import classify_edges, replays_events, runs_python
from stitcher.input.formats import EXPORT_FORMATS, INPUT_FORMATS
from stitcher.input.load import (
    LoadedInput,
    find_tables,
    output_trait_names,
    register_inputs,
    trait_column,
)
from stitcher.inspection.thresholds import Outcome, check_conditions
from stitcher.location import Url
from stitcher.output.files import (
    check_output_location,
    check_replaceable,
    check_temp_dir,
    recover_interrupted,
    spill_folder,
    write_json,
)
from stitcher.output.locks import output_lock
from stitcher.output.publish import OutputStage, staged_output
from stitcher.output.run_record import RunRecord, measure
from stitcher.output.tables import (
    OUTPUT_NAMES,
    RUN_RECORD,
    USERS_COLUMNS,
    OutputOrder,
    OutputWriter,
    create_output_table,
)
from stitcher.sql import render

log = logging.getLogger("stitcher")

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


@dataclass
class RunResult:
    """What a finished run wrote and measured.

    `record` is run.json as written; `files` the names written into `output_dir`.
    """

    output_dir: Path | Url
    record: dict
    files: list[str] = field(default_factory=list)
    thresholds: list[Outcome] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float | None]:
        """The run's metrics (run.json's `metrics`); None: not measured this run."""
        return dict(self.record.get("metrics", {}))

    @property
    def breached(self) -> list[Outcome]:
        """The --fail-if conditions this run breached."""
        return [outcome for outcome in self.thresholds if outcome.breached]

    @property
    def paths(self) -> dict[str, Path | Url]:
        """Each file written, by name (`users.parquet`), at its place in the output."""
        return {name: self.output_dir / name for name in self.files}


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
    options = _absolute_output(options)
    check_output_location(options.output_dir, options.input_dir)
    check_temp_dir(options.temp_dir)
    with _claimed(options):
        return _run(options, progress)


def _absolute_output(options: RunOptions) -> RunOptions:
    """`--output .` or `..`: the swap renames the folder beside it, which needs its real name
    (from inside last night's output, `.` once did all the work and crashed at the swap)."""
    output = options.output_dir
    if isinstance(output, Url) or output.name not in ("", ".."):
        return options
    return dataclasses.replace(options, output_dir=Path(os.path.abspath(output)))


@contextmanager
def _claimed(options: RunOptions) -> Iterator[None]:
    """A local --output, made this run's alone: its lock taken (another run writing it fails
    the run, or is waited for), a swap a killed run left half done put back first (even if this
    run then fails), and a folder stitcher did not write refused unless --force."""
    output = options.output_dir
    if isinstance(output, Url):
        yield  # checked and recovered through the engine's file system (stitcher/output/publish.py)
        return
    with output_lock(output, options.wait_seconds):
        recover_interrupted(output)
        if not options.force:
            check_replaceable(output, OUTPUT_NAMES)
        yield


def _run(options: RunOptions, progress: ProgressCallback | None) -> RunResult:
    # A URL output is recovered from a killed run's swap once the engine is up (connect): its
    # input is looked at only then, so that even a run that fails on its input first puts the
    # previous output back. A local one was recovered already (_claimed).
    url_output = isinstance(options.output_dir, Url)
    sources = None if url_output else find_tables(options.input_dir, options.input_format)
    timer = _Timer(progress)
    started = time.perf_counter()
    with (
        staged_output(
            options.output_dir, options.temp_dir, None if options.force else OUTPUT_NAMES
        ) as output,
        spill_folder(options.temp_dir, output.folder) as spill,
    ):
        tmp = output.folder
        settings = EngineSettings(
            threads=options.threads,
            memory_limit=options.memory_limit,
            temp_dir=spill,
            spark_master=options.spark_master,
            spark_conf=options.spark_conf,
            spark_executor_timeout=options.spark_executor_timeout,
        )
        with open_engine(options.engine, settings) as engine:
            output.connect(engine)
            if sources is None:
                sources = find_tables(options.input_dir, options.input_format)
            with timer.step("load"):
                loaded = register_inputs(engine, sources, options.identifier_types, options.policy)
                if runs_python(options):
                    # Spark's executors must be able to run the replay: know now, not after
                    # the steps before it.
                    engine.check_python_workers()
            # Under a memory limit, one file at a time: two sorts in flight cost ~0.2 GB more at
            # 10M events for ~1 s less.
            writer = OutputWriter(
                engine,
                tmp,
                options.output_format,
                OutputOrder.for_run(engine, options),
                side_by_side=not options.memory_limit,
            )
            try:
                build_tables(engine, options, loaded, timer, writer)
                # The record first: then only the output tables need to stay in memory to be
                # written, and each is freed once written.
                record = measure(engine, options, loaded, timer.seconds, started)
                drop_tables(engine, "person_activity", "id_map_base")
                with timer.step("write"):
                    files = writer.finish()
            finally:
                writer.close()
            record.written(files)
            if output.publishes_through_engine:
                # A URL output is compared and published through the engine's file system.
                _finish(options, output, record, files, timer, started)
        if not output.publishes_through_engine:
            if spill.is_relative_to(tmp):
                shutil.rmtree(spill, ignore_errors=True)
            _finish(options, output, record, files, timer, started)
    return RunResult(
        output_dir=options.output_dir,
        record=record.data,
        files=files,
        thresholds=check_conditions(list(options.fail_if), record.data["metrics"]),
    )


def _finish(
    options: RunOptions,
    output: OutputStage,
    record: RunRecord,
    files: list[str],
    timer: _Timer,
    started: float,
) -> None:
    _compare_and_report(options, output, record, timer, started)
    write_json(output.folder / RUN_RECORD, record.data)
    # What run.json lists (the tables, the report), and run.json itself.
    files[:] = record.files
    output.publish(files)


def build_tables(
    engine: Engine,
    options: RunOptions,
    loaded: LoadedInput,
    timer: _Timer | None = None,
    writer: OutputWriter | None = None,
) -> None:
    """Every step from the registered inputs to the output tables, in order. `stitcher sql`
    records these same calls as a script, so a warehouse runs exactly this pipeline. With a
    `writer`, output tables no later step reads are handed to it on the way (and freed)."""
    timer = timer or _Timer(None)
    fragments = sql_fragments(options)
    order = OutputOrder.for_run(engine, options)
    with timer.step("load"):
        values, _ = junk_tables(options)
        engine.register_arrow("junk_values", values)
    with timer.step("scan"):
        if options.dedupe and loaded.tables_without_message_ids:
            log.warning(
                "--dedupe cannot match duplicates in %s: no id/messageId column",
                ", ".join(loaded.tables_without_message_ids),
            )
        create_pairs(engine, options, loaded)
        # Intermediate tables are dropped as soon as no step reads them (see _drop): at 10M
        # events they held 2.9 GB by the end. The run record keeps these small totals instead.
        engine.create_table_as("pair_totals", render("21_pair_totals"))
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
        _mark_quarantine(engine)
        engine.create_table_as("identifier_totals", render("34_identifier_totals"))
        create_output_table(engine, "quarantine", render("93_quarantine"), order)
        engine.create_table_as("reattributed_events", render("35_reattributed_events"))
        # The links are read off the one scan's aggregate before the numbering sorts every
        # identifier, so that aggregate (~0.45 GB at 10M events) is gone by then unless a
        # replay still needs it.
        engine.create_table_as("candidate_edges", render("40_candidate_edges", **fragments))
        if not replays_events(options):
            drop_tables(engine, "pairs")
        _number_nodes(engine)
    with timer.step("edges"):
        engine.create_table_as("checked_edges", render("50_check_edges"))
        drop_tables(engine, "candidate_edges")
        classify_edges(engine, options)
        # A replay reads the one scan's aggregate (its evidence) in the policy at the latest.
        drop_tables(engine, "checked_edges", "policy_base", "pairs")
    with timer.step("components"):
        _components(engine, options.max_rounds)
    with timer.step("persons"):
        _persons(engine, loaded.trait_columns, order, writer)
        if loaded.input_format in EXPORT_FORMATS:
            INPUT_FORMATS[loaded.input_format].reader().finish_id_map(
                engine,
                options.policy,
                lambda sql: create_output_table(engine, "id_map", sql, order),
            )


def create_pairs(engine: Engine, options: RunOptions, loaded: LoadedInput) -> None:
    """`pairs`, the one scan (sql/20_pairs.sql): each input table aggregated on its own, in one
    UNION ALL. With --dedupe, each table's events without duplicates (sql/12), read as a
    subquery and never materialized (10M rows at 10M events), after the few deliveries to keep
    of repeated message ids are found over all tables (sql/10, sql/11)."""
    fragments = sql_fragments(options)
    sources = loaded.event_views
    if options.dedupe:
        engine.create_table_as("duplicate_hashes", render("10_duplicate_hashes"))
        engine.create_table_as("first_deliveries", render("11_first_deliveries", **fragments))
        sources = [
            "("
            + render(
                "12_deduped_events", events=view, source_table=quote_literal(table), **fragments
            )
            + ") AS events_deduped"
            for table, view in zip(loaded.tables, loaded.event_views, strict=True)
        ]
    engine.create_table_as(
        "pairs", "\nUNION ALL\n".join(render("20_pairs", events=s, **fragments) for s in sources)
    )
    drop_tables(engine, "duplicate_hashes", "first_deliveries")


def _mark_quarantine(engine: Engine) -> None:
    """identifiers_quarantined: the identifiers with hubs marked (32)."""
    if engine.distributed_numbering:
        # The bucketed numbering reads the marked identifiers twice (bucket sizes, ranks): a
        # table, so that Spark does not join the hubs twice.
        engine.create_table_as("identifiers_quarantined", render("32_quarantine"))
    else:
        # A view: a join of the identifiers with the few hubs, cheaper to repeat for the
        # quarantine tables than to hold a second copy of every identifier.
        engine.execute(
            "CREATE OR REPLACE VIEW identifiers_quarantined AS " + render("32_quarantine")
        )


def _number_nodes(engine: Engine) -> None:
    """identifiers_checked: node ids in anchor order (33) on the marked identifiers."""
    form = numbering_form(engine)
    create_node_ids(engine, form)
    if form == "bucketed":
        engine.drop("identifiers_quarantined")
    else:
        engine.execute("DROP VIEW IF EXISTS identifiers_quarantined")
    drop_tables(engine, "identifiers", "hub_degrees")


def _components(engine: Engine, max_rounds: int) -> None:
    create_nodes(engine)
    # The policies were its last readers; nodes holds the usable part of it from here on.
    drop_node_ids(engine, numbering_form(engine))
    solve(engine, render("61_node_edges"), "node_components", "node_edges", max_rounds)


def _persons(
    engine: Engine, traits: list[str], order: OutputOrder, writer: OutputWriter | None
) -> None:
    engine.create_table_as("persons", render("70_persons"))
    persons, distinct_ids = engine.fetch_rows(
        "SELECT count(*), count(DISTINCT person_id) FROM persons"
    )[0]
    if persons != distinct_ids:
        # md5 is 128 bits: this would take ~1e19 persons by chance; fail loudly rather than merge.
        raise EngineError("two persons received the same person_id (md5 collision)")
    create_output_table(engine, "id_map", render("80_id_map"), order)
    engine.create_table_as("person_activity", render("81_person_activity"))
    drop_tables(engine, "nodes", "node_components", "reattributed_events")
    create_output_table(engine, "edges", render("91_edges"), order)
    create_output_table(engine, "rejected_edges", render("92_rejected_edges"), order)
    engine.create_table_as("edge_totals", render("56_edge_totals"))
    drop_tables(engine, "classified_edges")
    if writer is not None:
        writer.ready("edges", "rejected_edges")
    q = quote_identifier
    internal = [trait_column(i) for i in range(len(traits))]
    engine.create_table_as(
        "person_traits",
        render(
            "86_person_traits",
            # CASE, not FILTER (WHERE ...): DuckDB copies the input once per filtered
            # aggregate, which took 14 s and 4 GB for 1,000 traits over 200 rows.
            trait_latest="".join(
                f", struct_extract(max(CASE WHEN t.{q(c)} IS NOT NULL THEN struct_pack("
                f"ts := coalesce(t.ts, TIMESTAMP '0001-01-01'), v := t.{q(c)}) END), 'v') "
                f"AS {q(c)}"
                for c in internal
            ),
        ),
    )
    if writer is not None:
        writer.make_room()  # the users step holds the run's peak memory
    create_output_table(
        engine,
        "users",
        render(
            "90_users",
            trait_columns="".join(
                f", t.{q(c)} AS {q(name)}"
                for c, name in zip(internal, output_trait_names(traits, USERS_COLUMNS), strict=True)
            ),
        ),
        order,
    )
    drop_tables(engine, "persons", "person_traits")


def _compare_and_report(
    options: RunOptions, output: OutputStage, record: RunRecord, timer: _Timer, started: float
) -> None:
    """The steps that read the tables just written in `output.folder`, before they replace the
    output.

    The previous output is still in place here, so this is where a run can compare with it.
    """
    # Imported here: they bring polars (~50 MB resident), needed only once the engine is done.
    from stitcher.inspection.changes import compare_with_previous
    from stitcher.inspection.report import read_report_tables, write_report

    tmp = output.folder
    with timer.step("compare"), interrupts.deferred():
        previous = output.previous()
        changes = None if previous is None else compare_with_previous(previous, tmp)
    record.compared(changes, options)
    tables = None
    if options.report:
        # The tables are read back (nearly all of the report's time) before the timings are
        # final, so that the page shows every step, its own included.
        with timer.step("report"), interrupts.deferred():
            tables = read_report_tables(tmp)
        record.reported()
    record.timed(timer.seconds, started)
    if tables is not None:
        with interrupts.deferred():
            write_report(tmp, record.data, tables=tables)
