"""Mixpanel exports as input: recognize them, read them, and map them onto the events schema.

Two shapes are read, in any mix:

* Mixpanel's raw export: JSON lines (or one JSON array per file; gzip allowed) of
  `{"event": ..., "properties": {"time", "distinct_id", "$device_id", ...}}`. Each record is
  read whole as one JSON value and the keys are extracted one by one: keys vary from event to
  event, so no schema is inferred. A record without `properties` is read as flattened.
* The same fields flattened into columns of Parquet or CSV files (`event`, `time`,
  `distinct_id`, `$device_id`, ...), matched case-insensitively, with or without the `$` and
  a `properties.` prefix.

What an event's identifiers are depends on the ID Merge system emulated:

* Simplified (and every non-Mixpanel policy): `anonymous_id` is the device (`$device_id`, or
  `distinct_id` without its `$device:` prefix), `user_id` is `$user_id` (or a `distinct_id`
  without that prefix when the event has neither). `$identify`, `$create_alias` and `$merge`
  are left out of the graph: Simplified ignores them.
* Original: every Mixpanel distinct id is one identifier of type `user_id`, one namespace (see
  the README for why that type). Ordinary events contribute their `distinct_id`; the special
  events carry the two ids they ask to merge (`user_id` = the id merged into, `previous_id` =
  the other), so both are identifiers even when no other event names them. Which merges happen
  is decided later by a replay of the special events
  (stitcher/graph/policies/mixpanel_original.py), which reads them from the `mixpanel_special`
  view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

from stitcher.config import IdentifierType
from stitcher.engines.base import STRING, Column, Engine, quote_identifier, quote_literal
from stitcher.errors import InputError
from stitcher.location import LOCAL_TREE, Tree, Url
from stitcher.sql import render

log = logging.getLogger("stitcher")

TABLE = "mixpanel"  # the source_table of every Mixpanel event
FLAT_TABLE = "events"  # the flattened export's table name when the format is detected
SPECIAL_EVENTS = ("$identify", "$create_alias", "$merge")
DEVICE_PREFIX = "$device:"
ORIGINAL = "mixpanel-original"
# What the loader says of what it does not read (stitcher/input/formats.py).
NOT_PART = "not part of a Mixpanel export (neither JSON nor the events table)"
NOT_PART_BESIDE = "not part of the Mixpanel export (neither JSON nor events)"
EMPTY = "every file of the Mixpanel export {input_dir} is empty (0 bytes)"
JSON_SUFFIXES = tuple(s + gz for s in (".json", ".jsonl", ".ndjson") for gz in ("", ".gz"))

# Each field of the Mixpanel schema: its key in `properties`, then the flattened column names
# accepted for it (compared in lower case after dropping a `properties.` / `properties_`
# prefix), best first.
_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "message_id": ("$insert_id", ("$insert_id", "insert_id")),
    "distinct_id": ("distinct_id", ("distinct_id", "$distinct_id")),
    "device_id": ("$device_id", ("$device_id", "device_id")),
    "user_id": ("$user_id", ("$user_id", "user_id")),
    "anon_id": ("$anon_id", ("$anon_id", "anon_id")),
    "identified_id": ("$identified_id", ("$identified_id", "identified_id")),
    "alias": ("alias", ("alias", "$alias")),
}
_EVENT_COLUMNS = ("event", "event_name")
_TIME_COLUMNS = ("time", "timestamp", "$time")
_DISTINCT_IDS_COLUMNS = ("$distinct_ids", "distinct_ids")
_ID_FIELDS = ("distinct_id", "device_id", "user_id")


def is_json_file(path: Path | Url) -> bool:
    return path.name.lower().endswith(JSON_SUFFIXES)


def export_entries(
    input_path: Path | Url,
    input_format: str,
    is_segment_table: Callable[[Path | Url], bool],
    tree: Tree = LOCAL_TREE,
) -> list[Path | Url] | None:
    """The files and folders to read as a Mixpanel export, or None when the input is not one.

    With `--input-format mixpanel` every visible entry is read. With `auto`, a JSON file (or a
    folder holding one) is an export, and so is a folder whose only table is `events`; a folder
    with any Segment table stays Segment input. Then only the JSON files and the `events` table
    are read, so notes or expected results kept beside an export are left alone.
    """
    if not tree.exists(input_path):
        return None  # the Segment loader says what is wrong
    explicit = input_format == "mixpanel"
    if not tree.is_dir(input_path):
        return [input_path] if explicit or is_json_file(input_path) else None
    try:
        entries = [e for e in tree.children(input_path) if not e.name.startswith((".", "_"))]
    except OSError:
        return None
    if explicit:
        if not entries:
            raise InputError(f"--input {input_path} holds no files to read as a Mixpanel export")
        return entries
    if any(is_segment_table(e) for e in entries):
        return None
    chosen = [
        e
        for e in entries
        if _is_flat_table(e) or (_holds_json(e, tree) if tree.is_dir(e) else is_json_file(e))
    ]
    return chosen or None


def _is_flat_table(entry: Path | Url | PurePath) -> bool:
    name = entry.name.lower()
    return name == FLAT_TABLE or any(
        name == FLAT_TABLE + suffix for suffix in (".parquet", ".pq", ".csv", ".csv.gz")
    )


def _holds_json(folder: Path | Url, tree: Tree) -> bool:
    return any(is_json_file(f) for f in tree.walk_files(folder)[0])


def file_format(
    path: Path | Url,
    input_path: Path | Url,
    explicit: bool,
    table_format: Callable[[Path | Url], str | None],
) -> str | None:
    """How to read one file of an export: JSON files as JSON; Parquet/CSV files when the user
    said the input is Mixpanel, or when they belong to the `events` table; any other file as
    JSON lines only when the user said so (exports are often saved without a suffix)."""
    if is_json_file(path):
        return "json"
    relative = path.relative_to(input_path) if path != input_path else PurePath(path.name)
    if explicit or _is_flat_table(PurePath(relative.parts[0])):
        return table_format(path) or ("json" if explicit else None)
    return None


def register_export(
    engine: Engine,
    files_by_format: dict[str, list[Path]],
    identifier_types: Sequence[IdentifierType],
    policy: str,
) -> bool:
    """Register the export and the `mixpanel_events`, `events`, `mixpanel_special` and
    `identify_traits` views. Returns whether message ids ($insert_id) can be present."""
    parts = []
    has_message_ids = False
    for fmt, files in sorted(files_by_format.items()):
        raw = f"raw_{TABLE}_{fmt}"
        engine.register_files(raw, files, fmt)
        if fmt == "json":
            fragments = _json_fragments(engine, raw)
            has_message_ids = True
        else:
            fragments, has_insert_ids = _flat_fragments(engine, raw, files)
            has_message_ids = has_message_ids or has_insert_ids
        parts.append(render("02_mixpanel_normalize", **fragments))
    engine.execute("CREATE OR REPLACE VIEW mixpanel_raw_events AS " + " UNION ALL ".join(parts))
    engine.execute("CREATE OR REPLACE VIEW mixpanel_events AS " + render("03_mixpanel_events"))
    if identifier_types:
        log.warning(
            "identifier types (%s) are read from Segment tables only; a Mixpanel export "
            "contributes distinct_id, $device_id and $user_id",
            ", ".join(t.name for t in identifier_types),
        )
    # The events view has a column per configured identifier type; here they are all empty.
    extra = "".join(
        f", CAST(NULL AS VARCHAR) AS {quote_identifier(c)}"
        for t in identifier_types
        for c in t.event_columns
    )
    mapping = "original" if policy == ORIGINAL else "simplified"
    engine.execute(
        "CREATE OR REPLACE VIEW events AS "
        + render(f"04_mixpanel_events_{mapping}", extra_columns=extra)
    )
    engine.execute(
        "CREATE OR REPLACE VIEW mixpanel_special AS " + render("05_mixpanel_special_events")
    )
    # Mixpanel keeps user properties in profiles, not on events: no traits are read.
    engine.execute(
        "CREATE OR REPLACE VIEW identify_traits AS SELECT CAST(NULL AS VARCHAR) AS "
        "anonymous_id, CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS TIMESTAMP) AS ts "
        "WHERE false"
    )
    return has_message_ids


def _json_path(key: str) -> str:
    """A JSON path selecting one key of an object, as an SQL string literal."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return quote_literal(f'$."{escaped}"')


