"""Merge rules people can trust: hubs, extra identifier types, the config file, and the default
policy's precision and recall against the generator's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stitcher.synthetic.generate import GeneratorConfig, generate, pairwise_scores

from conftest import partition, read_output, run_cli, stitch, write_csv

TS = "2026-11-01T00:{:02d}:{:02d}Z"


def _ts(i: int) -> str:
    return TS.format(i // 60 % 60, i % 60)


def test_hub_user_id_is_quarantined_and_links_nothing(tmp_path: Path) -> None:
    # 12 people each log in once with their own id and once with a shared login.
    rows = []
    for p in range(12):
        rows.append((f"m{p}a", f"dev{p}", "shared-login", _ts(2 * p)))
        rows.append((f"m{p}b", f"dev{p}", f"user{p}", _ts(2 * p + 1)))
    write_csv(tmp_path / "in" / "tracks.csv", ["id", "anonymous_id", "user_id", "timestamp"], rows)
    (tmp_path / "stitcher.toml").write_text("[hubs]\nuser_id = { anonymous_id = 10 }\n")
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    persons = partition(read_output(out, "id_map"))
    assert persons == {
        frozenset({("anonymous_id", f"dev{p}"), ("user_id", f"user{p}")}) for p in range(12)
    }
    quarantine = read_output(out, "quarantine")
    hub = quarantine.filter(pl.col("reason") == "hub").row(0, named=True)
    assert (hub["identifier"], hub["hub_linked_type"], hub["hub_degree"]) == (
        "shared-login",
        "anonymous_id",
        12,
    )
    rejected = read_output(out, "rejected_edges")
    assert set(rejected["reason"].to_list()) == {"hub_user_id"}
    assert rejected.height == 12
    record = json.loads((out / "run.json").read_text())
    assert record["quarantine"]["hubs"][0]["identifier"] == "shared-login"
    assert record["quarantine"]["hubs"][0]["why"] == (
        "linked to 12 anonymous_id values, more than the bound of 10 "
        "([hubs] user_id = { anonymous_id = ... })"
    )


def test_hubs_can_be_turned_off(tmp_path: Path) -> None:
    rows = [(f"m{p}", f"dev{p}", "shared-login", _ts(p)) for p in range(60)]
    write_csv(tmp_path / "in" / "tracks.csv", ["id", "anonymous_id", "user_id", "timestamp"], rows)
    (tmp_path / "stitcher.toml").write_text("[hubs]\nuser_id = { anonymous_id = 10 }\n")
    cfg = str(tmp_path / "stitcher.toml")
    on = stitch(tmp_path / "in", tmp_path / "on", "--config", cfg)
    off = stitch(tmp_path / "in", tmp_path / "off", "--config", cfg, "--no-hubs")
    assert len(partition(read_output(on, "id_map"))) == 60
    assert len(partition(read_output(off, "id_map"))) == 1


def test_junk_partners_do_not_make_a_hub(tmp_path: Path) -> None:
    """A real user seen with many junk anonymous ids is not a hub: junk partners don't count."""
    junk = ["undefined", "null", "0", "none", "nil", "nan", "-1", "unknown"]
    rows = [(f"m{i}", j, "u1", _ts(i)) for i, j in enumerate(junk)]
    write_csv(tmp_path / "in" / "tracks.csv", ["id", "anonymous_id", "user_id", "timestamp"], rows)
    (tmp_path / "stitcher.toml").write_text("[hubs]\nuser_id = { anonymous_id = 3 }\n")
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    assert read_output(out, "id_map")["identifier"].to_list() == ["u1"]
    assert "hub" not in read_output(out, "quarantine")["reason"].to_list()


