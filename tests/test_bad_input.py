"""The bad-input catalogue: every case is either one clear error or documented handling.

An error case must exit 1 with exactly one `Error: ...` line naming the file, column or option
at fault, no traceback, and leave the previous output byte-for-byte as it was (no new folder,
no leftover `.NAME.stitcher-tmp-*`). A handled case must succeed and say what it did in the
outputs or in run.json. RELIABILITY.md lists the decisions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from stitcher.cli import cli

from conftest import partition, read_output, stitch

HEADER = "id,anonymous_id,user_id,timestamp\n"
ROW = "m1,a1,u1,2026-01-01T00:00:00Z\n"
GOOD_TRACKS = HEADER + ROW + "m2,a1,,2026-01-02T00:00:00Z\nm3,a2,u2,2026-01-03T00:00:00Z\n"
# id_map's event counts for GOOD_TRACKS, and for it plus one event of a9 and u9.
GOOD_IDS = {
    ("anonymous_id", "a1"): 2,
    ("anonymous_id", "a2"): 1,
    ("user_id", "u1"): 1,
    ("user_id", "u2"): 1,
}
GOOD_IDS_AND_9 = {**GOOD_IDS, ("anonymous_id", "a9"): 1, ("user_id", "u9"): 1}


def _rows(n: int, start: int = 0) -> str:
    return "".join(f"m{i},a{i},u{i},2026-01-01T00:00:00Z\n" for i in range(start, start + n))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _good_parquet() -> bytes:
    return _parquet_bytes(
        pa.table(
            {
                "id": [f"m{i}" for i in range(200)],
                "anonymous_id": [f"a{i}" for i in range(200)],
                "user_id": [f"u{i}" for i in range(200)],
                "timestamp": ["2026-01-01T00:00:00Z"] * 200,
            }
        )
    )


def _write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return folder


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class Workspace:
    """tmp_path holding `good/` (valid input), `out/` (its output, the 'previous night') and
    whatever a case adds. `untouched()` checks the previous output and the folder listing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.good = _write(root / "good", {"tracks.csv": GOOD_TRACKS})
        self.out = stitch(self.good, root / "out")
        self.input = root / "in"
        self._before: tuple[dict[str, str], list[str]] | None = None

    def freeze(self) -> None:
        self._before = (_hashes(self.out), sorted(os.listdir(self.root)))

    def untouched(self) -> None:
        assert self._before is not None
        hashes, listing = self._before
        assert _hashes(self.out) == hashes, "the previous output changed"
        now = sorted(os.listdir(self.root))
        assert now == listing, f"new entries beside the output: {set(now) - set(listing)}"
        assert not [n for n in now if ".stitcher-tmp-" in n or ".stitcher-old-" in n]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_error(result: object, fragments: tuple[str, ...], code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    # Log lines may come before the error; click's usage errors (exit 2) add their usage hint.
    noise = ("WARNING ", "INFO ", "DEBUG ") + (("Usage: ", "Try ") if code == 2 else ())
    lines = [
        line for line in result.stderr.splitlines() if line.strip() and not line.startswith(noise)
    ]
    assert len(lines) == 1, f"expected one error line, got: {lines}"
    line = lines[0]
    assert line.startswith("Error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


# --------------------------------------------------------------------------------------------
# Errors: each builder makes the bad input under ws.root and returns the CLI arguments.


@dataclass(frozen=True)
class Bad:
    id: str
    build: Callable[[Workspace], list[str]]
    fragments: tuple[str, ...]
    code: int = 1


def _run_args(ws: Workspace, *extra: str, input_dir: Path | None = None) -> list[str]:
    return ["run", "--input", str(input_dir or ws.input), "--output", str(ws.out), *extra]


def _files(files: dict[str, str | bytes]) -> Callable[[Workspace], list[str]]:
    def build(ws: Workspace) -> list[str]:
        _write(ws.input, files)
        return _run_args(ws)

    return build


def _files_with(files: dict[str, str | bytes], *option: str) -> Callable[[Workspace], list[str]]:
    def build(ws: Workspace) -> list[str]:
        _write(ws.input, files)
        return _run_args(ws, *option)

    return build


def _empty_folder(ws: Workspace) -> list[str]:
    ws.input.mkdir()
    return _run_args(ws)


def _missing_folder(ws: Workspace) -> list[str]:
    return _run_args(ws)


def _input_is_file(ws: Workspace) -> list[str]:
    (ws.root / "events.csv").write_text(GOOD_TRACKS)
    return _run_args(ws, input_dir=ws.root / "events.csv")


def _corrupt_middle_parquet() -> bytes:
    data = bytearray(_good_parquet())
    # Past the 4-byte magic: the first column chunk's page header and data.
    for i in range(40, 140):
        data[i] = 0xFF
    return bytes(data)


def _fifo(ws: Workspace) -> list[str]:
    _write(ws.input, {"pages.csv": GOOD_TRACKS})
    os.mkfifo(ws.input / "tracks.csv")
    return _run_args(ws)


def _dir_named_like_file(ws: Workspace) -> list[str]:
    _write(ws.input, {"pages.csv": GOOD_TRACKS, "tracks.csv/notes.txt": "not a table"})
    return _run_args(ws)


def _output_is_file(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    (ws.root / "out.txt").write_text("a file")
    return ["run", "--input", str(ws.input), "--output", str(ws.root / "out.txt")]


def _output_inside_input(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    return ["run", "--input", str(ws.input), "--output", str(ws.input / "out")]


def _output_is_input(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    return ["run", "--input", str(ws.input), "--output", str(ws.input)]


def _output_contains_input(ws: Workspace) -> list[str]:
    _write(ws.out / "events", {"tracks.csv": GOOD_TRACKS})
    return ["run", "--input", str(ws.out / "events"), "--output", str(ws.out)]


def _output_under_file(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    (ws.root / "somefile").write_text("a file")
    return ["run", "--input", str(ws.input), "--output", str(ws.root / "somefile" / "out")]


def _temp_dir_under_file(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    (ws.root / "somefile").write_text("a file")
    return _run_args(ws, "--temp-dir", str(ws.root / "somefile" / "spill"))


def _temp_dir_is_file(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    (ws.root / "somefile").write_text("a file")
    return _run_args(ws, "--temp-dir", str(ws.root / "somefile"))


def _with_option(*option: str) -> Callable[[Workspace], list[str]]:
    def build(ws: Workspace) -> list[str]:
        _write(ws.input, {"tracks.csv": GOOD_TRACKS})
        return _run_args(ws, *option)

    return build


def _junk_file(content: str) -> Callable[[Workspace], list[str]]:
    def build(ws: Workspace) -> list[str]:
        _write(ws.input, {"tracks.csv": GOOD_TRACKS})
        (ws.root / "junk.txt").write_text(content)
        return _run_args(ws, "--junk-file", str(ws.root / "junk.txt"))

    return build


def _broken_link(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks/dt=1/part-0.csv": GOOD_TRACKS})
    (ws.input / "tracks" / "dt=2").symlink_to(ws.root / "gone")
    return _run_args(ws)


def _one_file_in_two_tables(ws: Workspace) -> list[str]:
    _write(ws.input, {"tracks/part-0.csv": GOOD_TRACKS})
    (ws.input / "pages").mkdir()
    (ws.input / "pages" / "part-0.csv").symlink_to(ws.input / "tracks" / "part-0.csv")
    return _run_args(ws)


def _broken_file_link(ws: Workspace) -> list[str]:
    _write(ws.input, {"pages.csv": GOOD_TRACKS})
    (ws.input / "tracks.csv").symlink_to(ws.root / "gone.csv")
    return _run_args(ws)


def _config(content: str | bytes) -> Callable[[Workspace], list[str]]:
    def build(ws: Workspace) -> list[str]:
        _write(ws.input, {"tracks.csv": GOOD_TRACKS})
        _write(ws.root, {"stitcher.toml": content})
        return _run_args(ws, "--config", str(ws.root / "stitcher.toml"))

    return build


_LATIN1 = (HEADER + "m1,caf\xe9,u1,2026-01-01T00:00:00Z\n").encode("latin-1")


def _gzip_members(*parts: str) -> bytes:
    """What `cat a.csv.gz b.csv.gz` gives: one gzip member per part, each with its header."""
    return b"".join(gzip.compress(part.encode()) for part in parts)


_REORDERED = "user_id,id,timestamp,anonymous_id\nu7,m7,2026-01-07,a7\n"

BAD_CASES = [
    Bad("empty-input-folder", _empty_folder, ("no event tables in", "in")),
    Bad("input-folder-missing", _missing_folder, ("does not exist",)),
    Bad("input-is-a-file", _input_is_file, ("events.csv is a file",)),
    Bad(
        "no-identity-columns",
        _files({"tracks.csv": "id,timestamp,event\nm1,2026-01-01,Clicked\n"}),
        ("tracks.csv has no anonymous_id or user_id column", "found: id, timestamp, event"),
    ),
    Bad(
        "no-timestamp-column",
        _files({"tracks.csv": "id,anonymous_id,user_id\nm1,a1,u1\n"}),
        ("tracks.csv has no timestamp column",),
    ),
    Bad(
        "aliases-without-previous-id",
        _files({"aliases.csv": "id,user_id,timestamp\nm1,u1,2026-01-01\n"}),
        ("aliases.csv needs previous_id and user_id",),
    ),
    Bad(
        "only-zero-byte-files",
        _files({"tracks.csv": b"", "pages.parquet": b""}),
        ("is empty (0 bytes, or blank lines only)", "tracks.csv"),
    ),
    Bad(
        "truncated-parquet",
        _files({"tracks.parquet": _good_parquet()[:300]}),
        ("tracks.parquet: not a Parquet file, or a truncated one", "re-export"),
    ),
    Bad(
        "csv-text-named-parquet",
        _files({"tracks.parquet": GOOD_TRACKS}),
        ("tracks.parquet: not a Parquet file",),
    ),
    Bad(
        "corrupt-page-inside-parquet",
        _files({"tracks.parquet": _corrupt_middle_parquet()}),
        ("tracks.parquet: corrupt Parquet file", "re-export"),
    ),
    Bad(
        "ragged-row-extra-fields",
        _files({"tracks.csv": HEADER + ROW + "m2,a2,u2,2026-01-01T00:00:00Z,extra\n"}),
        ("tracks.csv: line 3 has 5 fields but the header has 4",),
    ),
    Bad(
        "ragged-row-missing-fields",
        _files({"tracks.csv": HEADER + _rows(5) + "m9,a9\n" + _rows(5, 10)}),
        ("tracks.csv: line 7 has 2 fields but the header has 4",),
    ),
    Bad(
        # Past DuckDB's sniffing sample, so the error comes from the scan, not the sniffer.
        "ragged-row-deep-in-file",
        _files({"tracks.csv": HEADER + _rows(30_000) + "mX,aX,uX,t,extra\n"}),
        ("tracks.csv: line 30002 has 5 fields but the header has 4",),
    ),
    Bad(
        "unterminated-quote",
        _files({"tracks.csv": HEADER + 'm1,"a1,u1,2026-01-01T00:00:00Z\n' + _rows(3)}),
        ("tracks.csv: line 2 opens a quoted field that is never closed",),
    ),
    Bad(
        "unterminated-quote-deep-in-file",
        _files({"tracks.csv": HEADER + _rows(30_000) + 'mX,"aX,uX,t\n' + _rows(3)}),
        ("tracks.csv: line 30002 opens a quoted field that is never closed",),
    ),
    Bad(
        # The sniffer said "line 1" here.
        "csv-field-too-long-near-the-start",
        _files({"tracks.csv": HEADER + _rows(5) + f"mX,{'a' * 2_100_000},uX,t\n" + _rows(3)}),
        ("tracks.csv: line 7 is longer than 2,000,000 bytes", "export the table as Parquet"),
    ),
    Bad(
        "csv-field-too-long-deep-in-file",
        _files({"tracks.csv": HEADER + _rows(30_000) + f"mX,{'a' * 2_100_000},uX,t\n"}),
        ("tracks.csv: line 30002 is longer than 2,000,000 bytes",),
    ),
    Bad(
        "non-utf8-bytes",
        _files({"tracks.csv": _LATIN1}),
        ("tracks.csv: line 2 is not UTF-8 text", "re-encode it as UTF-8"),
    ),
    Bad(
        "non-utf8-bytes-deep-in-file",
        _files({"tracks.csv": (HEADER + _rows(30_000)).encode() + _LATIN1[len(HEADER) :]}),
        ("tracks.csv: line 30002 is not UTF-8 text", "iconv"),
    ),
    Bad(
        "non-utf8-header",
        _files({"tracks.csv": "id,anonymous_id,user_id,timestamp,r\xe9gion\n".encode("latin-1")}),
        ("tracks.csv: line 1 is not UTF-8 text",),
    ),
    Bad(
        "corrupt-gzip",
        _files({"tracks.csv.gz": gzip.compress((HEADER + _rows(2000)).encode())[:500]}),
        ("tracks.csv.gz:", "re-export"),
    ),
    Bad("fifo-named-like-a-table", _fifo, ("tracks.csv: not a regular file",)),
    Bad(
        "gzip-members-with-headers-in-two-orders",
        _files({"tracks.csv.gz": _gzip_members(GOOD_TRACKS, _REORDERED)}),
        ("tracks.csv.gz: line 5 is a second header line with the columns in another order",),
    ),
    Bad(
        "csv-files-joined-with-headers-in-two-orders",
        _files({"pages.csv": GOOD_TRACKS + _rows(3, 10) + _REORDERED}),
        ("pages.csv: line 8 is a second header line", "split the file there"),
    ),
    Bad(
        "utf16-file",
        _files({"tracks.csv": GOOD_TRACKS.encode("utf-16")}),
        ("tracks.csv: UTF-16 text", "iconv -f utf-16 -t utf-8"),
    ),
    Bad(
        "one-table-two-encodings",
        _files({"tracks/part-0.csv": GOOD_TRACKS, "tracks/part-1.csv": _LATIN1}),
        ("part-1.csv: line 2 is not UTF-8 text",),
    ),
    Bad(
        "broken-link-to-a-partition",
        _broken_link,
        ("dt=2 is a symbolic link to", "gone, which does not exist", "fix the link"),
    ),
    Bad(
        "broken-link-named-like-a-table",
        _broken_file_link,
        ("cannot read", "tracks.csv: a symbolic link to", "gone.csv, which does not exist"),
    ),
    Bad(
        "one-file-linked-into-two-tables",
        _one_file_in_two_tables,
        ("are one file (a link), read as table pages and as table tracks",),
    ),
    Bad(
        "a-table-in-a-compression-not-read",
        _files({"tracks.csv": GOOD_TRACKS, "pages.csv.zst": b"(\xb5/\xfd"}),
        ("pages.csv.zst holds table pages as .zst data", "decompress or convert it"),
    ),
    Bad(
        "a-table-as-json-lines",
        _files({"tracks.csv": GOOD_TRACKS, "identifies.jsonl": '{"userId": "u1"}\n'}),
        ("identifies.jsonl holds table identifies as .jsonl data",),
    ),
    Bad(
        "one-table-as-a-file-and-a-folder",
        _files({"tracks.csv": GOOD_TRACKS, "tracks/part-0.csv": GOOD_TRACKS}),
        ("table tracks is given 2 times in", "tracks/ and tracks.csv;", "keep one"),
    ),
    Bad(
        "one-table-in-two-formats",
        _files({"pages.csv": GOOD_TRACKS, "PAGES.parquet": _good_parquet()}),
        ("table pages is given 2 times", "PAGES.parquet and pages.csv"),
    ),
    Bad(
        "folder-named-like-a-file",
        _dir_named_like_file,
        ("table tracks in", "tracks.csv has no readable .parquet, .csv or .csv.gz files"),
    ),
    Bad("output-is-a-file", _output_is_file, ("--output", "out.txt is a file")),
    Bad("output-inside-input", _output_inside_input, ("is inside --input",)),
    Bad("output-is-input", _output_is_input, ("is inside --input",)),
    Bad("output-contains-input", _output_contains_input, ("contains --input",)),
    Bad("output-under-a-file", _output_under_file, ("somefile is a file, not a folder",)),
    Bad("temp-dir-under-a-file", _temp_dir_under_file, ("cannot create --temp-dir", "somefile")),
    # click validates the type before the command runs: a usage error, exit 2.
    Bad("temp-dir-is-a-file", _temp_dir_is_file, ("--temp-dir", "is a file"), code=2),
    Bad(
        # It once said to re-export tracks.csv.gz: DuckDB's gzip reader wants ~90 MB.
        "out-of-memory-while-reading-a-csv",
        _files_with(
            {"tracks.csv.gz": gzip.compress(GOOD_TRACKS.encode())}, "--memory-limit", "64MB"
        ),
        ("Out of Memory", "raise --memory-limit"),
    ),
    Bad(
        "memory-limit-zero",
        _with_option("--memory-limit", "0GB"),
        ("'--memory-limit'", "'0GB' is below the least a run can work in, 16MB"),
        code=2,
    ),
    Bad("memory-limit-in-config", _config('memory_limit = "1MB"\n'), ("memory_limit '1MB'",)),
    Bad(
        "memory-limit-not-a-size",
        _with_option("--memory-limit", "lots"),
        ("'--memory-limit'", "'lots' is not a size"),
        code=2,
    ),
    Bad(
        "zero-threads",
        _with_option("--threads", "0"),
        ("'--threads'", "0 is not in the range 1<=x<=1024"),
        code=2,
    ),
    Bad(
        "a hundred thousand threads",
        _with_option("--threads", "100000"),
        ("'--threads'", "100000 is not in the range 1<=x<=1024"),
        code=2,
    ),
    Bad("threads-in-config", _config("threads = 100000\n"), ("threads must be from 1 to 1024",)),
    Bad(
        "no-executor-timeout-zero",
        _with_option("--spark-executor-timeout", "0"),
        ("'--spark-executor-timeout'", "0.0 is not in the range 1<=x<=604800"),
        code=2,
    ),
    Bad(
        "no-executor-timeout-nan",
        _with_option("--spark-executor-timeout", "nan"),
        ("'--spark-executor-timeout'", "nan is not a number of seconds"),
        code=2,
    ),
    Bad(
        "wait-nan",
        _with_option("--wait", "nan"),
        ("'--wait'", "nan is not a number of seconds"),
        code=2,
    ),
    Bad(
        "no-executor-timeout-in-config",
        _config('spark_executor_timeout = "3m"\n'),
        ("spark_executor_timeout must be a number of seconds, not '3m'",),
    ),
    Bad(
        "no-executor-timeout-nan-in-config",
        _config("spark_executor_timeout = nan\n"),
        ("spark_executor_timeout must be from 1 to 604800 seconds (got nan)",),
    ),
    Bad(
        "config-not-utf8",
        _config("[hubs]\n# caf\xe9\n".encode("latin-1")),
        ("stitcher.toml is not UTF-8 text (byte 0xe9 on line 2)", "re-encode"),
    ),
    Bad(
        "config-nested-too-deep",
        _config("x = " + "[" * 50_000 + "]" * 50_000 + "\n"),
        ("stitcher.toml is not valid TOML: values nested too deep",),
    ),
    Bad(
        "junk-regex-the-engine-cannot-compile",
        _config('[junk]\npatterns = [\n  "^x",\n  "(?=lookahead)",\n]\n'),
        ("stitcher.toml:4: [junk] patterns '(?=lookahead)' is not a regex the duckdb engine",),
    ),
    Bad(
        "identifier-junk-regex-the-engine-cannot-compile",
        _config("[identifiers.email]\ncolumn = 'email'\njunk_patterns = ['a++']\n"),
        ("stitcher.toml:3: [identifiers.email] junk_patterns 'a++'", "bad repetition operator"),
    ),
    Bad(
        "junk-file-regex-the-engine-cannot-compile",
        _junk_file("regex:(a)\\1\n"),
        ("junk.txt:1: invalid regex '(a)\\\\1': invalid escape sequence",),
    ),
    Bad(
        "junk-file-bad-regex",
        _junk_file("undefined\nregex:([unclosed\n"),
        ("junk.txt:2: invalid regex",),
    ),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.id for c in BAD_CASES])
def test_bad_input_is_one_clear_error(ws: Workspace, case: Bad) -> None:
    args = case.build(ws)
    ws.freeze()
    result = invoke(*args)
    assert_one_error(result, case.fragments, code=case.code)
    ws.untouched()


def test_unreadable_file(ws: Workspace) -> None:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    path = ws.input / "tracks.csv"
    path.chmod(0)
    try:
        try:
            path.read_bytes()
        except PermissionError:
            pass
        else:
            pytest.skip(
                "running as root: a chmod-000 file is still readable (the FIFO and the folder "
                "named like a file cover unreadable entries)"
            )
        ws.freeze()
        assert_one_error(invoke(*_run_args(ws)), ("cannot read", "tracks.csv", "permission"))
        ws.untouched()
    finally:
        path.chmod(0o644)


def _can_mount_private() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


def test_output_on_read_only_file_system(ws: Workspace) -> None:
    """Root ignores permissions, so make the output's folder a read-only bind mount, in a
    private mount namespace that disappears with the process."""
    if not _can_mount_private():
        pytest.skip("cannot create a private mount namespace here (unshare -m / mount denied)")
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    ws.freeze()
    script = 'mount --bind -o ro "$1" "$1" && exec "$2" -m stitcher run --input "$3" --output "$4"'
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
            str(ws.root),
            sys.executable,
            str(ws.input),
            str(ws.out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: cannot write to"), result.stderr
    assert "read-only" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    ws.untouched()


# --------------------------------------------------------------------------------------------
# Documented handling: the run succeeds and says what it did.


def run_ok(input_dir: Path, output_dir: Path, *extra: str) -> dict:
    result = invoke("run", "--input", str(input_dir), "--output", str(output_dir), *extra)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert not [p for p in output_dir.parent.iterdir() if ".stitcher-tmp-" in p.name]
    return json.loads((output_dir / "run.json").read_text())


def id_map_rows(output_dir: Path) -> dict[tuple[str, str], int]:
    frame = read_output(output_dir, "id_map")
    return {
        (t, i): int(n)
        for t, i, n in zip(
            frame["identifier_type"], frame["identifier"], frame["event_count"], strict=True
        )
    }


def test_zero_byte_file_is_skipped_and_listed(ws: Workspace) -> None:
    _write(ws.input, {"tracks/part-0.csv": GOOD_TRACKS, "tracks/part-1.csv": b"", "pages.csv": b""})
    record = run_ok(ws.input, ws.out)
    skipped = record["input"]["skipped_files"]
    assert sorted((Path(s["path"]).name, s["reason"]) for s in skipped) == [
        ("pages.csv", "empty (0 bytes)"),
        ("part-1.csv", "empty (0 bytes)"),
    ]
    assert record["input"]["events"] == 3
    assert record["input"]["tables"] == ["tracks"]


def test_header_only_csv_is_a_table_without_rows(ws: Workspace) -> None:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS, "pages.csv": HEADER})
    record = run_ok(ws.input, ws.out)
    assert record["input"]["tables"] == ["tracks", "pages"]
    assert record["input"]["events"] == 3
    assert record["input"]["events_per_table"].get("pages", 0) == 0


def test_header_only_everywhere_gives_empty_outputs(ws: Workspace) -> None:
    _write(ws.input, {"tracks.csv": HEADER})
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 0
    assert read_output(ws.out, "id_map").height == 0
    assert read_output(ws.out, "users").height == 0


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda text: ("\ufeff" + text).encode(), id="utf8-bom"),
        pytest.param(lambda text: text.replace("\n", "\r\n").encode(), id="windows-crlf"),
        pytest.param(
            lambda text: ("\ufeff" + text.replace("\n", "\r\n")).encode(), id="bom-and-crlf"
        ),
    ],
)
def test_bom_and_crlf_just_work(ws: Workspace, encode: Callable[[str], bytes]) -> None:
    _write(ws.input, {"tracks.csv": encode(GOOD_TRACKS)})
    run_ok(ws.input, ws.out)
    reference = run_ok(ws.good, ws.root / "reference")
    assert id_map_rows(ws.out) == id_map_rows(ws.root / "reference")
    assert reference["input"]["events"] == 3
    # Neither the BOM nor a \r leaks into a column name or an id.
    assert all("\r" not in i and "\ufeff" not in i for _, i in id_map_rows(ws.out))


def test_numbers_in_one_partition_strings_in_another(ws: Workspace) -> None:
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "id": ["m1"],
                "anonymous_id": pa.array([1001], pa.int64()),
                "user_id": pa.array([42], pa.int64()),
                "timestamp": pa.array([1_767_225_600_000_000], ts),
            }
        ),
        _write(ws.input / "tracks" / "dt=2026-01-01", {}) / "part-0.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "id": ["m2"],
                "anonymous_id": ["1001"],
                "user_id": ["42"],
                "timestamp": ["2026-01-02T00:00:00Z"],
            }
        ),
        _write(ws.input / "tracks" / "dt=2026-01-02", {}) / "part-0.parquet",
    )
    run_ok(ws.input, ws.out)
    # The same id whatever its storage type: one identifier, both events.
    assert id_map_rows(ws.out) == {("anonymous_id", "1001"): 2, ("user_id", "42"): 2}


