"""The merge policies' registry: each policy's name, what it does in a line, the function that
turns `checked_edges` into `classified_edges` (kept or refused, and why), and what it needs.

The CLI's --policy choices and help, config validation, the pipeline and `stitcher sql` all
read this registry. A new policy is a module here (its steps, SQL in sql/51_policy_<name>.sql
where it is plain SQL) and one entry below. The implementations are imported when a run
classifies its links: this module is read at every start of the command, and by Spark's
executors' imports of its package, so it imports no engine or solver itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stitcher.config import RunOptions
    from stitcher.engines import Engine


def _never(options: RunOptions) -> bool:
    return False


def _always(options: RunOptions) -> bool:
    return True


def _with_extra_types(options: RunOptions) -> bool:
    return bool(options.identifier_types)


@dataclass(frozen=True)
class Policy:
    """One merge policy.

    `steps`: "module:function", called as function(engine, options) to create
    `classified_edges`. `replays_events(options)`: whether it replays events in time order
    (sql/54_replay_events.sql, which reads the one scan's aggregate `pairs`; the pipeline frees
    `pairs` early for the others). `python_always`: it calls engine.map_groups (Python on
    Spark's executors) even where it replays no events. `input_formats`: the input formats it
    can read, and `needs` what the error says when the input is another. `leaves`: tables it
    makes for later steps besides `classified_edges` (and `policy_base`, which a replay
    leaves and the pipeline frees)."""

    name: str
    summary: str
    steps: str
    replays_events: Callable[[RunOptions], bool] = _never
    python_always: bool = False
    input_formats: tuple[str, ...] = ("segment", "mixpanel")
    needs: str = ""
    leaves: tuple[str, ...] = ()

    def classify(self, engine: Engine, options: RunOptions) -> None:
        module, function = self.steps.split(":")
        getattr(importlib.import_module(module), function)(engine, options)

    def runs_python(self, options: RunOptions) -> bool:
        """Whether it calls engine.map_groups (Python on Spark's executors): the replays of
        stitcher/graph/replay.py and stitcher/graph/mixpanel_replay.py."""
        return self.python_always or self.replays_events(options)


_HERE = "stitcher.graph.policies"
POLICIES: dict[str, Policy] = {
    policy.name: policy
    for policy in (
        Policy(
            "guarded",
            "an anonymous id joins at most one user id (its earliest), aliases merge user ids.",
            f"{_HERE}.guarded:guarded_policy",
            # Its check of chains through extra identifier types replays those components.
            replays_events=_with_extra_types,
        ),
        Policy(
            "connected",
            "plain connected components over every usable link.",
            f"{_HERE}.sql_rules:sql_policy",
        ),
        Policy(
            "segment",
            "Segment Unify's per-type limits and priority, replayed in time order.",
            f"{_HERE}.segment:segment_policy",
            replays_events=_always,
        ),
        Policy(
            "mixpanel-simplified",
            "Mixpanel's Simplified ID Merge.",
            f"{_HERE}.sql_rules:sql_policy",
        ),
        Policy(
            "mixpanel-original",
            "Mixpanel's Original ID Merge, its special events replayed in order.",
            f"{_HERE}.mixpanel_original:original_policy",
            python_always=True,
            input_formats=("mixpanel",),
            needs="replays Mixpanel's $identify, $create_alias and $merge events, so it needs a "
            "Mixpanel export as --input (JSON lines, or --input-format mixpanel for flattened "
            "tables)",
            # The ids each person is reported by (the input's finish_id_map reads them).
            leaves=("mixpanel_identified",),
        ),
    )
}
POLICY_NAMES = tuple(POLICIES)
DEFAULT_POLICY = "guarded"


def policies_help() -> str:
    """--policy's help: every policy and what it does, the default first."""
    return " ".join(
        f"{name}{' (default)' if name == DEFAULT_POLICY else ''}: {policy.summary}"
        for name, policy in POLICIES.items()
    )


def script_policies() -> tuple[str, ...]:
    """The policies `stitcher sql` can write as a script: plain SQL, no replay (guarded only
    without extra identifier types)."""
    return tuple(
        name
        for name, policy in POLICIES.items()
        if not policy.python_always and policy.replays_events is not _always
    )


def check_input_format(policy: str, input_format: str) -> None:
    """A policy that cannot read the run's input format: one line that says what it needs."""
    if input_format not in POLICIES[policy].input_formats:
        # Imported here: the registry stays free of stitcher's other modules.
        from stitcher.errors import ConfigError

        raise ConfigError(f"--policy {policy} {POLICIES[policy].needs}")


def classify_edges(engine: Engine, options: RunOptions) -> None:
    POLICIES[options.policy].classify(engine, options)


def runs_python(options: RunOptions) -> bool:
    """Whether the run's policy calls engine.map_groups (Python on Spark's executors)."""
    return POLICIES[options.policy].runs_python(options)


def replays_events(options: RunOptions) -> bool:
    """Whether the run's policy may replay events (sql/54_replay_events.sql reads `pairs`). The
    others decide on the links alone, so the pipeline frees `pairs` as soon as the links are
    read off it."""
    return POLICIES[options.policy].replays_events(options)
