"""Find the input tables, map their columns to one schema, and register them with the engine.

Nothing is read here beyond file schemas: the events are scanned once, later, by the pairs step.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import gzip
import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from stitcher.config import IdentifierType, canonical
from stitcher.engines.base import (
    DECIMAL,
    FLOAT,
    STRING,
    Column,
    Engine,
    quote_identifier,
    quote_literal,
)
from stitcher.errors import InputError
from stitcher.graph.policies import check_input_format
from stitcher.input.csv_check import SECOND_HEADER, csv_header
from stitcher.input.formats import AUTO, EXPORT_FORMATS, INPUT_FORMATS, export_for_table
from stitcher.location import HIDDEN_REASON, LOCAL_TREE, Skipped, Tree, Url, is_hidden
from stitcher.sql import render

log = logging.getLogger("stitcher")

EVENT_TABLES = ("tracks", "pages", "screens", "identifies", "aliases")

_FORMAT_BY_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}

# Canonical keys: lower case with `_` and `-` removed, so `anonymous_id`, `anonymousId` and
# `ANONYMOUS_ID` are one column.
_FIELD_KEYS = {
    "message_id": ("messageid", "id"),
    "anonymous_id": ("anonymousid",),
    "user_id": ("userid",),
    "previous_id": ("previousid",),
}
# The event time, best first: `timestamp` is Segment's corrected event time.
_TIMESTAMP_KEYS = ("timestamp", "originaltimestamp", "receivedat", "sentat")

# Columns of `identifies` that are envelope, not traits.
_NOT_TRAITS = {
    "messageid",
    "id",
    "anonymousid",
    "userid",
    "previousid",
    "timestamp",
    "originaltimestamp",
    "receivedat",
    "sentat",
    "uuidts",
    "loadedat",
    "uuid",
    "event",
    "eventtext",
    "type",
    "channel",
    "version",
    "integrations",
    "context",
    "writekey",
    "projectid",
    "requestid",
}


_RENAMED = re.compile(r"(.+)_\d+")


def _unrenamed(name: str, columns: list[Column]) -> str:
    """Undo the engine's renaming of a column that differs from another only in case.

    DuckDB names are case-insensitive, so a file with `userId` and `USERID` reads as `userId`
    and `USERID_1`. Map `USERID_1` back to `USERID` so both spellings are one field; a real
    `address_2` beside `address` (same case) is left alone.
    """
    match = _RENAMED.fullmatch(name)
    if match:
        base = match.group(1)
        if any(c.name.lower() == base.lower() and c.name != base for c in columns):
            return base
    return name


@dataclass(frozen=True)
class TableSource:
    name: str
    # Local Paths, or Urls (s3a://...) that the engine reads.
    files_by_format: dict[str, list[Path | Url]]
    skipped_files: tuple[Skipped, ...] = ()
    # The table's folders (tracks/): only `key=value` folders below them are partition keys,
    # never the folders that hold --input itself.
    roots: tuple[Path | Url, ...] = ()

    @property
    def files(self) -> list[Path | Url]:
        return [f for files in self.files_by_format.values() for f in files]

    def describe(self) -> str:
        files = self.files
        return files[0].name if len(files) == 1 else f"{self.name}/ ({len(files)} files)"


@dataclass(frozen=True)
class InputTables:
    """What --input holds: its tables, and every entry under it that no table reads."""

    sources: list[TableSource]
    # Entries of --input that belong to no table (a misspelt `track.parquet`, notes).
    skipped: tuple[Skipped, ...] = ()
    # A URL input not listed yet (only the engine can list it; see find_tables), and the
    # --input-format to list it with.
    unlisted: tuple[Url, str] | None = None

    def all_skipped(self) -> list[Skipped]:
        return [*self.skipped, *(s for source in self.sources for s in source.skipped_files)]


@dataclass
class LoadedInput:
    """What the loader registered: per-table views plus the unified `events` view."""

    tables: list[str]
    trait_columns: list[str]
    # Every file or folder under --input not read, as {"path", "reason"} (run.json).
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    # Each `key=value` folder name met, per table: what it filled, or why it was ignored.
    partition_keys: list[dict[str, object]] = field(default_factory=list)
    # Columns that spell one field twice in a table (userId and user_id): which one is read
    # first, and on how many rows they disagree.
    twin_columns: list[dict[str, object]] = field(default_factory=list)
    # (table, view, column) of identifier columns typed float or decimal in some files: their
    # values are counted for run.json (numeric_id_counts).
    numeric_id_columns: list[tuple[str, str, str]] = field(default_factory=list)
    # Tables without a message id column: --dedupe cannot match their duplicate deliveries.
    tables_without_message_ids: list[str] = field(default_factory=list)
    input_format: str = "segment"  # or "mixpanel"

    @property
    def event_views(self) -> list[str]:
        """The views that make up `events`, one per input table (Mixpanel: `events` itself);
        the one scan aggregates each on its own (see sql/20_pairs.sql)."""
        if self.input_format == "mixpanel":
            return ["events"]
        return [event_view(table) for table in self.tables]


def event_view(table: str) -> str:
    """The view of input table `table` in the common event schema (01_normalize_events.sql)."""
    return quote_identifier(f"events_{table}")


def find_tables(
    input_dir: Path | Url, input_format: str = "auto", tree: Tree | None = None
) -> InputTables:
    """The tables under --input, by the same rules whether `tree` walks local paths or URLs,
    and every entry under it that is not read, with the reason.

    A URL without a tree is only recorded: the engine that can list it is not open yet when
    the pipeline calls this, so register_inputs lists it (with this function) once it is.
    """
    if tree is None:
        if isinstance(input_dir, Url):
            return InputTables([], unlisted=(input_dir, input_format))
        tree = LOCAL_TREE
    for name in EXPORT_FORMATS:
        if input_format not in (AUTO, name):
            continue
        reader = INPUT_FORMATS[name].reader()
        export = reader.export_entries(
            input_dir, input_format, lambda e: bool(_table_name(e, tree)), tree
        )
        if export is not None:
            return _export_input(reader, input_dir, export, input_format == name, tree)
    if not tree.exists(input_dir):
        raise InputError(f"input folder {input_dir} does not exist")
    if not tree.is_dir(input_dir):
        raise InputError(f"--input {input_dir} is a file; give the folder that holds the tables")
    try:
        entries = tree.children(input_dir)
    except OSError as exc:
        raise InputError(f"cannot list input folder {input_dir}: {exc.strerror}") from exc
    by_table: dict[str, list[Path | Url]] = {}
    skipped: list[Skipped] = []
    for entry in entries:
        table = _table_name(entry, tree)
        if table is None:
            skipped.append(_not_a_table(entry))
            continue
        by_table.setdefault(table, []).append(entry)
    sources = []
    seen: dict[tuple[int, int], tuple[str, Path]] = {}
    for table in EVENT_TABLES:
        if table in by_table:
            _check_one_layout(table, by_table[table], input_dir, tree)
            sources.append(_read_once(_collect(table, by_table[table], tree), seen))
    if not sources:
        found = ", ".join(e.name for e in entries[:10]) or "nothing"
        raise InputError(
            f"no event tables in {input_dir}: expected tracks, pages, screens, identifies or "
            f"aliases as .parquet, .csv or .csv.gz files or folders of them (found: {found})"
        )
    if not any(source.files for source in sources):
        # Only zero-byte files: what a failed export leaves. Refuse rather than replace the
        # previous output with an empty one.
        empty = ", ".join(str(s.path) for s in _empty_files(sources)[:3])
        raise InputError(
            f"every table file in {input_dir} is empty (0 bytes, or blank lines only): {empty}; "
            "check the export"
        )
    return InputTables(sources, tuple(skipped))


def _read_once(source: TableSource, seen: dict[tuple[int, int], tuple[str, Path]]) -> TableSource:
    """Each real local file once: a second link to a file of the same table is passed over;
    one file in two tables (a link from pages/ into tracks/) would count its events twice
    under two tables, so it is an error."""
    by_format: dict[str, list[Path | Url]] = {}
    skipped = list(source.skipped_files)
    for file_format, files in source.files_by_format.items():
        # Real files before links, so that the link is what is passed over.
        dropped: set[Path | Url] = set()
        for path in sorted(files, key=lambda f: isinstance(f, Path) and f.is_symlink()):
            if isinstance(path, Path):
                status = path.stat()
                key = (status.st_dev, status.st_ino)
                if key in seen:
                    table, first = seen[key]
                    if table != source.name:
                        raise InputError(
                            f"{path} and {first} are one file (a link), read as table "
                            f"{source.name} and as table {table}; keep it in one table"
                        )
                    skipped.append(Skipped(path, f"the same file as {first} (a link)"))
                    dropped.add(path)
                    continue
                seen[key] = (source.name, path)
        by_format[file_format] = [f for f in files if f not in dropped]
    return dataclasses.replace(source, files_by_format=by_format, skipped_files=tuple(skipped))


_EMPTY_REASON = "empty (0 bytes)"
_BLANK_REASON = "empty (no header, no rows: only blank lines or a byte order mark)"
# A CSV file this small is read whole to see whether it holds anything (an empty gzip member,
# a lone byte order mark); a file with a header and a row is rarely smaller.
_SMALL_FILE = 4096


def _blank_csv(path: Path | Url) -> bool:
    """Whether a small local CSV file holds nothing but blank lines (and a byte order mark)."""
    if not isinstance(path, Path):
        return False
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as f:  # type: ignore[operator]
            content = f.read(1 << 20)
    except (OSError, EOFError):
        return False  # the engine names what is wrong with it
    return not content.replace(b"\xef\xbb\xbf", b"").strip()


def _empty_files(sources: list[TableSource]) -> list[Skipped]:
    empty = (_EMPTY_REASON, _BLANK_REASON)
    return [s for source in sources for s in source.skipped_files if s.reason in empty]


# Data formats and compressions that name a table stitcher cannot read (`tracks.csv.zst`):
# skipping the table would give persons without its links, so such an entry is an error.
_UNREAD_DATA = {
    ".json", ".jsonl", ".ndjson", ".tsv", ".avro", ".orc", ".xlsx",
    ".zst", ".bz2", ".xz", ".lz4", ".zip", ".gz", ".snappy",
}  # fmt: skip


def _not_a_table(entry: Path | Url) -> Skipped:
    """Why an entry of --input is no table, with the table it was likely meant to be."""
    if is_hidden(entry.name):
        return Skipped(entry, HIDDEN_REASON, quiet=True)
    table, dot, rest = entry.name.lower().partition(".")
    if dot and table in EVENT_TABLES:
        suffix = "." + rest.rsplit(".", 1)[-1]
        if suffix in _UNREAD_DATA:
            raise InputError(
                f"{entry} holds table {table} as {suffix} data, which stitcher does not read "
                "(.parquet, .pq, .csv, .csv.gz): decompress or convert it, or move it out of "
                "--input"
            )
        return Skipped(entry, f"named like table {table}, but not a format stitcher reads")
    stem = entry.name.lower()
    for suffix in _FORMAT_BY_SUFFIX:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    reason = "not an event table (tracks, pages, screens, identifies, aliases)"
    guess = difflib.get_close_matches(stem, EVENT_TABLES, n=1, cutoff=0.75)
    if guess:
        reason += f"; did you mean {guess[0]}?"
    return Skipped(entry, reason)


def _check_one_layout(
    table: str, entries: list[Path | Url], input_dir: Path | Url, tree: Tree
) -> None:
    """One table given twice (`tracks.csv` and `tracks/`) is most often one export written
    twice: reading both would count every event twice, so refuse it."""
    if len(entries) > 1:
        names = " and ".join(e.name + ("/" if tree.is_dir(e) else "") for e in entries)
        raise InputError(
            f"table {table} is given {len(entries)} times in {input_dir}: {names}; keep one "
            "(move the others out of --input), or merge them into one folder"
        )


def _table_name(entry: Path | Url, tree: Tree) -> str | None:
    name = entry.name.lower()
    if name.startswith((".", "_")):
        return None
    if name in EVENT_TABLES and tree.is_dir(entry):
        return name
    # Files, and folders named like them: Spark writes `tracks.parquet/part-0000.parquet`.
    for suffix in _FORMAT_BY_SUFFIX:
        if name.endswith(suffix) and name[: -len(suffix)] in EVENT_TABLES:
            return name[: -len(suffix)]
    return None


def _file_format(path: Path | Url) -> str | None:
    name = path.name.lower()
    for suffix, file_format in _FORMAT_BY_SUFFIX.items():
        if name.endswith(suffix):
            return file_format
    return None


def _export_input(
    reader: ModuleType,
    input_dir: Path | Url,
    entries: list[Path | Url],
    explicit: bool,
    tree: Tree,
) -> InputTables:
    """The one table of an export (stitcher/input/formats.py: `reader` is its module) and
    every entry beside it that is not read."""
    source = _collect(
        reader.TABLE,
        entries,
        tree,
        lambda p: reader.file_format(p, input_dir, explicit, _file_format),
        reader.NOT_PART,
    )
    source = _read_once(source, {})
    if not source.files:
        raise InputError(reader.EMPTY.format(input_dir=input_dir))
    skipped: list[Skipped] = []
    if tree.is_dir(input_dir):
        for entry in tree.children(input_dir):
            if entry in entries:
                continue
            if is_hidden(entry.name):
                skipped.append(Skipped(entry, HIDDEN_REASON, quiet=True))
            else:
                skipped.append(Skipped(entry, reader.NOT_PART_BESIDE))
    return InputTables([source], tuple(skipped))


def _collect(
    table: str,
    entries: list[Path | Url],
    tree: Tree,
    file_format_of: Callable[[Path | Url], str | None] = _file_format,
    other_file: str = "not a .parquet, .csv or .csv.gz file",
) -> TableSource:
    files: list[Path | Url] = []
    roots: list[Path | Url] = []
    skipped: list[Skipped] = []
    for entry in entries:
        if tree.is_dir(entry):
            below, passed = tree.walk_files(entry)
            files.extend(below)
            skipped.extend(passed)
            roots.append(entry)
        else:
            files.append(entry)
    by_format: dict[str, list[Path | Url]] = {}
    for path in files:
        file_format = file_format_of(path)
        if file_format is None:
            skipped.append(Skipped(path, other_file))
            continue
        problem = tree.problem(path)
        if problem is not None:
            raise InputError(f"cannot read {path}: {problem}")
        try:
            size = tree.size(path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        if size == 0:
            # Writers that crash or have nothing to write leave empty files behind; they hold
            # no rows, so skipping them loses nothing. run.json lists them.
            skipped.append(Skipped(path, _EMPTY_REASON))
            continue
        if file_format == "csv" and size <= _SMALL_FILE and _blank_csv(path):
            skipped.append(Skipped(path, _BLANK_REASON))
            continue
        by_format.setdefault(file_format, []).append(path)
    if not by_format and any(s.reason in (_EMPTY_REASON, _BLANK_REASON) for s in skipped):
        return TableSource(table, {}, tuple(skipped), tuple(roots))
    if not by_format:
        where = entries[0] if len(entries) == 1 else entries[0].parent
        raise InputError(
            f"table {table} in {where} has no readable .parquet, .csv or .csv.gz files"
        )
    return TableSource(table, by_format, tuple(skipped), tuple(roots))


def list_sources(engine: Engine, tables: InputTables) -> InputTables:
    """The tables themselves, or, for a URL input not listed yet, its tables as listed by the
    engine (the same rules as for a local folder)."""
    if tables.unlisted is None:
        return tables
    url, input_format = tables.unlisted
    return find_tables(url, input_format, engine.url_tree(url))


def _warn_skipped(skipped: list[Skipped]) -> None:
    """One warning line for everything under --input that is not read (writers' markers
    aside), so that a misspelt table or a stray file is seen; run.json lists them all."""
    loud = [s for s in skipped if not s.quiet]
    if not loud:
        return
    shown = "; ".join(f"{s.path.name} ({s.reason})" for s in loud[:3])
    more = f"; and {len(loud) - 3} more" if len(loud) > 3 else ""
    log.warning(
        "not read under --input: %s%s (run.json input.skipped_files lists each)", shown, more
    )


def register_inputs(
    engine: Engine,
    tables: InputTables,
    identifier_types: Sequence[IdentifierType] = (),
    policy: str = "guarded",
) -> LoadedInput:
    """Register every table and build the `events` and `identify_traits` views."""
    tables = list_sources(engine, tables)
    sources = tables.sources
    skipped = tables.all_skipped()
    _warn_skipped(skipped)
    export_format = export_for_table(sources[0].name) if sources else None
    if export_format is not None:
        reader = export_format.reader()
        check_input_format(policy, export_format.name)
        export = sources[0]
        has_ids = reader.register_export(engine, export.files_by_format, identifier_types, policy)
        return LoadedInput(
            tables=[reader.TABLE],
            trait_columns=[],
            skipped_files=[s.record() for s in skipped],
            tables_without_message_ids=[] if has_ids else [reader.TABLE],
            input_format=export_format.name,
        )
    check_input_format(policy, "segment")
    loaded = LoadedInput(tables=[], trait_columns=[], skipped_files=[s.record() for s in skipped])
    for source in sources:
        if not source.files:
            continue
        raw, keys_used, numeric = _register_source(engine, source, identifier_types)
        loaded.partition_keys.extend(keys_used)
        loaded.numeric_id_columns.extend((source.name, view, c) for view, c in numeric)
        columns = engine.columns(raw)
        extra = _extra_identifiers(source, columns, identifier_types)
        mapping = _map_columns(source, columns, has_extra=any(extra.values()))
        loaded.twin_columns.extend(_twins(engine, source.name, raw, {**mapping, **extra}, columns))
        engine.execute(
            f"CREATE OR REPLACE VIEW {event_view(source.name)} AS "
            + _project(engine, source, raw, mapping, extra, identifier_types)
        )
        loaded.tables.append(source.name)
        if mapping["message_id"] == []:
            loaded.tables_without_message_ids.append(source.name)
        if source.name == "identifies":
            loaded.trait_columns = _register_traits(engine, raw, mapping, columns, source)
    engine.execute(
        "CREATE OR REPLACE VIEW events AS "
        + " UNION ALL ".join(f"SELECT * FROM {view}" for view in loaded.event_views)
    )
    if "identifies" not in loaded.tables:
        engine.execute(
            "CREATE OR REPLACE VIEW identify_traits AS SELECT CAST(NULL AS VARCHAR) AS "
            "anonymous_id, CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS TIMESTAMP) AS ts "
            "WHERE false"
        )
    return loaded


def _register_source(
    engine: Engine, source: TableSource, identifier_types: Sequence[IdentifierType]
) -> tuple[str, list[dict[str, object]], list[tuple[str, str]]]:
    """Register one table's files as one view whose identifier columns are text as the user
    meant it (Engine.id_text), with partition keys filled in where they stand for a field.

    This is the one place where an input column becomes an identifier. Files are read in
    groups that share the kinds of their identifier columns: a union across kinds would read
    int64 ids as doubles (2**60 + 1 loses its last digits) or floats as '1001.0' text.
    """
    fields = _Fields(identifier_types)
    groups, keys_used = _file_groups(source, fields)
    views = []
    numeric: list[tuple[str, str]] = []
    for number, group in enumerate(groups):
        files_view = f"raw_{source.name}_{group.file_format}"
        if len(groups) > 1:
            files_view += f"_{number}"
        engine.register_files(files_view, group.files, group.file_format)
        columns = engine.columns(files_view)
        numeric.extend(
            (files_view, c.name)
            for c in columns
            if c.kind in (FLOAT, DECIMAL) and fields.is_identifier(_unrenamed(c.name, columns))
        )
        view = f"{files_view}_ids"
        where = ""
        if group.file_format == "csv":
            where = _header_lines(engine, source.name, columns, fields)
        engine.execute(
            f"CREATE OR REPLACE VIEW {quote_identifier(view)} AS "
            + _read_as_meant(engine, files_view, columns, group.fills, fields)
            + where
        )
        views.append(view)
    if len(views) == 1:
        return views[0], keys_used, numeric
    # Groups (formats, kinds, folder fills) unioned by column name: ids are all text now.
    view = f"raw_{source.name}"
    engine.union_view(view, views)
    return view, keys_used, numeric


def numeric_id_counts(engine: Engine, loaded: LoadedInput) -> dict[str, dict[str, int]]:
    """For run.json: per `table.column` typed float or decimal, how many values were whole
    numbers (read as their digits), not whole (kept as their shortest text) and NaN or
    infinite (junk). Reads those columns once more; no other input pays for it."""
    counts: dict[str, dict[str, int]] = {}
    infinity = "CAST('inf' AS DOUBLE)"
    for table, view, column in loaded.numeric_id_columns:
        c = f"CAST({quote_identifier(column)} AS DOUBLE)"
        not_finite = f"isnan({c}) OR abs({c}) = {infinity}"
        row = engine.fetch_rows(
            f"SELECT count(*) FILTER (WHERE NOT ({not_finite}) AND {c} = floor({c})), "
            f"count(*) FILTER (WHERE NOT ({not_finite}) AND {c} <> floor({c})), "
            f"count(*) FILTER (WHERE {not_finite}) FROM {quote_identifier(view)}"
        )[0]
        entry = counts.setdefault(
            f"{table}.{column}", {"whole": 0, "not_whole": 0, "nan_or_infinite": 0}
        )
        for key, value in zip(entry, row, strict=True):
            entry[key] += int(value)
    return counts


class _Fields:
    """Which input column names are which field (by canonical name)."""

    def __init__(self, identifier_types: Sequence[IdentifierType]) -> None:
        self.by_key: dict[str, str] = {}
        for field_name, keys in _FIELD_KEYS.items():
            for key in keys:
                self.by_key[key] = field_name
        for key in _TIMESTAMP_KEYS:
            self.by_key[key] = "timestamp"
        for id_type in identifier_types:
            for column in id_type.columns:
                self.by_key.setdefault(canonical(column), id_type.name)

    def of(self, name: str) -> str | None:
        return self.by_key.get(canonical(name))

    def is_identifier(self, name: str) -> bool:
        found = self.of(name)
        return found is not None and found != "timestamp"


@dataclass
class _FileGroup:
    file_format: str
    files: list[Path | Url]
    # (partition key, value) constants for the fields these files have no column for.
    fills: tuple[tuple[str, str], ...]


# Hive's name for a NULL partition value.
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _partition_pairs(path: Path | Url, roots: Sequence[Path | Url]) -> list[tuple[str, str]]:
    """The `key=value` folders between the table's folder and the file."""
    folders = path.parent.parts
    root = next((r for r in roots if folders[: len(r.parts)] == r.parts), None)
    pairs = []
    for part in folders[len(root.parts) :] if root is not None else ():
        if "=" in part and not part.startswith("="):
            key, value = part.split("=", 1)
            pairs.append((key, unquote(value)))  # Hive and Spark escape values as %XX
    return pairs