def test_timestamps_mixed_far_and_missing(ws: Workspace) -> None:
    rows = [
        ("iso-z", "2026-01-01T00:00:00Z", True),
        ("iso-space", "2026-01-01 00:00:00", True),
        ("iso-offset", "2026-01-01T05:30:00+05:30", True),
        ("epoch-s", "1767225600", True),
        ("epoch-ms", "1767225600000", True),
        ("far-past-1900", "1900-01-01T00:00:00Z", True),
        ("far-future-2200", "2200-01-01T00:00:00Z", True),
        ("sentinel-0001", "0001-01-01T00:00:00Z", False),
        ("year-9999", "9999-12-31T23:59:59Z", False),
        ("year-294247", "294247-01-10T04:00:54Z", False),
        ("ambiguous-slashes", "01/02/2026", False),
        ("words", "yesterday", False),
        ("huge-number", "99999999999999999999", False),
        ("missing", "", False),
    ]
    body = "".join(f"m-{name},a-{name},u-{name},{value}\n" for name, value, _ in rows)
    _write(ws.input, {"tracks.csv": HEADER + body})
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == len(rows)
    assert record["input"]["events_without_timestamp"] == sum(not ok for *_, ok in rows)
    frame = read_output(ws.out, "id_map").filter(pl.col("identifier_type") == "user_id")
    # Every time in the output is one any reader can hold (polars/pyarrow -> Python datetime).
    seen = dict(zip(frame["identifier"], frame["first_seen_at"].to_list(), strict=True))
    for name, _, ok in rows:
        assert (seen[f"u-{name}"] is not None) == ok, name
    same_instant = {seen[f"u-{n}"] for n in ("iso-z", "iso-space", "iso-offset", "epoch-s")}
    assert len(same_instant | {seen["u-epoch-ms"]}) == 1
    # Every event still counts, with or without a time.
    assert sum(id_map_rows(ws.out).values()) == 2 * len(rows)


