"""Where a `stitcher run` spends its time: every SQL step with DuckDB's own profile.

    python bench/profile_steps.py DATA_DIR OUT_DIR [--dedupe] [--policy connected] [--top 3]
        [--memory-limit 600MB --temp-dir SPILL_DIR]

Runs the pipeline in this process with DuckDB's JSON profiling switched on around each
`CREATE TABLE ... AS` (one per sql/*.sql step) and prints, per step, its wall time, the CPU time
DuckDB reports (summed over its threads) and the costliest operators; Python-side calls that
take long (fetching the graph for the components solver, ...) and the pipeline's own step
timings follow. To profile another tree's stitcher (before/after), run it from that tree with
PYTHONPATH=TREE. The Python side (pyarrow writing, the report) is best seen with py-spy:

    py-spy record -o profile.svg -- python -m stitcher run --input DATA_DIR --output OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from stitcher import pipeline
from stitcher.config import RunOptions
from stitcher.engines.duckdb import DuckDBEngine

_INFO_KEYS = ("Aggregates", "Conditions", "Condition", "Groups", "Join Type", "Projections")


def _operators(node: dict, found: list[tuple[float, str, int, str]]) -> None:
    info = node.get("extra_info") or {}
    detail = {k: v for k, v in info.items() if k in _INFO_KEYS}
    found.append(
        (
            float(node.get("timing", 0.0)),
            str(node.get("type") or node.get("operator_type")),
            int(node.get("intermediate_rows") or node.get("operator_cardinality") or 0),
            str(detail)[:160],
        )
    )
    for child in node.get("children", []):
        _operators(child, found)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dedupe", action="store_true")
    parser.add_argument("--policy", default="guarded")
    parser.add_argument("--top", type=int, default=3, help="operators shown per step")
    parser.add_argument("--memory-limit", help="as stitcher run's, e.g. 600MB")
    parser.add_argument("--temp-dir", type=Path, help="as stitcher run's: where DuckDB spills")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="stitcher-profile-"))
    execute = DuckDBEngine.execute
    count = [0]
    totals = {"wall": 0.0, "cpu": 0.0}

    def profiled(self: DuckDBEngine, sql: str, params: object = None) -> None:
        if not sql.lstrip().upper().startswith("CREATE TABLE"):
            return execute(self, sql, params)
        name = sql.split()[2].strip('"')
        count[0] += 1
        path = scratch / f"{count[0]:02d}.json"
        self._con.execute("PRAGMA enable_profiling = 'json'")
        self._con.execute(f"PRAGMA profiling_output = '{path}'")
        started = time.perf_counter()
        try:
            execute(self, sql, params)
        finally:
            wall = time.perf_counter() - started
            self._con.execute("PRAGMA disable_profiling")
        profile = json.loads(path.read_text())
        cpu = float(profile.get("query", {}).get("cpu_time", 0.0))
        totals["wall"] += wall
        totals["cpu"] += cpu
        found: list[tuple[float, str, int, str]] = []
        for node in profile.get("operator", []):
            _operators(node, found)
        print(f"{name:24s} wall {wall:6.2f} s  cpu {cpu:6.2f} s")
        for seconds, operator, rows, detail in sorted(found, reverse=True)[: args.top]:
            if seconds >= 0.05:
                print(f"    {seconds:6.2f} s {operator} ({rows:,} rows) {detail}")
        return None

    def timed(method_name: str) -> None:
        method = getattr(DuckDBEngine, method_name)

        def wrapper(self: DuckDBEngine, sql: str, *rest: object) -> object:
            started = time.perf_counter()
            result = method(self, sql, *rest)
            elapsed = time.perf_counter() - started
            if elapsed >= 0.1:
                print(f"{method_name:24s} wall {elapsed:6.2f} s  {' '.join(sql.split())[:60]}")
            return result

        setattr(DuckDBEngine, method_name, wrapper)

    DuckDBEngine.execute = profiled  # type: ignore[method-assign]
    for method_name in ("fetch_arrow", "fetch_rows", "register_arrow"):
        timed(method_name)
    logging.basicConfig(level=logging.WARNING)
    shutil.rmtree(args.out_dir, ignore_errors=True)
    options = RunOptions(
        input_dir=args.data_dir,
        output_dir=args.out_dir,
        dedupe=args.dedupe,
        policy=args.policy,
        memory_limit=args.memory_limit,
        temp_dir=args.temp_dir,
    )
    started = time.perf_counter()
    result = pipeline.run(options)
    print(f"SQL steps: wall {totals['wall']:.2f} s, DuckDB cpu {totals['cpu']:.2f} s")
    print(f"pipeline steps (run.json): {result.record['timings_seconds']}")
    print(f"total in process: {time.perf_counter() - started:.2f} s")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