@dataclass
class _KeyUse:
    """What became of one partition key of a table, for run.json."""

    table: str
    key: str
    field: str | None
    filled_files: int = 0
    ignored_files: int = 0
    reason: str | None = None

    def ignore(self, reason: str) -> None:
        self.ignored_files += 1
        self.reason = reason

    def record(self) -> dict[str, object]:
        reason = self.reason
        if self.filled_files:
            reason = f"{reason} (in {self.ignored_files} files)" if self.ignored_files else None
        return {
            "table": self.table,
            "key": self.key,
            "field": self.field,
            "filled_files": self.filled_files,
            "ignored_files": self.ignored_files,
            "reason": reason,
        }


def _file_groups(
    source: TableSource, fields: _Fields
) -> tuple[list[_FileGroup], list[dict[str, object]]]:
    """The files of one table, grouped by the kinds of their identifier columns and by the
    partition values that fill a field they lack; and what became of each partition key.

    A partition key (`user_id=u9/`) never replaces a column the file has: it fills its field
    only in files with no column of that field at all (a `timestamp=` folder fills the time
    only in files with no time column). Keys that name no identity or time field are ignored.
    """
    groups: dict[tuple[object, ...], _FileGroup] = {}
    usage: dict[str, _KeyUse] = {}
    for file_format, files in sorted(source.files_by_format.items()):
        for path in files:
            listed = _file_columns(path, file_format)
            columns = None if listed is None else dict(listed)
            if listed is not None and len(columns or {}) < len(listed):
                names = [name for name, _ in listed]
                twice = next(n for n in names if names.count(n) > 1)
                raise InputError(
                    f"{path} has two columns named {twice!r}: rename or drop one, then run again"
                )
            has = {fields.of(name) for name in columns or {}}
            fills: list[tuple[str, str]] = []
            for key, value in _partition_pairs(path, source.roots):
                field_name = fields.of(key)
                use = usage.setdefault(key, _KeyUse(source.name, key, field_name))
                if field_name is None:
                    use.ignore("not an identity or time column")
                elif columns is None:
                    use.ignore("the files' columns could not be listed (a URL input)")
                elif value == _HIVE_NULL:
                    use.ignore(f"{_HIVE_NULL} is Hive's null")
                elif field_name in has:
                    use.ignore(f"the files have their own {field_name} column")
                elif any(fields.of(k) == field_name for k, _ in fills):
                    use.ignore(f"an outer folder already fills {field_name}")
                else:
                    use.filled_files += 1
                    fills.append((key, value))
            kinds = tuple(
                sorted(
                    (canonical(name), column_type)
                    for name, column_type in (columns or {}).items()
                    if fields.is_identifier(name)
                )
            )
            signature = (file_format, kinds, tuple(fills))
            group = groups.setdefault(signature, _FileGroup(file_format, [], tuple(fills)))
            group.files.append(path)
    for use in usage.values():
        log.info(
            "%s: partition key %s %s",
            source.name,
            use.key,
            f"fills {use.field} in {use.filled_files} files"
            if use.filled_files
            else f"ignored: {use.reason}",
        )
    return list(groups.values()), [use.record() for use in usage.values()]


