"""Command line: parse options, call the library, turn errors into one line and an exit code."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from stitcher import __version__, interrupts
from stitcher.api import MAX_WAIT_SECONDS
from stitcher.config import (
    DEFAULT_SPARK_EXECUTOR_TIMEOUT,
    INPUT_FORMATS,
    MAX_ROUNDS,
    MAX_SPARK_EXECUTOR_TIMEOUT,
    MAX_THREADS,
    OUTPUT_FORMATS,
    POLICIES,
    RunOptions,
    memory_limit_problem,
)
from stitcher.config_file import effective_config_toml
from stitcher.engines import ENGINES
from stitcher.errors import EngineError, OutputError, StitcherError, ThresholdBreached
from stitcher.graph.policies import policies_help, script_policies
from stitcher.input.formats import formats_help
from stitcher.location import Url
from stitcher.warehouse import DIALECTS

log = logging.getLogger("stitcher")

EXIT_ERROR = 1


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn failures into `Error: ...` and exit code 1; the traceback only with --debug.

    SIGINT and SIGTERM stop the command cleanly (stitcher/interrupts.py): one line, exit 130 or
    143, and whatever failure the signal caused on the way up is not reported as one.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        try:
            with interrupts.handled():
                return command(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BaseException as exc:
            stopped = interrupts.received()
            if stopped is None and isinstance(exc, KeyboardInterrupt):
                stopped = signal.SIGINT
            if stopped is not None:
                if debug:
                    traceback.print_exc()
                interrupts.exit_stopped(stopped)
            if isinstance(exc, StitcherError):
                if debug:
                    traceback.print_exc()
                    if isinstance(exc, EngineError) and exc.sql:
                        _echo_error(f"failed SQL:\n{exc.sql}")
                _echo_error(f"Error: {exc}")
                sys.exit(exc.exit_code)
            if not isinstance(exc, Exception):
                raise  # SystemExit: an exit code already chosen
            if isinstance(exc, BrokenPipeError):
                # `stitcher explain ... | head`: the reader has all it wanted. Exit as a process
                # that SIGPIPE stopped would (141), without a message on a terminal.
                _discard_stream(sys.stdout)
                sys.exit(128 + signal.SIGPIPE)
            if debug:
                traceback.print_exc()
            _echo_error(
                f"Error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the "
                "traceback, and please report it)"
            )
            sys.exit(EXIT_ERROR)

    return wrapper


def _signals_when_done(command: Callable[..., Any]) -> Callable[..., Any]:
    """For commands whose work is polars (explain, diff): a signal stops them when that work
    ends, never inside it (stitcher/interrupts.py, `deferred`). Not `generate`, whose work can
    take minutes and whose files are rewritten whole by the next generate."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with interrupts.deferred():
            return command(*args, **kwargs)

    return wrapper


def _echo_error(text: str) -> None:
    """An error line on stderr; a stderr that cannot take it must not change the exit code."""
    with contextlib.suppress(OSError):
        click.echo(text, err=True)


