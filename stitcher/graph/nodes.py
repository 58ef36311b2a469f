"""The graph's vertices: every usable identifier numbered with a dense integer node id, in
anchor order (sql/33_node_ids*.sql), and `nodes` (sql/60_nodes.sql), what the solver and the
replaying policies work on."""

from __future__ import annotations

from stitcher.engines.base import Engine, drop_tables
from stitcher.sql import render


def create_nodes(engine: Engine) -> None:
    """`nodes` (sql/60_nodes.sql): the usable identifiers by node id, the solver's vertices."""
    engine.create_table_as("nodes", render("60_nodes"))


# The three forms of the node numbering and their sql/33 steps: each gives exactly the same
# node ids (tests/test_node_ids.py).
NUMBERING_STEPS = {
    "ordered": "33_node_ids",
    "bucketed": "33_node_ids_bucketed",
    "sorted": "33_node_ids_sorted",
}
NUMBERING_FORMS = tuple(NUMBERING_STEPS)


def numbering_form(engine: Engine) -> str:
    """Which form of the node numbering suits `engine` (see Engine.distributed_numbering and
    Engine.row_position)."""
    if engine.distributed_numbering:
        return "bucketed"
    return "sorted" if engine.row_position else "ordered"


def create_node_ids(engine: Engine, form: str) -> None:
    """identifiers_checked from identifiers_quarantined, numbered by `form`."""
    if form == "sorted":
        create_sorted_identifiers(engine)
        create_checked_view(engine)
    else:
        engine.create_table_as("identifiers_checked", render(NUMBERING_STEPS[form]))


def create_sorted_identifiers(engine: Engine) -> None:
    """The sorted form's first half: identifiers_sorted, in node id order."""
    engine.create_table_as("identifiers_sorted", render(NUMBERING_STEPS["sorted"]))


def create_checked_view(engine: Engine) -> None:
    """The sorted form's second half: identifiers_checked, a view over identifiers_sorted
    whose node id is the row's position: no second copy of the table."""
    engine.execute(
        "CREATE OR REPLACE VIEW identifiers_checked AS SELECT *, CASE WHEN "
        f"quarantine_reason IS NULL THEN CAST({engine.row_position} AS BIGINT) END "
        "AS node_id FROM identifiers_sorted"
    )


def drop_node_ids(engine: Engine, form: str) -> None:
    """Free identifiers_checked as create_node_ids(engine, form) made it."""
    if form == "sorted":
        engine.execute("DROP VIEW IF EXISTS identifiers_checked")
        drop_tables(engine, "identifiers_sorted")
    else:
        drop_tables(engine, "identifiers_checked")