def _file_columns(path: Path | Url, file_format: str) -> list[tuple[str, str]] | None:
    """A local file's own columns and their types, in order, from its footer or header; None
    where they cannot be read here (a URL, or a broken file, which the engine then names)."""
    if not isinstance(path, Path):
        return None
    try:
        if file_format == "parquet":
            # The exact type, not its kind: Spark cannot even merge float with double.
            return [(f.name, str(f.type)) for f in pq.read_schema(path)]
        if file_format == "csv":
            return [(name, "string") for name in csv_header(path)]
    except (OSError, pa.ArrowException, EOFError, UnicodeError, csv.Error):
        return None
    return None


_BOM = "\ufeff"


def _header_lines(engine: Engine, table: str, columns: list[Column], fields: _Fields) -> str:
    """A WHERE clause that keeps header lines out of the data of a CSV group.

    Files joined with `cat` (gzip members too, which a reader sees as one stream) carry each
    part's header line into the middle: read as a row, it would be an event whose ids are
    `anonymous_id` and `user_id`. A row whose identity and time columns (two at least) hold
    their own names, spelled any way the loader accepts (`anonymousId`, a byte order mark in
    front), is such a line and is dropped. A row that holds the columns' names in another order
    starts rows that would be read into the wrong columns: the query stops on it with an error.
    """
    keys = [c for c in columns if fields.of(_unrenamed(c.name, columns)) is not None]
    if not keys:
        return ""
    in_use = {fields.of(_unrenamed(c.name, columns)) for c in keys}
    known = sorted(
        {canonical(_unrenamed(c.name, columns)) for c in columns}
        | {key for key, field_name in fields.by_key.items() if field_name in in_use}
    )
    longest = max(len(name) for name in known) + 8  # room for `_`, `-` and a BOM

    def spelled(column: Column, names: list[str]) -> str:
        # Folded as canonical() folds names; only short values, so that the text functions
        # never run over a real id's length.
        c = quote_identifier(column.name)
        folded = c
        for dropped in ("_", "-", " ", _BOM):
            folded = f"replace({folded}, {quote_literal(dropped)}, '')"
        listed = ", ".join(quote_literal(n) for n in names)
        short = f"CASE WHEN length({c}) <= {longest} THEN lower({folded}) IN ({listed}) END"
        return f"({c} IS NULL OR coalesce({short}, false))"

    present = " + ".join(
        f"CASE WHEN {quote_identifier(c.name)} IS NULL THEN 0 ELSE 1 END" for c in keys
    )

    def own(column: Column) -> list[str]:
        # Every spelling of the column's field: `messageId` heads the column `id`.
        name = _unrenamed(column.name, columns)
        field_name = fields.of(name)
        return sorted({canonical(name), *(k for k, f in fields.by_key.items() if f == field_name)})

    own_names = " AND ".join(spelled(c, own(c)) for c in keys)
    some_names = " AND ".join(spelled(c, known) for c in keys)
    second_header = engine.fail(f"a CSV file of table {table} holds {SECOND_HEADER}")
    return (
        f" WHERE NOT (CASE WHEN {present} < 2 THEN false WHEN {own_names} THEN true "
        f"WHEN {some_names} THEN {second_header} ELSE false END)"
    )


