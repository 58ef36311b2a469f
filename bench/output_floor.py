"""The output floor: the least any stitcher that keeps evidence per link must pay.

One DuckDB pass over all event tables groups every (anonymous_id, user_id, previous_id) with
its first and last timestamp, its event count and its first evidence (the earliest
(timestamp, message id)); then every distinct typed identifier (anonymous ids, user ids, an
alias's previous id as a user id) with its first and last seen and its event count is written,
sorted by (type, identifier), as one Parquet file (DuckDB's own writer). No graph, no persons:
what is left of a stitcher's work once the graph steps cost nothing. The issue-29 targets are
ratios to this step (bench/run.py's `output_floor`).

    python bench/output_floor.py DATA_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import connect, scan_sql


def main(argv: list[str]) -> int:
    data_dir, out_dir = Path(argv[0]), Path(argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect()
    events = scan_sql(
        data_dir,
        'id, anonymous_id, user_id, CAST(NULL AS VARCHAR) AS previous_id, "timestamp" AS ts',
        alias_columns='id, anonymous_id, user_id, previous_id, "timestamp" AS ts',
    )
    con.execute(
        "CREATE TABLE pairs AS SELECT anonymous_id, user_id, previous_id, min(ts) AS first_ts, "
        "max(ts) AS last_ts, count(*) AS event_count, "
        "min(struct_pack(ts := ts, message_id := id)) AS first_evidence "
        f"FROM ({events}) GROUP BY ALL"
    )
    target = str(out_dir / "identifiers.parquet").replace("'", "''")
    con.execute(
        f"""
        COPY (
            SELECT identifier_type, identifier, min(first_ts) AS first_seen,
                   max(last_ts) AS last_seen, CAST(sum(event_count) AS BIGINT) AS event_count
            FROM (
                SELECT 'anonymous_id' AS identifier_type, anonymous_id AS identifier,
                       first_ts, last_ts, event_count
                FROM pairs WHERE anonymous_id IS NOT NULL
                UNION ALL
                SELECT 'user_id', user_id, first_ts, last_ts, event_count
                FROM pairs WHERE user_id IS NOT NULL
                UNION ALL
                SELECT 'user_id', previous_id, first_ts, last_ts, event_count
                FROM pairs
                WHERE previous_id IS NOT NULL AND previous_id IS DISTINCT FROM user_id
            )
            GROUP BY identifier_type, identifier
            ORDER BY identifier_type, identifier
        ) TO '{target}' (FORMAT parquet)
        """
    )
    pairs, events_seen = con.execute("SELECT count(*), sum(event_count) FROM pairs").fetchall()[0]
    written = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
    print(f"output floor: {events_seen} events, {pairs} pairs, {written} identifiers written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