def test_null_empty_and_whitespace_ids_everywhere(ws: Workspace) -> None:
    tracks = HEADER + (
        "m1,,u1,2026-01-01\n"  # empty anonymous_id: no identifier
        "m2, ,u1,2026-01-01\n"  # whitespace anonymous_id: junk, never links
        "m3,a1,  ,2026-01-01\n"  # whitespace user_id
        "m4,a1,\t,2026-01-01\n"
        'm5,"",u2,2026-01-01\n'  # quoted empty
        "m6,,,2026-01-01\n"  # no id at all
        " ,a2,u2,2026-01-01\n"  # whitespace message id
    )
    aliases = "id,previous_id,user_id,timestamp\nm7,,u1,2026-01-01\nm8, ,u1,2026-01-01\n"
    aliases += "m9,u1,,2026-01-01\nm10,   ,   ,2026-01-01\n"
    _write(ws.input, {"tracks.csv": tracks, "aliases.csv": aliases})
    pq.write_table(
        pa.table(
            {
                "id": ["p1", "p2", "p3"],
                "anonymous_id": [None, "", " "],
                "user_id": ["u3", None, "\n"],
                "timestamp": ["2026-01-01"] * 3,
            }
        ),
        ws.input / "pages.parquet",
    )
    record = run_ok(ws.input, ws.out)
    mapped = set(id_map_rows(ws.out))
    assert mapped == {
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
        ("user_id", "u1"),
        ("user_id", "u2"),
        ("user_id", "u3"),
    }
    quarantined = read_output(ws.out, "quarantine")
    assert all(v.strip() == "" for v in quarantined["identifier"])
    assert record["input"]["events"] == 7 + 4 + 3
    # Blank ids link nothing: a1 and a2 stay apart from the blank-carrying rows' users.
    people = read_output(ws.out, "id_map")
    person = dict(zip(people["identifier"], people["person_id"], strict=True))
    assert person["a1"] != person["u1"]
    assert (
        read_output(ws.out, "edges").filter(pl.col("from_id").str.strip_chars() == "").height == 0
    )


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_ten_kilobyte_identifiers(ws: Workspace, output_format: str) -> None:
    anonymous, user = "a" * 10_240, "u" + "é" * 5_000 + "x" * 5_000
    _write(ws.input, {"tracks.csv": HEADER + f"m1,{anonymous},{user},2026-01-01\n"})
    run_ok(ws.input, ws.out, "--output-format", output_format)
    assert id_map_rows(ws.out) == {("anonymous_id", anonymous): 1, ("user_id", user): 1}
    users = read_output(ws.out, "users")
    assert users["user_id"].to_list() == [user]


