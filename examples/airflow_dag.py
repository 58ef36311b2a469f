"""Nightly identity stitching on Apache Airflow 3 with the `stitcher` command (BashOperator).

Copy this file into your DAGs folder and set the four places below, in the workers'
environment or here. What a worker needs:

- The command. A worker's PATH is rarely the one you installed stitcher with: give the
  virtualenv's own `stitcher` (STITCHER_BIN), or put it on the workers' PATH.
- The config file, given explicitly (STITCHER_CONFIG): BashOperator runs the command in a new
  temporary folder, where `./stitcher.toml` is not. A missing file fails the run (exit 1).
- The events and the output folder, as the workers see them (STITCHER_EVENTS, STITCHER_OUTPUT).

`stitcher run` exits:
  0   done;
  1   bad input or a failure: nothing was written, the previous output is untouched. Worth a
      retry (a full disk, a lost mount, another run holding the output's lock), so retried;
  3   the output was written, but a --fail-if threshold was breached (a mega person, many
      refused links, persons changing too much since last night, stale data). Not retried: a
      retry would compare with the output the breached run just wrote, see almost no change,
      and pass, hiding the alert. StitcherRun below fails the task at once instead;
  143 stopped by SIGTERM (Airflow's timeout, a cleared task): nothing was written.
A second run on the same output while one is running exits 1 at once; max_active_runs=1 keeps
Airflow from starting two. For the Python API in a @task, with the metrics in XCom, see
airflow_task_dag.py beside this file.
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

STITCHER = os.environ.get("STITCHER_BIN", "/opt/stitcher/.venv/bin/stitcher")
CONFIG = os.environ.get("STITCHER_CONFIG", "/opt/stitcher/stitcher.toml")
EVENTS = os.environ.get("STITCHER_EVENTS", "/data/warehouse/segment")  # tracks/, identifies/ ...
OUTPUT = os.environ.get("STITCHER_OUTPUT", "/data/identity/current")  # replaced whole, atomically
FAIL_IF = ("largest_person>500", "rejected_share>0.05", "persons_changed>0.02")
BREACHED = 3  # stitcher's exit code for a breached --fail-if threshold

STITCH_COMMAND = " ".join(
    [
        shlex.quote(STITCHER),
        "run",
        "--config",
        shlex.quote(CONFIG),
        "--input",
        shlex.quote(EVENTS),
        "--output",
        shlex.quote(OUTPUT),
        "--quiet",
        *(f"--fail-if {shlex.quote(condition)}" for condition in FAIL_IF),
    ]
)


class StitcherRun(BashOperator):
    """A BashOperator that fails the task without retrying when the run breached a threshold:
    exit 3 is first made a skip (BashOperator's skip_on_exit_code), then that skip a failure
    Airflow does not retry."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(skip_on_exit_code=BREACHED, **kwargs)

    def execute(self, context: object) -> object:
        try:
            return super().execute(context)
        except AirflowSkipException as exc:
            raise AirflowFailException(
                "stitcher: a --fail-if threshold was breached (the output was written; "
                "the breach is on stderr above)"
            ) from exc


with DAG(
    dag_id="identity_stitching",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["identity"],
) as dag:
    stitch = StitcherRun(
        task_id="stitch",
        bash_command=STITCH_COMMAND,
        retries=2,  # exit 1 (nothing written) is retried; exit 3 never is
        retry_delay=timedelta(minutes=15),
    )
