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
from stitcher.graph.nodes import (
    create_checked_view,
    create_node_ids,
    create_nodes,
    create_sorted_identifiers,
    numbering_form,
)
from stitcher.graph.policies import POLICIES, classify_edges, replays_events, runs_python
from stitcher.input.formats import EXPORT_FORMATS, INPUT_FORMATS
from stitcher.input.load import (
    LoadedInput,
    find_tables,
    output_trait_names,
    register_inputs,
    trait_column,
)
from stitcher.inspection.report import ReportFigures, report_figures, write_report
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
from stitcher.output.run_record import RECORD_READS, RunRecord, measure
from stitcher.output.tables import (
    OUTPUT_NAMES,
    OUTPUT_TABLES,
    RUN_RECORD,
    USERS_COLUMNS,
    OutputOrder,
    OutputWriter,
    create_output_table,
)
from stitcher.sql import render
from stitcher.steps import Step, run_steps

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
                figures = build_tables(engine, options, loaded, timer, writer)
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
                _finish(options, output, record, files, figures, timer, started)
        if not output.publishes_through_engine:
            if spill.is_relative_to(tmp):
                shutil.rmtree(spill, ignore_errors=True)
            _finish(options, output, record, files, figures, timer, started)
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
    figures: ReportFigures | None,
    timer: _Timer,
    started: float,
) -> None:
    _compare_and_report(options, output, record, figures, timer, started)
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
) -> ReportFigures | None:
    """Every step from the registered inputs to the output tables, in order. `stitcher sql`
    records these same calls as a script, so a warehouse runs exactly this pipeline. With a
    `writer`, output tables no later step reads are handed to it on the way (and freed), and
    the report's figures are computed and returned (None without --report).

    What no later step reads is freed after each step (stitcher/steps.py): at 10M events the
    intermediate tables held 2.9 GB by the end otherwise. The output tables stay for the
    writer, and the totals the run record reads stay for it (RECORD_READS)."""
    timer = timer or _Timer(None)
    figures: list[ReportFigures] = []
    steps = pipeline_steps(engine, options, loaded, writer, figures)
    run_steps(engine, steps, keep={*OUTPUT_TABLES, *RECORD_READS}, timer=timer.step)
    return figures[0] if figures else None


def pipeline_steps(
    engine: Engine,
    options: RunOptions,
    loaded: LoadedInput,
    writer: OutputWriter | None = None,
    figures: list[ReportFigures] | None = None,
) -> list[Step]:
    """The pipeline, step by step: what each makes, from what. With a `writer` and --report,
    the report's figures are appended to `figures` on the way."""
    fragments = sql_fragments(options)
    order = OutputOrder.for_run(engine, options)
    form = numbering_form(engine)
    traits = loaded.trait_columns

    def table(group: str, name: str, step: str, reads: tuple[str, ...], **values: str) -> Step:
        """A table made by one SQL file, sql/<step>.sql."""
        return Step(
            group,
            name,
            lambda: engine.create_table_as(name, render(step, **values)),
            reads,
            (name,),
        )

    def output(group: str, name: str, step: str, reads: tuple[str, ...], **values: str) -> Step:
        """An output table (created sorted where `order` says so)."""
        return Step(
            group,
            name,
            lambda: create_output_table(engine, name, render(step, **values), order),
            reads,
            (name,),
        )

    # Identifiers marked as hubs: a view where the numbering reads them once (see
    # _mark_quarantine), a table where it reads them twice.
    marked_view = () if engine.distributed_numbering else ("identifiers_quarantined",)
    if form == "sorted":
        numbering = [
            Step(
                "identifiers",
                "identifiers_sorted",
                lambda: create_sorted_identifiers(engine),
                ("identifiers_quarantined",),
                ("identifiers_sorted",),
            ),
            # A view: the position is read where the ids are used.
            Step(
                "identifiers",
                "identifiers_checked",
                lambda: create_checked_view(engine),
                ("identifiers_sorted",),
                ("identifiers_checked",),
                views=("identifiers_checked",),
            ),
        ]
    else:
        numbering = [
            Step(
                "identifiers",
                "identifiers_checked",
                lambda: create_node_ids(engine, form),
                ("identifiers_quarantined",),
                ("identifiers_checked",),
            )
        ]
    # A replay reads the one scan's aggregate (its evidence) in the policy: otherwise the
    # aggregate (~0.45 GB at 10M events) is freed once the links are read off it, before the
    # numbering sorts every identifier.
    policy_reads = ("checked_edges", "identifiers_checked") + (
        ("pairs",) if replays_events(options) else ()
    )
    steps = [
        Step("load", "junk_values", lambda: _junk_values(engine, options), (), ("junk_values",)),
        Step("scan", "pairs", lambda: _scan(engine, options, loaded), (), ("pairs",)),
        table("scan", "pair_totals", "21_pair_totals", ("pairs",)),
        Step(
            "identifiers",
            "identifiers",
            lambda: _identifiers(engine, options, fragments),
            ("pairs", "junk_values"),
            ("identifiers",),
        ),
        table(
            "identifiers", "hub_degrees", "31_hub_degrees", ("identifiers", "pairs"), **fragments
        ),
        Step(
            "identifiers",
            "identifiers_quarantined",
            lambda: _mark_quarantine(engine),
            ("identifiers", "hub_degrees"),
            ("identifiers_quarantined",),
            views=marked_view,
        ),
        table(
            "identifiers", "identifier_totals", "34_identifier_totals", ("identifiers_quarantined",)
        ),
        output("identifiers", "quarantine", "93_quarantine", ("identifiers_quarantined",)),
        table(
            "identifiers",
            "reattributed_events",
            "35_reattributed_events",
            ("pairs", "quarantine"),
        ),
        table("identifiers", "candidate_edges", "40_candidate_edges", ("pairs",), **fragments),
        *numbering,
        table(
            "edges", "checked_edges", "50_check_edges", ("candidate_edges", "identifiers_checked")
        ),
        Step(
            "edges",
            "classified_edges",
            lambda: classify_edges(engine, options),
            policy_reads,
            ("classified_edges", "policy_base", *POLICIES[options.policy].leaves),
        ),
        Step(
            "components",
            "nodes",
            lambda: create_nodes(engine),
            ("identifiers_checked",),
            ("nodes",),
        ),
        Step(
            "components",
            "node_components",
            lambda: solve(
                engine, render("61_node_edges"), "node_components", "node_edges", options.max_rounds
            ),
            ("nodes", "classified_edges"),
            ("node_components",),
        ),
        Step(
            "persons",
            "persons",
            lambda: _persons(engine),
            ("nodes", "node_components"),
            ("persons",),
        ),
        output("persons", "id_map", "80_id_map", ("persons", "nodes", "node_components")),
        table(
            "persons",
            "person_activity",
            "81_person_activity",
            ("id_map", "nodes", "node_components", "reattributed_events"),
        ),
        output("persons", "edges", "91_edges", ("classified_edges", "id_map")),
        output("persons", "rejected_edges", "92_rejected_edges", ("classified_edges", "id_map")),
        table("persons", "edge_totals", "56_edge_totals", ("classified_edges",)),
    ]
    if writer is not None and options.report and figures is not None:
        # The report's few figures, read off the tables while they are here (integer node ids
        # where it can): reading the written files back cost ~0.5-1 s at 10M events.
        steps.append(
            Step(
                "report",
                "report figures",
                lambda: figures.append(report_figures(engine)),
                ("persons", "person_activity", "classified_edges", "id_map", "quarantine"),
            )
        )
    if writer is not None:
        # Final from here: written beside the next steps, and freed before the users step.
        steps.append(
            Step("persons", "write edges", lambda: writer.ready("edges", "rejected_edges"))
        )
    steps.append(
        Step(
            "persons",
            "person_traits",
            lambda: _person_traits(engine, traits),
            ("id_map", "quarantine"),
            ("person_traits",),
        )
    )
    if writer is not None:
        # The users step holds the run's peak memory.
        steps.append(Step("persons", "make room", writer.make_room))
    steps.append(
        output(
            "persons",
            "users",
            "90_users",
            ("persons", "id_map", "person_activity", "person_traits"),
            trait_columns=_trait_columns(traits),
        )
    )
    if loaded.input_format in EXPORT_FORMATS:
        reader = INPUT_FORMATS[loaded.input_format].reader()
        steps.append(
            Step(
                "persons",
                "id_map",
                lambda: reader.finish_id_map(
                    engine,
                    options.policy,
                    lambda sql: create_output_table(engine, "id_map", sql, order),
                ),
                ("id_map", "mixpanel_identified"),
                ("id_map",),
            )
        )
    return steps


