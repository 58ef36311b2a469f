"""`--engine spark` on a real standalone cluster: a master and a worker started from pyspark's
own `spark-class` on 127.0.0.1, in processes of their own.

The worker's PATH holds a `python3` that has what pyspark needs (pyarrow, pandas, numpy) and
not stitcher: the executors must get stitcher's code from the job itself. Every policy that
runs Python on the executors is compared with DuckDB's files, byte for byte; a worker killed
in the middle of a run must give one line within --spark-executor-timeout and leave the
previous output as it was; spark-submit runs README's recipe. Every JVM started here is
stopped at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow
import pytest

from conftest import FIXTURES, file_bytes, require_spark, run_cli, stitch

pytestmark = [pytest.mark.spark, pytest.mark.slow]

require_spark()

import pyspark  # noqa: E402

from stitcher.output.publish import HOST  # noqa: E402

SPARK_HOME = Path(pyspark.__file__).parent
OUTPUTS = ("id_map", "users", "edges", "rejected_edges", "quarantine")
# What pyspark's Python side needs on an executor for Arrow functions, and nothing else.
WORKER_PACKAGES = ("numpy", "numpy.libs", "pandas", "pyarrow", "dateutil", "pytz", "tzdata")
# Few shuffle partitions: the cluster default (200) costs far more than the work here.
SMALL = [
    "--spark-conf",
    "spark.sql.shuffle.partitions=4",
    "--spark-conf",
    "spark.ui.enabled=false",
    "--spark-conf",
    "spark.executor.memory=1g",
]


def _python_without_stitcher(folder: Path) -> Path:
    """A bin folder whose python3 is this Python's base interpreter with no site-packages but
    links to WORKER_PACKAGES: what a cluster's executors typically have."""
    site, bin_dir = folder / "site", folder / "bin"
    site.mkdir(parents=True)
    bin_dir.mkdir()
    packages = Path(pyarrow.__file__).resolve().parents[1]
    for name in WORKER_PACKAGES:
        if (packages / name).exists():
            (site / name).symlink_to(packages / name)
    python = bin_dir / "python3"
    python.write_text(
        "#!/bin/sh\n"
        f'export PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f'exec "{Path(sys._base_executable).resolve()}" -S "$@"\n'
    )
    python.chmod(0o755)
    return bin_dir