def _common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--debug", is_flag=True, help="Show the full traceback (and failing SQL) on errors."
    )(command)
    command = click.option(
        "-q", "--quiet", is_flag=True, help="Print nothing but errors (for cron)."
    )(command)
    command = click.option(
        "-v", "--verbose", count=True, help="Log each step (-v) or everything (-vv) to stderr."
    )(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stitcher")
def cli() -> None:
    """Stitch product-analytics identities: one person per real user, every id mapped.

    Reads Segment/RudderStack-style event tables (tracks, pages, screens, identifies, aliases)
    from Parquet or CSV, links anonymous ids to user ids under merge rules that refuse junk ids
    and shared devices, and writes `users` and `id_map` tables plus the evidence behind every
    link. Run `stitcher run --help` to start.
    """


def _stitch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options that shape a run; shared by `run` and `config --show`. Unset flags (None) leave
    the config file's value, or the built-in default, in force."""
    decorators = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Config file (TOML). Default: ./stitcher.toml, else [tool.stitcher] in "
            "./pyproject.toml. Flags override it.",
        ),
        click.option(
            "--policy",
            type=click.Choice(POLICIES),
            default=None,
            help=policies_help(),
        ),
        click.option(
            "--input-format",
            type=click.Choice(INPUT_FORMATS),
            default=None,
            help=formats_help(),
        ),
        click.option(
            "--output-format",
            type=click.Choice(OUTPUT_FORMATS),
            default=None,
            help="File format of the output tables (default parquet; CSV writes id lists as "
            "JSON arrays).",
        ),
        click.option(
            "--dedupe/--no-dedupe",
            default=None,
            help="Count each message id once (drops duplicate deliveries; about one more pass "
            "over the events). Default: off.",
        ),
        click.option(
            "--junk-file",
            "junk_files",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="Extra junk ids, one per line; `regex:PATTERN` lines are full-match regexes, "
            "`#` comments. Repeatable.",
        ),
        click.option(
            "--replace-junk",
            is_flag=True,
            help="Use only the --junk-file lists, not the built-in (or configured) junk list.",
        ),
        click.option(
            "--no-hubs",
            is_flag=True,
            help="Turn hub detection off (ids that tie many people together: shared logins, "
            "hard-coded device ids; tune it in the config file's [hubs]).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(1, MAX_THREADS),
            default=None,
            help="Engine threads (default: all cores).",
        ),
        click.option(
            "--memory-limit",
            default=None,
            callback=_checked_memory_limit,
            help="Memory limit of the run, e.g. 6GB (at least 16MB): the engine spills to "
            "--temp-dir to keep the whole process under it (at 1GB and below, Python and the "
            "writers still need ~0.2-0.4 GB beyond it).",
        ),
        click.option(
            "--temp-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Where the engine spills, and where a URL --output is written before it is "
            "copied up (default: inside the temporary output folder; for a URL --output, the "
            "system's temporary folder).",
        ),
        click.option(
            "--engine",
            type=click.Choice(sorted(ENGINES)),
            default=None,
            help="duckdb (default): embedded, one machine. spark: Apache Spark, local or a "
            "cluster (pip install 'identity-stitcher[spark]'; needs Java 17+).",
        ),
        click.option(
            "--spark-master",
            default=None,
            help="Spark master URL, e.g. spark://host:7077, yarn, k8s://... (default: "
            "local[*], or spark-submit's --master).",
        ),
        click.option(
            "--spark-conf",
            "spark_conf",
            multiple=True,
            metavar="KEY=VALUE",
            callback=lambda ctx, param, values: _parse_key_values(values, "--spark-conf"),
            help="A Spark setting for the session, e.g. spark.executor.memory=8g. Repeatable.",
        ),
        click.option(
            "--spark-executor-timeout",
            type=click.FloatRange(1, MAX_SPARK_EXECUTOR_TIMEOUT),
            default=None,
            callback=_finite_seconds,
            metavar="SECONDS",
            help="On a Spark cluster, fail when the run's jobs have had no executor for this "
            "long (the workers are down or lost, or none can give what is asked). Default: "
            f"{DEFAULT_SPARK_EXECUTOR_TIMEOUT:g}.",
        ),
        click.option(
            "--max-rounds",
            type=click.IntRange(1, MAX_ROUNDS),
            default=None,
            help="Engines that find components in SQL rounds (spark) stop with an error past "
            "this many; a real graph needs about log2(ids) rounds. Default: 100.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _finite_seconds(
    ctx: click.Context, param: click.Parameter, value: float | None
) -> float | None:
    # click's range check lets NaN through (every comparison with it is false).
    if value is not None and value != value:
        raise click.BadParameter("nan is not a number of seconds")
    return value


