"""Peer: the stitcher's `--policy connected` graph clustered by networkx.

DuckDB reads the events once and builds the typed, junk-free graph (bench/_common.py);
networkx finds the connected components; the id map (node, cluster) is written as Parquet.

    python bench/peer_networkx.py DATA_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
from _common import build_graph, connect


def main(argv: list[str]) -> int:
    data_dir, out_dir = Path(argv[0]), Path(argv[1])
    con = connect()
    n_nodes, n_edges = build_graph(con, data_dir)
    nodes = con.sql("SELECT node FROM peer_nodes").to_arrow_table().column(0).to_pylist()
    edges = con.sql("SELECT node_l, node_r FROM peer_edges").to_arrow_table()
    con.close()
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(zip(edges.column(0).to_pylist(), edges.column(1).to_pylist(), strict=True))
    del nodes, edges
    members: list[str] = []
    clusters: list[int] = []
    for cluster, component in enumerate(nx.connected_components(graph)):
        for node in component:
            members.append(node)
            clusters.append(cluster)
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"node": members, "cluster": clusters}),
        out_dir / "id_map.parquet",
        compression="zstd",
    )
    print(f"networkx: {n_nodes} nodes, {n_edges} edges, {max(clusters, default=-1) + 1} clusters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
