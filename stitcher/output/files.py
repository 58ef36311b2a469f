"""Writing results: deterministic files, all-or-nothing replacement of the output folder."""

from __future__ import annotations

import base64
import datetime
import errno
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stitcher import interrupts
from stitcher.errors import OutputError
from stitcher.location import Url
from stitcher.output.locks import owned_folder

log = logging.getLogger("stitcher")

# Fixed row-group size: files depend only on their rows, never on how the engine batched them.
# A writer holds one row group in memory: 1M rows of id_map held ~300 MB more at peak than
# 250k (two files are written at once), at no measurable cost in time.
ROW_GROUP_ROWS = 250_000
# Dictionary encoding pays for low-cardinality columns (types, rules, reasons); ids are nearly
# all distinct, and building a dictionary for them up to the default 1 MiB before falling back
# to plain encoding cost ~10% of the write. A small limit gives up on those early.
DICTIONARY_PAGE_BYTES = 64 * 1024
TMP_MARK = ".stitcher-tmp-"
REPORT_FILE = "report.html"
OLD_MARK = ".stitcher-old-"
_SPILL_MARK = ".stitcher-spill-"


def check_output_location(output_dir: Path | Url, input_dir: Path | Url) -> None:
    """Refuse outputs that would clobber a file or the input itself, before any work."""
    if isinstance(output_dir, Url):
        _check_output_url(output_dir, input_dir)
        return
    if output_dir.is_symlink():
        # The swap renames folders: it would replace the link itself and leave its target stale.
        raise OutputError(
            f"--output {output_dir} is a symbolic link; give the folder it points to "
            f"({output_dir.resolve()}) instead"
        )
    output = output_dir.resolve()
    source = input_dir.resolve()
    if output.exists() and not output.is_dir():
        raise OutputError(f"--output {output_dir} is a file; give a folder path")
    if output == source or source in output.parents:
        raise OutputError(
            f"--output {output_dir} is inside --input {input_dir}; the next run would read its "
            "own output as events. Choose a folder outside the input"
        )
    if output in source.parents:
        raise OutputError(
            f"--output {output_dir} contains --input {input_dir}; replacing it would delete the "
            "input. Choose another folder"
        )
    parent = output.parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(
            f"--output {output_dir}: {existing} is a file, not a folder; choose another --output"
        )
    # Missing parents are created with the output's lock (stitcher/output/locks.py), and removed
    # again when the run fails.
    if existing == parent and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write to {parent} (permission denied or a read-only file system); choose "
            "another --output"
        )


def _check_output_url(output_url: Url, input_dir: Path | Url) -> None:
    """The input checks for a URL output (what is at the URL is checked through the engine,
    stitcher/output/publish.py). A file:// URL is compared with a local input as the folder it
    names."""
    if not output_url.parts:
        # The swap renames the output folder: a bucket or file system root cannot be renamed.
        raise OutputError(
            f"--output {output_url} is the root of its store; give a folder below it, e.g. "
            f"{output_url / 'stitched'}"
        )
    output, source = output_url.resolve(), input_dir.resolve()
    if isinstance(output, Path) and isinstance(source, Path):
        inside = output == source or source in output.parents
        contains = output in source.parents
    elif isinstance(output, Url) and isinstance(source, Url):
        inside = output.is_relative_to(source)
        contains = source.is_relative_to(output)
    else:
        return  # a local folder and a remote URL never overlap
    if inside:
        raise OutputError(
            f"--output {output_url} is inside --input {input_dir}; the next run would read its "
            "own output as events. Choose a location outside the input"
        )
    if contains:
        raise OutputError(
            f"--output {output_url} contains --input {input_dir}; replacing it would delete the "
            "input. Choose another location"
        )


def check_temp_dir(temp_dir: Path | None) -> None:
    """Refuse a --temp-dir the engine could not spill into, before any work (not mid-run)."""
    if temp_dir is None:
        return
    if temp_dir.exists() and not temp_dir.is_dir():
        raise OutputError(f"--temp-dir {temp_dir} is a file; give a folder path")
    try:
        temp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create --temp-dir {temp_dir}: {exc.strerror}") from exc
    if not os.access(temp_dir, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write to --temp-dir {temp_dir} (permission denied or read-only); choose "
            "another folder"
        )


