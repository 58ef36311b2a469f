"""Seedable synthetic Segment-style event data with ground truth, for tests and benchmarks.

The generator works on integer codes throughout (people, devices, anonymous-id "segments",
events) and only turns them into strings right before writing, so tens of millions of events
stay cheap. Output is produced in fixed-size chunks of people; each chunk has its own RNG stream
derived from (seed, chunk index), so the output depends only on the config and memory stays flat.

Ground truth (`truth.parquet`) holds, for every real identifier in the data, the person it
belongs to and its `linkable_group`: the identifiers the data can honestly join (same person,
through that person's own identify/alias links). Junk values and the two hub identifiers
(`guest-account`, the hard-coded device id) belong to nobody and are left out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stitcher.errors import OutputError

logger = logging.getLogger("stitcher")

TABLES: tuple[str, ...] = ("tracks", "pages", "screens", "identifies", "aliases")
GUEST_USER_ID = "guest-account"
HARDCODED_ANONYMOUS_ID = "a5d2f0e4-hardcoded-build"
# Values SDK bugs and templating errors put where an anonymous_id belongs. Weighted so the common
# offenders dominate, as in real data.
JUNK_ANONYMOUS_IDS: tuple[str, ...] = (
    "undefined",
    "null",
    "",
    "0",
    "00000000-0000-0000-0000-000000000000",
    "none",
    "anonymous",
    "unknown",
    "NaN",
    "[object Object]",
    "-1",
    "NULL",
    " ",
)
_JUNK_WEIGHTS = np.array([30, 15, 12, 8, 10, 4, 4, 3, 3, 3, 2, 3, 3], dtype=np.float64)

TRACK_EVENTS: tuple[str, ...] = (
    "Product Viewed",
    "Button Clicked",
    "Search Performed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Video Played",
    "Signed Up",
    "Logged In",
    "Subscription Started",
)
_TRACK_WEIGHTS = np.array([30, 20, 14, 10, 6, 4, 6, 3, 5, 2], dtype=np.float64)
SERVER_EVENTS: tuple[str, ...] = (
    "Order Completed",
    "Invoice Paid",
    "Subscription Renewed",
    "Email Opened",
)
_SERVER_WEIGHTS = np.array([3, 2, 2, 5], dtype=np.float64)
PAGE_PATHS: tuple[str, ...] = (
    "/",
    "/pricing",
    "/docs",
    "/blog",
    "/signup",
    "/login",
    "/account",
    "/products",
    "/products/widget",
    "/checkout",
    "/settings",
)
_PAGE_WEIGHTS = np.array([25, 10, 12, 10, 4, 5, 6, 10, 8, 4, 6], dtype=np.float64)
SCREEN_NAMES: tuple[str, ...] = ("Home", "Feed", "Search", "Product", "Cart", "Profile", "Settings")
_SCREEN_WEIGHTS = np.array([25, 25, 12, 15, 6, 10, 7], dtype=np.float64)
PLANS: tuple[str, ...] = ("free", "starter", "pro", "enterprise")
_FIRST_NAMES: tuple[str, ...] = (
    "Ada", "Alan", "Grace", "Linus", "Mei", "Tom", "Ines", "Priya",
    "Dana", "Sam", "Omar", "Lena", "Kofi", "Yuki", "Raj", "Eva",
)  # fmt: skip
_LAST_NAMES: tuple[str, ...] = (
    "Martin", "Chen", "Okafor", "Duarte", "Kim", "Novak", "Silva", "Haddad",
    "Larsen", "Ito", "Mehta", "Rossi", "Byrne", "Moreau", "Adeyemi", "Walsh",
)  # fmt: skip

# Chunk size is a constant (not tuned to memory) because the output depends on it; changing it
# changes every generated file for datasets larger than one chunk.
_CHUNK_EVENTS = 2_000_000
_ALIAS_ID_BASE = 1 << 40  # message-id index space of alias rows, disjoint from events

# Table codes used internally for event rows.
_TRACKS, _PAGES, _SCREENS, _IDENTIFIES = 0, 1, 2, 3
# Stream kinds: where a run of events comes from, which decides the tables it lands in.
_WEB, _MOBILE, _SERVER, _LEGACY = 0, 1, 2, 3

_TS = pa.timestamp("us", tz="UTC")
_SCHEMAS: dict[str, pa.Schema] = {
    "tracks": pa.schema(
        [
            ("id", pa.string()),
            ("anonymous_id", pa.string()),
            ("user_id", pa.string()),
            ("timestamp", _TS),
            ("event", pa.string()),
        ]
    ),
    "pages": pa.schema(
        [
            ("id", pa.string()),
            ("anonymous_id", pa.string()),
            ("user_id", pa.string()),
            ("timestamp", _TS),
            ("path", pa.string()),
        ]
    ),
    "screens": pa.schema(
        [
            ("id", pa.string()),
            ("anonymous_id", pa.string()),
            ("user_id", pa.string()),
            ("timestamp", _TS),
            ("name", pa.string()),
        ]
    ),
    "identifies": pa.schema(
        [
            ("id", pa.string()),
            ("anonymous_id", pa.string()),
            ("user_id", pa.string()),
            ("timestamp", _TS),
            ("email", pa.string()),
            ("name", pa.string()),
            ("plan", pa.string()),
        ]
    ),
    "aliases": pa.schema(
        [
            ("id", pa.string()),
            ("previous_id", pa.string()),
            ("user_id", pa.string()),
            ("anonymous_id", pa.string()),
            ("timestamp", _TS),
        ]
    ),
}
TRUTH_SCHEMA = pa.schema(
    [
        ("identifier_type", pa.string()),
        ("identifier", pa.string()),
        ("true_person", pa.int64()),
        ("linkable_group", pa.int64()),
    ]
)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. `n_events` counts rows of tracks+pages+screens+identifies (aliases are
    extra); identifiers come out at about n_events / events_per_identifier."""

    n_events: int = 10_000
    seed: int = 0
    events_per_identifier: float = 6.3  # 10.5M events -> ~1.66M distinct identifiers
    login_rate: float = 0.6  # share of people who ever log in
    shared_device_rate: float = 0.01  # share of devices a 2nd person later logs in on, no reset
    junk_anonymous_rate: float = 0.005  # share of events whose anonymous_id is a junk value
    guest_login_people: int = 0  # people who (also) log in as "guest-account" (a hub)
    hardcoded_device_people: int = 0  # people whose app sends the hard-coded anonymous_id
    alias_rate: float = 0.01  # share of logged-in people with an older user_id joined by alias
    file_format: str = "parquet"  # "parquet" or "csv"
    files_per_table: int = 1  # >1: table/dt=YYYY-MM-DD/part-N.<ext> folders
    start: str = "2026-10-01"
    days: int = 30

    def __post_init__(self) -> None:
        if self.n_events < 1:
            raise ValueError("n_events must be at least 1")
        if self.seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if self.events_per_identifier < 1.5:
            raise ValueError("events_per_identifier must be at least 1.5")
        for name in ("login_rate", "shared_device_rate", "junk_anonymous_rate", "alias_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.guest_login_people < 0 or self.hardcoded_device_people < 0:
            raise ValueError("guest_login_people and hardcoded_device_people must be >= 0")
        if self.file_format not in ("parquet", "csv"):
            raise ValueError(f"file_format must be 'parquet' or 'csv', got {self.file_format!r}")
        if self.files_per_table < 1:
            raise ValueError("files_per_table must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        date.fromisoformat(self.start)  # fail early on a malformed start date


# ---------------------------------------------------------------------------------------------
# Deterministic ids and fast string formatting


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a bijection on uint64, so distinct inputs give distinct outputs."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _key(seed: int, purpose: int) -> np.uint64:
    return _mix64(np.array([(seed * 8 + purpose) % 2**64], dtype=np.uint64))[0]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DIGITS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """Wrap an (n, width) uint8 matrix as an Arrow string array without Python objects."""
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int64)
    return pa.Array.from_buffers(
        pa.large_string(),
        n,
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))],
    ).cast(pa.string())


