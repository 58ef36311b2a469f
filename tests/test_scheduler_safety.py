"""Safe in cron and Airflow: a folder that is not ours is never replaced, one run writes an
output at a time (an OS lock, valid across pid namespaces), a killed swap is put back first,
and a run that fails early leaves no folder of its own behind.

Runs that must overlap are real subprocesses (`python -m stitcher`), on generated data big
enough that one is still working when the other starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import stitcher
from stitcher.engines import EngineSettings, open_engine
from stitcher.output.tables import OutputOrder, OutputWriter

from conftest import FIXTURES, read_output, run_cli, run_command, stitch

FIXTURE = FIXTURES / "shared_family_computer"


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder below `folder` with its content's hash: what must not change."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        )
        for p in sorted(folder.rglob("*"))
    }


def run(output: Path, *extra: str, input_dir: Path = FIXTURE, expect: int | None = None):
    return run_cli(
        "run", "--input", str(input_dir), "--output", str(output), "-q", *extra, expect=expect
    )


def one_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr
    return lines[0]


# -- the output folder --------------------------------------------------------------------------


def test_a_folder_that_is_not_ours_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    (out / "q3").mkdir(parents=True)
    (out / "important.txt").write_text("do not lose me\n")
    (out / "q3" / "numbers.csv").write_text("a,b\n1,2\n")
    before = tree(tmp_path)
    line = one_error(run(out), f"--output {out}", "not a stitcher output", "--force")
    assert "important.txt" in line and "q3/" in line
    assert tree(tmp_path) == before  # not even a lock file or a parent left

    run(out, "--force", expect=0)
    assert (out / "run.json").exists() and not (out / "important.txt").exists()


def test_a_stitcher_output_holding_a_file_of_someone_else_is_refused(tmp_path: Path) -> None:
    out = stitch(FIXTURE, tmp_path / "out")
    (out / "notes.md").write_text("my notes about last night's run\n")
    before = tree(tmp_path)
    one_error(run(out), "notes.md", "stitcher did not write", "--force")
    assert tree(tmp_path) == before


def test_a_run_json_that_is_not_ours_does_not_make_a_folder_ours(tmp_path: Path) -> None:
    out = tmp_path / "other_tool"
    out.mkdir()
    (out / "run.json").write_text('{"tool": "something else"}\n')
    before = tree(tmp_path)
    one_error(run(out), "not a stitcher output", "run.json")
    assert tree(tmp_path) == before


def test_an_empty_folder_and_our_own_output_in_another_format_are_replaced(
    tmp_path: Path,
) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    run(out, expect=0)
    run(out, "--output-format", "csv", "--no-report", expect=0)  # report.html goes
    run(out, expect=0)  # id_map.csv and the others go
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "edges.parquet",
            "id_map.parquet",
            "quarantine.parquet",
            "rejected_edges.parquet",
            "report.html",
            "run.json",
            "users.parquet",
        ]
    )


def test_a_run_that_fails_early_leaves_no_new_folders(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    empty_input = tmp_path / "events"
    empty_input.mkdir()
    before = tree(tmp_path)
    one_error(run(tmp_path / "data" / "new" / "deeper" / "out", input_dir=empty_input))
    assert tree(tmp_path) == before


def test_output_dot_from_inside_last_nights_output(tmp_path: Path) -> None:
    out = stitch(FIXTURE, tmp_path / "out")
    first = json.loads((out / "run.json").read_text())["finished_at"]
    time.sleep(1.1)  # finished_at has whole seconds
    result = subprocess.run(
        [sys.executable, "-m", "stitcher", "run", "--input", str(FIXTURE), "--output", "."],
        cwd=out,
        env={**os.environ, "PYTHONPATH": str(Path(stitcher.__file__).parent.parent)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["finished_at"] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_swap_cut_by_a_kill_is_put_back_even_when_the_next_run_fails_early(
    tmp_path: Path,
) -> None:
    """A kill between `out -> .out.stitcher-old-*` and `tmp -> out` leaves no output. The next
    run, which fails on an empty input, still puts last night's output back first."""
    out = stitch(FIXTURE, tmp_path / "out")
    before = tree(out)
    out.rename(tmp_path / ".out.stitcher-old-0badc0de")
    dead = tmp_path / ".out.stitcher-tmp-999999999-0badc0de"
    dead.mkdir()
    (dead / "id_map.parquet").write_bytes(b"half a file")
    empty_input = tmp_path / "events"
    empty_input.mkdir()
    one_error(run(out, input_dir=empty_input), "no event tables")
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events", "out"]


# -- one run at a time -------------------------------------------------------------------------


