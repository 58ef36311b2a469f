"""The Python API: `stitcher.run`, `stitcher.explain`, `stitcher.diff`.

The `stitcher` command is a thin layer over these three calls: the same options, the same
config file lookup and precedence (argument > config file > default), and one exception class
per exit code (stitcher/errors.py). A notebook, an Airflow `@task` or a Dagster asset calls
them instead of starting a process.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from stitcher.config import (
    INPUT_FORMATS,
    MAX_ROUNDS,
    MAX_SPARK_EXECUTOR_TIMEOUT,
    MAX_THREADS,
    OUTPUT_FORMATS,
    POLICIES,
    JunkRules,
    RunOptions,
    memory_limit_problem,
    read_junk_file,
)
from stitcher.config_file import find_config, options_from_config
from stitcher.engines import ENGINES, regex_problem
from stitcher.errors import ConfigError, ThresholdBreached, UsageError
from stitcher.location import Url, input_location, output_location

if TYPE_CHECKING:
    from stitcher.inspection.changes import OutputDiff
    from stitcher.inspection.explanations import IdentifierExplanation, PairExplanation
    from stitcher.pipeline import RunResult

PathLike = str | os.PathLike[str]
# The longest --wait: a week.
MAX_WAIT_SECONDS = 7 * 24 * 3600


def run(
    input: PathLike,
    output: PathLike,
    *,
    config: PathLike | None = None,
    policy: str | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    dedupe: bool | None = None,
    junk_files: Iterable[PathLike] = (),
    replace_junk: bool = False,
    hubs: bool = True,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_dir: PathLike | None = None,
    engine: str | None = None,
    spark_master: str | None = None,
    spark_conf: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    spark_executor_timeout: float | None = None,
    max_rounds: int | None = None,
    fail_if: Iterable[str] = (),
    report: bool = True,
    force: bool = False,
    wait: float = 0,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Stitch the events in `input` and replace `output` with the result, as `stitcher run`.

    Each argument is the option of the same name (`hubs=False` is `--no-hubs`, `report=False`
    `--no-report`, `wait` `--wait`); None leaves the config file's value, or the default. The
    config file is `config`, else ./stitcher.toml, else [tool.stitcher] in ./pyproject.toml,
    as for the command (relative to the current folder: pass `config` where that is not the
    project's, as under Airflow). `progress`, when given, is called with each step's name.

    Returns the RunResult: `metrics`, `thresholds` (each --fail-if condition with its value and
    outcome), `paths` of the files written, and `record` (run.json).

    Raises UsageError (exit 2) for a bad argument before anything runs; StitcherError or a
    subclass (exit 1) when the run fails, with the previous output unchanged; and
    ThresholdBreached (exit 3) when the output was written but a `fail_if` condition was
    breached (`.result` holds the RunResult).
    """
    from stitcher.pipeline import run as run_pipeline

    conditions = _conditions(fail_if)
    _check_choice("policy", policy, POLICIES)
    _check_choice("input_format", input_format, INPUT_FORMATS)
    _check_choice("output_format", output_format, OUTPUT_FORMATS)
    _check_choice("engine", engine, sorted(ENGINES))
    _check_range("threads", threads, 1, MAX_THREADS)
    _check_range("max_rounds", max_rounds, 1, MAX_ROUNDS)
    if spark_executor_timeout is not None and (
        isinstance(spark_executor_timeout, bool)
        or not isinstance(spark_executor_timeout, int | float)
        or not 1 <= spark_executor_timeout <= MAX_SPARK_EXECUTOR_TIMEOUT
    ):
        raise UsageError(
            f"spark_executor_timeout={spark_executor_timeout!r} must be from 1 to "
            f"{MAX_SPARK_EXECUTOR_TIMEOUT} seconds"
        )
    if memory_limit is not None:
        problem = (
            memory_limit_problem(memory_limit)
            if isinstance(memory_limit, str)
            else "give text like 6GB"
        )
        if problem is not None:
            raise UsageError(f"memory_limit={memory_limit!r}: {problem}")
    if isinstance(wait, bool) or not isinstance(wait, int | float):
        raise UsageError(f"wait={wait!r} must be a number of seconds")
    if not 0 <= wait <= MAX_WAIT_SECONDS:  # NaN fails the comparison too
        raise UsageError(f"wait={wait!r} must be from 0 to {MAX_WAIT_SECONDS} seconds")
    options = build_options(
        _location(input, "input", input_location),
        _location(output, "output", output_location),
        config=config,
        policy=policy,
        input_format=input_format,
        output_format=output_format,
        dedupe=dedupe,
        junk_files=junk_files,
        replace_junk=replace_junk,
        hubs=hubs,
        threads=threads,
        memory_limit=memory_limit,
        temp_dir=temp_dir,
        engine=engine,
        spark_master=spark_master,
        spark_conf=spark_conf,
        spark_executor_timeout=spark_executor_timeout,
        max_rounds=max_rounds,
    )
    options = dataclasses.replace(
        options, fail_if=conditions, report=report, force=force, wait_seconds=float(wait)
    )
    result = run_pipeline(options, progress)
    breached = result.breached
    if breached:
        raise ThresholdBreached(
            "; ".join(f"threshold breached: {o.describe()}" for o in breached)
            + f" (the output in {result.output_dir} was written)",
            result,
        )
    return result


