"""The identity graph: which columns are identifiers and which pairs of them link
(identifiers.py), dense node ids and `nodes` (nodes.py), the merge policies (policies/: the
registry and one module per policy), the order-dependent replays (replay.py,
mixpanel_replay.py) and the connected components (components.py).

Nothing is imported here: Spark's executors import the replays from this package, and may have
only pyarrow and the standard library (tests/test_packaging.py)."""