def _checked_memory_limit(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    problem = None if value is None else memory_limit_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


def _build_options(
    input_dir: Path | Url, output_dir: Path | Url, flags: dict[str, Any]
) -> RunOptions:
    """Config file, then flags on top: the options a run will use (stitcher.api)."""
    from stitcher.api import build_options

    return build_options(
        input_dir,
        output_dir,
        config=flags.pop("config_file"),
        junk_files=flags.pop("junk_files"),
        replace_junk=flags.pop("replace_junk"),
        hubs=not flags.pop("no_hubs"),
        spark_conf=flags.pop("spark_conf", ()),
        temp_dir=flags.pop("temp_dir", None),
        **flags,
    )


_RUN_FLAGS = (
    "config_file",
    "policy",
    "input_format",
    "output_format",
    "dedupe",
    "junk_files",
    "replace_junk",
    "no_hubs",
    "threads",
    "memory_limit",
    "temp_dir",
    "engine",
    "spark_master",
    "spark_conf",
    "spark_executor_timeout",
    "max_rounds",
)


def _parse_key_values(values: tuple[str, ...], option: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs.append((key.strip(), setting))
    return tuple(pairs)


@cli.command("run")
@click.option(
    "--input",
    "input_dir",
    required=True,
    type=click.Path(file_okay=True, dir_okay=True),
    help="Folder holding tracks, pages, screens, identifies and/or aliases, each a "
    ".parquet/.csv/.csv.gz file or a folder of them (Hive partitions allowed), or a "
    "Mixpanel export (JSON lines). With --engine spark also a URL Spark reads: s3a://, "
    "abfss://, gs://, hdfs://, file://.",
)
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(),
    help="Folder to write id_map, users, edges, rejected_edges, quarantine and run.json into. "
    "Replaced as a whole: a failed run leaves the previous output untouched; a folder that is "
    "not a stitcher output is refused (see --force). With --engine "
    "spark also a URL Spark writes (s3a://, abfss://, gs://, hdfs://, file://): written "
    "locally (under --temp-dir), copied up beside it, then swapped in by renames.",
)
@click.option(
    "--fail-if",
    "fail_if",
    multiple=True,
    metavar="CONDITION",
    callback=lambda ctx, param, values: _parse_conditions(values),
    help="Exit 3 (after writing the output) when a run.json metric breaches this, e.g. "
    "'largest_person>500', 'rejected_share>0.05', 'persons_changed>0.02' (>, <, >=, <=). "
    "Repeatable. Metrics are listed in the README.",
)
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option(
    "--force",
    is_flag=True,
    help="Replace --output even when it is not a stitcher output (by default a folder holding "
    "anything but stitcher's own files is refused, since the run replaces it whole).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0, max=MAX_WAIT_SECONDS),
    default=0,
    callback=_finite_seconds,
    metavar="SECONDS",
    help="When another run is writing the same --output (it holds the lock file "
    ".OUTPUT.stitcher-lock beside it), wait up to this long for it; by default exit 1 at once.",
)
@_stitch_options
@_common_options
@_reports_errors
def run_command(
    input_dir: str,
    output_dir: str,
    verbose: int,
    quiet: bool,
    debug: bool,
    **flags: Any,
) -> None:
    """Stitch the events in --input and write users and id_map to --output.

    \b
    Example:
      stitcher run --input fixtures/shared_family_computer --output out/

    Exit codes: 0 done, 1 bad input or failure (nothing written; also when another run holds
    the output's lock), 2 bad usage, 3 output written but a --fail-if condition was breached,
    130/143 stopped by SIGINT/SIGTERM (nothing written). Once the output is written the exit
    is 0 or 3, even if the summary cannot be printed.
    """
    from stitcher import api
    from stitcher.pipeline import STEPS

    _configure_logging(verbose, quiet)
    arguments = {k: flags.pop(k) for k in _RUN_FLAGS}
    arguments["config"] = arguments.pop("config_file")
    arguments["hubs"] = not arguments.pop("no_hubs")
    arguments["fail_if"] = flags.pop("fail_if")
    arguments["report"] = not flags.pop("no_report")
    arguments["force"] = flags.pop("force")
    arguments["wait"] = flags.pop("wait_seconds")
    show_progress = not quiet and sys.stderr.isatty()
    breach: ThresholdBreached | None = None
    with contextlib.ExitStack() as stack:
        if show_progress:
            from rich.console import Console

            status = stack.enter_context(Console(stderr=True).status("starting"))

            def progress(step: str) -> None:
                status.update(f"{step} ({STEPS.index(step) + 1}/{len(STEPS)})")

            arguments["progress"] = progress
        try:
            result = api.run(input_dir, output_dir, **arguments)
        except ThresholdBreached as exc:
            breach, result = exc, exc.result
    if not quiet:
        record = result.record
        persons = record["persons"]
        edges = record["edges"]
        ids = sum(v for k, v in record["identifiers"].items() if not k.endswith("_quarantined"))
        junk_ids = sum(v for k, v in record["identifiers"].items() if k.endswith("_quarantined"))
        _after_output(
            f"Stitched {record['input']['events']:,} events into {persons['count']:,} persons "
            f"({ids:,} identifiers; {edges['kept']:,} links kept, {edges['rejected']:,} refused; "
            f"{junk_ids:,} junk or hub ids quarantined) in "
            f"{record['timings_seconds']['total']:.1f} s\n"
            f"Wrote {str(result.output_dir).rstrip('/')}/: {', '.join(result.files)}"
        )
    late = interrupts.late()
    if late is not None:
        log.warning(
            "%s arrived while the new output was being put in place; the run finished",
            interrupts.signal_name(late),
        )
    for outcome in result.thresholds:
        if outcome.breached:
            _after_output(f"Threshold breached: {outcome.describe()}", err=True)
        elif outcome.value is None and not quiet:
            _after_output(f"Threshold not checked: {outcome.describe()}", err=True)
    if breach is not None:
        sys.exit(breach.exit_code)


def _after_output(text: str, err: bool = False) -> None:
    """Print once the new output is in place. A stdout that cannot take it (`/dev/full`, a pipe
    `| head` closed) must not turn the run into a failure: exit 1 says nothing was written,
    and a scheduler would run it again. The rest of the output goes nowhere."""
    try:
        click.echo(text, err=err)
    except OSError as exc:
        stream = sys.stderr if err else sys.stdout
        _discard_stream(stream)
        log.warning(
            "could not print to %s (%s); the output is written",
            "stderr" if err else "stdout",
            exc.strerror or type(exc).__name__,
        )


def _discard_stream(stream: Any) -> None:
    """Point a failed stream at /dev/null: what Python still holds for it (written again when
    the interpreter exits, which would fail the exit code with 120) then goes nowhere."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _parse_conditions(values: tuple[str, ...]) -> tuple[str, ...]:
    """Checked here, so that a bad condition is a usage error (exit 2) before anything runs;
    the run parses them again."""
    from stitcher.inspection.thresholds import parse_condition

    try:
        for value in values:
            parse_condition(value)
        return values
    except StitcherError as exc:
        raise click.BadParameter(str(exc), param_hint="'--fail-if'") from exc


@cli.command("generate")
@click.argument("output_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--events",
    type=click.IntRange(min=0),
    default=100_000,
    show_default=True,
    help="Events to generate.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="File format of the tables.",
)
@click.option(
    "--files-per-table",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="More than 1 writes Hive-partitioned folders (tracks/dt=.../part-N).",
)
@click.option(
    "--guest-login-people",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="People who also log in with a shared 'guest-account' user id.",
)
@click.option(
    "--hardcoded-device-people",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="People whose app sends one hard-coded anonymous id.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into OUTPUT_DIR even when it holds event tables generate did not write.",
)
@_common_options
@_reports_errors
def generate_command(
    output_dir: Path,
    events: int,
    seed: int,
    file_format: str,
    files_per_table: int,
    guest_login_people: int,
    hardcoded_device_people: int,
    force: bool,
    verbose: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Write synthetic Segment-style events with ground truth (truth.parquet) to OUTPUT_DIR.

    The data has shared devices, resets, aliases and junk ids; truth.parquet says who is really
    who, for measuring precision and recall. Same seed, same bytes.
    """
    from stitcher.synthetic.generate import GeneratorConfig, check_target, generate

    _configure_logging(verbose, quiet)
    try:
        config = GeneratorConfig(
            n_events=events,
            seed=seed,
            file_format=file_format,
            files_per_table=files_per_table,
            guest_login_people=guest_login_people,
            hardcoded_device_people=hardcoded_device_people,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not force:
        check_target(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = generate(output_dir, config)
    if not quiet:
        click.echo(
            f"Generated {summary['events']:,} events, {summary['identifiers']:,} identifiers of "
            f"{summary['people']:,} people in {output_dir}/ (ground truth: truth.parquet)"
        )


@cli.command("config")
@click.option("--show", is_flag=True, help="Print the effective config as TOML.")
@_stitch_options
@_common_options
@_reports_errors
def config_command(show: bool, verbose: int, quiet: bool, debug: bool, **flags: Any) -> None:
    """Check the config file and show the effective settings (file + flags + defaults).

    Without --show it only validates: exit 0 and `config OK`, or one error line and exit 1.
    """
    _configure_logging(verbose, quiet)
    options = _build_options(Path("."), Path("out"), flags)
    if show:
        click.echo(effective_config_toml(options), nl=False)
    elif not quiet:
        click.echo("config OK")


@cli.command("explain")
@click.argument("output_dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("identifiers", nargs=-1, required=True, metavar="ID [ID2]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools instead of text.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="List at most N identifiers/links per section (0: all). Default: 100 for text, all "
    "for --json.",
)
@_common_options
@_reports_errors
@_signals_when_done
def explain_command(
    output_dir: Path,
    identifiers: tuple[str, ...],
    as_json: bool,
    limit: int | None,
    verbose: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Say why ID is in its person, or what joins ID and ID2, from a run's OUTPUT_DIR.

    An ID is typed (`user_id:abc`, `anonymous_id:xyz`) or bare when only one identifier has
    that value. With one ID: its person, the person's identifiers, the links that hold it
    together and the links that were refused, each with its first evidence. With two: the
    shortest chain of kept links between them, or, when they are in different persons, the
    nearest refused link(s) that would have joined them.

    \b
    Examples:
      stitcher explain out/ user_id:user_1001
      stitcher explain out/ user_id:user_1001 user_id:user_1002 --json
    """
    import json

    from stitcher import api

    _configure_logging(verbose, quiet)
    if len(identifiers) > 2:
        raise click.UsageError("give one ID, or two to explain what joins them")
    result = api.explain(
        output_dir, *identifiers, limit=limit if limit is not None or as_json else 100
    )
    click.echo(
        json.dumps(result.as_record(), indent=2, ensure_ascii=False) if as_json else result.text()
    )


@cli.command("diff")
@click.argument("old_dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("new_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools instead of text.")
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Examples listed for each kind of change.",
)
@_common_options
@_reports_errors
@_signals_when_done
def diff_command(
    old_dir: Path,
    new_dir: Path,
    as_json: bool,
    sample: int,
    verbose: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Compare two run outputs: persons merged, split, re-keyed; identifiers added, removed.

    \b
    Example:
      stitcher diff out-yesterday/ out/
    """
    import json

    from stitcher import api

    _configure_logging(verbose, quiet)
    diff = api.diff(old_dir, new_dir, sample=sample)
    if as_json:
        click.echo(json.dumps(diff.as_record(), indent=2, ensure_ascii=False))
    else:
        click.echo(diff.text(str(old_dir), str(new_dir)))


@cli.command("sql")
@click.option(
    "--dialect",
    type=click.Choice(tuple(DIALECTS)),
    default="duckdb",
    show_default=True,
    help="The SQL dialect to write (translated from the pipeline's DuckDB SQL by sqlglot).",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    required=True,
    metavar="NAME=TABLE",
    callback=lambda ctx, param, values: _parse_key_values(values, "--table"),
    help="An input table in the Segment warehouse schema, e.g. tracks=analytics.tracks "
    "(names: tracks, pages, screens, identifies, aliases). Repeatable.",
)
@click.option(
    "--trait",
    "traits",
    multiple=True,
    help="A column of identifies to carry into users as a trait. Repeatable.",
)
@click.option(
    "--output-schema",
    default=None,
    metavar="SCHEMA",
    help="Where the outputs and the script's scratch tables (stitcher__*) go: SCHEMA or "
    "DATABASE.SCHEMA (default: the session's current schema; BigQuery needs a dataset).",
)
@click.option(
    "--output-table",
    "output_tables",
    multiple=True,
    metavar="NAME=TABLE",
    callback=lambda ctx, param, values: _parse_key_values(values, "--output-table"),
    help="Name an output's table, e.g. users=stitched_users (outputs: id_map, users, edges, "
    "rejected_edges, quarantine; default: the output's name). Repeatable.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write one file per step into this folder (NNN_<table>.sql) instead of printing "
    "one script.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Config file (TOML), as for `stitcher run`.",
)
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default=None,
    help=f"Merge policy; the ones written in SQL ({', '.join(script_policies())}).",
)
@click.option("--dedupe/--no-dedupe", default=None, help="Count each message id once.")
@click.option(
    "--junk-file",
    "junk_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Extra junk ids, as for `stitcher run`. Repeatable.",
)
@click.option("--replace-junk", is_flag=True, help="Use only the --junk-file lists.")
@click.option("--no-hubs", is_flag=True, help="Turn hub detection off.")
@click.option(
    "--max-rounds",
    type=click.IntRange(1, MAX_ROUNDS),
    default=None,
    help="The components loop's bound (default 100; a real graph needs about log2(ids)).",
)
@_common_options
@_reports_errors
def sql_command(
    dialect: str,
    tables: tuple[tuple[str, str], ...],
    traits: tuple[str, ...],
    output_schema: str | None,
    output_tables: tuple[tuple[str, str], ...],
    out_dir: Path | None,
    verbose: int,
    quiet: bool,
    debug: bool,
    **flags: Any,
) -> None:
    """Write the pipeline as SQL to run inside a warehouse (or Spark, or DuckDB).

    \b
    Example:
      stitcher sql --dialect snowflake --table tracks=analytics.tracks \\
        --table identifies=analytics.identifies --trait email --out stitcher_sql/

    The components step is a loop: run its block until its check query returns 0, or let
    stitcher.warehouse.run_script(path, connection) run the whole script over a DB-API
    connection. The script's own tables are named stitcher__*; it stops before touching an
    output table that `stitcher sql` did not make.
    """
    from stitcher.warehouse.script import OutputTables, build, render_files, render_script

    _configure_logging(verbose, quiet)
    options = _build_options(Path("."), Path("out"), flags)
    mapping = dict(tables)
    outputs = OutputTables(output_schema, dict(output_tables))
    items = build(mapping, options, traits, dialect, outputs)
    if out_dir is None:
        click.echo(render_script(items, dialect, mapping, outputs=outputs), nl=False)
        return
    files = render_files(items, dialect, mapping, outputs=outputs)
    try:
        stale = sorted(out_dir.glob("[0-9][0-9][0-9]_*.sql"))
        if stale and not _holds_our_script(out_dir):
            # Numbered .sql files of someone else's (a migrations folder): not ours to delete.
            raise OutputError(
                f"--out {out_dir} holds {', '.join(p.name for p in stale[:3])}"
                f"{' and more' if len(stale) > 3 else ''}, which stitcher did not write; choose "
                "another folder"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in stale:
            path.unlink()
        for name, text in files.items():
            (out_dir / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {out_dir}: {exc.strerror}") from exc
    if not quiet:
        click.echo(f"Wrote {len(files)} files to {out_dir}/")


def _holds_our_script(folder: Path) -> bool:
    """Whether `folder` holds a script `stitcher sql` wrote: its first file opens so."""
    from stitcher.warehouse.script import SCRIPT_MARK, SCRIPT_README

    try:
        with (folder / SCRIPT_README).open(encoding="utf-8", errors="replace") as first:
            return first.readline().startswith(SCRIPT_MARK)
    except OSError:
        return False


def main(argv: list[str] | None = None, prog_name: str | None = None) -> None:
    cli.main(args=argv, prog_name=prog_name or "stitcher")