def recover_interrupted(output_dir: Path) -> None:
    """Undo what a killed run left beside the output folder. Called with the output's lock held
    (stitcher/output/locks.py, `output_lock`): no other run is writing this output, so every folder
    below is a dead run's, whatever its pid says.

    A run writes into `.NAME.stitcher-tmp-*` and swaps it in by two renames (old output aside,
    new output in place). If it died between them, the old output is still whole under
    `.NAME.stitcher-old-*`: put it back. Temporary folders are removed.
    """
    parent, name = output_dir.parent, output_dir.name
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        if entry.name.startswith(f".{name}{OLD_MARK}"):
            if not output_dir.exists():
                log.warning("restoring %s from an interrupted run", output_dir)
                entry.rename(output_dir)
            else:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{name}{TMP_MARK}"):
            log.info("removing leftover temporary folder %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def check_replaceable(output_dir: Path, ours: Iterable[str]) -> None:
    """Refuse to replace a folder that is not a stitcher output: a run replaces --output whole,
    so one wrong path in a cron line would delete whatever the folder held.

    Replaceable: a missing or empty folder, or one holding a run.json that stitcher wrote and
    nothing but names in `ours` (the tables in either format, run.json, report.html).
    """
    try:
        entries = sorted(output_dir.iterdir()) if output_dir.is_dir() else []
    except OSError as exc:
        raise OutputError(f"cannot list --output {output_dir}: {exc.strerror}") from exc
    if not entries:
        return
    names = [e.name + ("/" if e.is_dir() else "") for e in entries]
    refuse_foreign(output_dir, names, _written_by_stitcher(output_dir / "run.json"), ours)


def refuse_foreign(
    output: Path | Url, names: list[str], has_our_record: bool, ours: Iterable[str]
) -> None:
    """The rule of check_replaceable, given the folder's entries (a folder's with a slash) and
    whether its run.json is stitcher's; shared with URL outputs (stitcher/output/publish.py)."""
    if not names:
        return
    if not has_our_record:
        raise OutputError(
            f"--output {output} is not a stitcher output (no run.json of ours) and holds "
            f"{some_names(names)}; a run replaces the whole folder, so give a new or empty "
            "folder, or pass --force to replace it"
        )
    foreign = [n for n in names if n not in set(ours)]
    if foreign:
        raise OutputError(
            f"--output {output} holds {some_names(foreign)}, which stitcher did not write and "
            "a run would delete; move it out, or pass --force to replace the folder anyway"
        )


def _written_by_stitcher(run_json: Path) -> bool:
    try:
        record = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "stitcher_version" in record


def some_names(names: list[str], shown: int = 3) -> str:
    """The first few names, and how many more."""
    listed = ", ".join(names[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"


@contextmanager
def spill_folder(temp_dir: Path | None, tmp: Path) -> Iterator[Path]:
    """Where the engine may spill: `tmp/.spill`, or a folder of this run's own in --temp-dir.

    Either way it is removed afterwards. In --temp-dir, the spill folders no live run owns are
    removed first (a run killed while spilling leaves gigabytes there); a live run's, on this
    host or any other sharing the folder, are left alone (stitcher/output/locks.py).
    """
    if temp_dir is None:
        folder = tmp / ".spill"
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    with owned_folder(temp_dir, _SPILL_MARK, "spill folder", f"--temp-dir {temp_dir}") as folder:
        yield folder


@contextmanager
def atomic_output_dir(output_dir: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `output_dir`; on success it replaces `output_dir`.

    On any failure the temporary folder is deleted and `output_dir` is left exactly as it was.
    The caller holds the output's lock and has recovered from an interrupted run.
    """
    tmp = output_dir.parent / f".{output_dir.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
    except OSError as exc:
        raise OutputError(
            f"cannot create a temporary folder in {tmp.parent}: {exc.strerror}"
        ) from exc
    try:
        yield tmp
        _fsync_dir(tmp)
        _swap_in(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, output_dir: Path) -> None:
    interrupts.point_of_no_return()  # a signal between the two renames would leave no output
    old = None
    if output_dir.exists():
        old = output_dir.parent / f".{output_dir.name}{OLD_MARK}{uuid.uuid4().hex[:8]}"
        output_dir.rename(old)
    try:
        tmp.rename(output_dir)
    except OSError as exc:
        if old is not None:
            old.rename(output_dir)
        raise OutputError(f"cannot move the new output into {output_dir}: {exc.strerror}") from exc
    _fsync_dir(output_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _with_utc(schema: pa.Schema) -> pa.Schema:
    """Timestamps are UTC internally; say so in the file, so readers do not assume local time."""
    fields = []
    for f in schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is None:
            f = f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
        fields.append(f)
    return pa.schema(fields)


def _nested(data_type: pa.DataType) -> bool:
    return pa.types.is_nested(data_type)


def _binary(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
        or pa.types.is_fixed_size_binary(data_type)
    )


def _json_default(value: object) -> object:
    """JSON for the scalars that json cannot write, as their usual text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)  # Decimal, timedelta


def _nested_as_json(batch: pa.RecordBatch) -> pa.RecordBatch:
    """CSV has no lists, structs or maps (Segment's `traits` and `context` structs): write them
    as JSON text (a map as an object), which any reader can parse unambiguously. Bytes, which
    CSV text cannot hold either, are written in base64."""
    if not any(_nested(f.type) or _binary(f.type) for f in batch.schema):
        return batch
    columns = []
    for column in batch.columns:
        if _binary(column.type):
            column = pa.array(
                [None if v is None else _json_default(v) for v in column.to_pylist()],
                pa.string(),
            )
        elif _nested(column.type):
            column = pa.array(
                [
                    None if v is None else json.dumps(v, ensure_ascii=False, default=_json_default)
                    for v in column.to_pylist(maps_as_pydicts="lossy")
                ],
                pa.string(),
            )
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def write_batches(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path, file_format: str
) -> int:
    """Write record batches to one Parquet or CSV file; returns the row count.

    Batches are regrouped into fixed-size row groups so the bytes depend only on the rows.
    """
    target = _with_utc(schema)
    rows = 0
    try:
        if file_format == "parquet":
            with pq.ParquetWriter(
                path,
                target,
                compression="zstd",
                dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES,
            ) as writer:
                for group in _regroup(batches, target):
                    writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
                    rows += group.num_rows
            return rows
        writer = None
        try:
            for group in _regroup(batches, target):
                for batch in group.to_batches():
                    batch = _nested_as_json(batch)
                    if writer is None:
                        writer = pacsv.CSVWriter(
                            path,
                            batch.schema,
                            write_options=pacsv.WriteOptions(quoting_style="needed"),
                        )
                    writer.write_batch(batch)
                rows += group.num_rows
            if writer is None:
                empty = _nested_as_json(pa.RecordBatch.from_pylist([], schema=target))
                writer = pacsv.CSVWriter(
                    path, empty.schema, write_options=pacsv.WriteOptions(quoting_style="needed")
                )
        finally:
            if writer is not None:
                writer.close()
        return rows
    except OSError as exc:
        raise write_error(path, exc) from exc


def write_error(path: Path, exc: OSError) -> OutputError:
    """A failed write of an output file as one line; a full disk said as such."""
    if exc.errno == errno.ENOSPC or "No space left" in str(exc):
        return OutputError(
            f"no space left on the disk holding {path.parent.parent} (while writing "
            f"{path.name}); free some space or choose another --output"
        )
    return OutputError(f"cannot write {path}: {exc}")


def _regroup(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        batch = batch.cast(schema) if batch.schema != schema else batch
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(pending, schema=schema)
            yield table.slice(0, ROW_GROUP_ROWS).combine_chunks()
            rest = table.slice(ROW_GROUP_ROWS)
            pending = rest.to_batches()
            pending_rows = rest.num_rows
    if pending_rows:
        yield pa.Table.from_batches(pending, schema=schema).combine_chunks()


def write_json(path: Path, record: dict) -> None:
    try:
        path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    except OSError as exc:
        raise write_error(path, exc) from exc