def _junk_values(engine: Engine, options: RunOptions) -> None:
    values, _ = junk_tables(options)
    engine.register_arrow("junk_values", values)


def _scan(engine: Engine, options: RunOptions, loaded: LoadedInput) -> None:
    if options.dedupe and loaded.tables_without_message_ids:
        log.warning(
            "--dedupe cannot match duplicates in %s: no id/messageId column",
            ", ".join(loaded.tables_without_message_ids),
        )
    create_pairs(engine, options, loaded)


def _identifiers(engine: Engine, options: RunOptions, fragments: dict[str, str]) -> None:
    # The junk patterns are bound parameters (see sql/30_identifiers.sql).
    pattern_match, pattern_params = junk_pattern_match(options)
    engine.drop("identifiers")
    engine.execute(
        "CREATE TABLE identifiers AS "
        + render("30_identifiers", junk_pattern_match=pattern_match, **fragments),
        pattern_params,
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


def _persons(engine: Engine) -> None:
    engine.create_table_as("persons", render("70_persons"))
    persons, distinct_ids = engine.fetch_rows(
        "SELECT count(*), count(DISTINCT person_id) FROM persons"
    )[0]
    if persons != distinct_ids:
        # md5 is 128 bits: this would take ~1e19 persons by chance; fail loudly rather than merge.
        raise EngineError("two persons received the same person_id (md5 collision)")


def _person_traits(engine: Engine, traits: list[str]) -> None:
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


def _trait_columns(traits: list[str]) -> str:
    """users' trait columns: each internal trait column under its output name."""
    q = quote_identifier
    internal = [trait_column(i) for i in range(len(traits))]
    return "".join(
        f", t.{q(c)} AS {q(name)}"
        for c, name in zip(internal, output_trait_names(traits, USERS_COLUMNS), strict=True)
    )


def _compare_and_report(
    options: RunOptions,
    output: OutputStage,
    record: RunRecord,
    figures: ReportFigures | None,
    timer: _Timer,
    started: float,
) -> None:
    """The steps that read the tables just written in `output.folder`, before they replace the
    output.

    The previous output is still in place here, so this is where a run can compare with it.
    """
    tmp = output.folder
    with timer.step("compare"), interrupts.deferred():
        previous = output.previous()
        changes = None
        if previous is not None:
            # Imported only here: the comparison brings polars (~0.17 s, ~50 MB resident),
            # which a run without a previous output needs nowhere else.
            from stitcher.inspection.changes import compare_with_previous

            changes = compare_with_previous(previous, tmp)
    record.compared(changes, options)
    if figures is not None:
        record.reported()
    record.timed(timer.seconds, started)
    if figures is not None:
        with interrupts.deferred():
            write_report(tmp, record.data, figures)
