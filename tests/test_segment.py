"""`--policy segment`: Segment Unify's per-type limits and priority, replayed in time order.

Conformance cases from ../shared/peers/segment-unify-docs (SG1 is the documentation's worked
example; SG2 and SG3 are derived from its stated rules), plus properties of the replay itself.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stitcher.graph.replay import ReplayEvent, replay

from conftest import partition, read_output, require_peers, stitch, write_csv

SEGMENT_CONFIG = """
policy = "segment"
priority = ["user_id", "email", "anonymous_id"]

[identifiers.email]
columns = ["email"]
normalize = "lower_trim"

[limits]
user_id = 1
email = 5
anonymous_id = 5
"""


def _segment_case(folder: Path, rows: list[dict]) -> None:
    write_csv(
        folder / "tracks.csv",
        ["id", "user_id", "email", "anonymous_id", "timestamp"],
        [
            (
                f"m{r['seq']}",
                r["user_id"],
                r["email"],
                r["anonymous_id"],
                f"2026-11-01T00:00:{int(r['seq']):02d}Z",
            )
            for r in rows
        ],
    )


def _cases() -> list[str]:
    folder = Path(__file__).resolve().parent.parent.parent / "shared/peers/segment-unify-docs"
    if not folder.is_dir():
        return ["absent"]
    return sorted(set(pl.read_csv(folder / "events.csv", infer_schema=False)["case_id"]))


@pytest.mark.conformance
@pytest.mark.parametrize("case", _cases())
def test_segment_unify_docs(case: str, tmp_path: Path) -> None:
    # SG1 (doc example): limit + priority: the lower-priority email is dropped from the event,
    #     which then matches nothing and starts a new profile without the email.
    # SG2: blocked values: '0000' matches ^[0-]*$ and is never an identifier.
    # SG3: flat matching: an event matching two profiles merges them when limits allow.
    folder = require_peers("segment-unify-docs")
    events = pl.read_csv(folder / "events.csv", infer_schema=False).filter(
        pl.col("case_id") == case
    )
    expected = pl.read_csv(folder / "expected_profiles.csv", infer_schema=False).filter(
        pl.col("case_id") == case
    )
    config = pl.read_csv(folder / "config.csv", infer_schema=False)
    # The case's limits and priorities are the ones the config below encodes.
    assert dict(zip(config["identifier"], config["limit"], strict=True)) == {
        "user_id": "1",
        "email": "5",
        "anonymous_id": "5",
    }
    _segment_case(tmp_path / "in", events.to_dicts())
    (tmp_path / "stitcher.toml").write_text(SEGMENT_CONFIG)
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    want = {
        frozenset(zip(g["identifier_type"], g["identifier_value"], strict=True))
        for _, g in expected.group_by("profile")
    }
    assert partition(read_output(out, "id_map")) == want


def test_doc_example_without_peers(tmp_path: Path) -> None:
    """SG1 restated so the rule is covered even where ../shared is absent."""
    _segment_case(
        tmp_path / "in",
        [
            {"seq": 1, "user_id": "abc123", "email": "jane@example1.com", "anonymous_id": None},
            {"seq": 2, "user_id": "abc456", "email": "jane@example1.com", "anonymous_id": None},
        ],
    )
    (tmp_path / "stitcher.toml").write_text(SEGMENT_CONFIG)
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    assert partition(read_output(out, "id_map")) == {
        frozenset({("user_id", "abc123"), ("email", "jane@example1.com")}),
        frozenset({("user_id", "abc456")}),
    }
    rejected = read_output(out, "rejected_edges")
    assert rejected["reason"].to_list() == ["limit_user_id"]


def test_components_within_limits_are_not_replayed(tmp_path: Path) -> None:
    """Order cannot matter inside a component that breaks no limit: one profile, no refusals."""
    _segment_case(
        tmp_path / "in",
        [
            {"seq": 1, "user_id": None, "email": None, "anonymous_id": "a1"},
            {"seq": 2, "user_id": "u1", "email": None, "anonymous_id": "a1"},
            {"seq": 3, "user_id": "u1", "email": "x@y.z", "anonymous_id": "a2"},
        ],
    )
    (tmp_path / "stitcher.toml").write_text(SEGMENT_CONFIG)
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    assert len(partition(read_output(out, "id_map"))) == 1
    assert read_output(out, "rejected_edges").height == 0


def test_anonymous_limit_splits_the_sixth_device(tmp_path: Path) -> None:
    rows = [
        {"seq": i + 1, "user_id": "u1", "email": None, "anonymous_id": f"a{i}"} for i in range(7)
    ]
    _segment_case(tmp_path / "in", rows)
    (tmp_path / "stitcher.toml").write_text(SEGMENT_CONFIG)
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    persons = partition(read_output(out, "id_map"))
    main = next(p for p in persons if ("user_id", "u1") in p)
    assert sorted(i for t, i in main if t == "anonymous_id") == [f"a{i}" for i in range(5)]
    reasons = set(read_output(out, "rejected_edges")["reason"].to_list())
    assert reasons == {"limit_anonymous_id"}


# -- the replay itself -------------------------------------------------------------------------

TYPES = ("user_id", "email", "anonymous_id")
LIMITS = {"user_id": 1, "email": 2, "anonymous_id": 3}


def _limit(t: str) -> int:
    return LIMITS[t]


def _partition(profile_of: dict) -> set[frozenset]:
    groups: dict[int, set] = {}
    for identifier, profile in profile_of.items():
        groups.setdefault(profile, set()).add(identifier)
    return {frozenset(g) for g in groups.values()}


event_ids = st.lists(
    st.tuples(st.sampled_from(TYPES), st.sampled_from(["1", "2", "3", "4"])),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(event_ids, min_size=1, max_size=25))
def test_replaying_first_occurrences_equals_replaying_every_event(stream: list) -> None:
    """The batch shortcut (each distinct id set once, at its first event) loses nothing."""
    every = [ReplayEvent(order=(i,), identifiers=tuple(ids)) for i, ids in enumerate(stream)]
    first: dict[frozenset, ReplayEvent] = {}
    for event in every:
        first.setdefault(frozenset(event.identifiers), event)
    full = replay(every, _limit, TYPES)
    shortcut = replay(list(first.values()), _limit, TYPES)
    assert _partition(full.profile_of) == _partition(shortcut.profile_of)


@settings(max_examples=200, deadline=None)
@given(st.lists(event_ids, min_size=1, max_size=25))
def test_replay_never_breaks_a_limit(stream: list) -> None:
    result = replay(
        [ReplayEvent(order=(i,), identifiers=tuple(ids)) for i, ids in enumerate(stream)],
        _limit,
        TYPES,
    )
    for profile in _partition(result.profile_of):
        for t in TYPES:
            assert sum(1 for k, _ in profile if k == t) <= LIMITS[t]


def test_replay_is_independent_of_input_order_given_the_keys() -> None:
    rng = random.Random(3)
    events = [
        ReplayEvent(
            order=(i,),
            identifiers=tuple(
                (rng.choice(TYPES), str(rng.randrange(6))) for _ in range(rng.randint(1, 3))
            ),
        )
        for i in range(60)
    ]
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert replay(events, _limit, TYPES).profile_of == replay(shuffled, _limit, TYPES).profile_of