WEIRD_IDS = [
    'quote"inside',
    "'single'",
    "semi;colon; DROP TABLE users;--",
    "line\nbreak",
    "crlf\r\ninside",
    "tab\tinside",
    "comma,inside",
    "ünïcödé-用户-😀",
    "\\N",
    "back\\slash",
    '"quoted"',
    "zero\u200bwidth",
]


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
@pytest.mark.parametrize("input_format", ["parquet", "csv"])
def test_ids_with_quotes_semicolons_newlines_unicode(
    ws: Workspace, input_format: str, output_format: str
) -> None:
    table = pa.table(
        {
            "id": [f"m{i}" for i in range(len(WEIRD_IDS))],
            "anonymous_id": ["a-" + v for v in WEIRD_IDS],
            "user_id": WEIRD_IDS,
            "timestamp": ["2026-01-01T00:00:00Z"] * len(WEIRD_IDS),
        }
    )
    ws.input.mkdir()
    if input_format == "parquet":
        pq.write_table(table, ws.input / "tracks.parquet")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, ws.input / "tracks.csv")
    run_ok(ws.input, ws.out, "--output-format", output_format)
    expected = {("user_id", v): 1 for v in WEIRD_IDS} | {
        ("anonymous_id", "a-" + v): 1 for v in WEIRD_IDS
    }
    assert id_map_rows(ws.out) == expected
    users = read_output(ws.out, "users")
    assert sorted(users["user_id"].to_list()) == sorted(WEIRD_IDS)


