"""The one scan (sql/20_pairs.sql) aggregates each input table on its own, in one UNION ALL:
the union must be exactly the aggregate of all the events at once, with every table in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from stitcher.config import RunOptions
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.graph.identifiers import sql_fragments
from stitcher.input.load import find_tables, register_inputs
from stitcher.pipeline import create_pairs
from stitcher.sql import render

from conftest import run_cli

_ROWS = "SELECT * FROM pairs ORDER BY ALL"


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scan") / "events"
    run_cli(
        "generate", str(folder), "--events", "20000", "--seed", "5", "--files-per-table", "2", "-q"
    )
    # A redelivered file: each of its events twice, for --dedupe to drop.
    part = next(iter(sorted((folder / "tracks").glob("*/part-0.parquet"))))
    shutil.copy(part, part.with_name("part-redelivered.parquet"))
    # ... and pages' events redelivered as tracks (the same message ids in another table):
    # --dedupe matches message ids across tables.
    page = pl.read_parquet(next(iter(sorted((folder / "pages").glob("*/part-0.parquet")))))
    page.select(
        "id", "anonymous_id", "user_id", "timestamp", event=pl.lit("Redelivered")
    ).write_parquet(part.with_name("part-from-pages.parquet"))
    return folder


@pytest.mark.parametrize("dedupe", [False, True], ids=["per_table", "dedupe"])
def test_scan_is_the_aggregate_of_all_events(events: Path, dedupe: bool) -> None:
    options = RunOptions(events, events.parent / "unused", dedupe=dedupe)
    with DuckDBEngine() as engine:
        loaded = register_inputs(engine, find_tables(events), options.identifier_types)
        assert len(loaded.event_views) == len(loaded.tables) == 5
        assert engine.count("events") > 20000
        create_pairs(engine, options, loaded)
        got = engine.fetch_rows(_ROWS)
        totals = engine.fetch_rows(
            "SELECT source_table, sum(event_count) FROM pairs GROUP BY ALL ORDER BY ALL"
        )
        whole = "(SELECT * FROM events) AS events"
        if dedupe:
            # Written out here, not taken from sql/: every event ranked among its message id's
            # deliveries (earliest first, ties by every other column), events without an id kept.
            whole = (
                "(SELECT * EXCLUDE (delivery) FROM (SELECT *, row_number() OVER ("
                "PARTITION BY message_id ORDER BY ts NULLS LAST, source_table, anonymous_id "
                "NULLS LAST, user_id NULLS LAST, previous_id NULLS LAST) AS delivery FROM events)"
                " WHERE delivery = 1 OR message_id IS NULL) AS deduped"
            )
        engine.create_table_as("pairs", render("20_pairs", events=whole, **sql_fragments(options)))
        want = engine.fetch_rows(_ROWS)
        by_table = engine.fetch_rows(
            "SELECT source_table, count(*) FROM events GROUP BY ALL ORDER BY ALL"
        )
    assert got == want
    assert {t for t, _ in totals} == set(loaded.tables)
    if not dedupe:
        assert totals == by_table  # every event counted once, in its own table's rows
    else:
        # Both copies in tracks are dropped: the redelivered file, and the pages' events (the
        # same time, and 'pages' sorts before 'tracks'), matched across tables.
        copies = sum(
            pl.read_parquet(f).height
            for name in ("part-redelivered.parquet", "part-from-pages.parquet")
            for f in (events / "tracks").glob(f"*/{name}")
        )
        dropped = {t: n - dict(totals)[t] for t, n in by_table}
        assert dropped == {t: copies if t == "tracks" else 0 for t in dropped}, (copies, dropped)