def _read_as_meant(
    engine: Engine,
    view: str,
    columns: list[Column],
    fills: tuple[tuple[str, str], ...],
    fields: _Fields,
) -> str:
    select = []
    for column in columns:
        name = quote_identifier(column.name)
        if fields.is_identifier(_unrenamed(column.name, columns)):
            select.append(f"{engine.id_text(name, column.kind)} AS {name}")
        else:
            select.append(name)
    for key, value in fills:
        literal = quote_literal(value)
        if fields.is_identifier(key):
            literal = engine.id_text(literal, STRING)
        select.append(f"{literal} AS {quote_identifier(key)}")
    return f"SELECT {', '.join(select)} FROM {quote_identifier(view)}"


def _extra_identifiers(
    source: TableSource, columns: list[Column], identifier_types: Sequence[IdentifierType]
) -> dict[str, list[Column]]:
    """The source columns of each configured extra identifier type's columns in this table, by
    events column (IdentifierType.event_columns): each configured column is its own."""
    found: dict[str, list[Column]] = {}
    for id_type in identifier_types:
        used = not id_type.tables or source.name in id_type.tables
        for wanted, event_column in zip(id_type.columns, id_type.event_columns, strict=True):
            key = canonical(wanted)
            found[event_column] = [
                c for c in columns if used and canonical(_unrenamed(c.name, columns)) == key
            ]
    return found


