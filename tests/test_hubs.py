"""Hubs found at any scale (sql/31_hub_degrees.sql): a shared login or a hard-coded device id is
found by the shape of the graph (contention, degree against the type's own distribution), not by
one fixed count, and ordinary people (a power user's cookie resets, a family's shared devices)
are never hubs. An oracle written from README's rule checks the SQL on random graphs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from stitcher.synthetic.generate import (
    GUEST_USER_ID,
    HARDCODED_ANONYMOUS_ID,
    GeneratorConfig,
    generate,
    pairwise_scores,
)

from conftest import partition, read_output, run_cli, stitch, write_csv

HEADER = ["id", "anonymous_id", "user_id", "timestamp"]


class Events:
    """Hand-made tracks: each event one second after the last, so earlier calls are earlier
    evidence (the guarded policy gives a device to its earliest user id)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str | None, str | None, str]] = []

    def add(self, anonymous_id: str | None, user_id: str | None) -> None:
        i = len(self.rows)
        ts = f"2026-11-{1 + i // 86400:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        self.rows.append((f"m{i}", anonymous_id, user_id, ts))

    def ordinary_people(self, n: int, prefix: str = "p") -> None:
        """n people with one to three devices each, logged in on each."""
        for p in range(n):
            for d in range(1 + p % 3):
                self.add(f"{prefix}{p}-dev{d}", None)
                self.add(f"{prefix}{p}-dev{d}", f"{prefix}{p}")

    def write(self, folder: Path) -> Path:
        write_csv(folder / "tracks.csv", HEADER, self.rows)
        return folder


def _hubs(out: Path) -> dict[tuple[str, str], dict]:
    quarantine = read_output(out, "quarantine").filter(pl.col("reason") == "hub")
    return {(r["identifier_type"], r["identifier"]): r for r in quarantine.iter_rows(named=True)}


def test_a_shared_login_on_small_data_is_a_hub_by_contention(tmp_path: Path) -> None:
    """Five people first log in on their own device as `team-login`, then as themselves. The
    shared login has 5 devices, far below the fixed bound of 1,000: only contention finds it.
    Without it, the guarded policy gave `team-login` all five devices."""
    events = Events()
    events.ordinary_people(20)
    for p in range(5):
        events.add(f"laptop{p}", None)
        events.add(f"laptop{p}", "team-login")
        events.add(f"laptop{p}", f"member{p}")
    out = stitch(events.write(tmp_path / "in"), tmp_path / "out")
    hubs = _hubs(out)
    assert set(hubs) == {("user_id", "team-login")}
    hub = hubs[("user_id", "team-login")]
    assert (hub["hub_rule"], hub["hub_linked_type"], hub["hub_degree"], hub["hub_contention"]) == (
        "contention",
        "anonymous_id",
        5,
        5,
    )
    persons = partition(read_output(out, "id_map"))
    for p in range(5):
        assert frozenset({("anonymous_id", f"laptop{p}"), ("user_id", f"member{p}")}) in persons
    record = json.loads((out / "run.json").read_text())
    [entry] = record["quarantine"]["hubs"]
    assert entry["identifier"] == "team-login" and entry["rule"] == "contention"
    assert "lead to 5 other user_id values" in entry["why"]
    assert "min_contention" in entry["why"]
    rejected = read_output(out, "rejected_edges")
    assert rejected.filter(pl.col("reason") == "hub_user_id").height == 5


def test_a_hard_coded_device_id_with_few_users_is_a_hub(tmp_path: Path) -> None:
    """Four users send one hard-coded anonymous id besides their own devices: 4 users is far
    below the bound of 50, but each leads to another device of its own."""
    events = Events()
    events.ordinary_people(20)
    for p in range(4):
        events.add(f"phone{p}", f"app-user{p}")
        events.add("build-1234", f"app-user{p}")
    out = stitch(events.write(tmp_path / "in"), tmp_path / "out")
    hubs = _hubs(out)
    assert set(hubs) == {("anonymous_id", "build-1234")}
    hub = hubs[("anonymous_id", "build-1234")]
    assert (hub["hub_rule"], hub["hub_linked_type"], hub["hub_degree"], hub["hub_contention"]) == (
        "contention",
        "user_id",
        4,
        4,
    )
    persons = partition(read_output(out, "id_map"))
    for p in range(4):
        assert frozenset({("anonymous_id", f"phone{p}"), ("user_id", f"app-user{p}")}) in persons


