"""The node numbering alone: one ordered window (sql/33_node_ids.sql), the bucketed form
(sql/33_node_ids_bucketed.sql) and, where the engine has row positions (DuckDB), a sorted table
(sql/33_node_ids_sorted.sql), on DuckDB and on Spark, over the identifiers of a run.

Builds `identifiers_quarantined` (what sql/32_quarantine.sql makes) from DATA_DIR with the
embedded engine, then times each form (median of --repeat) on each engine, checks that all of
them give the same node ids, and prints the bucket sizes and, for Spark, whether the plan
moves every identifier into one partition.

    python bench/numbering.py DATA_DIR [--engines duckdb,spark] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import pyarrow as pa

from stitcher.config import RunOptions
from stitcher.engines import EngineSettings, open_engine
from stitcher.engines.base import Engine
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.graph.nodes import NUMBERING_FORMS, NUMBERING_STEPS, create_node_ids, drop_node_ids
from stitcher.input.load import find_tables, register_inputs
from stitcher.pipeline import build_tables
from stitcher.sql import render


class _KeepsQuarantined(DuckDBEngine):
    """Keeps a copy of identifiers_quarantined, which the pipeline drops once numbered."""

    kept: pa.Table | None = None

    def create_table_as(self, name: str, sql: str) -> None:
        if name in ("identifiers_checked", "identifiers_sorted"):
            self.kept = self.fetch_arrow("SELECT * FROM identifiers_quarantined")
        super().create_table_as(name, sql)


def quarantined_identifiers(data_dir: Path) -> pa.Table:
    options = RunOptions(data_dir, data_dir.parent / "unused")
    with _KeepsQuarantined() as engine:
        loaded = register_inputs(
            engine, find_tables(data_dir), options.identifier_types, options.policy
        )
        build_tables(engine, options, loaded)
        assert engine.kept is not None
        return engine.kept


def bucket_shares(engine: Engine) -> str:
    # The bucket of 33_node_ids_bucketed.sql, as its `keyed` CTE computes it.
    rows = engine.fetch_rows(
        "SELECT count(*) AS n FROM identifiers_quarantined WHERE quarantine_reason IS NULL "
        "GROUP BY identifier_type <> 'user_id', first_seen IS NULL, "
        "date_trunc('minute', first_seen), "
        "CASE WHEN first_seen IS NULL THEN substr(identifier, 1, 4) ELSE '' END"
    )
    sizes = sorted((int(r[0]) for r in rows), reverse=True)
    total = sum(sizes) or 1
    return (
        f"{len(sizes)} buckets for {total} usable identifiers; largest {sizes[0] if sizes else 0}"
        f" ({100 * (sizes[0] if sizes else 0) / total:.3f}%), median "
        f"{statistics.median(sizes) if sizes else 0}"
    )


def spark_plan(engine: Engine, form: str) -> str:
    """How Spark spreads the rows of the row_number() window: the exchange below it."""
    df = engine._df(render(NUMBERING_STEPS[form]))  # type: ignore[attr-defined]
    plan = df._jdf.queryExecution().executedPlan().toString()
    window = plan.index("Window [row_number()")
    exchange = re.search(r"Exchange (\w+)", plan[window:])
    return f"row_number() after Exchange {exchange.group(1) if exchange else '?'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = quarantined_identifiers(args.data_dir)
    print(f"identifiers_quarantined: {table.num_rows} rows")
    results: dict[tuple[str, str], list[tuple]] = {}
    for name in args.engines.split(","):
        with open_engine(name, EngineSettings()) as engine:
            engine.register_arrow("identifiers_quarantined", table)
            print(f"{name}: {bucket_shares(engine)}")
            for form in NUMBERING_FORMS:
                if form == "sorted" and not engine.row_position:
                    continue
                seconds = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    create_node_ids(engine, form)
                    seconds.append(time.perf_counter() - started)
                    if len(seconds) < args.repeat:
                        drop_node_ids(engine, form)
                results[(name, form)] = engine.fetch_rows(
                    "SELECT identifier_type, identifier, node_id FROM identifiers_checked "
                    "ORDER BY identifier_type, identifier"
                )
                drop_node_ids(engine, form)
                plan = f", plan: {spark_plan(engine, form)}" if name == "spark" else ""
                runs = ", ".join(f"{s:.2f}" for s in seconds)
                print(f"{name} {form}: median {statistics.median(seconds):.2f} s ({runs}){plan}")
    reference = next(iter(results.values()))
    assert all(rows == reference for rows in results.values()), "node ids differ"
    print(f"same node ids in all {len(results)} runs")


if __name__ == "__main__":
    main()