class Cluster:
    """A standalone master and its workers, each a process group of its own."""

    def __init__(self, root: Path, worker_path: str) -> None:
        self.root = root
        self.worker_path = worker_path
        self.processes: list[subprocess.Popen] = []
        self.worker: subprocess.Popen | None = None
        self.url = self._start_master()
        self.start_worker()

    def _spawn(
        self, name: str, *args: str, path: str | None = None
    ) -> tuple[subprocess.Popen, Path]:
        log = self.root / f"{name}-{len(self.processes)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK")}
        env.update(
            SPARK_HOME=str(SPARK_HOME),
            SPARK_LOG_DIR=str(self.root / "logs"),
            SPARK_LOCAL_IP="127.0.0.1",
        )
        if path is not None:
            env["PATH"] = path
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.processes.append(process)
        return process, log

    def _start_master(self) -> str:
        _, log = self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--webui-port",
            "0",
        )
        found = _wait_for(log, r"Starting Spark master at (spark://[0-9.]+:\d+)")
        return found.group(1)

    def start_worker(self) -> None:
        self.worker, log = self._spawn(
            "worker",
            "org.apache.spark.deploy.worker.Worker",
            self.url,
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "2g",
            "--webui-port",
            "0",
            "--work-dir",
            str(self.root / "work"),
            path=self.worker_path,
        )
        _wait_for(log, r"Successfully registered with master")

    def kill_worker(self) -> None:
        """The worker and its executors, as a machine lost would take them."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for(log: Path, pattern: str, seconds: float = 90) -> re.Match:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in {log} after {seconds} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def worker_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = _python_without_stitcher(tmp_path_factory.mktemp("worker-python"))
    check = subprocess.run(
        [str(bin_dir / "python3"), "-c", "import pyarrow, pandas\nimport stitcher"],
        capture_output=True,
        text=True,
        cwd=tmp_path_factory.getbasetemp(),
    )
    assert "No module named 'stitcher'" in check.stderr, check.stderr
    return bin_dir


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, worker_bin: Path) -> Iterator[Cluster]:
    java = shutil.which("java")
    path = os.pathsep.join(
        [str(worker_bin), *([str(Path(java).parent)] if java else []), "/usr/bin", "/bin"]
    )
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), path)
    try:
        yield cluster
    finally:
        cluster.stop()
    assert all(p.poll() is not None for p in cluster.processes)


def _driver_env() -> dict[str, str]:
    # The driver is this Python (it has stitcher); the executors get only what the job ships.
    # Everything on 127.0.0.1, whatever this host's name resolves to.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK")}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


def _cluster_command(cluster: Cluster, events: Path, out: Path, *args: str) -> list[str]:
    """`stitcher run` on the cluster, with the settings for small data."""
    return [
        sys.executable,
        "-m",
        "stitcher",
        "run",
        "--input",
        str(events),
        "--output",
        str(out),
        "--engine",
        "spark",
        "--spark-master",
        cluster.url,
        "--no-report",
        *SMALL,
        *args,
    ]


def _on_cluster(
    cluster: Cluster, events: Path, out: Path, *args: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cluster_command(cluster, events, out, *args),
        capture_output=True,
        text=True,
        env=_driver_env(),
        timeout=600,
    )


def _same_files(a: Path, b: Path) -> None:
    for table in OUTPUTS:
        assert (a / f"{table}.parquet").read_bytes() == (b / f"{table}.parquet").read_bytes(), table


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("events")
    run_cli(
        "generate", str(folder), "--events", "6000", "--seed", "17", "--guest-login-people", "2"
    )
    (folder / "truth.parquet").unlink()
    return folder


# Every anonymous id past the second starts a new profile: many components replayed. Run by
# README's spark-submit recipe below (each cluster run costs about a minute of CI).
SEGMENT_CONFIG = "[limits]\nanonymous_id = 2\n"
CASES = {
    # guarded with an extra identifier type replays chains of non-user ids per group.
    "guarded": ("events", '[identifiers.email]\ncolumns = ["email"]\nnormalize = "lower_trim"\n'),
    "mixpanel-original": ("mixpanel", ""),
}


@pytest.mark.parametrize("policy", list(CASES))
def test_each_policy_on_a_cluster_gives_duckdbs_files(
    policy: str, cluster: Cluster, events: Path, tmp_path: Path
) -> None:
    source, config_text = CASES[policy]
    data = events if source == "events" else FIXTURES / "mixpanel_export"
    config = tmp_path / "stitcher.toml"
    config.write_text(config_text)
    args = ["--policy", policy, "--config", str(config)]
    duck = stitch(data, tmp_path / "duckdb", "--no-report", *args)
    # A checkpoint folder named by the user, holding what a driver killed with -9 on this
    # host left (removed) and a folder of a run on another host (kept: it may be alive).
    checkpoints = tmp_path / "checkpoints"
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = checkpoints / f"stitcher-{HOST}-{dead.pid}-0123abcd" / "f00d" / "rdd-7"
    killed.mkdir(parents=True)
    (killed / "part-00000").write_bytes(b"left by a killed run")
    elsewhere = checkpoints / "stitcher-another-host-1-0123abcd"
    elsewhere.mkdir()
    done = _on_cluster(
        cluster,
        data,
        tmp_path / "spark",
        "-v",
        "--spark-conf",
        f"spark.checkpoint.dir={checkpoints}",
        *args,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The replay ran on the executors, whose python3 cannot import stitcher on its own.
    assert f"Spark's executors run Python {Path(sys._base_executable).resolve()}" in done.stderr
    _same_files(duck, tmp_path / "spark")
    # The spill folder is not given to the executors (their worker decides): no warning.
    assert "spark.local.dir will be overridden" not in done.stderr
    # Nothing left beside the output; the run's checkpoints and the dead run's are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "duckdb",
        "spark",
        "stitcher.toml",
    ]
    assert [p.name for p in checkpoints.iterdir()] == [elsewhere.name]


@pytest.mark.parametrize("python", ["without-pyarrow", "missing"])
def test_executors_that_cannot_run_the_replay_are_named_before_the_work(
    python: str, cluster: Cluster, events: Path, tmp_path: Path
) -> None:
    """An executor Python without pyarrow, or none at the path given: one line naming what is
    wrong, which Python, and the fix, right after the input is read (not after the steps
    before the replay), and the previous output untouched. `--spark-conf
    spark.pyspark.python` names the executors' Python (pyspark reads only PYSPARK_PYTHON)."""
    base = Path(sys._base_executable).resolve()
    folder = tmp_path / "python"
    folder.mkdir()
    executable = folder / "python3"
    if python == "without-pyarrow":
        executable.write_text(f'#!/bin/sh\nexec "{base}" -S "$@"\n')
        executable.chmod(0o755)
        expected = (
            "Error: Spark's executors cannot run this policy's replay: ModuleNotFoundError: "
            f"No module named 'pyarrow' in their Python {base} ("
        )
    else:
        # Spark's deepest cause does not name the program; the line does.
        expected = f"Error: Spark's executors cannot run Python {executable}: java.io.IOException:"
    out = stitch(events, tmp_path / "out", "--no-report")
    before = file_bytes(out)
    args = ["--policy", "segment", "--spark-conf", f"spark.pyspark.python={executable}"]
    done = _on_cluster(cluster, events, out, "-v", *args)
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith(expected), errors[0]
    assert "--spark-conf spark.pyspark.python=" in errors[0]
    # Found right after the input is read, before any step of the graph.
    assert "step scan:" not in done.stderr
    assert "Traceback" not in done.stderr
    assert file_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "python"]


