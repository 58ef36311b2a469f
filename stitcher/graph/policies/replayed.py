"""What the replaying policies share (segment, and guarded with extra identifier types): the
events to replay, read from the one scan's aggregate, and the shape of what a replay returns
(sql/54_replayed.sql makes it a table). The replays themselves are stitcher/graph/replay.py."""

from __future__ import annotations

import pyarrow as pa

from stitcher.config import RunOptions
from stitcher.engines.base import Engine, quote_identifier, quote_literal
from stitcher.graph.components import solve
from stitcher.graph.identifiers import event_columns
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


def usable_components(engine: Engine, options: RunOptions) -> None:
    """policy_components(node_id, component) over every usable link (sql/53): the groups a
    replay runs in, each exactly the global replay restricted to it."""
    solve(
        engine,
        render("53_usable_node_edges"),
        "policy_components",
        "policy_edges",
        options.max_rounds,
    )


def replay_columns(options: RunOptions) -> list[tuple[str, str]]:
    """(identifier type, events column) of every id an event carries, aliases' previous id
    last."""
    return [*event_columns(options), ("user_id", "previous_id")]


def run_replay(
    engine: Engine, columns: list[tuple[str, str]], replay: object, units: bool = False
) -> None:
    """Run `replay` over each group of violating_ids (engine.map_groups: in this process, or
    in parallel on Spark's executors), and make `replayed` (sql/54_replayed.sql) of it."""
    engine.map_groups(
        "replayed_groups", replay_input(columns, units=units), "component", replay, REPLAYED_SCHEMA
    )
    engine.create_table_as("replayed", render("54_replayed"))
