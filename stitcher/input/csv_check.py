"""Find the first line that breaks a CSV file, so a read error can say where and what.

Engines report some CSV failures without a line number (DuckDB's dialect sniffer only says it
could not make sense of the file). This module re-reads such a file with Python's strict CSV
parser, only after a failure, and names the first offending line. It never decides whether a
file is read: the engine does; this only explains why it was not. It also reads a file's
header line, for the loader and the Spark engine, which need a file's columns before reading it.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# A sniffer only looks at the start of a file; past this many lines the scan gives up rather
# than read a huge file on the error path.
_MAX_LINES = 1_000_000

REENCODE_HINT = "re-encode it as UTF-8, e.g. `iconv -f latin1 -t utf-8 FILE > NEW`"


def csv_header(path: Path) -> tuple[str, ...]:
    """The column names of a local CSV file's header (gzip by suffix, a byte order mark
    dropped). Raises OSError (or EOFError for a broken gzip) when it cannot be read."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        line = f.readline()
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff")
    return tuple(next(csv.reader(io.StringIO(text)), []))


# The end of the error for a second header line whose columns are in another order than the
# first one's: the rows after it would be read into the wrong columns (load._header_lines).
SECOND_HEADER = (
    "a second header line with the columns in another order (files joined with `cat`?); "
    "split the file there, or re-export it"
)


def _folded(name: str) -> str:
    """A column name as the loader matches it (config.canonical), a byte order mark dropped."""
    return re.sub(r"[_\-\s\ufeff]", "", name).lower()


def second_header_line(path: Path) -> int | None:
    """The line of the first row of a local CSV file that holds the header's names in another
    order; None when there is none (or the file cannot be read). Only on the error path."""
    try:
        with _open(path) as raw:
            text = (line.decode("utf-8", errors="replace") for line in raw)
            reader = csv.reader(text)
            header = [_folded(name) for name in next(reader, [])]
            names = set(header)
            start = 2
            for row in reader:
                values = [_folded(value) for value in row]
                if values != header and len(values) > 1 and set(values) <= names:
                    return start
                start = reader.line_num + 1
    except (OSError, EOFError, csv.Error):
        return None
    return None


def first_long_line(path: Path, limit: int) -> int | None:
    """The first line of a local file longer than `limit` bytes, or None. Only on the error
    path: the engine's sniffer may report such a line as line 1."""
    try:
        with _open(path) as raw:
            for number, line in enumerate(raw, start=1):
                if len(line) > limit:
                    return number
    except (OSError, EOFError):
        return None
    return None


class _NotUtf8(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _decoded_lines(raw: IO[bytes]) -> Iterator[str]:
    for number, line in enumerate(raw, start=1):
        if number > _MAX_LINES:
            return
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotUtf8(number) from None


def first_csv_problem(path: Path) -> str | None:
    """A one-line description of the first problem in a comma-separated file with a header.

    Checks: UTF-8 text, quotes that close, and the same number of fields on every row as in
    the header. Returns None when none of these is wrong (or the file cannot be opened).
    """
    record_start = 1
    try:
        with _open(path) as raw:
            if raw.peek(2)[:2] in (b"\xff\xfe", b"\xfe\xff"):
                return (
                    "UTF-16 text (it starts with a UTF-16 byte order mark); re-encode it as "
                    "UTF-8, e.g. `iconv -f utf-16 -t utf-8 FILE > NEW`"
                )
            lines = _decoded_lines(raw)
            reader = csv.reader(lines, delimiter=",", quotechar='"', doublequote=True, strict=True)
            header: list[str] | None = None
            for row in reader:
                if not row:
                    record_start = reader.line_num + 1
                    continue
                if header is None:
                    header = row
                elif len(row) != len(header):
                    return (
                        f"line {record_start} has {len(row)} fields but the header has "
                        f"{len(header)} (a ragged row); fix or remove that line"
                    )
                record_start = reader.line_num + 1
    except _NotUtf8 as exc:
        return f"line {exc.line} is not UTF-8 text; {REENCODE_HINT}"
    except csv.Error as exc:
        text = str(exc)
        if "end of data" in text or "EOF" in text or "field limit" in text:
            # A quote that never closes swallows the following lines into one huge field.
            return (
                f"line {record_start} opens a quoted field that is never closed; close the "
                'quote or double the " inside the value'
            )
        return f"line {record_start}: {text}; check the quoting on that line"
    except (OSError, EOFError):
        return None
    return None