def _uuid_strings(index: np.ndarray, key: np.uint64) -> pa.Array:
    """UUID-shaped hex strings, unique per index: the first 64 bits are a bijection of it."""
    n = len(index)
    hi = _mix64(index.astype(np.uint64) ^ key)
    lo = _mix64(hi ^ np.uint64(0x5851F42D4C957F2D))
    words = np.empty((n, 2), dtype=">u8")
    words[:, 0] = hi
    words[:, 1] = lo
    raw = words.view(np.uint8).reshape(n, 16)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = raw >> 4
    digits[:, 1::2] = raw & 15
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    chars[:, _UUID_DIGITS] = _HEX[digits]
    return _fixed_width_strings(chars)


def _put_digits(chars: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    for i in range(width):
        chars[:, col + width - 1 - i] = 48 + (values // 10**i) % 10


def _iso_strings(ts_us: np.ndarray) -> pa.Array:
    """ISO-8601 `YYYY-MM-DDTHH:MM:SS.mmmZ`, formatted in numpy (strftime is ~20x slower)."""
    ms = ts_us // 1000
    days = ms // 86_400_000
    day_dt = days.astype("datetime64[D]")
    years = day_dt.astype("datetime64[Y]")
    months = day_dt.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (day_dt - months.astype("datetime64[D]")).astype(np.int64) + 1
    rest = ms - days * 86_400_000
    chars = np.empty((len(ts_us), 24), dtype=np.uint8)
    for col, sep in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")):
        chars[:, col] = ord(sep)
    _put_digits(chars, 0, year, 4)
    _put_digits(chars, 5, month, 2)
    _put_digits(chars, 8, day, 2)
    _put_digits(chars, 11, rest // 3_600_000, 2)
    _put_digits(chars, 14, rest // 60_000 % 60, 2)
    _put_digits(chars, 17, rest // 1000 % 60, 2)
    _put_digits(chars, 20, rest % 1000, 3)
    return _fixed_width_strings(chars)


def _prefixed_ints(prefix: str, values: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(values).cast(pa.string()), "")


def _take(strings: pa.Array, codes: np.ndarray) -> pa.Array:
    """strings[codes] with code -1 meaning null."""
    return strings.take(pa.array(codes, mask=codes < 0))


def _pick(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(weights) - 1)


def _ranks(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of the given lengths: the run of each element and its position in the run."""
    run = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return run, np.arange(len(run)) - starts[run]


# ---------------------------------------------------------------------------------------------
# One chunk of people


@dataclass
class _Streams:
    """Runs of events that share identifiers, a time window and a source."""

    anon: np.ndarray  # anonymous code, -1 = none
    user: np.ndarray  # user code set after login (or on every event when always_user)
    n: np.ndarray  # number of events
    n_pre: np.ndarray  # events before the login identify
    login: np.ndarray  # bool: the run contains a login identify at position n_pre
    always_user: np.ndarray  # bool: server-side run, user_id on every event, no anonymous_id
    lo: np.ndarray  # window start, seconds from `start`
    hi: np.ndarray  # window end
    kind: np.ndarray  # _WEB / _MOBILE / _SERVER / _LEGACY
    trait_person: np.ndarray  # local person whose traits identifies carry, -1 = none
    junk_ok: np.ndarray  # bool: its events may get a junk anonymous_id

    @staticmethod
    def concat(parts: list[_Streams]) -> _Streams:
        return _Streams(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in _Streams.__dataclass_fields__
            }
        )


def _streams(
    count: int,
    *,
    anon: Any,
    user: Any,
    n: Any,
    n_pre: Any = 0,
    login: Any = False,
    always_user: Any = False,
    lo: Any,
    hi: Any,
    kind: Any,
    trait_person: Any = -1,
    junk_ok: Any = False,
) -> _Streams:
    def full(value: Any, dtype: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (count,)).copy()

    return _Streams(
        anon=full(anon, np.int64),
        user=full(user, np.int64),
        n=full(n, np.int64),
        n_pre=full(n_pre, np.int64),
        login=full(login, bool),
        always_user=full(always_user, bool),
        lo=full(lo, np.float64),
        hi=full(hi, np.float64),
        kind=full(kind, np.int8),
        trait_person=full(trait_person, np.int64),
        junk_ok=full(junk_ok, bool),
    )


@dataclass
class _Events:
    stream: np.ndarray
    rank: np.ndarray
    t: np.ndarray
    is_login: np.ndarray


def _expand(rng: np.random.Generator, s: _Streams) -> _Events:
    """Events of each run, spread over its window in order (so login follows browsing)."""
    stream, rank = _ranks(s.n)
    n = s.n[stream]
    # Position r of n lands in the r-th slice of the window: times increase with rank.
    t = s.lo[stream] + (rank + rng.random(len(stream))) / n * (s.hi[stream] - s.lo[stream])
    is_login = s.login[stream] & (rank == s.n_pre[stream])
    return _Events(stream=stream, rank=rank, t=t, is_login=is_login)


@dataclass
class _Offsets:
    person: int = 0
    segment: int = 0
    event: int = 0
    alias: int = 0


@dataclass
class _Chunk:
    tables: dict[str, pa.Table]
    truth: pa.Table
    stats: dict[str, int]
    junk_used: set[int]


def _to_us(cfg: GeneratorConfig, seconds: np.ndarray) -> np.ndarray:
    """Seconds from `start` to epoch microseconds, at Segment's millisecond precision."""
    return (
        np.datetime64(cfg.start, "us").astype(np.int64) + (seconds * 1000.0).astype(np.int64) * 1000
    )


def _split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _generate_chunk(
    cfg: GeneratorConfig,
    chunk: int,
    n_events: int,
    n_guest: int,
    n_hard: int,
    off: _Offsets,
) -> _Chunk:
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, chunk]))
    horizon = cfg.days * 86_400.0
    target_ids = max(1, round(n_events / cfg.events_per_identifier))

    # People: draw more candidates than needed, then keep the prefix that reaches the target
    # number of identifiers, which makes events_per_identifier hold at any size.
    n_cand = target_ids
    logs_in = rng.random(n_cand) < cfg.login_rate
    has_alias = logs_in & (rng.random(n_cand) < cfg.alias_rate)
    has_server = logs_in & (rng.random(n_cand) < 0.35)
    n_dev = 1 + _pick(rng, np.array([0.62, 0.28, 0.10]), n_cand)
    dev_owner_c, dev_rank_c = _ranks(n_dev)
    # Resets (logout, cleared cookies) start a new anonymous_id on the same device.
    dev_nseg_c = np.minimum(rng.geometric(0.72, len(dev_owner_c)), 8)
    ids_per_person = (
        np.bincount(dev_owner_c, weights=dev_nseg_c, minlength=n_cand).astype(np.int64)
        + logs_in
        + has_alias
    )
    n_people = int(min(np.searchsorted(np.cumsum(ids_per_person), target_ids) + 1, n_cand))
    logs_in, has_alias, has_server = logs_in[:n_people], has_alias[:n_people], has_server[:n_people]
    n_devices = int(n_dev[:n_people].sum())
    dev_owner, dev_rank = dev_owner_c[:n_devices], dev_rank_c[:n_devices]
    dev_nseg = dev_nseg_c[:n_devices]
    dev_kind = np.where(rng.random(n_devices) < 0.6, _WEB, _MOBILE).astype(np.int8)

    # Activity windows: people arrive over the period and stay from minutes to weeks.
    p_start = rng.random(n_people) * horizon * 0.95
    room = horizon * 0.985 - p_start
    p_len = np.maximum(room * rng.beta(0.7, 1.3, n_people), np.minimum(300.0, room))
    p_end = p_start + p_len
    d_lo = np.where(
        dev_rank == 0,
        p_start[dev_owner],
        p_start[dev_owner] + 0.6 * p_len[dev_owner] * rng.random(n_devices),
    )
    d_hi = d_lo + (p_end[dev_owner] - d_lo) * np.maximum(rng.beta(2.0, 1.0, n_devices), 0.05)

    seg_dev, seg_k = _ranks(dev_nseg)
    n_segments = len(seg_dev)
    seg_owner = dev_owner[seg_dev]
    seg_len = (d_hi - d_lo)[seg_dev] / dev_nseg[seg_dev]
    seg_lo = d_lo[seg_dev] + seg_k * seg_len
    seg_hi = seg_lo + seg_len
    seg_login = logs_in[seg_owner] & (rng.random(n_segments) < 0.75)
    # Every person who logs in does so on at least one of their anonymous_ids.
    first_seg = np.cumsum(np.bincount(seg_owner, minlength=n_people)) - np.bincount(
        seg_owner, minlength=n_people
    )
    nseg_person = np.bincount(seg_owner, minlength=n_people)
    forced = first_seg + (rng.random(n_people) * nseg_person).astype(np.int64)
    seg_login[forced[logs_in]] = True

    alias_people = np.flatnonzero(has_alias)
    server_people = np.flatnonzero(has_server)
    logged_people = np.flatnonzero(logs_in)
    guest_code = n_people + len(alias_people)

    # Hub and shared-device runs have fixed sizes; drawn before the event budget is split.
    login_dev = np.flatnonzero(np.bincount(seg_dev, weights=seg_login, minlength=n_devices) > 0)
    n_shared = min(round(cfg.shared_device_rate * n_devices), len(login_dev))
    if len(logged_people) < 2:
        n_shared = 0
    shared_dev = (
        np.sort(rng.choice(login_dev, n_shared, replace=False)) if n_shared else login_dev[:0]
    )
    shared_n = 2 + rng.poisson(3.0, n_shared)
    n_guest = min(n_guest, n_people)
    guest_people = np.sort(rng.choice(n_people, n_guest, replace=False))
    guest_n = 2 + rng.poisson(3.0, n_guest)
    n_hard = min(n_hard, n_people)
    # The hard-coded id only becomes a hub through people who log in, so prefer them.
    hard_order = np.concatenate(
        [rng.permutation(logged_people), rng.permutation(np.flatnonzero(~logs_in))]
    )
    hard_people = np.sort(hard_order[:n_hard])
    hard_n = 3 + rng.poisson(8.0, n_hard)

    # Event budget: every run gets one event, the rest follows heavy-tailed weights.
    n_slots = n_segments + len(server_people) + len(alias_people)
    fixed = n_slots + int(shared_n.sum() + guest_n.sum() + hard_n.sum())
    remaining = n_events - fixed
    if remaining < 0:
        raise ValueError(
            f"n_events={cfg.n_events} is too small for the requested people/hubs "
            f"(chunk {chunk} needs at least {fixed} events)"
        )
    weights = rng.lognormal(0.0, 1.3, n_slots)
    weights[n_segments:] *= 0.5  # server-side and legacy streams are thinner than devices
    share = weights / weights.sum()
    counts = np.floor(remaining * share).astype(np.int64)
    left = remaining - int(counts.sum())
    counts += np.bincount(_pick(rng, weights, left), minlength=n_slots)
    counts += 1
    seg_n = counts[:n_segments]
    server_n = counts[n_segments : n_segments + len(server_people)]
    legacy_n = counts[n_segments + len(server_people) :]

    seg_pre = np.floor(rng.random(n_segments) * seg_n).astype(np.int64)
    segments = _streams(
        n_segments,
        anon=np.arange(n_segments),
        user=seg_owner,
        n=seg_n,
        n_pre=seg_pre,
        login=seg_login,
        lo=seg_lo,
        hi=seg_hi,
        kind=dev_kind[seg_dev],
        trait_person=seg_owner,
        junk_ok=True,
    )
    ev1 = _expand(rng, segments)
    seg_login_t = np.full(n_segments, np.nan)
    seg_login_t[ev1.stream[ev1.is_login]] = ev1.t[ev1.is_login]
    first_login = np.full(n_people, np.inf)
    np.minimum.at(first_login, seg_owner[seg_login], seg_login_t[seg_login])

    # Shared devices: the 2nd person logs in on one of the owner's logged-in anonymous_ids,
    # strictly after the owner's login there (so "first user" is unambiguous).
    seg_dev_first = np.cumsum(dev_nseg) - dev_nseg
    shared_seg = np.empty(n_shared, dtype=np.int64)
    for i, d in enumerate(shared_dev):
        cands = seg_dev_first[d] + np.flatnonzero(
            seg_login[seg_dev_first[d] : seg_dev_first[d] + dev_nseg[d]]
        )
        shared_seg[i] = cands[rng.integers(len(cands))]
    second = np.empty(0, dtype=np.int64)
    if n_shared:
        owner = seg_owner[shared_seg]
        pos = rng.integers(0, len(logged_people), n_shared)
        nxt = logged_people[(pos + 1) % len(logged_people)]
        second = np.where(logged_people[pos] == owner, nxt, logged_people[pos])
    sh_lo = np.minimum(seg_login_t[shared_seg] + 1.0, horizon - 2.0)
    sh_hi = np.minimum(np.maximum(seg_hi[shared_seg], sh_lo + 3600.0), horizon - 1.0)

    guest_seg = first_seg[guest_people] + (rng.random(n_guest) * nseg_person[guest_people]).astype(
        np.int64
    )
    hard_logs = logs_in[hard_people]
    hard_pre = np.where(hard_logs, np.floor(rng.random(n_hard) * hard_n), hard_n).astype(np.int64)

    later = _Streams.concat(
        [
            _streams(
                len(server_people),
                anon=-1,
                user=server_people,
                n=server_n,
                always_user=True,
                lo=first_login[server_people],
                hi=p_end[server_people],
                kind=_SERVER,
                trait_person=server_people,
            ),
            _streams(
                len(alias_people),
                anon=-1,
                user=n_people + np.arange(len(alias_people)),
                n=legacy_n,
                always_user=True,
                lo=p_start[alias_people],
                hi=first_login[alias_people],
                kind=_LEGACY,
            ),
            _streams(
                n_shared,
                anon=shared_seg,
                user=second,
                n=shared_n,
                login=True,
                lo=sh_lo,
                hi=sh_hi,
                kind=dev_kind[seg_dev[shared_seg]],
                trait_person=second,
            ),
            _streams(
                n_guest,
                anon=guest_seg,
                user=guest_code,
                n=guest_n,
                login=True,
                lo=seg_lo[guest_seg],
                hi=seg_hi[guest_seg],
                kind=dev_kind[seg_dev[guest_seg]],
            ),
            _streams(
                n_hard,
                anon=n_segments + len(JUNK_ANONYMOUS_IDS),
                user=hard_people,
                n=hard_n,
                n_pre=hard_pre,
                login=hard_logs,
                lo=p_start[hard_people],
                hi=p_end[hard_people],
                kind=_MOBILE,
                trait_person=hard_people,
            ),
        ]
    )
    ev2 = _expand(rng, later)
    streams = _Streams.concat([segments, later])
    stream = np.concatenate([ev1.stream, ev2.stream + n_segments])
    rank = np.concatenate([ev1.rank, ev2.rank])
    t = np.concatenate([ev1.t, ev2.t])
    is_login = np.concatenate([ev1.is_login, ev2.is_login])
    del ev1, ev2
    n_total = len(stream)

    is_post = streams.always_user[stream] | (
        streams.login[stream] & (rank >= streams.n_pre[stream])
    )
    anon = streams.anon[stream]
    user = np.where(is_post, streams.user[stream], -1)
    kind = streams.kind[stream]

    # Junk replaces the anonymous_id on random events, never on the first event of a run or on
    # a login identify: every real id stays present and every honest link stays in the data.
    junk_ok = streams.junk_ok[stream] & (rank > 0) & ~is_login
    n_ok = int(junk_ok.sum())
    is_junk = junk_ok & (
        rng.random(n_total) < min(1.0, cfg.junk_anonymous_rate * n_total / max(n_ok, 1))
    )
    junk_pick = _pick(rng, _JUNK_WEIGHTS, int(is_junk.sum()))
    anon[is_junk] = n_segments + junk_pick

    u = rng.random(n_total)
    table = np.full(n_total, _TRACKS, dtype=np.int8)
    web, mobile, server = kind == _WEB, kind == _MOBILE, kind == _SERVER
    table[web & (u < 0.55)] = _PAGES
    table[mobile & (u < 0.50)] = _SCREENS
    table[(web | mobile) & (u >= 0.98)] = _IDENTIFIES
    table[server & (u >= 0.9)] = _IDENTIFIES
    table[is_login] = _IDENTIFIES

    ts = _to_us(cfg, t)

    # Strings: per-chunk dictionaries, then take() by code.
    anon_strings = pa.concat_arrays(
        [
            _uuid_strings(off.segment + np.arange(n_segments), _key(cfg.seed, 1)),
            pa.array((*JUNK_ANONYMOUS_IDS, HARDCODED_ANONYMOUS_ID), pa.string()),
        ]
    )
    gpid = off.person + np.arange(n_people)
    user_strings = pa.concat_arrays(
        [
            _prefixed_ints("user-", gpid),
            _prefixed_ints("legacy-", gpid[alias_people]),
            pa.array([GUEST_USER_ID], pa.string()),
        ]
    )

    tables: dict[str, pa.Table] = {}
    msg_key = _key(cfg.seed, 2)
    next_msg = off.event
    for code, name in enumerate(TABLES[:4]):
        rows = np.flatnonzero(table == code)
        rows = rows[np.argsort(ts[rows], kind="stable")]
        columns: dict[str, pa.Array] = {
            "id": _uuid_strings(next_msg + np.arange(len(rows)), msg_key),
            "anonymous_id": _take(anon_strings, anon[rows]),
            "user_id": _take(user_strings, user[rows]),
            "timestamp": pa.array(ts[rows], _TS),
        }
        next_msg += len(rows)
        if code == _TRACKS:
            names = pa.array(TRACK_EVENTS + SERVER_EVENTS, pa.string())
            pick = np.where(
                kind[rows] >= _SERVER,
                len(TRACK_EVENTS) + _pick(rng, _SERVER_WEIGHTS, len(rows)),
                _pick(rng, _TRACK_WEIGHTS, len(rows)),
            )
            columns["event"] = names.take(pa.array(pick))
        elif code == _PAGES:
            columns["path"] = pa.array(PAGE_PATHS).take(
                pa.array(_pick(rng, _PAGE_WEIGHTS, len(rows)))
            )
        elif code == _SCREENS:
            columns["name"] = pa.array(SCREEN_NAMES).take(
                pa.array(_pick(rng, _SCREEN_WEIGHTS, len(rows)))
            )
        else:
            columns.update(
                _traits(
                    rng,
                    streams.trait_person[stream[rows]],
                    user[rows] >= 0,
                    t[rows],
                    gpid,
                    p_start,
                    p_len,
                )
            )
        tables[name] = pa.table(columns, schema=_SCHEMAS[name])

    # Aliases: the old user_id is joined to the current one when the account moves over.
    n_alias = len(alias_people)
    alias_seg = forced[alias_people]
    alias_anon = np.where(rng.random(n_alias) < 0.5, alias_seg, -1)
    alias_ts = _to_us(cfg, first_login[alias_people])
    order = np.argsort(alias_ts, kind="stable")
    tables["aliases"] = pa.table(
        {
            "id": _uuid_strings(_ALIAS_ID_BASE + off.alias + np.arange(n_alias), msg_key),
            "previous_id": user_strings.take(pa.array(n_people + order)),
            "user_id": user_strings.take(pa.array(alias_people[order])),
            "anonymous_id": _take(anon_strings, alias_anon[order]),
            "timestamp": pa.array(alias_ts[order], _TS),
        },
        schema=_SCHEMAS["aliases"],
    )

    # Truth: a person who logs in is one linkable group (user_id, legacy id, the anonymous ids
    # they logged in with); every anonymous id they never logged in with is a group of its own.
    gseg = off.segment + np.arange(n_segments)
    anon_group = np.where(seg_login, 2 * gpid[seg_owner], 2 * gseg + 1)
    truth = pa.table(
        {
            "identifier_type": pa.array(
                ["anonymous_id"] * n_segments + ["user_id"] * (len(logged_people) + n_alias),
                pa.string(),
            ),
            "identifier": pa.concat_arrays(
                [
                    anon_strings.slice(0, n_segments),
                    user_strings.take(pa.array(logged_people)),
                    user_strings.slice(n_people, n_alias),
                ]
            ),
            "true_person": np.concatenate(
                [gpid[seg_owner], gpid[logged_people], gpid[alias_people]]
            ),
            "linkable_group": np.concatenate(
                [anon_group, 2 * gpid[logged_people], 2 * gpid[alias_people]]
            ),
        },
        schema=TRUTH_SCHEMA,
    )

    stats = {
        "people": n_people,
        "logged_in_people": len(logged_people),
        "devices": n_devices,
        "anonymous_ids": n_segments,
        "user_ids": len(logged_people) + n_alias,
        "shared_devices": n_shared,
        "guest_login_people": n_guest,
        "hardcoded_device_people": n_hard,
        "junk_events": int(is_junk.sum()),
        "aliases": n_alias,
    }
    off.person += n_people
    off.segment += n_segments
    off.event = next_msg
    off.alias += n_alias
    return _Chunk(
        tables=tables, truth=truth, stats=stats, junk_used=set(np.unique(junk_pick).tolist())
    )


def _traits(
    rng: np.random.Generator,
    person: np.ndarray,
    with_user: np.ndarray,
    t: np.ndarray,
    gpid: np.ndarray,
    p_start: np.ndarray,
    p_len: np.ndarray,
) -> dict[str, pa.Array]:
    """email/name/plan for identifies rows. Values change over a person's lifetime (plan
    upgrades, a new email) and are often null, so "latest non-null trait" is a real test."""
    n = len(person)
    has = person >= 0
    p = np.where(has, person, 0)
    g = gpid[p]
    # Per-person change points derived from the person, not the row, so all of a person's rows
    # agree on when the change happened.
    frac = (_mix64(g.astype(np.uint64)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    change_t = p_start[p] + p_len[p] * (0.2 + 0.6 * frac)
    changed = t >= change_t
    email_moves = frac < 0.4
    first = pa.array(_FIRST_NAMES).take(pa.array(g % len(_FIRST_NAMES)))
    last = pa.array(_LAST_NAMES).take(pa.array((g // len(_FIRST_NAMES)) % len(_LAST_NAMES)))
    base_plan = (g * 7 + 3) % 3  # free, starter or pro to begin with
    plan_idx = np.minimum(base_plan + changed, len(PLANS) - 1)

    email_ok = has & np.where(with_user, rng.random(n) < 0.8, rng.random(n) < 0.5)
    name_ok = has & with_user & (rng.random(n) < 0.6)
    plan_ok = has & with_user & (rng.random(n) < 0.7)
    domain = pa.array(["@example.com", "@example.org"]).take(
        pa.array((changed & email_moves).astype(np.int8))
    )
    email = pc.binary_join_element_wise(
        pc.utf8_lower(first), ".", pc.utf8_lower(last), pa.array(g).cast(pa.string()), domain, ""
    )
    name = pc.binary_join_element_wise(first, last, " ")
    plan = pa.array(PLANS).take(pa.array(plan_idx))
    return {
        "email": pc.if_else(pa.array(email_ok), email, pa.scalar(None, pa.string())),
        "name": pc.if_else(pa.array(name_ok), name, pa.scalar(None, pa.string())),
        "plan": pc.if_else(pa.array(plan_ok), plan, pa.scalar(None, pa.string())),
    }


# ---------------------------------------------------------------------------------------------
# Writing


class _Sink:
    """Writes table chunks as single files (row group per chunk) or Hive-partitioned folders."""

    def __init__(self, out_dir: Path, cfg: GeneratorConfig) -> None:
        self.out_dir = out_dir
        self.cfg = cfg
        self.ext = cfg.file_format
        self.start_us = int(np.datetime64(cfg.start, "us").astype(np.int64))
        self.files: dict[str, int] = dict.fromkeys(TABLES, 0)
        self.writers: dict[str, Any] = {}
        if cfg.files_per_table == 1:
            for name in TABLES:
                path = out_dir / f"{name}.{self.ext}"
                schema = self._schema(name)
                if self.ext == "parquet":
                    self.writers[name] = pq.ParquetWriter(path, schema, compression="zstd")
                else:
                    self.writers[name] = pacsv.CSVWriter(path, schema)

    def _schema(self, name: str) -> pa.Schema:
        schema = _SCHEMAS[name]
        if self.ext == "csv":
            idx = schema.get_field_index("timestamp")
            schema = schema.set(idx, pa.field("timestamp", pa.string()))
        return schema

    def _prepare(self, name: str, table: pa.Table) -> pa.Table:
        if self.ext != "csv":
            return table
        # Arrow's CSV writer emits "2026-10-01 00:00:00.000000Z"; we want strict ISO-8601.
        idx = table.schema.get_field_index("timestamp")
        ts = table.column(idx).combine_chunks().cast(pa.int64()).to_numpy()
        return table.set_column(idx, pa.field("timestamp", pa.string()), _iso_strings(ts))

    def _write_file(self, path: Path, table: pa.Table) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.ext == "parquet":
            pq.write_table(table, path, compression="zstd")
        else:
            pacsv.write_csv(table, path)

    def write(self, name: str, table: pa.Table, chunk: int) -> None:
        if name in self.writers:
            if table.num_rows:
                self.writers[name].write_table(self._prepare(name, table))
            return
        # Partitioned: rows are time-sorted, so each day is a contiguous slice of the chunk.
        ts = table.column("timestamp").combine_chunks().cast(pa.int64()).to_numpy()
        day = (ts - self.start_us) // 86_400_000_000
        k = self.cfg.files_per_table
        for d in np.unique(day):
            lo, hi = np.searchsorted(day, [d, d + 1])
            dt = (np.datetime64(self.cfg.start, "D") + int(d)).astype(str)
            for part, rows in enumerate(np.array_split(np.arange(lo, hi), k)):
                if len(rows) == 0:
                    continue
                path = self.out_dir / name / f"dt={dt}" / f"part-{chunk * k + part}.{self.ext}"
                self._write_file(path, self._prepare(name, table.slice(rows[0], len(rows))))
                self.files[name] += 1

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        for name, n_files in self.files.items():
            if name not in self.writers and n_files == 0:
                # Readers choke on a table folder without files; an empty part keeps the schema.
                path = self.out_dir / name / f"dt={self.cfg.start}" / f"part-0.{self.ext}"
                self._write_file(path, self._prepare(name, _SCHEMAS[name].empty_table()))


def check_target(out_dir: Path) -> None:
    """Refuse a folder holding event tables that generate did not write (no generator.json):
    generating into a folder of real exports would replace their tracks, pages..."""
    if not out_dir.is_dir() or (out_dir / "generator.json").is_file():
        return
    names = [f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")] + list(TABLES)
    present = [n for n in (*names, "truth.parquet") if (out_dir / n).exists()]
    if present:
        raise OutputError(
            f"{out_dir} holds {', '.join(present)}, which stitcher generate did not write (no "
            "generator.json); generating would replace them. Choose another folder, or pass "
            "--force"
        )


def _remove_stale_outputs(out_dir: Path) -> None:
    """Drop earlier generator output of either layout so readers never see a mix of runs."""
    for name in TABLES:
        for ext in ("parquet", "csv"):
            (out_dir / f"{name}.{ext}").unlink(missing_ok=True)
        folder = out_dir / name
        if not folder.is_dir():
            continue
        for path in folder.glob("dt=*/part-*"):
            if path.suffix in (".parquet", ".csv"):
                path.unlink()
        for sub in folder.glob("dt=*"):
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()


def generate(out_dir: Path, config: GeneratorConfig) -> dict[str, Any]:
    """Write a synthetic dataset and its ground truth to `out_dir`; return its summary.

    Files: `{tracks,pages,screens,identifies,aliases}.{parquet|csv}` (or Hive-partitioned
    folders when `files_per_table > 1`), `truth.parquet` and `generator.json` (the summary).
    The same config always produces byte-identical files.
    """
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_outputs(out_dir)

    n_chunks = max(1, math.ceil(config.n_events / _CHUNK_EVENTS))
    chunk_events = _split_evenly(config.n_events, n_chunks)
    guest = _split_evenly(config.guest_login_people, n_chunks)
    hard = _split_evenly(config.hardcoded_device_people, n_chunks)
    offsets = _Offsets()
    totals: dict[str, int] = {}
    per_table = dict.fromkeys(TABLES, 0)
    junk_used: set[int] = set()
    truth_rows = 0

    sink = _Sink(out_dir, config)
    truth_writer = pq.ParquetWriter(out_dir / "truth.parquet", TRUTH_SCHEMA, compression="zstd")
    try:
        for c in range(n_chunks):
            result = _generate_chunk(config, c, chunk_events[c], guest[c], hard[c], offsets)
            for name, table in result.tables.items():
                sink.write(name, table, c)
                per_table[name] += table.num_rows
            truth_writer.write_table(result.truth)
            truth_rows += result.truth.num_rows
            junk_used |= result.junk_used
            for key, value in result.stats.items():
                totals[key] = totals.get(key, 0) + value
            logger.debug("generator chunk %d/%d done", c + 1, n_chunks)
    finally:
        truth_writer.close()
        sink.close()

    hubs = int(totals["guest_login_people"] > 0) + int(totals["hardcoded_device_people"] > 0)
    summary: dict[str, Any] = {
        "events": sum(per_table[name] for name in TABLES[:4]),
        "events_per_table": per_table,
        "identifiers": truth_rows + len(junk_used) + hubs,
        "truth_identifiers": truth_rows,
        **totals,
        "chunks": n_chunks,
        "config": asdict(config),
    }
    (out_dir / "generator.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    logger.info(
        "generated %d events, %d identifiers, %d people in %.1fs into %s",
        summary["events"],
        summary["identifiers"],
        totals["people"],
        time.perf_counter() - began,
        out_dir,
    )
    return summary


# ---------------------------------------------------------------------------------------------
# Scoring


def _pairs(df: pl.DataFrame, by: list[str]) -> int:
    sizes = df.group_by(by).len()["len"].cast(pl.Int64)
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_scores(id_map: pa.Table | pl.DataFrame, truth: pa.Table | pl.DataFrame) -> dict:
    """Pairwise precision/recall of a predicted id map against generator truth.

    Pairs are counted from group sizes, never enumerated. Only identifiers in `truth` count;
    truth identifiers missing from `id_map` (or mapped to a null person) are singletons.
    precision = same predicted & same true person / same predicted;
    recall = same predicted & same linkable group / same linkable group (pairs the data can
    link at all); `true_recall` uses all same-person pairs instead.
    """
    ids = id_map if isinstance(id_map, pl.DataFrame) else pl.from_arrow(id_map)
    tru = truth if isinstance(truth, pl.DataFrame) else pl.from_arrow(truth)
    assert isinstance(ids, pl.DataFrame) and isinstance(tru, pl.DataFrame)
    key = ["identifier_type", "identifier"]
    ids = ids.select(*key, "person_id").unique()
    if ids.select(key).is_duplicated().any():
        raise ValueError("id_map maps an identifier to more than one person_id")
    df = (
        tru.select(*key, "true_person", "linkable_group")
        .join(ids, on=key, how="left")
        .with_row_index("row")
        .with_columns(
            # Missing people become singletons: negative codes cannot clash with dense ranks.
            pred=pl.when(pl.col("person_id").is_null())
            .then(-(pl.col("row").cast(pl.Int64) + 1))
            .otherwise(pl.col("person_id").rank("dense").cast(pl.Int64))
        )
    )
    predicted = _pairs(df, ["pred"])
    true_pairs = _pairs(df, ["true_person"])
    linkable = _pairs(df, ["linkable_group"])
    hit_true = _pairs(df, ["pred", "true_person"])
    hit_linkable = _pairs(df, ["pred", "linkable_group"])
    precision = hit_true / predicted if predicted else 1.0
    recall = hit_linkable / linkable if linkable else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_recall": hit_true / true_pairs if true_pairs else 1.0,
        "predicted_pairs": predicted,
        "true_pairs": true_pairs,
        "linkable_pairs": linkable,
        "correct_pairs": hit_true,
        "linked_linkable_pairs": hit_linkable,
        "identifiers": df.height,
        "missing_from_id_map": int(df["person_id"].null_count()),
        "predicted_people": int(df["pred"].n_unique()),
        "true_people": int(df["true_person"].n_unique()),
    }


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stitcher.synthetic.generate",
        description="Write synthetic Segment-style events plus ground truth.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--events", type=int, default=GeneratorConfig.n_events)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--files-per-table", type=int, default=1)
    parser.add_argument("--guest-login-people", type=int, default=0)
    parser.add_argument("--hardcoded-device-people", type=int, default=0)
    parser.add_argument("--days", type=int, default=GeneratorConfig.days)
    parser.add_argument("--start", default=GeneratorConfig.start)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = GeneratorConfig(
            n_events=args.events,
            seed=args.seed,
            file_format=args.format,
            files_per_table=args.files_per_table,
            guest_login_people=args.guest_login_people,
            hardcoded_device_people=args.hardcoded_device_people,
            days=args.days,
            start=args.start,
        )
    except ValueError as exc:
        parser.error(str(exc))
    summary = generate(args.out_dir, config)
    sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
