"""Faults during a run: kill -9, a full disk, a temp dir that fills up, too little memory.

Each test runs `python -m stitcher run` as a real subprocess on generated data and checks the
promise the nightly job depends on: whatever happens to a run, the previous output is byte for
byte what it was, and the next run cleans up and produces the right answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stitcher.synthetic.generate import GeneratorConfig, generate

from conftest import run_command, stitch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small") / "events"
    generate(folder, GeneratorConfig(n_events=5_000, seed=12))
    return folder


def run(input_dir: Path, output_dir: Path, *extra: str, **kwargs: object) -> tuple[int, str]:
    result = subprocess.run(
        run_command(input_dir, output_dir, *extra), capture_output=True, text=True, **kwargs
    )
    return result.returncode, result.stderr


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def data_hashes(folder: Path) -> dict[str, str]:
    """The result tables only: run.json and the report carry times and durations."""
    return {name: h for name, h in hashes(folder).items() if name.endswith(".parquet")}


def leftovers(parent: Path) -> list[str]:
    return sorted(
        p.name for p in parent.iterdir() if ".stitcher-tmp-" in p.name or ".stitcher-old-" in p.name
    )


def assert_clean_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


def test_kill_9_at_random_points(big_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    code, stderr = run(big_input, out)
    duration = time.monotonic() - started
    assert code == 0, stderr
    before, data = hashes(out), data_hashes(out)
    assert {"id_map.parquet", "users.parquet"} <= set(data)

    rng = random.Random(20261123)
    # From interpreter start-up to just past the expected end of a run: every step gets hit.
    # Most delays fall inside the run (the first run's duration on a shared machine is only a
    # guess of the next ones'), two around its end (the swap, printing, exiting).
    delays = sorted(
        [rng.uniform(0.05, duration * 0.9) for _ in range(6)]
        + [rng.uniform(duration * 0.9, duration * 1.2) for _ in range(2)]
    )
    killed = 0
    for delay in delays:
        process = subprocess.Popen(
            run_command(big_input, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
        if process.returncode == 0:
            # It finished first: a complete new output with the same tables.
            assert data_hashes(out) == data
            before = hashes(out)
        else:
            assert process.returncode == -signal.SIGKILL
            after = hashes(out)
            if after != before:
                # Killed after its swap had completed (while printing or exiting): then the
                # output must be that run's whole new output, never a mix of two runs.
                assert data_hashes(out) == data, f"tables changed by a kill after {delay:.2f}s"
                assert set(after) == set(before), f"files differ after a kill at {delay:.2f}s"
                json.loads((out / "run.json").read_text())
                before = after
    assert killed >= 3, f"only {killed} runs were killed mid-way; the data is too small"

    # The next run ignores and removes what the killed runs left, and gives the same answer.
    code, stderr = run(big_input, out)
    assert code == 0, stderr
    assert data_hashes(out) == data
    assert leftovers(tmp_path) == []


def test_kill_between_the_two_renames_is_recovered(small_input: Path, tmp_path: Path) -> None:
    """A random kill rarely lands between `out -> .out.stitcher-old-*` and `tmp -> out`; build
    that state by hand, with the killed run's temporary folder beside it. (A live run's folders
    are safe because it holds the output's lock: tests/test_scheduler_safety.py.)"""
    out = stitch(small_input, tmp_path / "out")
    before = hashes(out)
    out.rename(tmp_path / ".out.stitcher-old-0badc0de")
    dead = tmp_path / f".out.stitcher-tmp-{os.getpid()}-0badc0de"  # its pid proves nothing
    dead.mkdir()
    (dead / "id_map.parquet").write_bytes(b"half a file")

    code, stderr = run(small_input, out)
    assert code == 0, stderr
    assert data_hashes(out) == {k: v for k, v in before.items() if k.endswith(".parquet")}
    assert leftovers(tmp_path) == []


def _private_tmpfs_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_tmpfs = pytest.mark.skipif(
    not _private_tmpfs_available(),
    reason="needs root and a private mount namespace (unshare -m) to mount a small tmpfs",
)

