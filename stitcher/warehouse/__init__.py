"""`stitcher sql`: the pipeline as a script for a warehouse (script.py: recorded from the
pipeline's own statements, guarded and published; dialects.py: what Snowflake and BigQuery
need rewritten), and `run_script`, the driver that runs such a script over a DB-API
connection: `from stitcher.warehouse import run_script`.

This module is also the dialects' registry, which the CLI reads at every start: it imports
nothing (run_script, which brings sqlglot, is loaded on first use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    """A SQL dialect `stitcher sql` writes.

    `distributed`: its engines spread a query over machines, where a window with ORDER BY and
    no PARTITION BY runs in one task, so node ids are numbered in buckets (Engine's
    distributed_numbering); DuckDB keeps its one ordered window, the fastest form there.
    `rewritten`: what sqlglot cannot translate one-to-one is rewritten on its syntax tree
    (dialects.py). `note`: what the script's header tells its reader about this dialect."""

    name: str
    distributed: bool = True
    rewritten: bool = False
    note: str = ""


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        Dialect("duckdb", distributed=False),
        Dialect("spark"),
        Dialect(
            "snowflake",
            rewritten=True,
            note="-- Snowflake: lower-case names are written as Snowflake stores unquoted names "
            "(upper\n-- case), so ANALYTICS.TRACKS and its TIMESTAMP column match "
            "analytics.tracks and\n-- timestamp; other names are kept exactly. The tests run "
            "it on an emulator\n-- (fakesnow), never on Snowflake itself.\n",
        ),
        Dialect(
            "bigquery",
            rewritten=True,
            note="-- BigQuery: the tables are created in the default dataset: run the script "
            "as one\n-- multi-statement query after SET @@dataset_id = '<dataset>'; (or give "
            "each job a\n-- default dataset). Checked as text only: never run against "
            "BigQuery by the tests.\n",
        ),
    )
}
DISTRIBUTED_DIALECTS = frozenset(name for name, d in DIALECTS.items() if d.distributed)
REWRITTEN_DIALECTS = tuple(name for name, d in DIALECTS.items() if d.rewritten)


def __getattr__(name: str) -> Any:
    if name == "run_script":
        from stitcher.warehouse.script import run_script

        return run_script
    raise AttributeError(f"module 'stitcher.warehouse' has no attribute {name!r}")


__all__ = ["DIALECTS", "DISTRIBUTED_DIALECTS", "REWRITTEN_DIALECTS", "Dialect", "run_script"]
