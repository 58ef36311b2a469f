"""Steps that declare what they read and write, and the freeing that follows from it
(stitcher/steps.py), on the real engine: each relation lives exactly until its last reader."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from stitcher.config import RunOptions
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.input.load import find_tables, register_inputs
from stitcher.output.run_record import RECORD_READS
from stitcher.output.tables import OUTPUT_TABLES
from stitcher.pipeline import build_tables, pipeline_steps
from stitcher.steps import Step, last_reads, run_steps

from conftest import FIXTURES

_RELATIONS = "SELECT table_name FROM information_schema.tables ORDER BY table_name"


def _relations(engine: DuckDBEngine) -> set[str]:
    return {name for (name,) in engine.fetch_rows(_RELATIONS)}


def test_each_relation_lives_until_its_last_reader_and_a_view_keeps_what_it_reads() -> None:
    with DuckDBEngine() as engine:
        seen: list[set[str]] = []
        steps = [
            Step("g", "a", lambda: engine.create_table_as("a", "SELECT 1 AS x"), (), ("a",)),
            Step("g", "b", lambda: engine.create_table_as("b", "SELECT x FROM a"), ("a",), ("b",)),
            Step(
                "g",
                "v",
                lambda: engine.execute("CREATE VIEW v AS SELECT x FROM b"),
                ("b",),
                ("v",),
                views=("v",),
            ),
            Step("h", "c", lambda: engine.create_table_as("c", "SELECT x FROM v"), ("v",), ("c",)),
            Step("h", "look", lambda: seen.append(_relations(engine)), ("c",)),
            Step("h", "kept", lambda: engine.create_table_as("k", "SELECT 2 AS y"), (), ("k",)),
        ]
        assert last_reads(steps) == {"a": 1, "b": 3, "v": 3, "c": 4}
        groups: list[str] = []

        def timer(group: str) -> AbstractContextManager[None]:
            groups.append(group)
            return nullcontext()

        run_steps(engine, steps, keep={"k"}, timer=timer)
        # a went once b was made; b (read through the view) and v once c was made.
        assert seen == [{"c"}]
        assert _relations(engine) == {"k"}
        assert groups == ["g", "h"]


@pytest.mark.parametrize(
    ("fixture", "policy", "options"),
    [
        ("junk_ids", "guarded", {}),
        ("several_devices_several_logins", "segment", {"dedupe": True}),
        ("mixpanel_export", "mixpanel-original", {}),
        ("alias_from_old_user_id", "connected", {}),
    ],
)
def test_the_pipeline_leaves_only_its_outputs_and_what_the_record_reads(
    tmp_path: Path, fixture: str, policy: str, options: dict
) -> None:
    # Before the steps declared their reads, junk_values (and in some runs more) outlived the
    # steps that read them, holding memory to the end of the run.
    run = RunOptions(FIXTURES / fixture, tmp_path / "out", policy=policy, **options)
    with DuckDBEngine() as engine:
        loaded = register_inputs(
            engine, find_tables(run.input_dir), run.identifier_types, run.policy
        )
        inputs = _relations(engine)
        build_tables(engine, run, loaded)
        left = _relations(engine) - inputs
    assert left == {*OUTPUT_TABLES, *RECORD_READS}


def test_every_step_writes_what_it_says() -> None:
    # The declarations are the freeing's only source: a step that makes a relation it does
    # not declare would leave it behind, one that reads one it does not declare would find it
    # dropped. Every relation a step reads is written by an earlier step or is an input view.
    run = RunOptions(FIXTURES / "junk_ids", Path("unused"))
    with DuckDBEngine() as engine:
        loaded = register_inputs(engine, find_tables(run.input_dir), run.identifier_types)
        inputs = _relations(engine)
        written: set[str] = set()
        for step in pipeline_steps(engine, run, loaded):
            assert set(step.reads) <= written | inputs, step.name
            before = _relations(engine)
            step.run()
            assert _relations(engine) - before <= set(step.writes), step.name
            written |= set(step.writes)