# Runs inside a private mount namespace whose tmpfs is mounted on sys.argv[1]; reports as JSON.
_FULL_DISK_DRIVER = r"""
import hashlib, json, os, subprocess, sys
from pathlib import Path
root, small, big = (Path(a) for a in sys.argv[1:4])
extra = sys.argv[4:]
out = root / "out"
def run(events, *more):
    r = subprocess.run([sys.executable, "-m", "stitcher", "run", "--input", str(events),
                        "--output", str(out), "-q", *more], capture_output=True, text=True)
    return [r.returncode, r.stderr]
def hashes():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
first = run(small)
before = hashes()
second = run(big, *extra)
print(json.dumps({"first": first, "second": second, "before": before, "after": hashes(),
                  "listing": sorted(os.listdir(root))}))
"""


def _in_private_tmpfs(mountpoint: Path, size: str, *args: str) -> dict:
    mountpoint.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'mount -t tmpfs -o size={size} none "$1" && shift && exec "$@"',
            "sh",
            str(mountpoint),
            sys.executable,
            "-c",
            _FULL_DISK_DRIVER,
            str(mountpoint),
            *args,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_tmpfs
def test_full_disk_keeps_previous_output(
    small_input: Path, big_input: Path, tmp_path: Path
) -> None:
    """The output's disk (a 2 MB tmpfs) holds last night's small output; tonight's does not fit."""
    report = _in_private_tmpfs(tmp_path / "disk", "2m", str(small_input), str(big_input))
    assert report["first"][0] == 0, report["first"][1]
    assert_clean_error(*report["second"])
    assert "no space left" in report["second"][1].lower()
    assert report["after"] == report["before"]
    assert report["listing"] == ["out"]


# The disk fills while report.html is written: after the first run, a file fills the tmpfs
# until only the second run's tables fit (in whole pages, as tmpfs counts them), plus a page
# for the lock file and one to spare; the report needs more.
_REPORT_DISK_DRIVER = """
import hashlib, json, os, subprocess, sys
from pathlib import Path
root, events, reference = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
out = root / "out"
def run():
    r = subprocess.run([sys.executable, "-m", "stitcher", "run", "--input", events,
                        "--output", str(out), "-q"], capture_output=True, text=True)
    return [r.returncode, r.stderr]
def hashes():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
def pages(size):
    return -(-size // 4096) * 4096
first = run()
before = hashes()
tables = sum(pages(p.stat().st_size) for p in reference.iterdir() if p.suffix == ".parquet")
disk = os.statvfs(root)
(root / "filler").write_bytes(b"x" * (disk.f_bavail * disk.f_frsize - tables - 2 * 4096))
second = run()
print(json.dumps({"first": first, "second": second, "before": before, "after": hashes(),
                  "listing": sorted(os.listdir(root))}))
"""


@needs_tmpfs
def test_full_disk_while_the_report_is_written(small_input: Path, tmp_path: Path) -> None:
    reference = stitch(small_input, tmp_path / "reference")
    assert (reference / "report.html").stat().st_size > 3 * 4096  # the premise
    (tmp_path / "disk").mkdir()
    result = subprocess.run(
        [
            "unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=8m none "$1" && shift && exec "$@"', "sh",
            str(tmp_path / "disk"), sys.executable, "-c", _REPORT_DISK_DRIVER,
            str(tmp_path / "disk"), str(small_input), str(reference),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["first"][0] == 0, report["first"][1]
    assert_clean_error(*report["second"], "no space left", "report.html")
    assert report["after"] == report["before"]
    assert report["listing"] == ["filler", "out"]


@needs_tmpfs
def test_temp_dir_filling_up_during_the_run(
    small_input: Path, big_input: Path, tmp_path: Path
) -> None:
    """The engine must spill (40MB for 300k events, one thread) into a 1 MB --temp-dir."""
    out = tmp_path / "out"
    stitch(small_input, out)
    before = hashes(out)
    spill = tmp_path / "spill"
    spill.mkdir()
    script = 'mount -t tmpfs -o size=1m none "$1" && shift && exec "$@"'
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(spill),
            *run_command(big_input, out, "--threads", "1", "--memory-limit", "40MB"),
            "--temp-dir",
            str(spill),
        ],
        capture_output=True,
        text=True,
    )
    assert_clean_error(result.returncode, result.stderr, "--temp-dir")
    assert hashes(out) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["edges", "id_map"])
