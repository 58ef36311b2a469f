"""stitcher: batch identity stitching for product-analytics events.

The Python API (stitcher/api.py): `stitcher.run`, `stitcher.explain`, `stitcher.diff`, and the
exceptions they raise, one per exit code of the `stitcher` command (stitcher/errors.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stitcher.errors import (
    ConfigError,
    EngineError,
    InputError,
    OutputError,
    StitcherError,
    ThresholdBreached,
    UsageError,
)

if TYPE_CHECKING:
    from stitcher.api import diff, explain, run

__version__ = "0.1.0"

_API = ("run", "explain", "diff")


def __getattr__(name: str) -> Any:
    # Loaded on first use: `import stitcher` (and the command's start, which imports this
    # package) stays free of the engine and polars until a call needs them.
    if name in _API:
        from stitcher import api

        return getattr(api, name)
    raise AttributeError(f"module 'stitcher' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "EngineError",
    "InputError",
    "OutputError",
    "StitcherError",
    "ThresholdBreached",
    "UsageError",
    "__version__",
    "diff",
    "explain",
    "run",
]
