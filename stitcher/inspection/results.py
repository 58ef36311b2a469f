"""Reading a finished output folder back (Parquet or CSV), for explain, diff and the report.

The output tables are written by the pipeline; these readers give them one typed shape whatever
the format: timestamps as UTC datetimes, counts as integers, id lists as lists of strings.

Two readers: polars frames (scan_table, read_table) for explain and diff, and Arrow tables
(read_arrow) for the report, which every run writes: polars is imported only where a frame is
asked for, because its import is ~0.17 s of a run's start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from stitcher.errors import InputError

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("parquet", "csv")
_COUNT_COLUMNS = ("event_count", "identifier_count")
_LIST_COLUMNS = ("user_ids", "anonymous_ids")
# Integer columns of the quarantine table, read back as integers from CSV too.
_INTEGER_COLUMNS = (*_COUNT_COLUMNS, "hub_degree", "hub_contention", "hub_typical_degree")


def table_path(output_dir: Path, name: str) -> Path | None:
    """The file holding table `name` in an output folder, or None when there is none."""
    for file_format in FORMATS:
        path = output_dir / f"{name}.{file_format}"
        if path.is_file():
            return path
    return None


def check_output_dir(output_dir: Path) -> None:
    """Fail with a fixable message unless `output_dir` looks like a stitcher output folder."""
    if not output_dir.is_dir():
        raise InputError(f"{output_dir} is not a folder; give the --output folder of a run")
    if table_path(output_dir, "id_map") is None:
        raise InputError(
            f"{output_dir} has no id_map.parquet or id_map.csv; give the --output folder of a "
            "finished `stitcher run`"
        )


def scan_table(output_dir: Path, name: str, columns: list[str] | None = None) -> pl.LazyFrame:
    """Table `name` of an output folder as a lazy frame with the pipeline's column types."""
    import polars as pl

    path = _existing_table(output_dir, name)
    try:
        if path.suffix == ".parquet":
            frame = pl.scan_parquet(path)
            schema = frame.collect_schema()
        else:
            frame = pl.scan_csv(path, infer_schema=False)
            schema = frame.collect_schema()
            frame = frame.with_columns(_csv_casts(schema.names()))
            schema = frame.collect_schema()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    if columns is not None:
        missing = [c for c in columns if c not in schema.names()]
        if missing:
            raise InputError(
                f"{path} has no column {', '.join(missing)}; it was written by another version "
                "of stitcher: rerun `stitcher run` to rewrite it"
            )
        frame = frame.select(columns)
    return frame


def read_table(output_dir: Path, name: str, columns: list[str] | None = None) -> pl.DataFrame:
    """Table `name` of an output folder, read in full (see scan_table)."""
    import polars as pl

    try:
        return scan_table(output_dir, name, columns).collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot read {name} in {output_dir}: {exc}") from exc


def read_run_record(output_dir: Path) -> dict | None:
    """The run.json of an output folder, or None when it has none or it is unreadable."""
    path = output_dir / "run.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_arrow(output_dir: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """Table `name` of an output folder as an Arrow table: `columns` (all when None, which
    must all exist), ids and names as strings, counts and hub degrees as int64. For the
    report, whose columns are never timestamps or id lists."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = _existing_table(output_dir, name)
    try:
        names = pq.read_schema(path).names if path.suffix == ".parquet" else _csv_header(path)
        missing = [c for c in columns or () if c not in names]
        if missing:
            raise InputError(
                f"{path} has no column {', '.join(missing)}; it was written by another version "
                "of stitcher: rerun `stitcher run` to rewrite it"
            )
        wanted = list(columns) if columns is not None else names
        if path.suffix == ".parquet":
            # ParquetFile, not read_table: that one loads pyarrow.dataset, which imports pandas.
            with pq.ParquetFile(path) as parquet:
                return parquet.read(columns=wanted)
        # Every column as text first (an id such as 007 stays 007), empty cells as nulls, as
        # the polars reader does; then the integer columns as integers.
        table = pa_csv.read_csv(
            path,
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted,
                column_types={c: pa.string() for c in wanted},
                # Only an empty unquoted cell is null: an id "null" or "NaN" is an id.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        for i, column in enumerate(table.column_names):
            if column in _INTEGER_COLUMNS:
                table = table.set_column(i, column, table.column(i).cast(pa.int64()))
        return table
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def _csv_header(path: Path) -> list[str]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _existing_table(output_dir: Path, name: str) -> Path:
    path = table_path(output_dir, name)
    if path is None:
        raise InputError(
            f"{output_dir} has no {name}.parquet or {name}.csv; rerun `stitcher run` with this "
            "version to write it"
        )
    return path


def _csv_casts(names: list[str]) -> list[pl.Expr]:
    import polars as pl

    casts = []
    for name in names:
        if name.endswith("_at"):
            casts.append(pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC"))
        elif name in _COUNT_COLUMNS:
            casts.append(pl.col(name).cast(pl.Int64))
        elif name in _LIST_COLUMNS:
            # CSV outputs hold id lists as JSON arrays (see outputs._lists_as_json).
            casts.append(pl.col(name).str.json_decode(pl.List(pl.String)))
    return casts