def test_readmes_spark_submit_recipe_runs_on_the_cluster(
    cluster: Cluster, events: Path, tmp_path: Path
) -> None:
    """README: spark-submit with the path of stitcher/__main__.py (importing it to print the
    path must not run the command). The context is spark-submit's, borrowed by stitcher."""
    found = subprocess.run(
        [sys.executable, "-c", "import stitcher.__main__ as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    main = found.stdout.strip()
    assert Path(main).name == "__main__.py" and found.stderr == ""
    config = tmp_path / "stitcher.toml"
    config.write_text(SEGMENT_CONFIG)
    args = ["--policy", "segment", "--config", str(config), "--no-report"]
    duck = stitch(events, tmp_path / "duckdb", *args)
    env = _driver_env()
    # spark-submit starts the driver with the `python3` first on PATH: this virtualenv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(
        [
            str(SPARK_HOME / "bin" / "spark-submit"),
            "--master",
            cluster.url,
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "--conf",
            "spark.ui.enabled=false",
            main,
            "run",
            "--engine",
            "spark",
            "--input",
            str(events),
            "--output",
            str(tmp_path / "spark"),
            "-v",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    # spark-submit passes the Python driver's stderr on to its own stdout.
    said = done.stdout
    assert done.returncode == 0, said[-3000:]
    # segment's replay ran on executors whose python3 has no stitcher of its own.
    assert re.search(r"INFO \d+ components break a limit", said), said[-3000:]
    assert f"Spark's executors run Python {Path(sys._base_executable).resolve()}" in said
    _same_files(duck, tmp_path / "spark")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["duckdb", "spark", "stitcher.toml"]


def _start_run(
    cluster: Cluster, events: Path, out: Path, log: Path, *args: str
) -> subprocess.Popen:
    command = _cluster_command(cluster, events, out, "-v", *args)
    with log.open("w") as err:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=_driver_env())


def _wait_for_file(folder: Path, pattern: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not list(folder.glob(pattern)):
        assert time.monotonic() < deadline, f"no {pattern} in {folder} after {seconds} s"
        time.sleep(0.1)


def test_a_worker_back_within_the_timeout_lets_the_run_finish(
    cluster: Cluster, events: Path, tmp_path: Path
) -> None:
    """The only worker killed once the run's first tables are checkpointed, and a new one
    started: the tables are read back from the reliable checkpoints that a cluster gets by
    default (the local ones died with the executor, and the run failed), and the files are
    DuckDB's. The checkpoints lived in the temporary output folder and went with it."""
    duck = stitch(events, tmp_path / "duckdb", "--no-report")
    log = tmp_path / "run.log"
    run = _start_run(cluster, events, tmp_path / "spark", log)
    try:
        _wait_for(log, r"step scan: ")
        _wait_for_file(tmp_path, ".spark.stitcher-tmp-*/.spill/checkpoints/stitcher-*/*/rdd-*")
        cluster.kill_worker()
        cluster.start_worker()
        code = run.wait(timeout=400)
    finally:
        if run.poll() is None:
            run.kill()
    stderr = log.read_text()
    assert code == 0, stderr[-3000:]
    assert re.search(r"WARNING.*Spark lost executor \S+ \(0 left\)", stderr), stderr[-3000:]
    _same_files(duck, tmp_path / "spark")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["duckdb", "run.log", "spark"]


def test_a_lost_worker_fails_in_one_line_and_leaves_the_output(
    cluster: Cluster, events: Path, tmp_path: Path
) -> None:
    """The only worker killed mid-run: Spark would wait for another for ever. The run stops
    --spark-executor-timeout seconds later with one line, having said at WARNING that the
    executor was lost; the previous output is as it was, and neither a temporary folder nor
    the run's checkpoints are left."""
    out = stitch(events, tmp_path / "out", "--no-report")
    before = file_bytes(out)
    checkpoints = tmp_path / "checkpoints"
    log = tmp_path / "run.log"
    run = _start_run(
        cluster,
        events,
        out,
        log,
        "--spark-executor-timeout",
        "8",
        "--spark-conf",
        f"spark.checkpoint.dir={checkpoints}",
    )
    try:
        _wait_for(log, r"step load: ")
        _wait_for_file(checkpoints, "stitcher-*/*/rdd-*")
        killed = time.monotonic()
        cluster.kill_worker()
        code = run.wait(timeout=300)
        took = time.monotonic() - killed
    finally:
        if run.poll() is None:
            run.kill()
        cluster.start_worker()
    stderr = log.read_text()
    assert code == 1, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, stderr[-3000:]
    assert errors[0].startswith(
        f"Error: no Spark executors for 8 s: {cluster.url} gave this run none"
    ), errors[0]
    assert "--spark-executor-timeout" in errors[0]
    assert re.search(r"WARNING.*Spark lost executor \S+ \(0 left\); waiting up to 8 s", stderr)
    assert "Traceback" not in stderr
    # The timeout, plus Spark noticing the loss and the run's clean-up.
    assert took < 8 + 90, took
    assert file_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "out", "run.log"]
    assert list(checkpoints.iterdir()) == []


def test_a_cluster_that_gives_no_executor_fails_in_one_line(
    cluster: Cluster, events: Path, tmp_path: Path
) -> None:
    """Executors asking more memory than any worker has: Spark never starts one and would
    wait for ever ("Initial job has not accepted any resources", at a log level stitcher
    silences). The run says so at WARNING and stops after --spark-executor-timeout."""
    out = stitch(events, tmp_path / "out", "--no-report")
    before = file_bytes(out)
    started = time.monotonic()
    done = _on_cluster(
        cluster,
        events,
        out,
        "--spark-executor-timeout",
        "5",
        "--spark-conf",
        "spark.executor.memory=64g",
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == [errors[0]] and errors[0].startswith(
        f"Error: no Spark executors for 5 s: {cluster.url} gave this run none"
    ), done.stderr[-3000:]
    assert f"WARNING Spark gives this run no executors yet ({cluster.url}); waiting up to 5 s" in (
        done.stderr
    )
    assert took < 5 + 60, took
    assert file_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_reason_a_python_task_failed_is_found_in_sparks_message() -> None:
    """Spark's message for a failed Python task is a Java stack with the reason inside: the
    Python exception's own line, else the deepest Java cause."""
    from stitcher.engines.spark import _python_failure

    java = (
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 failed\n"
        "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages\n"
        "Caused by: org.apache.spark.SparkException: Python worker failed to connect back\n"
        'Caused by: java.io.IOException: Cannot run program "/opt/py/python3": error=2, No such'
        " file or directory\n\tat java.base/java.lang.ProcessBuilder.start"
    )
    python = (
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "/work/pyspark.zip/pyspark/worker.py", line 1, in main\n'
        "ModuleNotFoundError: No module named 'stitcher'\n\n"
        "\tat org.apache.spark.api.python.BasePythonRunner\n"
        "Caused by: org.apache.spark.api.python.PythonException: Traceback (most recent call):\n"
        "pyspark.errors.exceptions.base.PySparkRuntimeError: [PYTHON_VERSION_MISMATCH] Python in"
        " worker has different version (3, 12) than that in driver 3.11\n"
    )
    assert _python_failure(Exception(java)) == (
        'java.io.IOException: Cannot run program "/opt/py/python3": error=2, No such file or'
        " directory"
    )
    assert _python_failure(Exception(python)).startswith(
        "pyspark.errors.exceptions.base.PySparkRuntimeError: [PYTHON_VERSION_MISMATCH]"
    )
    assert _python_failure(Exception("no reason given")) == "no reason given"