def test_extra_identifier_type_links_and_normalizes(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "in" / "identifies.csv",
        ["id", "anonymous_id", "user_id", "timestamp", "email"],
        [
            ("i1", "a1", None, _ts(1), "  Jane@Example.com "),
            ("i2", "a2", None, _ts(2), "jane@example.com"),
            ("i3", "a3", None, _ts(3), "n/a"),
            ("i4", "a4", None, _ts(4), "N/A"),
        ],
    )
    (tmp_path / "stitcher.toml").write_text(
        '[identifiers.email]\ncolumns = ["email"]\nnormalize = "lower_trim"\n'
        'junk_values = ["noreply@example.com"]\n'
    )
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    persons = partition(read_output(out, "id_map"))
    assert (
        frozenset({("anonymous_id", "a1"), ("anonymous_id", "a2"), ("email", "jane@example.com")})
        in persons
    )
    # "n/a" is junk for every type: a3 and a4 stay apart.
    assert frozenset({("anonymous_id", "a3")}) in persons
    assert frozenset({("anonymous_id", "a4")}) in persons
    users = read_output(out, "users")
    assert "email" in users.columns  # the trait stays a trait as well


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('polcy = "guarded"', "unknown key 'polcy'"),
        ('policy = "fuzzy"', "unknown policy 'fuzzy'"),
        ("[limits]\nuser_id = 0", "at least 1"),
        ("[limits]\nphone = 2", "unknown identifier type 'phone'"),
        ('[identifiers.email]\ncolumn = "email"\nnormalise = "lower"', "unknown key 'normalise'"),
        ('[identifiers.email]\ncolumn = "email"\nnormalize = "upper"', "unknown normalize"),
        ('[junk]\npatterns = ["("]', "stitcher.toml:2: [junk] patterns '(' is not a regex"),
        ("dedupe = 3", "dedupe must be true or false"),
        ("policy = ", "not valid TOML"),
        ("[hubs]\nuser_id = { anonymous_id = 0 }", "at least 1"),
        ('engine = "flink"', "unknown engine 'flink'; valid engines: duckdb, spark"),
        ("engine = 3", "engine must be one of duckdb, spark, not 3"),
        ('spark_master = "  "', "spark_master must not be empty"),
        ('spark_conf = "spark.executor.memory=8g"', "spark_conf must be a table of key = value"),
        ('[spark_conf]\n"spark.jars" = ["a.jar"]', "spark_conf.spark.jars must be text"),
        ('spark_mastr = "yarn"', "unknown key 'spark_mastr'"),
        ("spark_executor_timeout = true", "spark_executor_timeout must be a number of seconds"),
        ("spark_executor_timeout = 0.5", "spark_executor_timeout must be from 1 to 604800"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "stitcher.toml"
    config.write_text(toml + "\n")
    result = run_cli("config", "--config", str(config), expect=1)
    assert message in result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output


def test_config_show_round_trips(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text(
        'policy = "segment"\npriority = ["user_id", "email"]\n'
        '[identifiers.email]\ncolumns = ["email"]\nnormalize = "lower_trim"\n'
        "[limits]\nemail = 3\n[hubs]\nanonymous_id = { user_id = 7 }\n"
    )
    shown = run_cli("config", "--config", str(config), "--show").stdout
    again = tmp_path / "b.toml"
    again.write_text(shown)
    assert run_cli("config", "--config", str(again), "--show").stdout == shown
    assert 'policy = "segment"' in shown
    assert "email = 3" in shown
    assert "anonymous_id = { user_id = 7 }" in shown


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "stitcher.toml"
    config.write_text('policy = "segment"\n')
    shown = run_cli("config", "--config", str(config), "--show", "--policy", "connected").stdout
    assert 'policy = "connected"' in shown


def test_spark_settings_round_trip_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text(
        'engine = "spark"\nspark_master = "spark://head:7077"\n[spark_conf]\n'
        '"spark.executor.memory" = "8g"\n'
        "spark.sql.shuffle.partitions = 64\n"  # dotted keys are nested tables in TOML
        "spark.hadoop.fs.s3a.secret.key = 'hunter2'\n"
    )
    shown = run_cli("config", "--config", str(config), "--show").stdout
    assert 'engine = "spark"' in shown
    assert 'spark_master = "spark://head:7077"' in shown
    assert '"spark.executor.memory" = "8g"' in shown
    assert '"spark.sql.shuffle.partitions" = "64"' in shown
    # Credentials are never printed (run.json keeps only their names too).
    assert '"spark.hadoop.fs.s3a.secret.key" = "***"' in shown and "hunter2" not in shown
    public = "".join(
        line for line in shown.splitlines(keepends=True) if "secret" not in line and "#" not in line
    )
    without_secret = tmp_path / "b.toml"
    without_secret.write_text(public)
    assert run_cli("config", "--config", str(without_secret), "--show").stdout == public
    flags = run_cli(
        "config", "--config", str(config), "--show", "--engine", "duckdb",
        "--spark-master", "local[2]", "--spark-conf", "spark.executor.memory=16g",
        "--spark-conf", "spark.driver.memory=4g",
    ).stdout  # fmt: skip
    assert 'engine = "duckdb"' in flags and 'spark_master = "local[2]"' in flags
    # --spark-conf adds to the file's settings; the flag wins on the same key.
    assert '"spark.executor.memory" = "16g"' in flags
    assert '"spark.driver.memory" = "4g"' in flags
    assert '"spark.sql.shuffle.partitions" = "64"' in flags
    assert 'engine = "duckdb"' in run_cli("config", "--show").stdout


def test_engine_from_the_config_file_reaches_the_run(tmp_path: Path) -> None:
    # A URL input is refused by the duckdb engine: the config file's engine is the one used.
    (tmp_path / "stitcher.toml").write_text('engine = "duckdb"\n')
    result = run_cli(
        "run", "--config", str(tmp_path / "stitcher.toml"), "--input", "hdfs://nn/events",
        "--output", str(tmp_path / "out"), expect=1,
    )  # fmt: skip
    assert "only --engine spark reads" in result.stderr


def test_pyproject_tool_section_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.stitcher]\npolicy = "connected"\n')
    monkeypatch.chdir(tmp_path)
    assert 'policy = "connected"' in run_cli("config", "--show").stdout


@pytest.mark.slow
def test_default_policy_precision_and_recall_on_generated_data(tmp_path: Path) -> None:
    """Shared devices, junk ids, a shared guest login and a hard-coded device id: the default
    policy must reach pairwise precision and recall of 0.999, naming both hubs."""
    data = tmp_path / "data"
    generate(
        data,
        GeneratorConfig(
            n_events=400_000, seed=5, guest_login_people=1_200, hardcoded_device_people=120
        ),
    )
    out = stitch(data, tmp_path / "out")
    truth = pl.read_parquet(data / "truth.parquet")
    scores = pairwise_scores(read_output(out, "id_map"), truth)
    assert scores["precision"] >= 0.999, scores
    assert scores["recall"] >= 0.999, scores
    hubs = {
        h["identifier"] for h in json.loads((out / "run.json").read_text())["quarantine"]["hubs"]
    }
    assert {"guest-account", "a5d2f0e4-hardcoded-build"} <= hubs
    # Plain components on the same data fuse strangers: the rules are what make the difference.
    connected = stitch(data, tmp_path / "connected", "--policy", "connected", "--no-hubs")
    assert pairwise_scores(read_output(connected, "id_map"), truth)["precision"] < 0.9


def test_guarded_never_chains_two_user_ids_through_extra_types(tmp_path: Path) -> None:
    """a1 logs in as u1; later a1 sends an email identify; that email logs in as u2. Each
    non-user id has one user id, yet the chain a1-email-u2 would join u1 and u2: the replay
    fallback keeps one user id per person (the earliest link wins)."""
    write_csv(
        tmp_path / "in" / "identifies.csv",
        ["id", "anonymous_id", "user_id", "timestamp", "email"],
        [
            ("i1", "a1", "u1", _ts(1), None),
            ("i2", "a1", None, _ts(2), "x@example.com"),
            ("i3", "a2", "u2", _ts(3), "x@example.com"),
            ("i4", "a3", "u2", _ts(4), None),
        ],
    )
    write_csv(
        tmp_path / "in" / "aliases.csv",
        ["id", "previous_id", "user_id", "timestamp"],
        [("al1", "u2", "u3", _ts(5))],
    )
    (tmp_path / "stitcher.toml").write_text('[identifiers.email]\ncolumns = ["email"]\n')
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    persons = partition(read_output(out, "id_map"))
    for person in persons:
        users = {i for t, i in person if t == "user_id"}
        assert users <= {"u1"} or users <= {"u2", "u3"}, persons
    # the alias still merges u2 and u3, with a2 and a3
    assert frozenset(
        {("user_id", "u2"), ("user_id", "u3"), ("anonymous_id", "a2"), ("anonymous_id", "a3")}
    ) <= max(persons, key=lambda p: ("user_id", "u3") in p)
    rejected = read_output(out, "rejected_edges")
    assert "limit_user_id" in rejected["reason"].to_list()


_ids = st.sampled_from([None, "1", "2", "3", "4"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(_ids, _ids, _ids, st.integers(0, 5)), min_size=1, max_size=14),
    aliases=st.lists(st.tuples(_ids, _ids), max_size=2),
)
def test_guarded_one_user_per_person_with_extra_types(
    rows: list, aliases: list, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("guarded")
    write_csv(
        tmp / "in" / "identifies.csv",
        ["id", "anonymous_id", "user_id", "timestamp", "email"],
        [
            (f"m{i}", a and f"a{a}", u and f"u{u}", _ts(t), e and f"e{e}@x.io")
            for i, (a, u, e, t) in enumerate(rows)
        ],
    )
    write_csv(
        tmp / "in" / "aliases.csv",
        ["id", "previous_id", "user_id", "timestamp"],
        [(f"al{i}", p and f"u{p}", u and f"u{u}", _ts(9)) for i, (p, u) in enumerate(aliases)],
    )
    (tmp / "stitcher.toml").write_text('[identifiers.email]\ncolumns = ["email"]\n')
    out = stitch(tmp / "in", tmp / "out", "--config", str(tmp / "stitcher.toml"))
    alias_graph = nx.Graph()
    alias_graph.add_edges_from(
        (f"u{p}", f"u{u}") for p, u in aliases if p is not None and u is not None
    )
    group = {n: min(c) for c in nx.connected_components(alias_graph) for n in c}
    id_map = read_output(out, "id_map")
    assert id_map.height == len(id_map.unique(["identifier_type", "identifier"]))
    for person in partition(id_map):
        users = {group.get(i, i) for t, i in person if t == "user_id"}
        assert len(users) <= 1, person


def test_dedupe_with_extra_identifier_types(tmp_path: Path) -> None:
    rows = [("i1", "a1", None, _ts(1), "x@y.io"), ("i1", "a1", None, _ts(1), "x@y.io")]
    header = ["id", "anonymous_id", "user_id", "timestamp", "email"]
    write_csv(tmp_path / "in" / "identifies.csv", header, rows)
    (tmp_path / "stitcher.toml").write_text('[identifiers.email]\ncolumns = ["email"]\n')
    out = stitch(
        tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"), "--dedupe"
    )
    id_map = read_output(out, "id_map")
    assert sorted(id_map["event_count"].to_list()) == [1, 1]
    assert len(partition(id_map)) == 1