def _json_fragments(engine: Engine, raw: str) -> dict[str, str]:
    # A record without `properties` is already flat: its own keys are the properties.
    # (json_extract, not DuckDB's `->`: sqlglot translates it for Spark, as get_json_object.)
    props = 'coalesce(json_extract("json", \'$.properties\'), "json")'

    def key(name: str) -> str:
        return f"json_extract_string({props}, {_json_path(name)})"

    # Ids as the user meant them (Engine.id_text): a JSON number 1001.0 is the id 1001.
    fragments = {
        name: engine.id_text(key(json_key), STRING) for name, (json_key, _) in _FIELDS.items()
    }
    fragments["event"] = f'json_extract_string("json", {_json_path("event")})'
    fragments["distinct_ids"] = engine.json_string_list(
        f"json_extract({props}, {_json_path('$distinct_ids')})"
    )
    # Epoch seconds (or milliseconds) as Mixpanel writes them; ISO-8601 text is read too.
    fragments["ts"] = engine.timestamp_expression(key("time"), STRING)
    fragments["raw"] = quote_identifier(raw)
    return fragments


def _flat_key(name: str) -> str:
    key = name.lower()
    for prefix in ("properties.", "properties_"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _flat_fragments(engine: Engine, raw: str, files: Sequence[Path]) -> tuple[dict[str, str], bool]:
    """The column expressions of a flattened export, and whether it has $insert_id."""
    columns = engine.columns(raw)
    by_key: dict[str, Column] = {}
    for column in columns:
        by_key.setdefault(_flat_key(column.name), column)

    def find(names: Sequence[str]) -> Column | None:
        return next((by_key[n] for n in names if n in by_key), None)

    def text(column: Column | None) -> str:
        if column is None:
            return "CAST(NULL AS VARCHAR)"
        return f"CAST({quote_identifier(column.name)} AS VARCHAR)"

    def identifier(column: Column | None) -> str:
        # As the user meant it (Engine.id_text): a float column's 1001.0 is the id 1001.
        if column is None:
            return text(column)
        return engine.id_text(quote_identifier(column.name), column.kind)

    where = str(files[0]) if len(files) == 1 else f"{files[0].parent}/ ({len(files)} files)"
    found = ", ".join(c.name for c in columns[:20]) + (" ..." if len(columns) > 20 else "")
    if all(find(_FIELDS[f][1]) is None for f in _ID_FIELDS):
        raise InputError(
            f"{where} has no distinct_id, $device_id or $user_id column, so it is not a "
            f"Mixpanel export (found: {found}); Segment tables are named tracks, pages, "
            "screens, identifies or aliases"
        )
    time = find(_TIME_COLUMNS)
    if time is None:
        raise InputError(f"{where} has no time column (time or timestamp) (found: {found})")
    fragments = {name: identifier(find(names)) for name, (_, names) in _FIELDS.items()}
    fragments["event"] = text(find(_EVENT_COLUMNS))
    fragments["ts"] = engine.timestamp_expression(quote_identifier(time.name), time.kind)
    fragments["distinct_ids"] = _id_list(engine, find(_DISTINCT_IDS_COLUMNS))
    fragments["raw"] = quote_identifier(raw)
    return fragments, find(_FIELDS["message_id"][1]) is not None


def _id_list(engine: Engine, column: Column | None) -> str:
    """`$distinct_ids` as VARCHAR[]: a list column as is, text holding a JSON array parsed."""
    if column is None:
        return "CAST(NULL AS VARCHAR[])"
    c = quote_identifier(column.name)
    if column.kind == STRING:
        return engine.json_string_list(c)
    return f"TRY_CAST({c} AS VARCHAR[])"


def finish_id_map(engine: Engine, policy: str, create_id_map: Callable[[str], None]) -> None:
    """Give id_map the `distinct_id` Mixpanel would report for each identifier's person.

    Simplified: the person's $user_id, else `$device:<its device id>`. Original: the person's
    earliest-seen `$identified_id` of a kept `$identify` (the policy registers them as
    `mixpanel_identified`), else its earliest-seen id; Mixpanel itself picks one at random.
    `create_id_map` creates the new id_map from its query (the pipeline's output table maker).
    """
    if policy == ORIGINAL:
        preferred = "mixpanel_identified"
    else:
        preferred = (
            "(SELECT identifier_type, identifier FROM id_map_base "
            "WHERE identifier_type = 'user_id')"
        )
    engine.create_table_as("id_map_base", "SELECT * FROM id_map")
    create_id_map(render("82_mixpanel_distinct_id", preferred=preferred))
    engine.drop("id_map_base")