def _twins(
    engine: Engine,
    table: str,
    raw: str,
    fields: dict[str, list[Column]],
    all_columns: list[Column],
) -> list[dict[str, object]]:
    """Order each field's spelling twins (`user_id`, `userId`, `USERID`: one canonical name)
    by the documented rule, in place: the all-lower-case spelling (the warehouse's) first, the
    others in the file's column order; the first one set on a row is read. Count the rows
    where two of them are set and differ, and warn about them."""
    twins = {name: columns for name, columns in fields.items() if len(columns) > 1}
    if not twins:
        return []
    spelled = {c.name: _unrenamed(c.name, all_columns) for c in all_columns}
    counts = []
    for name, columns in twins.items():
        columns.sort(key=lambda c: spelled[c.name] != spelled[c.name].lower())
        if name == "timestamp":
            values = [
                engine.timestamp_expression(quote_identifier(c.name), c.kind) for c in columns
            ]
        else:
            values = [f"CAST({quote_identifier(c.name)} AS VARCHAR)" for c in columns]
        differ = " OR ".join(f"{a} <> {b}" for i, a in enumerate(values) for b in values[i + 1 :])
        counts.append(f"count(*) FILTER (WHERE {differ})")
    row = engine.fetch_rows(f"SELECT {', '.join(counts)} FROM {quote_identifier(raw)}")[0]
    found = []
    problems = []
    for (name, columns), disagreeing in zip(twins.items(), row, strict=True):
        names = [spelled[c.name] for c in columns]
        found.append(
            {"table": table, "field": name, "columns": names, "rows_disagreeing": int(disagreeing)}
        )
        if disagreeing:
            problems.append(
                f"{' and '.join(names)} (both {name}) disagree on {disagreeing} rows, "
                f"{names[0]} is read"
            )
    if problems:
        # One line per table, so a scheduler's log shows it whole.
        log.warning(
            "%s: %s (README: How input is read; run.json input.twin_columns)",
            table,
            "; ".join(problems),
        )
    return found


