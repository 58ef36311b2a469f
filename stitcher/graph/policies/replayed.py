"""What the replaying policies share (segment, and guarded with extra identifier types): the
events to replay, read from the one scan's aggregate, and the shape of what a replay returns
(sql/54_replayed.sql makes it a table). The replays themselves are stitcher/graph/replay.py."""

from __future__ import annotations

import pyarrow as pa

from stitcher.engines.base import quote_identifier, quote_literal
from stitcher.sql import render

REPLAYED_SCHEMA = pa.schema(
    [
        ("identifier_type", pa.string()),
        ("identifier", pa.string()),
        ("profile", pa.int64()),
        ("dropped_for", pa.string()),
    ]
)


def replay_input(columns: list[tuple[str, str]], units: bool = False) -> str:
    """The identifier sets to replay (sql/54_replay_events.sql), each tagged with its
    component; per column i: the value v{i}, the component c{i} and node n{i} of that value
    when it belongs to a replayed component (NULL otherwise: junk, hubs, other components),
    and with `units` its unit u{i} (violating_ids.unit)."""
    q, lit = quote_identifier, quote_literal
    touches = " OR ".join(
        f"p.{q(col)} IN (SELECT identifier FROM violating_ids WHERE identifier_type = {lit(t)})"
        for t, col in columns
    )
    selected = ", ".join(f"p.{q(col)}" for _, col in columns)
    events = render("54_replay_events", columns=selected, touches_violating=touches)
    joins = "".join(
        f" LEFT JOIN violating_ids AS v{i} ON v{i}.identifier_type = {lit(t)} "
        f"AND v{i}.identifier = r.{q(col)}"
        for i, (t, col) in enumerate(columns)
    )
    tagged = ", ".join(
        f"r.{q(col)} AS v{i}, v{i}.component AS c{i}, v{i}.node_id AS n{i}"
        + (f", v{i}.unit AS u{i}" if units else "")
        for i, (_, col) in enumerate(columns)
    )
    component = ", ".join(f"v{i}.component" for i in range(len(columns)))
    return (
        f"SELECT coalesce({component}) AS component, {tagged}, r.ts, r.message_id, "
        f"r.source_table FROM ({events}) AS r{joins} "
        f"WHERE coalesce({component}) IS NOT NULL"
    )
