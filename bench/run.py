"""Benchmark harness: the stitcher against the floor and its peers, one process per step.

    python bench/run.py --sizes 1M,10M --reps 3 --json bench/results.json

For each size it generates events with the project's generator (seeded, cached under
bench/data/events_<size>/), then runs every step --reps times, interleaved (rep 1 of every step,
then rep 2, ...) so that drift on a shared machine spreads over all steps alike. Each step is a
fresh process; its wall time is measured around the process and its peak RSS is the process's
own maximum resident set size as the kernel reports it to wait4() (what `/usr/bin/time -v`
prints). The table reports medians, and each step's ratio to the floor's median from the same
run. Absolute seconds drift on shared machines; ratios within one run are what count.

Steps:
  floor      bench/floor.py: one DuckDB pass grouping (anonymous_id, user_id) with min/max
             timestamp and count, the unavoidable cost of reading the identity columns
  output_floor
             bench/output_floor.py: that pass also keeping each pair's first evidence, then
             every typed identifier with its first/last seen and count written sorted as one
             Parquet file: the least a stitcher that keeps evidence per link pays
  default    stitcher run (guarded policy, every output written) into a new folder
  nightly    the same command into a folder that holds the previous night's output, as cron
             runs it: the run also compares with that output (changes_since_previous)
  dedupe     stitcher run --dedupe
  connected  stitcher run --policy connected (no merge rules beyond junk)
  splink     the same graph as `connected` through Splink's connected components on DuckDB
  networkx   the same graph through networkx
  baseline   stitcher run (default options) from another source tree, given by --baseline-tree
             (e.g. `git archive <commit>` unpacked): before/after numbers from one run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STEPS = ("floor", "output_floor", "default", "nightly", "dedupe", "connected", "splink", "networkx")
OPTIONAL_STEPS = ("baseline",)
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_size(text: str) -> int:
    """'20k' -> 20_000, '10M' -> 10_000_000, '1500000' -> 1_500_000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 20k, 1M, 100M)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def size_label(events: int) -> str:
    for suffix, unit in (("M", 1_000_000), ("k", 1_000)):
        if events >= unit and events % unit == 0:
            return f"{events // unit}{suffix}"
    return str(events)


@dataclass
class Measurement:
    wall_seconds: float
    max_rss_bytes: int
    returncode: int
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    # The run found a previous output and compared with it (run.json changes_since_previous).
    compared: bool = False


def measure(cmd: list[str], log_path: Path, timeout: float | None, cwd: Path = REPO) -> Measurement:
    """Run cmd in its own process; wall time around it and its peak RSS from wait4()."""
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                status = -1
                break
            time.sleep(0.005)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status) if status != -1 else -9
    error = ""
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        error = " | ".join(tail) or f"exit code {proc.returncode}"
    # Linux reports ru_maxrss in KiB.
    return Measurement(wall, usage.ru_maxrss * 1024, proc.returncode, error=error)