def _map_columns(
    source: TableSource, columns: list[Column], has_extra: bool = False
) -> dict[str, list[Column]]:
    by_key: dict[str, list[Column]] = {}
    for column in columns:
        by_key.setdefault(canonical(_unrenamed(column.name, columns)), []).append(column)
    mapping: dict[str, list[Column]] = {}
    for field_name, keys in _FIELD_KEYS.items():
        mapping[field_name] = next((by_key[k] for k in keys if k in by_key), [])
    mapping["timestamp"] = next((by_key[k] for k in _TIMESTAMP_KEYS if k in by_key), [])
    found = ", ".join(c.name for c in columns[:20]) + (" ..." if len(columns) > 20 else "")
    where = source.describe()
    if source.name == "aliases":
        if not mapping["previous_id"] or not mapping["user_id"]:
            raise InputError(
                f"{where} needs previous_id and user_id columns (or previousId and userId) "
                f"to be an aliases table (found: {found})"
            )
    elif not mapping["anonymous_id"] and not mapping["user_id"] and not has_extra:
        raise InputError(
            f"{where} has no anonymous_id or user_id column (or anonymousId, userId) "
            f"(found: {found})"
        )
    if not mapping["timestamp"]:
        raise InputError(
            f"{where} has no timestamp column (timestamp, original_timestamp, received_at or "
            f"sent_at) (found: {found})"
        )
    return mapping


