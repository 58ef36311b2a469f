"""Wall time of every pipeline step of one `stitcher run`, without a profiler's overhead.

    python bench/step_times.py DATA_DIR OUT_DIR [--policy connected]
        [--memory-limit 6GB --temp-dir SPILL_DIR]

Runs `stitcher run` in this process (pipeline.run, the command's own code) with each of its
steps timed, and prints one line per step, then the run's own step groups as run.json records
them (load, write, compare, report...) and the whole. Where bench/profile_steps.py shows what
DuckDB does inside a step, this is for runs too long to profile (100M events under a memory
limit), and for before/after comparisons of another tree (`PYTHONPATH=TREE python
bench/step_times.py ...`).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from stitcher import pipeline  # noqa: E402
from stitcher.config import RunOptions  # noqa: E402
from stitcher.steps import Step  # noqa: E402

_IMPORTED = time.perf_counter()


def step_times(options: RunOptions) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """Run `options` as `stitcher run` does; returns (step name, wall seconds) for every step
    in order, and run.json's timings."""
    times: list[tuple[str, float]] = []
    run_steps = pipeline.run_steps

    def timed(step: Step) -> Step:
        def run() -> None:
            started = time.perf_counter()
            step.run()
            times.append((step.name, time.perf_counter() - started))

        return dataclasses.replace(step, run=run)

    def timed_steps(engine: object, steps: Sequence[Step], **kwargs: object) -> None:
        run_steps(engine, [timed(step) for step in steps], **kwargs)

    pipeline.run_steps = timed_steps  # type: ignore[assignment]
    try:
        result = pipeline.run(options)
    finally:
        pipeline.run_steps = run_steps
    return times, result.record["timings_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--policy", default="guarded")
    parser.add_argument("--memory-limit")
    parser.add_argument("--temp-dir", type=Path)
    args = parser.parse_args()
    options = RunOptions(
        input_dir=args.data,
        output_dir=args.out,
        policy=args.policy,
        memory_limit=args.memory_limit,
        temp_dir=args.temp_dir,
    )
    times, groups = step_times(options)
    print(f"{'imports':28s} {_IMPORTED - _STARTED:8.3f}")
    for name, seconds in times:
        print(f"{name:28s} {seconds:8.3f}")
    for name, seconds in groups.items():
        print(f"{'run.json: ' + name:28s} {seconds:8.3f}")
    print(f"{'total':28s} {time.perf_counter() - _STARTED:8.3f}")


if __name__ == "__main__":
    main()
