"""Wall time of every pipeline step of one `stitcher run`, without a profiler's overhead.

    python bench/step_times.py DATA_DIR OUT_DIR [--policy connected]
        [--memory-limit 6GB --temp-dir SPILL_DIR]

Runs the pipeline in this process, as `stitcher run` does (the same steps, writer and
options), and prints one line per step: the imports, opening the engine, registering the
input, each SQL or Python step, the run record, and the final writes. Where
bench/profile_steps.py shows what DuckDB does inside a step, this is for runs too long to
profile (100M events under a memory limit), and for before/after comparisons of another
tree (`PYTHONPATH=TREE python bench/step_times.py ...`).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

from stitcher.config import RunOptions  # noqa: E402
from stitcher.engines import EngineSettings, open_engine  # noqa: E402
from stitcher.engines.base import drop_tables  # noqa: E402
from stitcher.input.load import find_tables, register_inputs  # noqa: E402
from stitcher.output.run_record import RECORD_READS, measure  # noqa: E402
from stitcher.output.tables import OUTPUT_TABLES, OutputOrder, OutputWriter  # noqa: E402
from stitcher.pipeline import pipeline_steps  # noqa: E402
from stitcher.steps import Step, run_steps  # noqa: E402

_IMPORTED = time.perf_counter()


def step_times(
    data: Path,
    out: Path,
    policy: str | None = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> list[tuple[str, float]]:
    """(what, wall seconds) for each part of one run of `data` into the folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    options = RunOptions(
        input_dir=data,
        output_dir=out,
        memory_limit=memory_limit,
        **({"policy": policy} if policy else {}),
    )
    times: list[tuple[str, float]] = []

    def timed(name: str, started: float) -> None:
        times.append((name, time.perf_counter() - started))

    started = time.perf_counter()
    settings = EngineSettings(memory_limit=memory_limit, temp_dir=temp_dir)
    with open_engine("duckdb", settings) as engine:
        timed("open engine", started)
        started = time.perf_counter()
        loaded = register_inputs(
            engine,
            find_tables(data, options.input_format),
            options.identifier_types,
            options.policy,
        )
        timed("load", started)
        writer = OutputWriter(
            engine,
            out,
            options.output_format,
            OutputOrder.for_run(engine, options),
            side_by_side=not memory_limit,
        )

        def wrap(step: Step) -> Step:
            def run() -> None:
                begun = time.perf_counter()
                step.run()
                timed(step.name, begun)

            return dataclasses.replace(step, run=run)

        steps = pipeline_steps(engine, options, loaded, writer, [])
        started = time.perf_counter()
        run_steps(
            engine,
            [wrap(step) for step in steps],
            keep={*OUTPUT_TABLES, *RECORD_READS},
        )
        in_steps = sum(seconds for name, seconds in times[2:])
        times.append(("(between steps: drops)", time.perf_counter() - started - in_steps))
        started = time.perf_counter()
        measure(engine, options, loaded, {}, time.perf_counter())
        drop_tables(engine, "person_activity", "id_map_base")
        timed("run record", started)
        started = time.perf_counter()
        writer.finish()
        writer.close()
        timed("write the rest", started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--policy")
    parser.add_argument("--memory-limit")
    parser.add_argument("--temp-dir", type=Path)
    args = parser.parse_args()
    times = step_times(args.data, args.out, args.policy, args.memory_limit, args.temp_dir)
    print(f"{'imports':28s} {_IMPORTED - _STARTED:8.3f}")
    for name, seconds in times:
        print(f"{name:28s} {seconds:8.3f}")
    print(f"{'total':28s} {time.perf_counter() - _STARTED:8.3f}")


if __name__ == "__main__":
    main()
