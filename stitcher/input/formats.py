"""The input formats' registry: `--input-format`'s choices and help, config validation, and
the loader's detection (stitcher/input/load.py) read it.

`segment` is the warehouse-table layout (Segment, RudderStack: one table per event type), the
loader's own and the fallback of `auto`. Every other format is an export read from a module of
its own, which provides:

- `TABLE`: the source table name its events get;
- `export_entries(input_path, input_format, is_segment_table, tree)`: the entries to read as
  such an export, or None when the input is not one (with `auto`, the formats are tried in
  registry order, before the tables of `segment`);
- `file_format(path, input_dir, explicit, default)`: how one of those files is read (None:
  not part of the export);
- `NOT_PART`, `NOT_PART_BESIDE` and `EMPTY`: what the loader says of files it skips and of an
  export whose files are all empty;
- `register_export(engine, files_by_format, identifier_types, policy) -> bool`: the `events`
  and `identify_traits` views over it; True when its events carry message ids;
- `finish_id_map(engine, policy, create_id_map)`: what it adds to `id_map` once persons are
  known (Mixpanel's distinct_id).

A new format is such a module and one entry below. This module imports none of them: config
reads it at every start of the command.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class InputFormat:
    """An input format: its name, what it is in a few words (--input-format's help), and the
    module that reads it (None: the warehouse tables, read by load.py itself)."""

    name: str
    summary: str
    module: str | None = None

    def reader(self) -> ModuleType:
        assert self.module is not None, f"{self.name} is read by load.py itself"
        return importlib.import_module(self.module)


INPUT_FORMATS: dict[str, InputFormat] = {
    fmt.name: fmt
    for fmt in (
        InputFormat("segment", "warehouse tables"),
        InputFormat(
            "mixpanel",
            "raw export JSON lines or flattened columns",
            "stitcher.input.mixpanel",
        ),
    )
}
AUTO = "auto"
FORMAT_CHOICES = (AUTO, *INPUT_FORMATS)
EXPORT_FORMATS = tuple(name for name, fmt in INPUT_FORMATS.items() if fmt.module is not None)


def formats_help() -> str:
    """--input-format's help: each format, then auto."""
    named = ", ".join(f"{name} ({fmt.summary})" for name, fmt in INPUT_FORMATS.items())
    return f"{named}, or {AUTO} (default: detect)."


def export_for_table(table: str) -> InputFormat | None:
    """The export format whose events table is `table`, if any."""
    for name in EXPORT_FORMATS:
        fmt = INPUT_FORMATS[name]
        if table == fmt.reader().TABLE:
            return fmt
    return None
