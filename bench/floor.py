"""The floor: the one DuckDB pass any identity stitcher must make over the events.

Groups every (anonymous_id, user_id) pair of all event tables with its first and last
timestamp and its event count, into an in-memory table. Nothing is written. The benchmark
harness runs this in its own process and compares every other step to it.

    python bench/floor.py DATA_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import connect, scan_sql


def main(argv: list[str]) -> int:
    data_dir = Path(argv[0])
    con = connect()
    events = scan_sql(data_dir, 'anonymous_id, user_id, "timestamp" AS ts')
    con.execute(
        "CREATE TABLE pairs AS SELECT anonymous_id, user_id, min(ts) AS first_ts, "
        f"max(ts) AS last_ts, count(*) AS event_count FROM ({events}) GROUP BY ALL"
    )
    pairs, events_seen = con.execute("SELECT count(*), sum(event_count) FROM pairs").fetchall()[0]
    print(f"floor: {events_seen} events, {pairs} (anonymous_id, user_id) pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
