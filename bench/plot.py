"""Plot time and peak memory against events from one or more bench/run.py JSON files.

    python bench/plot.py bench/results.json [more.json ...] --out bench/scaling.png

Later files win when two measure the same (events, step). Both axes are logarithmic, so a
straight line of slope 1 is linear cost; the dotted black line is the output floor times 1.5
(the floor's, for files without an output floor).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

STYLE = {
    "floor": ("black", "o", "-"),
    "output_floor": ("dimgray", "o", ":"),
    "default": ("tab:blue", "s", "-"),
    "dedupe": ("tab:cyan", "s", "--"),
    "connected": ("tab:green", "^", "--"),
    "splink": ("tab:red", "D", "-"),
    "networkx": ("tab:orange", "v", "-"),
}


def load(paths: list[Path]) -> dict[str, dict[int, dict]]:
    by_step: dict[str, dict[int, dict]] = {}
    for path in paths:
        for row in json.loads(path.read_text())["results"]:
            if "median_wall_seconds" in row:
                by_step.setdefault(row["step"], {})[row["events"]] = row
    return by_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "scaling.png")
    args = parser.parse_args(argv)
    by_step = load(args.results)
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    for step, rows in by_step.items():
        color, marker, line = STYLE.get(step, ("gray", "x", ":"))
        events = sorted(rows)
        ax_time.plot(
            events,
            [rows[e]["median_wall_seconds"] for e in events],
            color=color,
            marker=marker,
            linestyle=line,
            label=step,
        )
        ax_mem.plot(
            events,
            [rows[e]["median_max_rss_bytes"] / 1e9 for e in events],
            color=color,
            marker=marker,
            linestyle=line,
            label=step,
        )
    # The target line: 1.5x the output floor (issue 29) where it was measured, else the floor.
    target = "output_floor" if "output_floor" in by_step else "floor"
    if target in by_step:
        events = sorted(by_step[target])
        ax_time.plot(
            events,
            [1.5 * by_step[target][e]["median_wall_seconds"] for e in events],
            color="black",
            linestyle=":",
            label=f"1.5 x {target.replace('_', ' ')}",
        )
    for ax, title, unit in (
        (ax_time, "wall time (median)", "seconds"),
        (ax_mem, "peak RSS (median)", "GB"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax_time.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
