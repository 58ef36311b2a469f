"""Reading a finished output folder back (Parquet or CSV), for explain, diff and the report.

The output tables are written by the pipeline; these readers give them one typed shape whatever
the format: timestamps as UTC datetimes, counts as integers, id lists as lists of strings.

polars is imported only where a frame is asked for (explain, diff, a run's comparison with its
previous output): its import is ~0.17 s, which a first run does not pay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from stitcher.errors import InputError

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("parquet", "csv")
_COUNT_COLUMNS = ("event_count", "identifier_count")
_LIST_COLUMNS = ("user_ids", "anonymous_ids")


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

    path = table_path(output_dir, name)
    if path is None:
        raise InputError(
            f"{output_dir} has no {name}.parquet or {name}.csv; rerun `stitcher run` with this "
            "version to write it"
        )
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
