"""Nightly identity stitching on Apache Airflow 3 with the Python API, in a @task.

The task calls `stitcher.run` and returns the run's metrics, which Airflow pushes to XCom
(key `return_value`) for downstream tasks: alerting, a dashboard, a data-quality check.

What a worker needs: the package in the workers' Python (`pip install identity-stitcher`
beside Airflow; or run this task in a virtualenv of its own with @task.virtualenv or
@task.external_python), and the three places below, set in the workers' environment or here.
Pass the config file explicitly: a worker's current folder is not your project's, and
`./stitcher.toml` is looked up there.

Exceptions, one per exit code of the command: StitcherError (exit 1: nothing written, the
previous output untouched) is retried; UsageError (exit 2: a bad argument) and
ThresholdBreached (exit 3: written, but a --fail-if condition breached) fail the task without
retrying, since a retry would not fix the first and would hide the second (it would compare
with the output the breached run just wrote, and pass).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

CONFIG = os.environ.get("STITCHER_CONFIG", "/opt/stitcher/stitcher.toml")
EVENTS = os.environ.get("STITCHER_EVENTS", "/data/warehouse/segment")
OUTPUT = os.environ.get("STITCHER_OUTPUT", "/data/identity/current")
FAIL_IF = ["largest_person>500", "rejected_share>0.05", "persons_changed>0.02"]


@dag(
    dag_id="identity_stitching_api",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["identity"],
)
def identity_stitching_api() -> None:
    @task(retries=2, retry_delay=timedelta(minutes=15))
    def stitch() -> dict:
        import stitcher  # imported in the task: the scheduler's DAG parsing stays light

        try:
            result = stitcher.run(EVENTS, OUTPUT, config=CONFIG, fail_if=FAIL_IF)
        except (stitcher.ThresholdBreached, stitcher.UsageError) as exc:
            raise AirflowFailException(f"stitcher: {exc}") from exc
        return result.metrics  # to XCom: persons, largest_person, persons_changed, ...

    stitch()


identity_stitching_api()
