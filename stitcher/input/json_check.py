"""Find the first line that breaks a JSON-lines file, so a read error can say where and what.

DuckDB names the file of a malformed JSON record but its line number is not reliable (it counts
from one past the record). Only after a failure, this re-reads that file with Python's JSON
parser and names the first line that is not a JSON value. It never decides whether a file is
read: the engine does; this only explains why it was not.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO

# Past this many lines the scan gives up rather than read a huge file on the error path.
_MAX_LINES = 1_000_000


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def first_json_problem(path: Path) -> str | None:
    """'line N is not valid JSON (...)' for the first bad line of a JSON-lines file, else None.

    A file holding one JSON array (not lines) is checked as a whole.
    """
    try:
        with _open(path) as raw:
            start = raw.read(64).lstrip()
            raw.seek(0)
            if start.startswith(b"["):
                try:
                    json.loads(raw.read().decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    return f"is not one valid JSON array ({exc})"
                return None
            for number, line in enumerate(raw, start=1):
                if number > _MAX_LINES:
                    return None
                if not line.strip():
                    continue
                try:
                    json.loads(line.decode("utf-8"))
                except UnicodeDecodeError:
                    return f"line {number} is not UTF-8 text"
                except json.JSONDecodeError as exc:
                    return f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})"
    except (OSError, EOFError) as exc:
        return f"cannot be read ({exc})"
    return None