def test_an_outlier_degree_with_two_owners_leading_elsewhere_is_a_hub(tmp_path: Path) -> None:
    """`front-desk` logs in on 12 devices, twice on a device whose owner also logs in: too few
    owners for contention, but 12 devices is more than twice what 99% of logins have here."""
    events = Events()
    events.ordinary_people(120)
    for d in range(12):
        events.add(f"desk{d}", "front-desk")
    for d in range(2):
        events.add(f"desk{d}", f"clerk{d}")
        events.add(f"clerk{d}-phone", f"clerk{d}")
    out = stitch(events.write(tmp_path / "in"), tmp_path / "out")
    hubs = _hubs(out)
    assert set(hubs) == {("user_id", "front-desk")}
    hub = hubs[("user_id", "front-desk")]
    assert (hub["hub_rule"], hub["hub_degree"], hub["hub_contention"]) == ("outlier", 12, 2)
    assert hub["hub_typical_degree"] == 3
    record = json.loads((out / "run.json").read_text())
    assert record["quarantine"]["hubs"][0]["why"].startswith(
        "linked to 12 anonymous_id values, 2 of them leading to other user_id values: more than "
        "6 = 2 x 3 x (4 - 2) / (4 - 2), from the 99th-percentile user_id degree 3"
    )


def test_a_small_shared_login_with_three_owners_leading_elsewhere_is_a_hub(tmp_path: Path) -> None:
    """`guest` on 6 devices, 3 of which also carry their owner's login: contention 3 is below 4,
    but the bar falls as contention rises: at 3 it is the typical degree (3 here). A person
    with 3 devices, each shared with someone else, stays a person (3 is not above 3)."""
    events = Events()
    events.ordinary_people(120)
    for d in range(6):
        events.add(f"visitor{d}", "shared-guest")
    for d in range(3):
        events.add(f"visitor{d}", f"owner{d}")
    for d in range(3):
        events.add(f"lender-dev{d}", "lender")
        events.add(f"lender-dev{d}", f"borrower{d}")
    out = stitch(events.write(tmp_path / "in"), tmp_path / "out")
    hubs = _hubs(out)
    assert set(hubs) == {("user_id", "shared-guest")}
    hub = hubs[("user_id", "shared-guest")]
    assert (hub["hub_rule"], hub["hub_degree"], hub["hub_contention"]) == ("outlier", 6, 3)
    persons = partition(read_output(out, "id_map"))
    lender = next(p for p in persons if ("user_id", "lender") in p)
    assert {("anonymous_id", f"lender-dev{d}") for d in range(3)} <= lender


def test_ordinary_people_are_never_hubs(tmp_path: Path) -> None:
    """The false alarms the rule must not raise: a power user with 40 cookie resets and no one
    else on them, one with 12 where a single other login shares one, a family of three sharing
    a computer, and a family of three who all log in on the laptop, the tablet and the TV."""
    events = Events()
    events.ordinary_people(120)
    for c in range(40):
        events.add(f"cookie{c}", "power-user")
    for c in range(12):
        events.add(f"reset{c}", "busy-user")
    events.add("reset0", "busy-friend")
    family = ("dad", "kid", "mom")
    for member in family:
        events.add(f"{member}-phone", member)
    for member in family:
        events.add("family-computer", member)
    for device in ("laptop", "tablet", "tv"):
        for member in family:
            events.add(f"home-{device}", member)
    out = stitch(events.write(tmp_path / "in"), tmp_path / "out")
    assert _hubs(out) == {}
    assert read_output(out, "quarantine").height == 0
    persons = partition(read_output(out, "id_map"))
    power = frozenset(
        {("user_id", "power-user")} | {("anonymous_id", f"cookie{c}") for c in range(40)}
    )
    assert power in persons
    # The family's shared devices go to the earliest login (the policy's rule, not the hub
    # rule): dad logged in first on each.
    dad = next(p for p in persons if ("user_id", "dad") in p)
    assert {("anonymous_id", "family-computer"), ("anonymous_id", "home-tv")} <= dad


def test_a_dataset_without_hubs_quarantines_nothing_at_scale(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorConfig(n_events=200_000, seed=4, junk_anonymous_rate=0.0))
    out = stitch(data, tmp_path / "out", "--no-report")
    assert read_output(out, "quarantine").height == 0
    scores = pairwise_scores(read_output(out, "id_map"), pl.read_parquet(data / "truth.parquet"))
    assert scores["precision"] >= 0.999 and scores["recall"] >= 0.999, scores