def _text(columns: list[Column]) -> str:
    if not columns:
        return "CAST(NULL AS VARCHAR)"
    parts = [f"CAST({quote_identifier(c.name)} AS VARCHAR)" for c in columns]
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _normalized(sql: str, normalize: str) -> str:
    if normalize == "trim":
        return f"trim({sql})"
    if normalize == "lower_trim":
        return f"lower(trim({sql}))"
    return sql


def _timestamp(engine: Engine, columns: list[Column]) -> str:
    parts = [engine.timestamp_expression(quote_identifier(c.name), c.kind) for c in columns]
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _project(
    engine: Engine,
    source: TableSource,
    raw: str,
    mapping: dict[str, list[Column]],
    extra: dict[str, list[Column]],
    identifier_types: Sequence[IdentifierType],
) -> str:
    extra_sql = "".join(
        f", {_normalized(_text(extra[c]), t.normalize)} AS {quote_identifier(c)}"
        for t in identifier_types
        for c in t.event_columns
    )
    return render(
        "01_normalize_events",
        extra_columns=extra_sql,
        source_table=quote_literal(source.name),
        message_id=_text(mapping["message_id"]),
        anonymous_id=_text(mapping["anonymous_id"]),
        user_id=_text(mapping["user_id"]),
        previous_id=_text(mapping["previous_id"]),
        ts=_timestamp(engine, mapping["timestamp"]),
        raw=quote_identifier(raw),
    )


