"""The Airflow examples, run as written by Airflow itself (`airflow dags test`).

Airflow lives in a virtualenv of its own (`.venv-airflow`, which .ci/run makes: apache-airflow
and this checkout), as on a real deployment where the workers' Python is not the one the tests
run in. Each test gives the DAG files, copied unchanged from examples/, an Airflow home of its
own (a SQLite metadata database) and the environment a deployment would set: the virtualenv's
`stitcher`, an explicit config file, the events and the output folder.

What is checked, through Airflow's own database: a good run succeeds (and the @task variant's
metrics reach XCom); a breached --fail-if threshold (exit 3) fails the task at once, without a
retry, with the output written; a failed run (exit 1) is put up for retry, with the previous
output untouched.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, file_bytes, tool_bin

pytestmark = [pytest.mark.slow, pytest.mark.scheduler]

EXAMPLES = REPO / "examples"
DAG_FILES = ("airflow_dag.py", "airflow_task_dag.py")
# Below every threshold in the examples' FAIL_IF (no refused link, one small person).
CLEAN = FIXTURES / "several_devices_one_login"
# A third of its links are refused: rejected_share > 0.05 is breached.
BREACHING = FIXTURES / "shared_family_computer"


def _airflow_bin() -> Path:
    return tool_bin(
        ".venv-airflow", "STITCHER_AIRFLOW_PYTHON", "STITCHER_REQUIRE_SCHEDULERS",
        "python3 -m venv .venv-airflow && "
        ".venv-airflow/bin/pip install 'apache-airflow==3.3.2' -e .",
        "airflow", "stitcher",
    )  # fmt: skip


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An Airflow home with the example DAGs and a migrated database, shared by the tests
    (each run has a logical date of its own)."""
    bin_dir = _airflow_bin()
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    for name in DAG_FILES:
        shutil.copyfile(EXAMPLES / name, dags / name)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "STITCHER_"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # the worker's PATH does not hold stitcher: the DAG is given the virtualenv's
        "PATH": "/usr/bin:/bin",
        "STITCHER_BIN": str(bin_dir / "stitcher"),
    }
    subprocess.run(
        [str(bin_dir / "airflow"), "db", "migrate"],
        env=env, cwd=home, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return {"bin": bin_dir, "home": home, "env": env, "days": itertools.count(1)}


@pytest.fixture
def airflow(airflow_home: dict, tmp_path: Path) -> dict:
    """The deployment's settings for one test: an explicit config file and an output folder;
    the test's runs are on a day of their own."""
    config = tmp_path / "deploy" / "stitcher.toml"
    config.parent.mkdir()
    config.write_text("dedupe = true\n", encoding="utf-8")
    output = tmp_path / "identity"
    env = {**airflow_home["env"], "STITCHER_CONFIG": str(config), "STITCHER_OUTPUT": str(output)}
    day = f"2026-10-{next(airflow_home['days']):02d}"
    return {**airflow_home, "env": env, "output": output, "config": config, "cwd": tmp_path,
            "day": day}  # fmt: skip


def _dags_test(airflow: dict, dag_id: str, events: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(airflow["bin"] / "airflow"), "dags", "test", dag_id, airflow["day"]],
        env={**airflow["env"], "STITCHER_EVENTS": str(events)},
        cwd=airflow["cwd"], capture_output=True, text=True, timeout=600,
    )  # fmt: skip


_THIS_RUN = (
    "FROM task_instance WHERE dag_id = ? AND task_id = 'stitch' AND run_id IN (SELECT run_id "
    "FROM dag_run WHERE dag_id = ? AND logical_date LIKE ?)"
)


def _task(airflow: dict, dag_id: str) -> tuple[str, int, int]:
    """This test's stitch task: (state, try_number, max_tries) in Airflow's database."""
    with sqlite3.connect(airflow["home"] / "airflow.db") as db:
        rows = db.execute(
            f"SELECT state, try_number, max_tries {_THIS_RUN}",
            (dag_id, dag_id, airflow["day"] + "%"),
        ).fetchall()
    assert len(rows) <= 1, rows
    return rows[0] if rows else ("", 0, 0)


def _xcom(airflow: dict, dag_id: str, key: str) -> object:
    with sqlite3.connect(airflow["home"] / "airflow.db") as db:
        (value,) = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'stitch' AND key = ? AND "
            "run_id IN (SELECT run_id FROM dag_run WHERE dag_id = ? AND logical_date LIKE ?)",
            (dag_id, key, dag_id, airflow["day"] + "%"),
        ).fetchone()
    return json.loads(value)


def _record(airflow: dict) -> dict:
    return json.loads((airflow["output"] / "run.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("dag_id", ["identity_stitching", "identity_stitching_api"])
def test_a_good_night_succeeds(airflow: dict, dag_id: str) -> None:
    done = _dags_test(airflow, dag_id, CLEAN)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _task(airflow, dag_id) == ("success", 1, 2)
    record = _record(airflow)
    # the config file reached the run: given explicitly, not found in a temporary folder
    assert record["options"]["config_file"] == str(airflow["config"])
    assert record["options"]["dedupe"] is True
    assert [t["outcome"] for t in record["thresholds"]] == ["passed", "passed", "not measured"]
    if dag_id == "identity_stitching_api":
        # the @task's return value, the run's metrics, in XCom for downstream tasks
        assert _xcom(airflow, dag_id, "return_value") == record["metrics"]


@pytest.mark.parametrize("dag_id", ["identity_stitching", "identity_stitching_api"])
def test_a_breached_threshold_fails_at_once_without_retry(airflow: dict, dag_id: str) -> None:
    done = _dags_test(airflow, dag_id, BREACHING)
    assert done.returncode != 0
    logs = done.stdout + done.stderr
    assert "AirflowFailException" in logs and "rejected_share" in logs
    # failed on its first try, though two retries are allowed
    assert _task(airflow, dag_id) == ("failed", 1, 2)
    record = _record(airflow)  # the output was written
    assert {t["condition"]: t["outcome"] for t in record["thresholds"]}["rejected_share>0.05"] == (
        "breached"
    )


@pytest.mark.parametrize("dag_id", ["identity_stitching", "identity_stitching_api"])
def test_a_failed_run_is_retried_and_writes_nothing(airflow: dict, dag_id: str) -> None:
    # last night's output, made by the command itself (quicker than through Airflow)
    subprocess.run(
        [str(airflow["bin"] / "stitcher"), "run", "--input", str(CLEAN), "--output",
         str(airflow["output"]), "-q"],
        check=True, timeout=300,
    )  # fmt: skip
    before = file_bytes(airflow["output"])
    # `dags test` waits out the retry delay (15 minutes) once the task is up for retry: the
    # test reads that state and stops it there.
    process = subprocess.Popen(
        [str(airflow["bin"] / "airflow"), "dags", "test", dag_id, airflow["day"]],
        env={**airflow["env"], "STITCHER_EVENTS": str(airflow["cwd"] / "no-events-here")},
        cwd=airflow["cwd"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    state = ""
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            state = _task(airflow, dag_id)[0]
            if state in ("up_for_retry", "failed", "success"):
                break
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    assert state == "up_for_retry", output[-3000:]
    assert "no-events-here" in output  # stitcher's one-line error, in the task's log
    assert file_bytes(airflow["output"]) == before