def build_options(
    input_dir: Path | Url,
    output_dir: Path | Url,
    *,
    config: PathLike | None = None,
    junk_files: Iterable[PathLike] = (),
    replace_junk: bool = False,
    hubs: bool = True,
    spark_conf: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    temp_dir: PathLike | None = None,
    **settings: object,
) -> RunOptions:
    """The options a run will use: the config file, then the given settings on top (None
    leaves the file's value). `stitcher config --show` and `stitcher sql` read the same."""
    table, source = find_config(None if config is None else Path(config))
    pairs = tuple(spark_conf.items()) if isinstance(spark_conf, Mapping) else tuple(spark_conf)
    options = options_from_config(
        table,
        source,
        input_dir=input_dir,
        output_dir=output_dir,
        temp_dir=None if temp_dir is None else Path(temp_dir),
        spark_conf=pairs,
        **settings,
    )
    junk = JunkRules(values=(), patterns=()) if replace_junk else options.junk
    for path in junk_files:
        junk = junk.extended(
            read_junk_file(Path(path), functools.partial(regex_problem, options.engine))
        )
    return dataclasses.replace(options, junk=junk, hubs=options.hubs if hubs else ())


def explain(
    output: PathLike, identifier: str, other: str | None = None, *, limit: int | None = None
) -> IdentifierExplanation | PairExplanation:
    """Why `identifier` is in its person (an IdentifierExplanation), or, with `other`, what
    joins the two or would have (a PairExplanation), read from a run's output folder as
    `stitcher explain` does. An id is typed (`user_id:abc`) or bare when only one identifier
    has that value. `limit` caps the rows of each list (None: all). Raises InputError when the
    folder or an id cannot be found."""
    from stitcher.inspection.explanations import explain_identifier, explain_pair

    _check_range("limit", limit, 0, None)
    folder = _folder(output, "output")
    if other is None:
        return explain_identifier(folder, identifier, limit=limit or None)
    return explain_pair(folder, identifier, other)


def diff(old: PathLike, new: PathLike, *, sample: int = 5) -> OutputDiff:
    """What changed between two run outputs, as `stitcher diff`: an OutputDiff with `counts`
    (persons merged, split, re-keyed; identifiers added, removed, moved) and `samples` (the
    first `sample` of each kind, in a fixed order)."""
    from stitcher.inspection.changes import diff_outputs

    _check_range("sample", sample, 0, None)
    return diff_outputs(_folder(old, "old"), _folder(new, "new"), sample=sample)


def _location(value: PathLike, name: str, parse: Callable[[str], Path | Url]) -> Path | Url:
    if not isinstance(value, str | os.PathLike):
        raise UsageError(f"{name}={value!r} must be a path (str or Path)")
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise UsageError(f"{name}={value!r} must be a non-empty path")
    return parse(text)


def _folder(value: PathLike, name: str) -> Path:
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise UsageError(f"{name}={value!r} must be a path (str or Path)")
    return Path(value)


def _check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value is not None and value not in choices:
        raise UsageError(f"{name}={value!r} is not one of {', '.join(choices)}")


def _check_range(name: str, value: object, low: int, high: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name}={value!r} must be an integer")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise UsageError(f"{name}={value!r} must be {span}")


def _conditions(fail_if: Iterable[str]) -> tuple:
    from stitcher.inspection.thresholds import parse_condition

    if isinstance(fail_if, str):
        fail_if = (fail_if,)  # one condition, not its characters
    try:
        return tuple(parse_condition(text) for text in fail_if)
    except ConfigError as exc:
        raise UsageError(f"fail_if: {exc}") from None


__all__ = ["build_options", "diff", "explain", "run"]