def start_and_pause(args: list[str], ready: callable) -> subprocess.Popen:
    """Start a run and stop it (SIGSTOP) once `ready()`: a live run, holding its lock and
    folders, for as long as the test needs; SIGCONT lets it finish."""
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the first run never got going"
        time.sleep(0.002)
    process.send_signal(signal.SIGSTOP)
    return process


def finish(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGCONT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr


def temporary_folders(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".stitcher-tmp-" in p.name]


@pytest.mark.slow
def test_a_second_run_on_the_same_output_fails_at_once_or_waits(
    big_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    lock = tmp_path / ".out.stitcher-lock"
    first = start_and_pause(
        run_command(big_input, out), lambda: temporary_folders(tmp_path) and lock.stat().st_size
    )
    holder = json.loads(lock.read_text())
    second = subprocess.run(run_command(FIXTURE, out), capture_output=True, text=True)
    assert second.returncode == 1, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"Error: another stitcher run (host {holder['host']}, pid {first.pid}, started at "
        f"{holder['started_at']}) is writing {out}; let it finish, or pass --wait SECONDS to "
        "wait for it"
    ]
    waiting = subprocess.Popen(
        run_command(FIXTURE, out, "--wait", "300"), stderr=subprocess.PIPE, text=True
    )
    time.sleep(2)
    assert waiting.poll() is None, "the waiting run did not wait"
    finish(first)
    finish(waiting)
    record = json.loads((out / "run.json").read_text())
    assert record["options"]["input_dir"] == str(FIXTURE), "the waiting run wrote last"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "the lock file is removed"


def _unshare_pid_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    return probe.returncode == 0


needs_pid_namespace = pytest.mark.skipif(
    not _unshare_pid_available(),
    reason="needs unshare --pid --fork (root or user namespaces) for a second pid namespace",
)


@pytest.mark.slow
@needs_pid_namespace
def test_the_lock_holds_across_pid_namespaces(big_input: Path, tmp_path: Path) -> None:
    """Two containers sharing a volume: in its own pid namespace the second run cannot see the
    first one's pid. It once judged that run's temporary folder dead and deleted it; now the
    kernel lock says who is alive, and the second run fails without touching anything."""
    out = tmp_path / "out"
    first = start_and_pause(run_command(big_input, out), lambda: temporary_folders(tmp_path))
    working = temporary_folders(tmp_path)
    second = subprocess.run(
        ["unshare", "--pid", "--fork", *run_command(FIXTURE, out)], capture_output=True, text=True
    )
    assert second.returncode == 1, second.stderr
    assert "another stitcher run (host" in second.stderr and f"is writing {out}" in second.stderr
    assert all(folder.exists() for folder in working), "a live run's folder was deleted"
    finish(first)
    assert (out / "run.json").exists()


@pytest.mark.slow
@needs_pid_namespace
def test_a_live_runs_spill_folder_survives_a_run_in_another_pid_namespace(
    big_input: Path, tmp_path: Path
) -> None:
    """Runs on different outputs may share --temp-dir; each removes only spill folders that no
    live run holds, whichever pid namespace that run is in."""
    spill = tmp_path / "spill"
    spill.mkdir()
    first = start_and_pause(
        run_command(big_input, tmp_path / "one", "--temp-dir", str(spill)),
        lambda: any(spill.iterdir()),
    )
    (working,) = list(spill.iterdir())
    dead = spill / ".stitcher-spill-999999999-0badc0de"  # a killed run's, owner lock free
    dead.mkdir()
    (dead / ".stitcher-owner").write_text("another-host 999999999\n")
    second = subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            *run_command(FIXTURE, tmp_path / "two", "--temp-dir", str(spill)),
        ],
        capture_output=True,
        text=True,
    )
    assert second.returncode == 0, second.stderr
    assert working.exists(), "a live run's spill folder was deleted"
    assert not dead.exists(), "a dead run's spill folder was left"
    finish(first)
    assert list(spill.iterdir()) == []


def test_a_waiting_run_starts_once_the_holder_is_killed(tmp_path: Path) -> None:
    """kill -9 cannot clean up: the kernel frees the lock with the process, and the lock file
    it leaves does not stop the next run."""
    out = stitch(FIXTURE, tmp_path / "out")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from stitcher.output.locks import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    before = tree(tmp_path)
    one_error(run(out), "another stitcher run", f"pid {holder.pid}")
    started = time.monotonic()
    one_error(run(out, "--wait", "0.6"), f"pid {holder.pid}", "after waiting 0.6 s")
    assert time.monotonic() - started >= 0.6
    assert tree(tmp_path) == before
    holder.kill()
    holder.wait()
    assert (tmp_path / ".out.stitcher-lock").exists()
    run(out, "--wait", "5", expect=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- signals and exit codes --------------------------------------------------------------------


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".stitcher-" in p.name)


