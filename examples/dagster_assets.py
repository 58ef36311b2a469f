"""Nightly identity stitching as a Dagster asset, with the Python API.

`dagster asset materialize -f dagster_assets.py --select identity_graph` (or a schedule in
your code location) runs `stitcher.run` and records the run's metrics as the materialization's
metadata, where Dagster's UI plots them night after night. Set the three places below in the
code location's environment or here; give the config file explicitly, since the process's
current folder is not your project's. A failed run (StitcherError, exit 1: nothing written,
the previous output untouched) is retried by the retry policy; a breached --fail-if threshold
(ThresholdBreached, exit 3: the output written) or a bad argument (UsageError) fails the asset
without a retry, since a retry would compare with the output just written and pass.
"""

from __future__ import annotations

import os

import dagster as dg

import stitcher

CONFIG = os.environ.get("STITCHER_CONFIG", "/opt/stitcher/stitcher.toml")
EVENTS = os.environ.get("STITCHER_EVENTS", "/data/warehouse/segment")
OUTPUT = os.environ.get("STITCHER_OUTPUT", "/data/identity/current")
FAIL_IF = ["largest_person>500", "rejected_share>0.05", "persons_changed>0.02"]


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=900))
def identity_graph() -> dg.MaterializeResult:
    """users and id_map: one row per person, and every identifier with its person."""
    try:
        result = stitcher.run(EVENTS, OUTPUT, config=CONFIG, fail_if=FAIL_IF)
    except (stitcher.ThresholdBreached, stitcher.UsageError) as exc:
        raise dg.Failure(description=f"stitcher: {exc}", allow_retries=False) from exc
    measured = {name: value for name, value in result.metrics.items() if value is not None}
    return dg.MaterializeResult(metadata={**measured, "output": dg.MetadataValue.path(OUTPUT)})


defs = dg.Definitions(assets=[identity_graph])
