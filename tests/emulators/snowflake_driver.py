"""Runs `stitcher sql` scripts on fakesnow, a Snowflake emulator, for tests/test_snowflake.py.

Runs in a virtualenv of its own (fakesnow pins DuckDB and sqlglot versions of its own; see
README, "Development"), with stitcher installed there for `stitcher.warehouse.run_script`:

    python snowflake_driver.py JOB.json

The job lists cases. Each case loads its input tables (Parquet files) into schema ANALYTICS of
a fresh emulated database, optionally with Segment's own `users` table beside them, runs the
script through the Snowflake Python connector, and dumps every table of the database as
Parquet into the case's folder, with result.json: the error the script stopped with, if any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import fakesnow
import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector

from stitcher.warehouse import run_script

# Segment's Snowflake destination has a `users` table of its own (one row per user id, with
# its latest traits); the script must never drop or replace it.
SEGMENT_USERS = (
    "CREATE TABLE analytics.users (id VARCHAR, email VARCHAR, received_at TIMESTAMP_NTZ)",
    "INSERT INTO analytics.users VALUES ('u-1', 'a@example.com', '2026-11-01 10:00:00'), "
    "('u-2', NULL, '2026-11-02 11:30:00')",
)


def _snowflake_type(data_type: pa.DataType) -> str:
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMP_NTZ"
    if pa.types.is_integer(data_type):
        return "NUMBER"
    return "VARCHAR"


def _load(cursor: object, name: str, path: Path) -> None:
    table = pq.read_table(path)
    columns = ", ".join(f'"{f.name.upper()}" {_snowflake_type(f.type)}' for f in table.schema)
    cursor.execute(f"CREATE TABLE analytics.{name} ({columns})")
    # Loaded as on Snowflake, by COPY INTO from the file (the emulator reads file:// URLs).
    cursor.execute(
        f"COPY INTO analytics.{name} FROM '{path.parent.as_uri()}/' FILES = ('{path.name}') "
        "FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
    )


def _dump(cursor: object, folder: Path) -> dict[str, int]:
    cursor.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema <> 'INFORMATION_SCHEMA'"
    )
    counts = {}
    for schema, name in cursor.fetchall():
        cursor.execute(f'SELECT * FROM "{schema}"."{name}"')
        rows = cursor.fetchall()
        names = [c.name.lower() for c in cursor.description]
        # As the connector returns them: ARRAY, OBJECT and VARIANT values are JSON text.
        table = pa.table(
            {n: pa.array([row[i] for row in rows]) for i, n in enumerate(names)}
            if rows
            else {n: pa.array([], pa.string()) for n in names}
        )
        pq.write_table(table, folder / f"{schema}.{name}.parquet")
        counts[f"{schema}.{name}"] = table.num_rows
    return counts


def run_case(case: dict) -> None:
    folder = Path(case["dump"])
    folder.mkdir(parents=True, exist_ok=True)
    with fakesnow.patch():
        connection = snowflake.connector.connect(database="STITCHER_TEST", schema="ANALYTICS")
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS stitcher_test")
        for schema in ("analytics", *case.get("schemas", [])):
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS stitcher_test.{schema}")
        cursor.execute("USE SCHEMA stitcher_test.analytics")
        for name, path in case["tables"].items():
            _load(cursor, name, Path(path))
        if case.get("segment_users"):
            for statement in SEGMENT_USERS:
                cursor.execute(statement)
        error = None
        for script in case["scripts"]:
            try:
                run_script(Path(script), connection)
            except Exception as exc:  # the test reads what stopped it
                error = str(exc)
                break
        tables = _dump(cursor, folder)
        connection.close()
    (folder / "result.json").write_text(json.dumps({"error": error, "tables": tables}))


if __name__ == "__main__":
    job = json.loads(Path(sys.argv[1]).read_text())
    for one in job["cases"]:
        run_case(one)
