"""Connected components of the identity graph.

The embedded path hands the kept links to scipy as dense integer pairs: one C pass, exact for
any shape (long chains, stars, one giant component), no round limit to truncate anything.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

log = logging.getLogger("stitcher")


def component_labels(n_nodes: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Label of each node 0..n_nodes-1; two nodes share a label iff a path of edges joins them."""
    if n_nodes == 0:
        return np.zeros(0, dtype=np.int64)
    if len(src) == 0:
        return np.arange(n_nodes, dtype=np.int64)
    if src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= n_nodes:
        raise ValueError("edge endpoints must be node ids in [0, n_nodes)")
    weights = np.ones(len(src), dtype=np.int8)
    graph = coo_matrix((weights, (src, dst)), shape=(n_nodes, n_nodes)).tocsr()
    count, labels = connected_components(graph, directed=True, connection="weak")
    log.info("components: %d nodes, %d edges, %d components", n_nodes, len(src), count)
    return labels.astype(np.int64)


def components_table(n_nodes: int, edges: pa.Table) -> pa.Table:
    """node_components(node_id, component) from an Arrow table of (src, dst) node ids."""
    src = edges.column("src").to_numpy().astype(np.int64, copy=False)
    dst = edges.column("dst").to_numpy().astype(np.int64, copy=False)
    labels = component_labels(n_nodes, src, dst)
    return pa.table(
        {
            "node_id": pa.array(np.arange(n_nodes, dtype=np.int64)),
            "component": pa.array(labels),
        }
    )