def test_duplicate_message_ids_across_files(ws: Workspace) -> None:
    part = HEADER + "m1,a1,u1,2026-01-01\nm2,a2,,2026-01-02\n"
    _write(ws.input, {"tracks/a.csv": part, "tracks/b.csv": part, "pages.csv": part})
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 6
    assert id_map_rows(ws.out)[("anonymous_id", "a1")] == 3

    deduped = run_ok(ws.input, ws.root / "deduped", "--dedupe")
    # Message ids are unique per delivery, not per table: the same id in pages is the same
    # message delivered again.
    assert deduped["input"]["events"] == 2
    assert deduped["input"]["duplicates_removed"] == 4
    assert id_map_rows(ws.root / "deduped")[("anonymous_id", "a1")] == 1
    assert partition_of(ws.out) == partition_of(ws.root / "deduped")


def partition_of(output_dir: Path) -> set[frozenset[tuple[str, str]]]:
    return partition(read_output(output_dir, "id_map"))


def test_column_names_that_differ_only_in_case(ws: Workspace) -> None:
    _write(
        ws.input,
        {
            "tracks.csv": "id,userId,USERID,anonymous_id,timestamp\n"
            "m1,u1,,a1,2026-01-01\nm2,,u2,a2,2026-01-01\n",
            "identifies.csv": "id,user_id,anonymous_id,timestamp,Email,EMAIL,address,address_2\n"
            "m3,u1,a1,2026-01-01,x@example.com,,Main St,Flat 2\n"
            "m4,u2,a2,2026-01-01,,y@example.com,High St,\n",
        },
    )
    record = run_ok(ws.input, ws.out)
    # Both spellings are the user_id column; neither value is lost.
    assert set(id_map_rows(ws.out)) == {
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
        ("user_id", "u1"),
        ("user_id", "u2"),
    }
    # Email/EMAIL are one trait; address_2 is a real column of its own, not a case twin.
    assert record["input"]["trait_columns"] == ["address", "address_2", "email"]
    users = read_output(ws.out, "users").sort("user_id")
    assert users["email"].to_list() == ["x@example.com", "y@example.com"]


