"""Security: hostile names and values are data, nothing is written outside --output and
--temp-dir, and the tool never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stitcher.synthetic.generate import GeneratorConfig, generate

from conftest import read_output, run_cli

HOSTILE_COLUMN = 'x"; DROP TABLE --'
# Names that would break out of a double-quoted identifier, a string literal or a template.
HOSTILE_NAMES = [
    HOSTILE_COLUMN,
    "'); DROP TABLE users; --",
    "{{trait_columns}}",
    "a\nb",
    '""',
]
# Ids that would do something if they ever reached SQL as text.
HOSTILE_IDS = [
    "'; DROP TABLE id_map; --",
    '" OR 1=1 --',
    "x'); COPY (SELECT 42) TO 'PWNED.csv'; --",
    "$1",
    "?",
    "{{events}}",
    "%s",
    "\\'; SELECT pg_sleep(10); --",
    "1; ATTACH 'pwned.db'",
]


def stitcher_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stitcher", "run", *args]


def _stitch(input_dir: Path, output_dir: Path, *extra: str) -> dict:
    run_cli("run", "--input", str(input_dir), "--output", str(output_dir), "-q", *extra)
    return json.loads((output_dir / "run.json").read_text())


def _no_pwned_files(tmp_path: Path) -> None:
    """The payloads would write files named PWNED*: in the data folders or the cwd."""
    assert not [p for p in tmp_path.rglob("*") if "pwned" in p.name.lower()]
    assert not [p for p in Path.cwd().iterdir() if "pwned" in p.name.lower()]


def test_hostile_column_names_are_just_names(tmp_path: Path) -> None:
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    traits = {name: [f"value of {name}", None] for name in HOSTILE_NAMES}
    pq.write_table(
        pa.table(
            {
                "id": ["m1", "m2"],
                "anonymous_id": ["a1", "a2"],
                "user_id": ["u1", "u2"],
                "timestamp": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"],
                **traits,
            }
        ),
        input_dir / "identifies.parquet",
    )
    # The same names as extra columns of another table: carried along, never traits.
    pq.write_table(
        pa.table(
            {
                "id": ["m3"],
                "anonymous_id": ["a1"],
                "timestamp": ["2026-01-03T00:00:00Z"],
                **{name: ["ignored"] for name in HOSTILE_NAMES},
            }
        ),
        input_dir / "tracks.parquet",
    )
    record = _stitch(input_dir, tmp_path / "out")
    assert sorted(record["input"]["trait_columns"]) == sorted(n.lower() for n in HOSTILE_NAMES)
    users = read_output(tmp_path / "out", "users").sort("user_id")
    for name in HOSTILE_NAMES:
        assert users[name.lower()].to_list() == [f"value of {name}", None]
    assert record["input"]["events"] == 3
    _no_pwned_files(tmp_path)


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_sql_in_ids_and_traits_is_just_data(tmp_path: Path, output_format: str) -> None:
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    n = len(HOSTILE_IDS)
    pq.write_table(
        pa.table(
            {
                "id": HOSTILE_IDS,  # as message ids too
                "anonymous_id": ["anon " + v for v in HOSTILE_IDS],
                "user_id": HOSTILE_IDS,
                "timestamp": ["2026-01-01T00:00:00Z"] * n,
                "email": HOSTILE_IDS,
            }
        ),
        input_dir / "identifies.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "id": ["alias-1"],
                "previous_id": [HOSTILE_IDS[0]],
                "user_id": [HOSTILE_IDS[1]],
                "timestamp": ["2026-01-02T00:00:00Z"],
            }
        ),
        input_dir / "aliases.parquet",
    )
    _stitch(input_dir, tmp_path / "out", "--output-format", output_format, "--dedupe")
    id_map = read_output(tmp_path / "out", "id_map")
    assert sorted(id_map.filter(pl.col("identifier_type") == "user_id")["identifier"]) == sorted(
        HOSTILE_IDS
    )
    users = read_output(tmp_path / "out", "users")
    # One email per person (the alias made two people one), each exactly as sent.
    assert set(users["email"].to_list()) <= set(HOSTILE_IDS)
    assert users.height == n - 1 and users["email"].null_count() == 0
    # The alias merged exactly the two people it names.
    person = dict(zip(id_map["identifier"], id_map["person_id"], strict=True))
    assert person[HOSTILE_IDS[0]] == person[HOSTILE_IDS[1]]
    assert len(set(person.values())) == n - 1
    edges = read_output(tmp_path / "out", "edges")
    assert HOSTILE_IDS[0] in edges["from_id"].to_list()
    _no_pwned_files(tmp_path)


def test_sql_in_file_and_folder_names(tmp_path: Path) -> None:
    input_dir = tmp_path / "in'; DROP TABLE x; --\""
    part = input_dir / "tracks" / "dt=2026'); --" / "part'\"; DROP TABLE y.csv"
    part.parent.mkdir(parents=True)
    part.write_text("id,anonymous_id,user_id,timestamp\nm1,a1,u1,2026-01-01T00:00:00Z\n")
    output_dir = tmp_path / "out'; DROP TABLE z; --"
    record = _stitch(input_dir, output_dir)
    assert record["input"]["events"] == 1
    assert read_output(output_dir, "id_map").height == 2


def test_junk_file_with_sql_is_values(tmp_path: Path) -> None:
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    sneaky = "'); DROP TABLE identifiers; --"
    (input_dir / "tracks.csv").write_text(
        "id,anonymous_id,user_id,timestamp\n"
        f'm1,"{sneaky}",u1,2026-01-01\n'
        "m2,x'; DROP TABLE --tail,u2,2026-01-01\n"
        "m3,a3,u3,2026-01-01\n"
    )
    junk = tmp_path / "junk.txt"
    # Patterns match the normalized (lower-cased) value, hence the lower-case pattern.
    junk.write_text(f"{sneaky}\nregex:x'; drop table --.*\n# '); DELETE FROM junk_values; --\n")
    _stitch(input_dir, tmp_path / "out", "--junk-file", str(junk))
    quarantined = set(read_output(tmp_path / "out", "quarantine")["identifier"])
    assert {sneaky, "x'; DROP TABLE --tail"} <= quarantined
    mapped = set(read_output(tmp_path / "out", "id_map")["identifier"])
    assert mapped == {"a3", "u1", "u2", "u3"}


def test_config_file_is_data_not_code(tmp_path: Path) -> None:
    """The config is TOML, read with tomllib: values, never code. A Python or SQL payload is a
    string that fails validation or is used as a plain value."""
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    (input_dir / "tracks.csv").write_text(
        "id,anonymous_id,user_id,timestamp\nm1,'); DROP TABLE x; --,u1,2026-01-01\n"
        "m2,a2,u2,2026-01-01\n"
    )
    evil = tmp_path / "evil.toml"
    marker = tmp_path / "PWNED"
    evil.write_text(f"policy = \"__import__('os').system('touch {marker}')\"\n")
    result = run_cli(
        "run",
        "--input",
        str(input_dir),
        "--output",
        str(tmp_path / "o1"),
        "--config",
        str(evil),
        expect=None,
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "policy" in result.stderr
    assert not marker.exists() and not (tmp_path / "o1").exists()

    data = tmp_path / "data.toml"
    data.write_text(
        "[junk]\nvalues = [\"'); DROP TABLE x; --\", \"__import__('os').system('touch PWNED')\"]\n"
    )
    _stitch(input_dir, tmp_path / "o2", "--config", str(data))
    assert "'); DROP TABLE x; --" in set(read_output(tmp_path / "o2", "quarantine")["identifier"])
    assert set(read_output(tmp_path / "o2", "id_map")["identifier"]) == {"a2", "u1", "u2"}
    _no_pwned_files(tmp_path)


# --------------------------------------------------------------------------------------------
# Nothing written outside --output and --temp-dir


def _tree(root: Path, skip: set[Path]) -> dict[str, tuple[str, str]]:
    """Every entry under root (not following symlinks) with its kind and content hash."""
    found: dict[str, tuple[str, str]] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in dirs + files:
            path = here / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_dir():
                found[key] = ("dir", "")
            else:
                found[key] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """A fresh HOME, TMPDIR and XDG folders, so writes to any of them are seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPL"))}
    for name in ("HOME", "TMPDIR"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        env[name] = str(folder)
    return env


def _outside_world(tmp_path: Path) -> tuple[Path, Path]:
    """An input whose tables are symlinks to files and folders elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "pages").mkdir(parents=True)
    (elsewhere / "pages" / "part-0.csv").write_text(
        "id,anonymous_id,user_id,timestamp\np1,a1,u1,2026-01-01T00:00:00Z\n"
    )
    (elsewhere / "tracks.csv").write_text(
        "id,anonymous_id,user_id,timestamp\nt1,a2,u2,2026-01-01T00:00:00Z\n"
    )
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    (input_dir / "tracks.csv").symlink_to(elsewhere / "tracks.csv")
    (input_dir / "pages").symlink_to(elsewhere / "pages", target_is_directory=True)
    # A linked table folder holding a link back up to itself: walked once, written by nothing.
    # (A link up to the folder that holds everything would read the other tables' files a
    # second time, as screens: that is an error now, see test_bad_input.py.)
    (elsewhere / "screens").mkdir()
    (elsewhere / "screens" / "part-0.csv").write_text(
        "id,anonymous_id,user_id,timestamp\ns1,a3,u3,2026-01-01T00:00:00Z\n"
    )
    (elsewhere / "screens" / "again").symlink_to(elsewhere / "screens", target_is_directory=True)
    (input_dir / "screens").symlink_to(elsewhere / "screens", target_is_directory=True)
    (tmp_path / "cwd").mkdir()
    return input_dir, elsewhere


def _run_isolated(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stitcher", "run", *args],
        cwd=tmp_path / "cwd",
        env=_isolated_env(tmp_path),
        capture_output=True,
        text=True,
    )


def test_writes_only_inside_output(tmp_path: Path) -> None:
    input_dir, _ = _outside_world(tmp_path)
    output_dir = tmp_path / "out"
    # HOME and TMPDIR are created by _isolated_env: snapshot after that.
    env_ready = _isolated_env(tmp_path)
    before = _tree(tmp_path, skip={output_dir})
    result = subprocess.run(
        stitcher_command(
            "--input", str(input_dir), "--output", str(output_dir), "-q", "--no-report"
        ),
        cwd=tmp_path / "cwd",
        env=env_ready,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path, skip={output_dir}) == before
    assert sorted(p.name for p in output_dir.iterdir()) == sorted(
        [f"{t}.parquet" for t in ("id_map", "users", "edges", "rejected_edges", "quarantine")]
        + ["run.json"]
    )


def test_writes_only_inside_output_with_the_report(tmp_path: Path) -> None:
    """Writing the report (which reads the outputs back) leaves nothing in $HOME or the cwd."""
    input_dir, _ = _outside_world(tmp_path)
    output_dir = tmp_path / "out"
    env_ready = _isolated_env(tmp_path)
    before = _tree(tmp_path, skip={output_dir})
    result = subprocess.run(
        stitcher_command("--input", str(input_dir), "--output", str(output_dir), "-q"),
        cwd=tmp_path / "cwd",
        env=env_ready,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path, skip={output_dir}) == before


@pytest.mark.slow
def test_spilling_writes_only_inside_output_and_temp_dir(tmp_path: Path) -> None:
    """With a memory limit DuckDB spills: into the temporary output folder by default (never a
    `.tmp` in the working directory), or into --temp-dir; both are empty afterwards."""
    events = tmp_path / "events"
    generate(events, GeneratorConfig(n_events=300_000, seed=5))
    (tmp_path / "cwd").mkdir()
    spill = tmp_path / "spill"
    spill.mkdir()
    env_ready = _isolated_env(tmp_path)
    outputs = {tmp_path / "out1", tmp_path / "out2"}
    before = _tree(tmp_path, skip=outputs)
    common = ["-q", "--no-report", "--threads", "1", "--memory-limit", "60MB"]
    for output_dir, extra in (
        (tmp_path / "out1", []),
        (tmp_path / "out2", ["--temp-dir", str(spill)]),
    ):
        result = subprocess.run(
            stitcher_command("--input", str(events), "--output", str(output_dir), *common, *extra),
            cwd=tmp_path / "cwd",
            env=env_ready,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert not (output_dir / ".spill").exists()
    assert _tree(tmp_path, skip=outputs) == before


def test_refuses_a_symlinked_output(tmp_path: Path) -> None:
    input_dir, _ = _outside_world(tmp_path)
    real = tmp_path / "real-out"
    real.mkdir()
    (real / "keep.txt").write_text("mine")
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    before = _tree(tmp_path, skip=set())
    result = _run_isolated(tmp_path, "--input", str(input_dir), "--output", str(link))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: --output") and "symbolic link" in result.stderr
    assert "Traceback" not in result.stderr
    after = _tree(tmp_path, skip=set())
    assert {k: v for k, v in after.items() if not k.startswith(("home", "tmpdir"))} == {
        k: v for k, v in before.items() if not k.startswith(("home", "tmpdir"))
    }


# --------------------------------------------------------------------------------------------
# No network

_NETWORK_CALL = re.compile(
    r"^\d+\s+(socket|socketpair|connect|bind|listen|accept4?|send\w*|recv\w*|shutdown|"
    r"[gs]etsock\w+|getpeername)\("
)

_AUDITED = r"""
import sys
seen = []
def hook(event, args):
    if event.startswith("socket.") or event in ("urllib.Request", "http.client.connect"):
        seen.append(event)
        raise PermissionError(f"network access attempted: {event}")
sys.addaudithook(hook)
from stitcher.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="stitcher")
except SystemExit as exc:
    code = exc.code or 0
