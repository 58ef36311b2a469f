"""Steps that say what they read and write, and a runner that frees what no later step reads.

An in-memory engine holds every table until it is dropped: at 10M events the intermediate
tables held 2.9 GB by the end of a run before they were freed as they went. Here nobody places
a drop by hand: each step declares the relations it reads and the ones it writes, and after
every step the runner drops each relation written earlier that no later step reads, unless it
is kept (the output tables, which the writer frees once written, and what the run record reads
once the steps are done).

A view costs nothing to keep but holds on to what it reads: a step that reads a view reads
the view's own inputs too, so those live as long as the view is read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import groupby

from stitcher.engines.base import Engine, quote_identifier

log = logging.getLogger("stitcher")


@dataclass(frozen=True)
class Step:
    """One step: `run()` makes the relations `writes` (those in `views` as views) from the
    ones in `reads`. `group` is the step of the run record's timings it counts in."""

    group: str
    name: str
    run: Callable[[], None]
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    views: tuple[str, ...] = ()


def last_reads(steps: Sequence[Step]) -> dict[str, int]:
    """Each relation -> the index of the last step that reads it, through views."""
    view_inputs: dict[str, set[str]] = {}
    last: dict[str, int] = {}
    for index, step in enumerate(steps):
        for relation in _through_views(step.reads, view_inputs):
            last[relation] = index
        for view in step.views:
            view_inputs[view] = set(_through_views(step.reads, view_inputs))
    return last


def _through_views(relations: Collection[str], view_inputs: dict[str, set[str]]) -> Iterator[str]:
    for relation in relations:
        yield relation
        yield from view_inputs.get(relation, ())


def run_steps(
    engine: Engine,
    steps: Sequence[Step],
    keep: Collection[str] = (),
    timer: Callable[[str], AbstractContextManager[None]] | None = None,
) -> None:
    """Run `steps` in order; after each, drop every relation a step wrote that no later step
    reads and that is not in `keep`, views first, else in the order they were made.
    `timer(group)` wraps each run of consecutive steps of one group."""
    last = last_reads(steps)
    made: dict[str, bool] = {}  # relation -> is a view
    for group, members in groupby(enumerate(steps), key=lambda item: item[1].group):
        with (timer or _untimed)(group):
            for index, step in members:
                step.run()
                for relation in step.writes:
                    made[relation] = relation in step.views
                done = [r for r in made if r not in keep and last.get(r, -1) <= index]
                # Views first: a view must not outlive what it reads (Spark's would break).
                for relation in sorted(done, key=lambda r: not made[r]):
                    if made[relation]:
                        engine.execute(f"DROP VIEW IF EXISTS {quote_identifier(relation)}")
                    else:
                        engine.drop(relation)
                    del made[relation]


def _untimed(group: str) -> AbstractContextManager[None]:
    return nullcontext()
