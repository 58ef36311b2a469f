"""Command line: parse options, call the library, turn errors into one line and an exit code."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from stitcher import __version__
from stitcher.config import (
    OUTPUT_FORMATS,
    POLICIES,
    JunkRules,
    RunOptions,
    read_junk_file,
)
from stitcher.errors import EngineError, StitcherError

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
    """Turn failures into `Error: ...` and exit code 1; the traceback only with --debug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        try:
            return command(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except StitcherError as exc:
            if debug:
                traceback.print_exc()
                if isinstance(exc, EngineError) and exc.sql:
                    click.echo(f"failed SQL:\n{exc.sql}", err=True)
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("Error: interrupted; the previous output is unchanged", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the "
                "traceback, and please report it)",
                err=True,
            )
            sys.exit(EXIT_ERROR)

    return wrapper


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


@cli.command("run")
@click.option(
    "--input",
    "input_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    help="Folder holding tracks, pages, screens, identifies and/or aliases, each a "
    ".parquet/.csv/.csv.gz file or a folder of them (Hive partitions allowed).",
)
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write id_map, users, edges, rejected_edges, quarantine and run.json into. "
    "Replaced atomically: a failed run leaves the previous output untouched.",
)
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default="guarded",
    show_default=True,
    help="guarded: an anonymous id joins at most one user id (its earliest), aliases merge "
    "user ids. connected: plain connected components over every non-junk link.",
)
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    default="parquet",
    show_default=True,
    help="File format of the output tables (CSV writes id lists as JSON arrays).",
)
@click.option(
    "--dedupe",
    is_flag=True,
    help="Count each message id once (drops duplicate deliveries; about one more pass over "
    "the events).",
)
@click.option(
    "--junk-file",
    "junk_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Extra junk ids, one per line; `regex:PATTERN` lines are full-match regexes, `#` "
    "comments. Repeatable.",
)
@click.option(
    "--replace-junk",
    is_flag=True,
    help="Use only the --junk-file lists, not the built-in junk list.",
)
@click.option("--threads", type=int, default=None, help="Engine threads (default: all cores).")
@click.option(
    "--memory-limit",
    default=None,
    help="Engine memory limit, e.g. 6GB; past it the engine spills to --temp-dir.",
)
@click.option(
    "--temp-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the engine spills (default: inside the temporary output folder).",
)
@_common_options
@_reports_errors
def run_command(
    input_dir: Path,
    output_dir: Path,
    policy: str,
    output_format: str,
    dedupe: bool,
    junk_files: tuple[Path, ...],
    replace_junk: bool,
    threads: int | None,
    memory_limit: str | None,
    temp_dir: Path | None,
    verbose: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Stitch the events in --input and write users and id_map to --output.

    \b
    Example:
      stitcher run --input fixtures/shared_family_computer --output out/

    Exit codes: 0 done, 1 bad input or failure (nothing written), 2 bad usage.
    """
    from stitcher.pipeline import STEPS, run

    _configure_logging(verbose, quiet)
    junk = JunkRules(values=(), patterns=()) if replace_junk else JunkRules()
    for path in junk_files:
        junk = junk.extended(read_junk_file(path))
    options = RunOptions(
        input_dir=input_dir,
        output_dir=output_dir,
        policy=policy,
        output_format=output_format,
        dedupe=dedupe,
        junk=junk,
        threads=threads,
        memory_limit=memory_limit,
        temp_dir=temp_dir,
    )
    show_progress = not quiet and sys.stderr.isatty()
    if show_progress:
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("starting") as status:

            def progress(step: str) -> None:
                status.update(f"{step} ({STEPS.index(step) + 1}/{len(STEPS)})")

            result = run(options, progress)
    else:
        result = run(options)
    if not quiet:
        record = result.record
        persons = record["persons"]
        edges = record["edges"]
        ids = sum(v for k, v in record["identifiers"].items() if not k.endswith("_quarantined"))
        junk_ids = sum(v for k, v in record["identifiers"].items() if k.endswith("_quarantined"))
        click.echo(
            f"Stitched {record['input']['events']:,} events into {persons['count']:,} persons "
            f"({ids:,} identifiers; {edges['kept']:,} links kept, {edges['rejected']:,} refused; "
            f"{junk_ids:,} junk or hub ids quarantined) in "
            f"{record['timings_seconds']['total']:.1f} s"
        )
        click.echo(f"Wrote {output_dir}/: {', '.join(result.files)}")


@cli.command("generate")
@click.argument("output_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--events", type=int, default=100_000, show_default=True, help="Events to generate.")
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
    type=int,
    default=1,
    show_default=True,
    help="More than 1 writes Hive-partitioned folders (tracks/dt=.../part-N).",
)
@click.option(
    "--guest-login-people",
    type=int,
    default=0,
    show_default=True,
    help="People who also log in with a shared 'guest-account' user id.",
)
@click.option(
    "--hardcoded-device-people",
    type=int,
    default=0,
    show_default=True,
    help="People whose app sends one hard-coded anonymous id.",
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
    verbose: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Write synthetic Segment-style events with ground truth (truth.parquet) to OUTPUT_DIR.

    The data has shared devices, resets, aliases and junk ids; truth.parquet says who is really
    who, for measuring precision and recall. Same seed, same bytes.
    """
    from stitcher.generate import GeneratorConfig, generate

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
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = generate(output_dir, config)
    if not quiet:
        click.echo(
            f"Generated {summary['events']:,} events, {summary['identifiers']:,} identifiers of "
            f"{summary['people']:,} people in {output_dir}/ (ground truth: truth.parquet)"
        )


def main(argv: list[str] | None = None, prog_name: str | None = None) -> None:
    cli.main(args=argv, prog_name=prog_name or "stitcher")
