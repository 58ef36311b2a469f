"""Policies that are one SQL step: `classified_edges` from `checked_edges` by
sql/51_policy_<name>.sql, whole-graph and order-free (connected, mixpanel-simplified; guarded
starts with its own)."""

from __future__ import annotations

from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.sql import render


def sql_policy(engine: Engine, options: RunOptions) -> None:
    engine.create_table_as("classified_edges", render(f"51_policy_{options.policy}"))
