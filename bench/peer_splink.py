"""Peer: the stitcher's `--policy connected` graph clustered by Splink on DuckDB.

DuckDB reads the events once and builds the typed, junk-free graph (bench/_common.py); Splink's
`cluster_pairwise_predictions_at_threshold` (SQL connected components, on the same DuckDB
connection) clusters it; the id map (node, cluster) is written as Parquet by DuckDB.

    python bench/peer_splink.py DATA_DIR OUT_DIR

Needs `pip install -e '.[bench]'` (splink).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from _common import build_graph, connect


def main(argv: list[str]) -> int:
    data_dir, out_dir = Path(argv[0]), Path(argv[1])
    try:
        from splink import DuckDBAPI
        from splink.clustering import cluster_pairwise_predictions_at_threshold
    except ImportError as exc:
        print(f"splink is not installed ({exc}); pip install -e '.[bench]'", file=sys.stderr)
        return 3
    logging.getLogger("splink").setLevel(logging.WARNING)
    con = connect()
    n_nodes, n_edges = build_graph(con, data_dir)
    clusters = cluster_pairwise_predictions_at_threshold(
        "peer_nodes",
        "peer_edges",
        db_api=DuckDBAPI(connection=con),
        node_id_column_name="node",
        edge_id_column_name_left="node_l",
        edge_id_column_name_right="node_r",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = str(out_dir / "id_map.parquet").replace("'", "''")
    con.execute(
        f"COPY (SELECT node, cluster_id AS cluster FROM {clusters.physical_name}) "
        f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    count = con.execute(f"SELECT count(DISTINCT cluster_id) FROM {clusters.physical_name}")
    print(f"splink: {n_nodes} nodes, {n_edges} edges, {count.fetchall()[0][0]} clusters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
