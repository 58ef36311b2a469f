"""What the benchmark's stand-alone scripts share: finding the generated tables, the one scan.

The scripts in bench/ run one per process so the harness can measure each one's peak RSS; this
module holds the little they have in common. It reads the generator's layout only (one
`<table>.parquet` file or a `<table>/` folder of Parquet files per table).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

TABLES = ("tracks", "pages", "screens", "identifies", "aliases")


def table_globs(data_dir: Path) -> dict[str, str]:
    """Parquet glob per event table present in data_dir."""
    found = {}
    for table in TABLES:
        if (data_dir / f"{table}.parquet").is_file():
            found[table] = str(data_dir / f"{table}.parquet")
        elif (data_dir / table).is_dir():
            found[table] = str(data_dir / table / "**" / "*.parquet")
    if not found:
        raise SystemExit(f"no event tables in {data_dir}; run `stitcher generate` first")
    return found


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


def scan_sql(data_dir: Path, columns: str, alias_columns: str | None = None) -> str:
    """UNION ALL of every table's `columns` (a select list over the generator's column names);
    `alias_columns` replaces it for the aliases table, the only one with previous_id.

    Paths come from our own generator's folder, so inlining them as literals is safe here.
    """
    parts = []
    for table, glob in table_globs(data_dir).items():
        quoted = "'" + glob.replace("'", "''") + "'"
        select = alias_columns if table == "aliases" and alias_columns else columns
        parts.append(f"SELECT {select} FROM read_parquet({quoted}, union_by_name = true)")
    return "\nUNION ALL\n".join(parts)


def build_graph(con: duckdb.DuckDBPyConnection, data_dir: Path) -> tuple[int, int]:
    """Tables peer_nodes(node) and peer_edges(node_l, node_r): the graph the peers cluster.

    The same links `stitcher run --policy connected` keeps: an event's anonymous_id to its
    user_id, an alias's previous_id to its user_id, ids typed ('a:…', 'u:…'), junk ids (the
    stitcher's default list) left out. The events are read once, into grouped pairs.
    """
    from stitcher.config import DEFAULT_JUNK_PATTERNS, DEFAULT_JUNK_VALUES

    events = scan_sql(
        data_dir,
        "anonymous_id, user_id, CAST(NULL AS VARCHAR) AS previous_id",
        alias_columns="anonymous_id, user_id, previous_id",
    )
    con.execute(f"CREATE TABLE peer_pairs AS SELECT DISTINCT * FROM ({events})")
    pattern = "|".join(f"(?:{p})" for p in DEFAULT_JUNK_PATTERNS)
    con.execute(
        """
        CREATE TABLE peer_nodes AS
        WITH ids AS (
            SELECT DISTINCT t, v FROM (
                SELECT 'a' AS t, anonymous_id AS v FROM peer_pairs
                UNION ALL SELECT 'u', user_id FROM peer_pairs
                UNION ALL SELECT 'u', previous_id FROM peer_pairs
            ) WHERE v IS NOT NULL
        ),
        keyed AS (
            SELECT t, v, lower(regexp_replace(v, '^[\\s"'']+|[\\s"'']+$', '', 'g')) AS k FROM ids
        )
        SELECT t || ':' || v AS node FROM keyed
        WHERE NOT list_contains(?, k) AND NOT regexp_full_match(k, ?)
        """,
        [list(DEFAULT_JUNK_VALUES), pattern],
    )
    con.execute(
        """
        CREATE TABLE peer_edges AS
        WITH links AS (
            SELECT DISTINCT 'a:' || anonymous_id AS node_l, 'u:' || user_id AS node_r
            FROM peer_pairs WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL
            UNION
            SELECT 'u:' || previous_id, 'u:' || user_id
            FROM peer_pairs
            WHERE previous_id IS NOT NULL AND user_id IS NOT NULL AND previous_id <> user_id
        )
        SELECT node_l, node_r FROM links
        WHERE node_l IN (SELECT node FROM peer_nodes) AND node_r IN (SELECT node FROM peer_nodes)
        """
    )
    con.execute("DROP TABLE peer_pairs")
    nodes = con.execute("SELECT count(*) FROM peer_nodes").fetchall()[0][0]
    edges = con.execute("SELECT count(*) FROM peer_edges").fetchall()[0][0]
    return int(nodes), int(edges)