def ensure_data(events: int, seed: int, data_root: Path) -> Path:
    """Generated events of the given size, reused when an earlier run left the same config."""
    folder = data_root / f"events_{size_label(events)}_seed{seed}"
    summary = folder / "generator.json"
    if summary.exists():
        config = json.loads(summary.read_text()).get("config", {})
        if config.get("n_events") == events and config.get("seed") == seed:
            return folder
    print(f"generating {events:,} events into {folder} ...", file=sys.stderr, flush=True)
    sys.path.insert(0, str(REPO))
    from stitcher.synthetic.generate import GeneratorConfig, generate

    started = time.perf_counter()
    generate(folder, GeneratorConfig(n_events=events, seed=seed))
    print(f"  generated in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return folder


def step_command(step: str, data: Path, out: Path, args: argparse.Namespace) -> list[str]:
    py = sys.executable
    if step == "floor":
        return [py, str(BENCH / "floor.py"), str(data)]
    if step == "output_floor":
        return [py, str(BENCH / "output_floor.py"), str(data), str(out)]
    if step in ("splink", "networkx"):
        return [py, str(BENCH / f"peer_{step}.py"), str(data), str(out)]
    cmd = [py, "-m", "stitcher", "run", "--input", str(data), "--output", str(out), "-q"]
    if step == "baseline":
        # `env` execs python in the same process, so wait4() still measures the stitcher.
        # It runs in the baseline tree too: `python -m` puts the working folder first.
        cmd = ["env", f"PYTHONPATH={args.baseline_tree.resolve()}", *cmd]
    if args.memory_limit:
        cmd += ["--memory-limit", args.memory_limit]
    if args.temp_dir:
        cmd += ["--temp-dir", str(args.temp_dir)]
    extra = {
        "default": [],
        "nightly": [],
        "baseline": [],
        "dedupe": ["--dedupe"],
        "connected": ["--policy", "connected"],
    }
    return cmd + extra[step]


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for module in ("duckdb", "pyarrow", "numpy", "networkx", "splink"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # an absent peer is reported, not fatal
            versions[module] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "memory_bytes": memory,
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions,
        "commit": commit,
    }


def summarize(events: int, step: str, runs: list[Measurement]) -> dict:
    ok = [m for m in runs if m.returncode == 0]
    row: dict = {
        "events": events,
        "step": step,
        "reps": len(ok),
        "wall_seconds": [round(m.wall_seconds, 3) for m in runs],
        "max_rss_bytes": [m.max_rss_bytes for m in runs],
        "errors": [m.error for m in runs if m.error],
        "compared_with_previous": [m.compared for m in runs],
    }
    if ok:
        row["median_wall_seconds"] = round(statistics.median(m.wall_seconds for m in ok), 3)
        row["median_max_rss_bytes"] = int(statistics.median(m.max_rss_bytes for m in ok))
        keys = sorted({k for m in ok for k in m.timings})
        if keys:
            row["median_timings_seconds"] = {
                k: round(statistics.median(m.timings.get(k, 0.0) for m in ok), 3) for k in keys
            }
    return row


def add_ratios(rows: list[dict]) -> None:
    """Each row's ratio to the floor and to the output floor of its size, where measured."""
    for floor, key in (("floor", "ratio_to_floor"), ("output_floor", "ratio_to_output_floor")):
        floors = {
            r["events"]: r["median_wall_seconds"]
            for r in rows
            if r["step"] == floor and "median_wall_seconds" in r
        }
        for r in rows:
            if r["events"] in floors and "median_wall_seconds" in r:
                r[key] = round(r["median_wall_seconds"] / floors[r["events"]], 2)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| events | step | wall s (median) | x floor | x output floor | peak RSS GB (median) "
        "| reps | runs (s) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if "median_wall_seconds" not in r:
            reason = r["errors"][0] if r["errors"] else "not run"
            lines.append(
                f"| {size_label(r['events'])} | {r['step']} | failed | | | | 0 | {reason[:120]} |"
            )
            continue
        lines.append(
            f"| {size_label(r['events'])} | {r['step']} | {r['median_wall_seconds']:.2f} "
            f"| {r.get('ratio_to_floor', float('nan')):.2f} "
            f"| {r.get('ratio_to_output_floor', float('nan')):.2f} "
            f"| {r['median_max_rss_bytes'] / 1e9:.2f} | {r['reps']} "
            f"| {', '.join(f'{w:.2f}' for w in r['wall_seconds'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated, e.g. 20k,1M,10M")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"subset of {','.join(STEPS)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--memory-limit", default=None, help="passed to stitcher run")
    parser.add_argument("--temp-dir", type=Path, default=None, help="passed to stitcher run")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per process")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="source tree whose stitcher the 'baseline' step runs (added to --steps)",
    )
    args = parser.parse_args(argv)
    # Steps may run in another folder (baseline): every path they get is absolute.
    args.data_dir = args.data_dir.resolve()
    args.temp_dir = args.temp_dir.resolve() if args.temp_dir else None
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if args.baseline_tree and "baseline" not in steps:
        steps.insert(steps.index("default") + 1 if "default" in steps else len(steps), "baseline")
    unknown = sorted(set(steps) - set(STEPS) - set(OPTIONAL_STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; valid: {', '.join(STEPS + OPTIONAL_STEPS)}")
    if "baseline" in steps and not (args.baseline_tree and args.baseline_tree.is_dir()):
        parser.error("the baseline step needs --baseline-tree DIR (a stitcher source tree)")

    record = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {
            "sizes": sizes,
            "reps": args.reps,
            "steps": steps,
            "seed": args.seed,
            "memory_limit": args.memory_limit,
            "temp_dir": str(args.temp_dir) if args.temp_dir else None,
            "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
        },
        "commands": {},
        "results": [],
    }
    rows: list[dict] = []
    for events in sizes:
        data = ensure_data(events, args.seed, args.data_dir)
        work = args.data_dir / "runs" / size_label(events)
        work.mkdir(parents=True, exist_ok=True)
        runs: dict[str, list[Measurement]] = {s: [] for s in steps}
        previous = work / "previous_output"
        if "nightly" in steps:
            # The output a nightly run finds in place: one unmeasured default run of this tree.
            shutil.rmtree(previous, ignore_errors=True)
            subprocess.run(step_command("default", data, previous, args), check=True, cwd=REPO)
        for rep in range(args.reps):
            for step in steps:
                out = work / f"out_{step}"
                shutil.rmtree(out, ignore_errors=True)
                if step == "nightly":
                    shutil.copytree(previous, out)
                cmd = step_command(step, data, out, args)
                record["commands"][f"{size_label(events)} {step}"] = " ".join(cmd)
                cwd = args.baseline_tree.resolve() if step == "baseline" else REPO
                m = measure(cmd, work / f"{step}.log", args.timeout, cwd)
                run_json = out / "run.json"
                if m.returncode == 0 and run_json.exists():
                    run_record = json.loads(run_json.read_text())
                    m.timings = run_record.get("timings_seconds", {})
                    m.compared = "changes_since_previous" in run_record
                runs[step].append(m)
                shutil.rmtree(out, ignore_errors=True)
                status = "ok" if m.returncode == 0 else f"FAILED: {m.error}"
                print(
                    f"{size_label(events)} rep {rep + 1}/{args.reps} {step}: "
                    f"{m.wall_seconds:.2f} s, {m.max_rss_bytes / 1e9:.2f} GB {status}",
                    file=sys.stderr,
                    flush=True,
                )
        size_rows = [summarize(events, s, runs[s]) for s in steps]
        add_ratios(size_rows)
        rows.extend(size_rows)
        record["results"] = rows
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(rows))
    return 0 if all("median_wall_seconds" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