def test_file_size_limit_during_write(
    failing: str, small_input: Path, big_input: Path, tmp_path: Path
) -> None:
    """RLIMIT_FSIZE (no root or mounts needed): any write past the limit fails mid-file. The
    edges file is written on a worker thread while the users are still being built; id_map in
    the final write. Either failure must end the run the same clean way."""
    sizes = {p.stem: p.stat().st_size for p in stitch(big_input, tmp_path / "sizes").iterdir()}
    largest_other = max(size for name, size in sizes.items() if name != "id_map")
    limit = 512 * 1024 if failing == "edges" else (largest_other + sizes["id_map"]) // 2
    # The premise: exactly the file under test is the first that cannot fit.
    assert (
        sizes[failing] > limit > (sizes["rejected_edges"] if failing == "edges" else largest_other)
    )
    out = stitch(small_input, tmp_path / "out")
    before = hashes(out)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code, stderr = run(big_input, out, preexec_fn=limit_file_size)
    assert_clean_error(code, stderr, "cannot write", f"{failing}.parquet", "File too large")
    assert hashes(out) == before
    assert leftovers(tmp_path) == []


@needs_tmpfs
def test_read_only_temp_dir(small_input: Path, tmp_path: Path) -> None:
    out = stitch(small_input, tmp_path / "out")
    before = hashes(out)
    spill = tmp_path / "spill"
    spill.mkdir()
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(spill),
            *run_command(small_input, out, "--temp-dir", str(spill)),
        ],
        capture_output=True,
        text=True,
    )
    assert_clean_error(result.returncode, result.stderr, "--temp-dir", "read-only")
    assert hashes(out) == before
    assert leftovers(tmp_path) == []


def test_memory_limit_forces_a_spill_with_identical_output(big_input: Path, tmp_path: Path) -> None:
    code, stderr = run(big_input, tmp_path / "free", "--threads", "1")
    assert code == 0, stderr
    spill = tmp_path / "spill"
    spill.mkdir()
    process = subprocess.Popen(
        [
            *run_command(big_input, tmp_path / "tight", "--threads", "1", "--memory-limit", "40MB"),
            "--temp-dir",
            str(spill),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    # DuckDB deletes its spill files when done: watch the folder while it runs.
    spilled = 0
    while process.poll() is None:
        spilled = max(spilled, _bytes_in(spill))
        time.sleep(0.005)
    assert process.returncode == 0, process.stderr.read()
    assert spilled > 0, "40MB did not force DuckDB to spill; lower the limit or add events"
    assert data_hashes(tmp_path / "tight") == data_hashes(tmp_path / "free")


def test_spill_files_of_a_killed_run_are_removed_by_the_next(
    big_input: Path, small_input: Path, tmp_path: Path
) -> None:
    """DuckDB deletes its spill files on close; kill -9 leaves them. Each run spills into a
    folder of its own in --temp-dir, and the next run removes the folders of dead runs."""
    out = tmp_path / "out"
    spill = tmp_path / "spill"
    spill.mkdir()
    tight = ("--threads", "1", "--memory-limit", "40MB", "--temp-dir", str(spill))
    process = subprocess.Popen(run_command(big_input, out, *tight), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while process.poll() is None and _bytes_in(spill) == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before it spilled"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _bytes_in(spill) > 0
    assert not out.exists()

    code, stderr = run(small_input, out, "--temp-dir", str(spill))
    assert code == 0, stderr
    assert list(spill.iterdir()) == []
    assert leftovers(tmp_path) == []


def _bytes_in(folder: Path) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            # A file may be deleted between listing and stat.
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total