# (events, seed, people who also log in as the guest account, people sending the hard-coded
# device id, the hubs expected). The rates are about one guest login per 1,500 events and
# one hard-coded device user per 15,000; the other cases are lower and higher.
SCALES = [
    pytest.param(20_000, 1, 13, 1, {GUEST_USER_ID}, id="20k-guest-outlier"),
    pytest.param(20_000, 2, 13, 1, {GUEST_USER_ID}, id="20k-guest-contention"),
    pytest.param(60_000, 7, 12, 6, {GUEST_USER_ID, HARDCODED_ANONYMOUS_ID}, id="60k-low-rate"),
    pytest.param(150_000, 3, 100, 10, {GUEST_USER_ID, HARDCODED_ANONYMOUS_ID}, id="150k"),
    pytest.param(150_000, 5, 250, 25, {GUEST_USER_ID, HARDCODED_ANONYMOUS_ID}, id="150k-high"),
    pytest.param(
        1_000_000,
        2,
        667,
        67,
        {GUEST_USER_ID, HARDCODED_ANONYMOUS_ID},
        id="1M",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("n_events", "seed", "guests", "hard", "expected"), SCALES)
def test_hubs_are_found_at_every_scale(
    tmp_path: Path, n_events: int, seed: int, guests: int, hard: int, expected: set[str]
) -> None:
    """Precision and recall of 0.999 under the default policy, and exactly the generator's hubs
    quarantined, from twenty thousand events to a million."""
    data = tmp_path / "data"
    config = GeneratorConfig(
        n_events=n_events, seed=seed, guest_login_people=guests, hardcoded_device_people=hard
    )
    generate(data, config)
    out = stitch(data, tmp_path / "out", "--no-report")
    truth = pl.read_parquet(data / "truth.parquet")
    scores = pairwise_scores(read_output(out, "id_map"), truth)
    assert scores["precision"] >= 0.999, scores
    assert scores["recall"] >= 0.999, scores
    assert {identifier for _, identifier in _hubs(out)} == expected


def test_the_fixed_bound_alone_misses_what_the_shape_finds(tmp_path: Path) -> None:
    """The same data with the shape rules switched off as far as settings allow (contention
    needs 1,000 owners, outlier 1,000 x typical): the guest login swallows strangers' devices.
    This is what the issue measured; it shows the tests above would catch a regression."""
    data = tmp_path / "data"
    generate(data, GeneratorConfig(n_events=20_000, seed=2, guest_login_people=13))
    config = tmp_path / "stitcher.toml"
    config.write_text("[hubs]\nmin_contention = 1000\noutlier_factor = 1000\n")
    out = stitch(data, tmp_path / "out", "--no-report", "--config", str(config))
    truth = pl.read_parquet(data / "truth.parquet")
    assert pairwise_scores(read_output(out, "id_map"), truth)["precision"] < 0.99
    assert _hubs(out) == {}


# --- the rule against an oracle -------------------------------------------------------------

JUNK_ANON, JUNK_USER = "undefined", "N/A"


def _oracle(
    edges: set[tuple[str, str]], min_contention: int, factor: float, bounds: dict[str, int]
) -> dict[tuple[str, str], tuple[str, int, int, int]]:
    """README's rule written plainly: (type, id) -> (rule, degree, contention, typical)."""
    clean = {(a, u) for a, u in edges if a != JUNK_ANON and u != JUNK_USER}
    found = {}
    for side, own_type in enumerate(("anonymous_id", "user_id")):
        partners: dict[str, set[str]] = {}
        owners: dict[str, set[str]] = {}
        for edge in clean:
            x, p = edge[side], edge[1 - side]
            partners.setdefault(x, set()).add(p)
            owners.setdefault(p, set()).add(x)
        scores = {}
        for x, ps in partners.items():
            leads = set()
            for p in ps:
                if len(owners[p]) > 1:
                    first = min(owners[p])
                    leads.add(max(owners[p]) if first == x else first)
            scores[x] = (len(ps), len(leads))
        # The 99th percentile by nearest rank of those with contention 0 or 1: the first degree
        # with 99% of them at or below it.
        degrees = sorted(d for d, c in scores.values() if c < 2)
        typical = next((d for i, d in enumerate(degrees) if 100 * (i + 1) >= 99 * len(degrees)), 0)
        for x, (degree, contention) in scores.items():
            if degree > bounds[own_type]:
                rule = "max_linked"
            elif contention >= min_contention:
                rule = "contention"
            elif contention >= 2 and degree * (min_contention - 2) > factor * max(typical, 3) * (
                min_contention - contention
            ):
                rule = "outlier"
            else:
                continue
            found[(own_type, x)] = (rule, degree, contention, typical)
    return found


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    random_edges=st.sets(
        st.tuples(
            st.sampled_from([f"a{i}" for i in range(14)] + [JUNK_ANON]),
            st.sampled_from([f"u{i}" for i in range(9)] + [JUNK_USER]),
        ),
        max_size=10,
    ),
    ordinary=st.sampled_from([150, 40, 0]),
    star=st.sampled_from([12, 7, 16, 0, 3]),
    star_shared=st.sampled_from([2, 3, 0, 1, 4, 5]),
    min_contention=st.integers(2, 5),
    factor=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    anon_bound=st.sampled_from([50, 2, 5]),
    user_bound=st.sampled_from([1000, 3, 10]),
)
# Each rule at least once, whatever the random draw: an outlier, contention, and a star whose
# shared devices lead to owners that sort before and after it.
@example(set(), 150, 12, 2, 4, 2.0, 50, 1000)
@example({("star-dev0", "a-first"), ("star-dev1", "z-last")}, 40, 7, 3, 2, 1.5, 50, 1000)
@example({("a1", "u1"), ("a1", "u2"), ("a1", "u3"), ("a1", JUNK_USER)}, 0, 0, 0, 3, 1.0, 5, 3)
def test_the_sql_rule_matches_an_oracle_on_random_graphs(
    tmp_path_factory: pytest.TempPathFactory,
    random_edges: set[tuple[str, str]],
    ordinary: int,
    star: int,
    star_shared: int,
    min_contention: int,
    factor: float,
    anon_bound: int,
    user_bound: int,
) -> None:
    """Random links, plus ordinary people (one to three devices each) that make a realistic
    degree distribution, plus a star (one login on many devices, a few of them shared with
    other logins) that sits near the thresholds."""
    edges = set(random_edges)
    edges |= {(f"p{p}-dev{d}", f"p{p}") for p in range(ordinary) for d in range(1 + p % 3)}
    edges |= {(f"star-dev{d}", "star") for d in range(star)}
    edges |= {(f"star-dev{d}", f"p{d}") for d in range(min(star, star_shared))}
    if not edges:
        edges = {("a0", "u0")}
    tmp = tmp_path_factory.mktemp("oracle")
    events = Events()
    for a, u in sorted(edges):
        events.add(a, u)
    (tmp / "stitcher.toml").write_text(
        f"[hubs]\nmin_contention = {min_contention}\noutlier_factor = {factor}\n"
        f"anonymous_id = {{ user_id = {anon_bound} }}\n"
        f"user_id = {{ anonymous_id = {user_bound} }}\n"
    )
    out = stitch(
        events.write(tmp / "in"), tmp / "out", "--no-report", "--config", str(tmp / "stitcher.toml")
    )
    got = {
        key: (r["hub_rule"], r["hub_degree"], r["hub_contention"], r["hub_typical_degree"])
        for key, r in _hubs(out).items()
    }
    expected = _oracle(
        edges, min_contention, factor, {"anonymous_id": anon_bound, "user_id": user_bound}
    )
    for rule, *_ in expected.values():
        event(f"a hub by {rule}")
    assert got == expected


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("min_contention = 1", "hubs min_contention must be at least 2 (got 1)"),
        ("min_contention = true", "hubs.min_contention must be an integer, not True"),
        ('outlier_factor = "2"', "hubs.outlier_factor must be a number, not '2'"),
        ("outlier_factor = 0.5", "hubs outlier_factor must be a finite number of at least 1"),
        ("outlier_factor = nan", "hubs outlier_factor must be a finite number of at least 1"),
        ("user_id = { user_id = 5 }", "links a type to itself"),
    ],
)
def test_bad_hub_settings_fail_with_one_line_and_keep_the_output(
    tmp_path: Path, setting: str, message: str
) -> None:
    events = Events()
    events.ordinary_people(3)
    data = events.write(tmp_path / "in")
    out = stitch(data, tmp_path / "out", "--no-report")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    config = tmp_path / "stitcher.toml"
    config.write_text(f"[hubs]\n{setting}\n")
    result = run_cli(
        "run", "--input", str(data), "--output", str(out), "--config", str(config), expect=1
    )
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_hub_settings_show_in_the_effective_config(tmp_path: Path) -> None:
    config = tmp_path / "stitcher.toml"
    config.write_text("[hubs]\nmin_contention = 6\noutlier_factor = 3\n")
    shown = run_cli("config", "--show", "--config", str(config)).stdout
    assert "min_contention = 6" in shown and "outlier_factor = 3.0" in shown


def test_explain_says_why_an_identifier_is_a_hub(tmp_path: Path) -> None:
    events = Events()
    events.ordinary_people(20)
    for p in range(5):
        events.add(f"laptop{p}", "team-login")
        events.add(f"laptop{p}", f"member{p}")
    out = stitch(events.write(tmp_path / "in"), tmp_path / "out")
    text = run_cli("explain", str(out), "user_id:team-login").stdout
    assert "is quarantined (hub)" in text
    assert (
        "a hub: its 5 anonymous_id values lead to 5 other user_id values (a hub at 4 or more: "
        "[hubs] min_contention)" in text
    )
    assert "none (quarantined)" in text
    data = json.loads(run_cli("explain", str(out), "user_id:team-login", "--json").stdout)
    assert data["quarantine"]["hub_rule"] == "contention"
    assert data["quarantine"]["why"].startswith("its 5 anonymous_id values")
    assert "contention: degree 5, contention 5" in (out / "report.html").read_text()