def test_identifies_with_500_trait_columns(ws: Workspace) -> None:
    traits = {f"trait_{i:03d}": [f"v{i}-a", None] for i in range(500)}
    pq.write_table(
        pa.table(
            {
                "id": ["m1", "m2"],
                "anonymous_id": ["a1", "a1"],
                "user_id": ["u1", "u1"],
                "timestamp": ["2026-01-01", "2026-01-02"],
                **traits,
            }
        ),
        _write(ws.input, {}) / "identifies.parquet",
    )
    record = run_ok(ws.input, ws.out)
    assert len(record["input"]["trait_columns"]) == 500
    users = read_output(ws.out, "users")
    assert users.height == 1
    # The latest non-null value wins: the newer row has only nulls.
    assert users["trait_000"].to_list() == ["v0-a"]
    assert users["trait_499"].to_list() == ["v499-a"]


def test_table_folder_mixing_parquet_and_csv(ws: Workspace) -> None:
    _write(
        ws.input,
        {
            "tracks/old.parquet": _good_parquet(),
            "tracks/new.csv": HEADER + "n1,a1,u1,2026-02-01\nn2,b1,v1,2026-02-01\n",
        },
    )
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 202
    assert id_map_rows(ws.out)[("anonymous_id", "a1")] == 2


def test_spark_style_folder_named_like_a_file(ws: Workspace) -> None:
    _write(
        ws.input,
        {
            "tracks.parquet/part-00000.parquet": _good_parquet(),
            "tracks.parquet/_SUCCESS": b"",
            "pages.csv/part-00000.csv": GOOD_TRACKS,
        },
    )
    record = run_ok(ws.input, ws.out)
    assert record["input"]["tables"] == ["tracks", "pages"]
    assert record["input"]["events"] == 203


def test_debug_shows_the_traceback_and_still_keeps_the_output(ws: Workspace) -> None:
    """Night 1 good, night 2 bad: the analysts still read night 1's tables, --debug or not."""
    _write(ws.input, {"tracks.csv": HEADER + ROW + "m2,a2,u2,2026-01-01T00:00:00Z,extra\n"})
    ws.freeze()
    result = invoke(*_run_args(ws, "--debug"))
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    ws.untouched()


# --------------------------------------------------------------------------------------------
# Nothing under --input is passed over in silence: run.json lists it with the reason, and one
# warning line names it (writers' markers such as _SUCCESS are listed, not warned about).


