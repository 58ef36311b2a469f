"""Nightly identity stitching on Apache Airflow 3, alerting on suspicious runs.

Copy this file into your DAGs folder and adjust the paths (on Airflow 2, import BashOperator
from airflow.operators.bash and DAG from airflow). `stitcher run` exits:
  0  done;
  1  bad input or a failure: nothing was written, the previous output is untouched;
  3  the output was written, but a --fail-if threshold was breached (a mega person, many
     refused links, or persons changing too much since last night);
  143 stopped by SIGTERM (Airflow's timeout or a cleared task): nothing was written.
A second run on the same output while one is running exits 1 at once; `--wait SECONDS` makes it
wait for the first instead (max_active_runs=1 below keeps Airflow from starting two).
Airflow fails the task on any non-zero exit, so a breached threshold alerts like a failure, while
downstream readers already see the new output (use `skip_on_exit_code=3` instead to mark the task
skipped rather than failed).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator  # Airflow 3
from airflow.sdk import DAG

EVENTS = "/data/warehouse/segment"  # tracks/, pages/, identifies/, aliases/ ... (Parquet or CSV)
OUTPUT = "/data/identity/current"  # replaced atomically by every run

STITCH_COMMAND = (
    f"stitcher run --input {EVENTS} --output {OUTPUT} --quiet"
    " --fail-if 'largest_person>500'"
    " --fail-if 'rejected_share>0.05'"
    " --fail-if 'persons_changed>0.02'"
)

with DAG(
    dag_id="identity_stitching",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["identity"],
) as dag:
    stitch = BashOperator(
        task_id="stitch",
        bash_command=STITCH_COMMAND,
        # Never retry: a rerun would compare with the output the breached run just wrote, see
        # (almost) no change, and pass, hiding the alert.
        retries=0,
    )