else:
    code = 0
print("SOCKET_EVENTS=" + ",".join(seen), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def small_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("net") / "events"
    generate(folder, GeneratorConfig(n_events=3_000, seed=8))
    return folder


def test_no_socket_from_python(small_events: Path, tmp_path: Path) -> None:
    """Every Python-level socket operation raises an audit event; none may happen."""
    out = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "-c", _AUDITED, "run", "--input", str(small_events), "--output", out],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    events = [line for line in result.stderr.splitlines() if line.startswith("SOCKET_EVENTS=")]
    assert events == ["SOCKET_EVENTS="], result.stderr


def test_runs_without_a_network(small_events: Path, tmp_path: Path) -> None:
    """In a network namespace with no interfaces up the run must still succeed."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare -n denied)")
    out = str(tmp_path / "out")
    result = subprocess.run(
        ["unshare", "-n", *stitcher_command("--input", str(small_events), "--output", out, "-q")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "id_map.parquet").exists()


def test_no_network_system_calls(small_events: Path, tmp_path: Path) -> None:
    """Kernel-level: strace sees every socket(), connect() and send*() of every thread,
    DuckDB's native code included."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    log, out = tmp_path / "strace.log", str(tmp_path / "out")
    strace = ["strace", "-f", "-qq", "-e", "trace=%network", "-e", "signal=none", "-o", str(log)]
    result = subprocess.run(
        [*strace, *stitcher_command("--input", str(small_events), "--output", out, "-q")],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and "ptrace" in result.stderr.lower():
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    calls = [line for line in log.read_text().splitlines() if _NETWORK_CALL.match(line)]
    assert calls == [], calls[:5]