def _skipped(record: dict, root: Path) -> dict[str, str]:
    return {
        str(Path(s["path"]).relative_to(root)): s["reason"]
        for s in record["input"]["skipped_files"]
    }


def _warnings(result: object) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("WARNING")]


def test_misnamed_tables_are_listed_and_warned_about(ws: Workspace) -> None:
    _write(
        ws.input,
        {
            "pages.parquet": _good_parquet(),
            "track.parquet": GOOD_TRACKS,
            "identify.parquet": GOOD_TRACKS,
            "README.md": "notes",
            "_SUCCESS": "",
        },
    )
    result = invoke(*_run_args(ws))
    assert result.exit_code == 0, result.output
    record = json.loads((ws.out / "run.json").read_text())
    assert record["input"]["tables"] == ["pages"]
    skipped = _skipped(record, ws.input)
    assert skipped["track.parquet"].endswith("did you mean tracks?")
    assert skipped["identify.parquet"].endswith("did you mean identifies?")
    assert skipped["README.md"].startswith("not an event table")
    assert skipped["_SUCCESS"].startswith("hidden name")
    (warning,) = [w for w in _warnings(result) if "not read under --input" in w]
    assert "track.parquet" in warning and "identify.parquet" in warning
    assert "README.md" in warning and "_SUCCESS" not in warning


def test_files_of_other_kinds_in_a_table_folder_are_listed(ws: Workspace) -> None:
    _write(
        ws.input,
        {
            "tracks/part-0.csv": GOOD_TRACKS,
            "tracks/part-1.json": "{}",
            "tracks/part-2.csv.bz2": "x",
            "tracks/_SUCCESS": "",
            "tracks/.part-0.csv.crc": "x",
        },
    )
    result = invoke(*_run_args(ws))
    assert result.exit_code == 0, result.output
    record = json.loads((ws.out / "run.json").read_text())
    assert _skipped(record, ws.input) == {
        "tracks/.part-0.csv.crc": "hidden name (starts with . or _, as writers' markers such "
        "as _SUCCESS do)",
        "tracks/_SUCCESS": "hidden name (starts with . or _, as writers' markers such as "
        "_SUCCESS do)",
        "tracks/part-1.json": "not a .parquet, .csv or .csv.gz file",
        "tracks/part-2.csv.bz2": "not a .parquet, .csv or .csv.gz file",
    }
    (warning,) = _warnings(result)
    assert "part-1.json" in warning and "part-2.csv.bz2" in warning and "crc" not in warning


def test_no_warning_when_everything_is_read(ws: Workspace) -> None:
    _write(ws.input, {"tracks.csv": GOOD_TRACKS})
    result = invoke(*_run_args(ws))
    assert result.exit_code == 0, result.output
    assert _warnings(result) == []
    assert json.loads((ws.out / "run.json").read_text())["input"]["skipped_files"] == []


def test_a_linked_partition_folder_is_read(ws: Workspace) -> None:
    _write(ws.input, {"tracks/dt=1/part-0.csv": HEADER + ROW})
    elsewhere = _write(
        ws.root / "archive" / "dt=2", {"part-0.csv": HEADER + "m2,a1,u2,2026-01-02\n"}
    )
    (ws.input / "tracks" / "dt=2").symlink_to(elsewhere, target_is_directory=True)
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 2
    assert record["input"]["skipped_files"] == []
    ids = partition(read_output(ws.out, "id_map"))
    assert frozenset({("anonymous_id", "a1"), ("user_id", "u1")}) <= next(
        p for p in ids if ("anonymous_id", "a1") in p
    )
    assert id_map_rows(ws.out)[("user_id", "u2")] == 1


def test_a_link_loop_ends_and_each_file_is_read_once(ws: Workspace) -> None:
    _write(ws.input, {"tracks/dt=1/part-0.csv": GOOD_TRACKS})
    (ws.input / "tracks" / "dt=1" / "again").symlink_to(ws.input / "tracks")
    (ws.input / "tracks" / "copy").symlink_to(ws.input / "tracks" / "dt=1")
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 3
    assert id_map_rows(ws.out) == GOOD_IDS
    skipped = _skipped(record, ws.input)
    assert skipped == {
        "tracks/copy": "a link to folder " + str(ws.input / "tracks" / "dt=1") + ", already read",
        "tracks/dt=1/again": "a link to folder " + str(ws.input / "tracks") + ", already read",
    }


def test_notes_beside_a_mixpanel_export_are_listed(ws: Workspace) -> None:
    event = {
        "event": "Viewed",
        "properties": {"time": 1767225600, "distinct_id": "d1", "$insert_id": "i1"},
    }
    _write(ws.input, {"export.json": json.dumps(event) + "\n", "notes.txt": "expected output"})
    record = run_ok(ws.input, ws.out)
    assert _skipped(record, ws.input) == {
        "notes.txt": "not part of the Mixpanel export (neither JSON nor events)"
    }


# --------------------------------------------------------------------------------------------
# A header line never becomes data: files joined with `cat` (gzip members are one stream to a
# reader) carry each part's header into the middle.


def test_gzip_members_each_with_a_header(ws: Workspace) -> None:
    second = HEADER + "m9,a9,u9,2026-01-09T00:00:00Z\n"
    # The raw Segment spellings are the same columns to the loader, and the same header.
    camel = "messageId,anonymousId,userId,timestamp\n"
    _write(ws.input, {"tracks.csv.gz": _gzip_members(GOOD_TRACKS, second, HEADER, camel)})
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 4
    assert id_map_rows(ws.out) == GOOD_IDS_AND_9


def test_joined_csv_files_with_a_byte_order_mark_each(ws: Workspace) -> None:
    """Excel writes a BOM at the start of each file; `cat` puts the second one mid-file."""
    bom = "\ufeff"
    identifies = "id,anonymous_id,user_id,timestamp,plan\n"
    first = bom + identifies + "m1,a1,u1,2026-01-01,free\n"
    second = bom + identifies + "m2,a2,u2,2026-01-02,pro\n"
    _write(ws.input, {"identifies.csv": first + second})
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 2
    assert set(id_map_rows(ws.out)) == {
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
        ("user_id", "u1"),
        ("user_id", "u2"),
    }
    users = read_output(ws.out, "users").sort("user_id")
    assert users["plan"].to_list() == ["free", "pro"]


