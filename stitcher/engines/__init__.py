"""Engines by name. Nothing outside this package imports an engine's client library."""

from __future__ import annotations

import re
from collections.abc import Callable

from stitcher import interrupts
from stitcher.engines.base import Engine, EngineSettings
from stitcher.errors import ConfigError

# The engines' client libraries are imported when a run opens its engine, a Ctrl-C away from
# the call: one landing inside DuckDB's native module set-up aborted the process ("Critical
# nanobind error", SIGABRT) instead of raising. Their imports hold signals off (deferred()).


def _duckdb(settings: EngineSettings) -> Engine:
    with interrupts.deferred():
        from stitcher.engines.duckdb import DuckDBEngine

    return DuckDBEngine(settings)


def _spark(settings: EngineSettings) -> Engine:
    # pyspark is an optional extra: imported only when this engine is chosen.
    with interrupts.deferred():
        from stitcher.engines.spark import SparkEngine

    return SparkEngine(settings)


ENGINES: dict[str, Callable[[EngineSettings], Engine]] = {"duckdb": _duckdb, "spark": _spark}
# Engines whose url_tree lists an --input given as a URL (s3a://, hdfs://, file://...).
READS_URLS = frozenset({"spark"})
# Engines whose url_files publishes an --output given as a URL.
WRITES_URLS = frozenset({"spark"})


def open_engine(name: str, settings: EngineSettings) -> Engine:
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ConfigError(
            f"unknown engine {name!r}; valid engines: {', '.join(sorted(ENGINES))}"
        ) from None
    return factory(settings)


__all__ = ["ENGINES", "READS_URLS", "WRITES_URLS", "Engine", "EngineSettings", "open_engine"]


def regex_problem(engine: str, pattern: str) -> str | None:
    """Why `engine` cannot compile the junk regex `pattern`, or None: checked while the config
    is read, before any work. DuckDB compiles it with its own library (RE2: no lookaround, no
    backreferences); Spark's Java regexes are checked with Python's, the nearest syntax here."""
    if engine == "duckdb":
        with interrupts.deferred():
            from stitcher.engines.duckdb import regex_problem as duckdb_problem

        return duckdb_problem(pattern)
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None