# The reserved prefix of the internal trait columns. Input names never become column names
# in stitcher's own tables, so no input can take these; users gets the input's names back.
TRAIT_PREFIX = "__trait_"


def trait_column(position: int) -> str:
    """The internal name of the trait at `position` in LoadedInput.trait_columns."""
    return f"{TRAIT_PREFIX}{position}"


def output_trait_names(traits: Sequence[str], taken: Collection[str]) -> list[str]:
    """The name of each trait in `users`: its own (lower-cased) name, or, where that is one
    of users' own columns or already given, `trait_` prefixed until it is free (`person_id`
    becomes `trait_person_id`, and `trait_trait_person_id` if a trait has that name)."""
    used = set(taken) | {t for t in traits if t not in taken}
    names = []
    for trait in traits:
        name = trait
        if trait in taken:
            while name in used:
                name = f"trait_{name}"
            used.add(name)
        names.append(name)
    return names


def _register_traits(
    engine: Engine,
    raw: str,
    mapping: dict[str, list[Column]],
    columns: list[Column],
    source: TableSource,
) -> list[str]:
    traits: dict[str, list[Column]] = {}
    for column in columns:
        name = _unrenamed(column.name, columns)
        key = canonical(name)
        if key in _NOT_TRAITS or key.startswith("context"):
            continue
        if not engine.orders_maps and "map<" in column.engine_type.lower():
            raise InputError(
                f"{source.describe()}: trait column {name!r} holds a map "
                f"({column.engine_type}), which Spark cannot compare to pick the latest value; "
                "run it with --engine duckdb, or write the column as a struct or JSON text"
            )
        traits.setdefault(name.lower(), []).append(column)
    names = sorted(traits)
    # Traits take internal names (trait_column) in every table stitcher builds: a trait named
    # ts, component or _attributed_id once collided with our own columns there.
    trait_sql = "".join(
        f", {_trait_value(traits[n])} AS {quote_identifier(trait_column(i))}"
        for i, n in enumerate(names)
    )
    engine.execute(
        "CREATE OR REPLACE VIEW identify_traits AS SELECT "
        f"{_text(mapping['anonymous_id'])} AS anonymous_id, {_text(mapping['user_id'])} AS "
        f"user_id, {_timestamp(engine, mapping['timestamp'])} AS ts{trait_sql} "
        f"FROM {quote_identifier(raw)}"
    )
    return names


def _trait_value(columns: list[Column]) -> str:
    if len(columns) == 1:
        return quote_identifier(columns[0].name)
    # The same trait spelled in two cases across partitions: one trait, as text.
    return _text(columns)
