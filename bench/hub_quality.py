"""Hubs at any scale: precision, recall and the hubs found on generated data with a shared guest
login and a hard-coded device id, over a grid of sizes, trouble rates and seeds.

    python bench/hub_quality.py DATA_DIR [--sizes 5k,10k,20k,30k,50k,100k,300k,1M,3M]
        [--rates 600,1500,5000] [--seeds 11,12] [--extra -- --policy connected]

One guest login per RATE events (`--guest-login-people N/RATE`) and one person sending the
hard-coded device id per 10 x RATE events. Each dataset is generated once under DATA_DIR and
reused. Prints one line per dataset and a summary of those under 0.999 precision or recall.
The measurement behind RELIABILITY.md's known limit on hubs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from stitcher.synthetic.generate import GeneratorConfig, generate, pairwise_scores


def _size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--sizes", default="5k,10k,20k,30k,50k,100k,300k,1M,3M")
    parser.add_argument("--rates", default="600,1500,5000")
    parser.add_argument("--seeds", default="11,12")
    parser.add_argument("extra", nargs="*", help="extra `stitcher run` arguments (after --)")
    args = parser.parse_args(argv)
    below = []
    for n in (_size(s) for s in args.sizes.split(",")):
        for rate in (int(r) for r in args.rates.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                guests, hard = max(1, round(n / rate)), max(1, round(n / rate / 10))
                data = args.data_dir / f"events_{n}_r{rate}_s{seed}"
                if not (data / "truth.parquet").exists():
                    generate(
                        data,
                        GeneratorConfig(
                            n_events=n,
                            seed=seed,
                            guest_login_people=guests,
                            hardcoded_device_people=hard,
                        ),
                    )
                out = args.data_dir / f"out_{n}_r{rate}_s{seed}"
                started = time.perf_counter()
                command = [sys.executable, "-m", "stitcher", "run", "--input", str(data)]
                command += ["--output", str(out), "--no-report", "-q", *args.extra]
                subprocess.run(command, check=True)
                seconds = time.perf_counter() - started
                scores = pairwise_scores(
                    pl.read_parquet(out / "id_map.parquet"), pl.read_parquet(data / "truth.parquet")
                )
                hubs = json.loads((out / "run.json").read_text())["quarantine"]["hubs"]
                found = ", ".join(
                    f"{h['identifier'][:16]} ({h['rule']}: degree {h['degree']}, contention "
                    f"{h['contention']})"
                    for h in hubs
                )
                line = (
                    f"{n:>9,} events  1/{rate:<5} seed {seed}  guests {guests:>5}  hard {hard:>4}"
                    f"  precision {scores['precision']:.4f}  recall {scores['recall']:.4f}"
                    f"  {seconds:5.1f} s  hubs: {found or '-'}"
                )
                print(line, flush=True)
                if scores["precision"] < 0.999 or scores["recall"] < 0.999:
                    below.append(line)
    print(f"\n{len(below)} dataset(s) under 0.999 precision or recall")
    for line in below:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