def test_a_value_that_is_a_column_name_is_still_data(ws: Workspace) -> None:
    """Only a row whose ids and time are all column names is a header: one id that happens
    to read `user_id` is an id like any other (junk rules aside)."""
    _write(ws.input, {"tracks.csv": HEADER + "m1,user_id,u1,2026-01-01\n"})
    run_ok(ws.input, ws.out)
    assert id_map_rows(ws.out) == {("anonymous_id", "user_id"): 1, ("user_id", "u1"): 1}


def test_csv_field_holding_nested_json(ws: Workspace) -> None:
    traits = json.dumps({"address": {"city": "Oslo", "lines": ["a, b", 'c "d"']}, "n": 1})
    quoted = '"' + traits.replace('"', '""') + '"'
    _write(
        ws.input,
        {
            "identifies.csv": "id,anonymous_id,user_id,timestamp,traits\n"
            f"m1,a1,u1,2026-01-01,{quoted}\n"
        },
    )
    run_ok(ws.input, ws.out)
    assert read_output(ws.out, "users")["traits"].to_list() == [traits]
    assert id_map_rows(ws.out) == {("anonymous_id", "a1"): 1, ("user_id", "u1"): 1}


def test_identifies_csv_with_3000_trait_columns(ws: Workspace) -> None:
    """3,000 traits once took 6 GB and were killed: one filtered aggregate per trait copied
    the whole input row per trait."""
    names = [f"t{i}" for i in range(3000)]
    lines = [",".join(["id", "anonymous_id", "user_id", "timestamp", *names])]
    for row in range(20):
        values = [f"v{row}_{i}" if (row + i) % 3 else "" for i in range(3000)]
        lines.append(",".join([f"m{row}", f"a{row % 4}", "u1", f"2026-01-{row + 1:02d}", *values]))
    _write(ws.input, {"identifies.csv": "\n".join(lines) + "\n"})
    record = run_ok(ws.input, ws.out)
    assert len(record["input"]["trait_columns"]) == 3000
    users = read_output(ws.out, "users")
    assert users.height == 1
    # The latest non-empty value of each trait: t2 is empty on the last row (19 + 2 = 21).
    assert users["t0"].to_list() == ["v19_0"]
    assert users["t1"].to_list() == ["v19_1"]
    assert users["t2"].to_list() == ["v18_2"]
    assert users["t2998"].to_list() == ["v19_2998"]


# --------------------------------------------------------------------------------------------
# Output: CSV has no structs, maps, lists or bytes; they are written as JSON text (bytes in
# base64), while Parquet keeps their types.


def segment_nested_identifies() -> pa.Table:
    """Segment's warehouse shape: `traits` and `context` structs, plus a map and a list."""
    return pa.table(
        {
            "id": ["m1", "m2"],
            "anonymous_id": ["a1", "a1"],
            "user_id": ["u1", "u1"],
            "timestamp": ["2026-01-01", "2026-01-02"],
            "traits": pa.array([{"plan": "free", "seats": 1, "address": {"city": "Oslo"}}, None]),
            "context": pa.array([{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}]),
            "props": pa.array(
                [[("k", "v")], [("k2", "v2"), ("k3", None)]],
                type=pa.map_(pa.string(), pa.string()),
            ),
            "tags": pa.array([["a", "b"], ["c"]]),
            "avatar": pa.array([b"\x00\xff", None], pa.binary()),
        }
    )


def test_struct_map_list_and_bytes_traits_in_csv_output(ws: Workspace) -> None:
    pq.write_table(segment_nested_identifies(), _write(ws.input, {}) / "identifies.parquet")
    run_ok(ws.input, ws.out, "--output-format", "csv")
    users = (ws.out / "users.csv").read_text().splitlines()
    assert users[0].endswith('"avatar","props","tags","traits"')
    assert users[1].endswith(
        ',"AP8=","{""k2"": ""v2"", ""k3"": null}","[""c""]",'
        '"{""plan"": ""free"", ""seats"": 1, ""address"": {""city"": ""Oslo""}}"'
    )
    parquet = ws.root / "parquet"
    run_ok(ws.input, parquet)
    schema = pq.read_schema(parquet / "users.parquet")
    assert pa.types.is_struct(schema.field("traits").type)
    assert pa.types.is_map(schema.field("props").type)


def test_files_that_hold_nothing_are_skipped_and_listed(ws: Workspace) -> None:
    """Blank lines, a lone byte order mark, an empty gzip member: no header, no rows."""
    _write(
        ws.input,
        {
            "tracks.csv": GOOD_TRACKS,
            "pages.csv": "\ufeff",
            "screens/part-0.csv": "\n\n\r\n",
            "screens/part-1.csv.gz": gzip.compress(b""),
            "identifies.csv": "\n\n" + HEADER + "m9,a9,u9,2026-01-09\n",
            "aliases.csv.bak": "previous_id,user_id\n",
        },
    )
    record = run_ok(ws.input, ws.out)
    blank = "empty (no header, no rows: only blank lines or a byte order mark)"
    assert _skipped(record, ws.input) == {
        "pages.csv": blank,
        "screens/part-0.csv": blank,
        "screens/part-1.csv.gz": blank,
        "aliases.csv.bak": "named like table aliases, but not a format stitcher reads",
    }
    assert record["input"]["tables"] == ["tracks", "identifies"]
    assert id_map_rows(ws.out) == GOOD_IDS_AND_9


def test_a_second_link_to_a_file_is_read_once(ws: Workspace) -> None:
    _write(ws.input, {"tracks/part-0.csv": GOOD_TRACKS})
    (ws.input / "tracks" / "latest.csv").symlink_to(ws.input / "tracks" / "part-0.csv")
    record = run_ok(ws.input, ws.out)
    assert record["input"]["events"] == 3
    assert _skipped(record, ws.input) == {
        "tracks/latest.csv": f"the same file as {ws.input / 'tracks' / 'part-0.csv'} (a link)"
    }