@pytest.mark.slow
def test_sigterm_and_sigint_mid_run_stop_cleanly(big_input: Path, tmp_path: Path) -> None:
    """Airflow, systemd and Kubernetes send SIGTERM; a terminal sends SIGINT. At any moment of
    the run (mostly inside an engine query): one line, exit 143 or 130, the previous output
    byte for byte, no temporary, spill or lock file left."""
    out = tmp_path / "out"
    spill = tmp_path / "spill"
    started = time.monotonic()
    first = subprocess.run(run_command(big_input, out), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    duration = time.monotonic() - started
    before = tree(out)
    stopped = 0
    # Interpreter start-up takes ~0.5 s of a run; the signals fall after it, through the end.
    for n, delay in enumerate(0.5 + duration * k / 8 for k in range(8)):
        signum = (signal.SIGTERM, signal.SIGINT)[n % 2]
        process = subprocess.Popen(
            run_command(big_input, out, "--temp-dir", str(spill)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        if process.returncode == 0:
            before = tree(out)  # it finished first (or got the signal during its swap)
            continue
        stopped += 1
        assert process.returncode == 128 + signum, stderr
        name = signal.Signals(signum).name
        assert stderr.splitlines() == [
            f"Error: stopped by {name}; nothing was written, the previous output is unchanged"
        ], stderr
        assert tree(out) == before
        # A run stopped before it made --temp-dir leaves none.
        assert leftovers(tmp_path) == [] and list(spill.glob("*")) == []
    assert stopped >= 4, f"only {stopped} runs were stopped mid-way; the data is too small"


def test_stdout_that_cannot_be_written_does_not_fail_a_finished_run(tmp_path: Path) -> None:
    """Once the new output is in place, exit 0 (or 3): exit 1 would say nothing was written,
    and a scheduler would retry."""
    out = tmp_path / "out"
    base = [sys.executable, "-m", "stitcher", "run", "--input", str(FIXTURE)]
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [*base, "--output", str(out)], stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert result.returncode == 0, result.stderr
    assert "could not print to stdout (No space left on device); the output is written" in (
        result.stderr
    )
    assert "Error" not in result.stderr and "Exception" not in result.stderr
    assert (out / "run.json").exists()

    # A pipe whose reader has gone (`| head` done), and --fail-if breached with stderr full.
    process = subprocess.Popen(
        [*base, "--output", str(out), "--fail-if", "largest_person>0"],
        stdout=subprocess.PIPE,
        stderr=open("/dev/full", "w"),  # noqa: SIM115
    )
    process.stdout.close()
    assert process.wait(timeout=120) == 3


def test_explain_into_a_closed_pipe_exits_as_sigpipe_would(tmp_path: Path) -> None:
    out = stitch(FIXTURE, tmp_path / "out")
    first = read_output(out, "id_map").row(0, named=True)
    first_id = f"{first['identifier_type']}:{first['identifier']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "stitcher", "explain", str(out), first_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 141, stderr
    assert stderr == ""


def test_generate_never_replaces_event_tables_it_did_not_write(tmp_path: Path) -> None:
    events = tmp_path / "events"
    shutil.copytree(FIXTURE, events)
    before = tree(tmp_path)
    result = run_cli("generate", str(events), "--events", "100", expect=1)
    line = one_error(result, str(events), "stitcher generate did not write", "--force")
    assert "identifies.csv" in line
    assert tree(tmp_path) == before
    run_cli("generate", str(events), "--events", "100", "--force")
    run_cli("generate", str(events), "--events", "200")  # its own files: replaced
    assert json.loads((events / "generator.json").read_text())["events"] == 200


def test_sql_scripts_never_delete_numbered_files_of_someone_else(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_init.sql").write_text("CREATE TABLE accounts (id int);\n")
    before = tree(tmp_path)
    args = ("sql", "--dialect", "duckdb", "--table", "tracks=analytics.tracks", "-q")
    one_error(run_cli(*args, "--out", str(migrations), expect=1), "001_init.sql", "did not write")
    assert tree(tmp_path) == before
    ours = tmp_path / "scripts"
    run_cli(*args, "--out", str(ours))
    (ours / "999_left_from_a_longer_script.sql").write_text("-- stale\n")
    run_cli(*args, "--out", str(ours))
    assert not (ours / "999_left_from_a_longer_script.sql").exists()


_LIBRARY_RUN = """
import sys
from pathlib import Path
try:
    import stitcher
    from stitcher import api
    print("imported", flush=True)
    stitcher.run(Path(sys.argv[1]), sys.argv[2])
except KeyboardInterrupt:
    sys.exit(42)
"""


@pytest.mark.slow
def test_ctrl_c_in_a_library_call_is_a_keyboard_interrupt(big_input: Path, tmp_path: Path) -> None:
    """A notebook's Ctrl-C (Python's own SIGINT handler, no CLI): DuckDB turns it into
    `RuntimeError: Query interrupted`; the caller gets KeyboardInterrupt back, with the
    temporary folders removed."""
    out = stitch(FIXTURE, tmp_path / "out")
    before = tree(out)
    stopped = 0
    # Fine steps first: the files are read (their schemas) in the first fraction of a second.
    for delay in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6):
        process = subprocess.Popen(
            [sys.executable, "-c", _LIBRARY_RUN, str(big_input), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline() == "imported\n"
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        if tree(out) != before:
            # It finished first (the signal then reached Python's teardown, which leaves the
            # exit to the default handler): later delays would too.
            break
        assert process.returncode == 42, stderr
        stopped += 1
        assert tree(out) == before
        assert leftovers(tmp_path) == []
    assert stopped >= 2, "the runs ended before the signal; use more events"


_IMPORT_SPY = """
import signal, sys
held = []
class Spy:
    def find_spec(self, name, path, target=None):
        if name == "duckdb":
            held.append(signal.getsignal(signal.SIGINT) is not signal.default_int_handler)
sys.meta_path.insert(0, Spy())
from stitcher.engines import EngineSettings, open_engine, regex_problem
regex_problem("duckdb", "a+")
open_engine("duckdb", EngineSettings()).close()
print(held)
"""


def test_ctrl_c_is_held_off_while_duckdb_is_imported() -> None:
    """A library run imports DuckDB when it opens its engine; a Ctrl-C inside DuckDB's native
    module set-up aborted Python (SIGABRT, "Critical nanobind error") in CI. Python's handler is
    held off during the import, so the interrupt is raised after it."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_SPY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]"


_REGISTER_SPY = """
import os, signal
import pyarrow as pa
from stitcher.engines import EngineSettings, open_engine
engine = open_engine("duckdb", EngineSettings())
connection = engine._con
held = []
class Spy:
    def __getattr__(self, name):
        return getattr(connection, name)
    def register(self, view, table):
        held.append(signal.getsignal(signal.SIGINT) is not signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGINT)
        return connection.register(view, table)
engine._con = Spy()
try:
    engine.register_arrow("t", pa.table({"x": [1, 2, 3]}))
except KeyboardInterrupt:
    engine._con = connection
    print(held, engine.fetch_rows("SELECT count(*) FROM t"))
"""


def test_ctrl_c_waits_while_duckdb_copies_an_arrow_table() -> None:
    """DuckDB reads a registered Arrow table through calls back into Python, and a Ctrl-C
    raised in one came out as "Invalid Input Error: ... KeyboardInterrupt" (CI): the copy holds
    the signal off, then raises KeyboardInterrupt with the table made."""
    done = subprocess.run(
        [sys.executable, "-c", _REGISTER_SPY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True] [(3,)]"


def test_a_ctrl_c_while_a_writer_thread_starts_still_waits_for_its_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI failure of the library Ctrl-C test, made certain: the interrupt lands in the pool's
    thread start, after the thread runs and before the pool records it. Closing the writer must
    still wait for that write, so the engine closes cleanly and the KeyboardInterrupt is what
    the caller sees (it was "connection is busy with another call")."""
    engine = open_engine("duckdb", EngineSettings(threads=2))
    # Big enough that its write is still running when close() is called.
    engine.execute(
        "CREATE TABLE edges AS SELECT md5(i::VARCHAR) AS a, md5((i + 1)::VARCHAR) AS b "
        "FROM range(3000000) AS t(i)"
    )
    writer = OutputWriter(engine, tmp_path, "parquet", OutputOrder((), in_tables=True))
    start = threading.Thread.start

    def start_then_interrupt(thread: threading.Thread) -> None:
        start(thread)
        if thread.name.startswith("stitcher-write"):
            raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        writer.ready("edges")
    monkeypatch.undo()
    writer.close()
    assert [t.name for t in threading.enumerate() if t.name.startswith("stitcher-write")] == []
    engine.close()


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_a_bad_wait_is_a_usage_error(value: str, tmp_path: Path) -> None:
    result = run(tmp_path / "out", "--wait", value)
    assert result.exit_code == 2, result.stderr
    assert "--wait" in result.stderr
    assert list(tmp_path.iterdir()) == []
