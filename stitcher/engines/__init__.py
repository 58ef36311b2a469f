"""Engines by name. Nothing outside this package imports an engine's client library."""

from __future__ import annotations

from collections.abc import Callable

from stitcher.engines.base import Engine, EngineSettings
from stitcher.errors import ConfigError


def _duckdb(settings: EngineSettings) -> Engine:
    from stitcher.engines.duckdb import DuckDBEngine

    return DuckDBEngine(settings)


ENGINES: dict[str, Callable[[EngineSettings], Engine]] = {"duckdb": _duckdb}


def open_engine(name: str, settings: EngineSettings) -> Engine:
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ConfigError(
            f"unknown engine {name!r}; valid engines: {', '.join(sorted(ENGINES))}"
        ) from None
    return factory(settings)


__all__ = ["ENGINES", "Engine", "EngineSettings", "open_engine"]
