"""Every input value read as the user meant (README, "Input"): partition keys, numeric ids.

Each case was a silent wrong answer before: strangers merged, or one person split. Every test
checks the exit code, the exact partition of `id_map` (which ids are one person) and what
`run.json` reports.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import partition, read_output, run_cli, write_csv

A, U = "anonymous_id", "user_id"


def run(input_dir: Path, output_dir: Path, *extra: str) -> dict:
    run_cli("run", "--input", str(input_dir), "--output", str(output_dir), "-q", *extra)
    return json.loads((output_dir / "run.json").read_text(encoding="utf-8"))


def persons(output_dir: Path) -> set[frozenset[tuple[str, str]]]:
    return partition(read_output(output_dir, "id_map"))


def ids(*pairs: tuple[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(pairs)


def parquet(path: Path, columns: dict[str, pa.Array | list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


TIMES = ["2026-02-02T10:00:00Z", "2026-02-03T10:00:00Z"]


# -- partition keys ------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_partition_key_never_replaces_the_files_own_column(
    tmp_path: Path, file_format: str
) -> None:
    # Two strangers in a folder named user_id=u9: the folder's value once became every row's
    # user, and merged them.
    folder = tmp_path / "in" / "tracks" / "user_id=u9"
    rows = {"anonymous_id": ["a1", "a2"], "user_id": ["u1", "u2"], "timestamp": TIMES}
    if file_format == "csv":
        write_csv(folder / "part-0.csv", list(rows), zip(*rows.values(), strict=True))
    else:
        parquet(folder / "part-0.parquet", rows)
    record = run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (U, "u1")),
        ids((A, "a2"), (U, "u2")),
    }
    assert record["input"]["partition_keys"] == [
        {
            "table": "tracks",
            "key": "user_id",
            "field": "user_id",
            "filled_files": 0,
            "ignored_files": 1,
            "reason": "the files have their own user_id column",
        }
    ]


def test_a_time_partition_never_replaces_the_event_time(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "tracks" / "timestamp=2026-01-01"
    write_csv(folder / "part-0.csv", [A, U, "timestamp"], [("a1", "u1", TIMES[0])])
    run(tmp_path / "in", tmp_path / "out")
    first_seen = read_output(tmp_path / "out", "id_map")["first_seen_at"].to_list()
    assert {t.isoformat() for t in first_seen} == {"2026-02-02T10:00:00+00:00"}


def test_a_partition_key_fills_a_field_only_in_files_that_lack_it(tmp_path: Path) -> None:
    # Spark's partitionBy("user_id") leaves the column out of the files: the folder is then
    # the only place the user id is, and fills it. A file in the same folder that has its own
    # user_id column keeps it; rows of a file with the column but no value stay anonymous.
    tracks = tmp_path / "in" / "tracks"
    write_csv(tracks / "user_id=u9" / "a.csv", [A, "timestamp"], [("a1", TIMES[0])])
    write_csv(tracks / "user_id=u9" / "b.csv", [A, U, "timestamp"], [("a2", "u2", TIMES[0])])
    write_csv(tracks / "user_id=u9" / "c.csv", [A, U, "timestamp"], [("a3", None, TIMES[0])])
    write_csv(tracks / "user_id=u8" / "d.csv", [A, "timestamp"], [("a4", TIMES[1])])
    record = run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (U, "u9")),
        ids((A, "a2"), (U, "u2")),
        ids(
            (A, "a3"),
        ),
        ids((A, "a4"), (U, "u8")),
    }
    (entry,) = record["input"]["partition_keys"]
    assert (entry["filled_files"], entry["ignored_files"]) == (2, 2)
    assert entry["reason"] == "the files have their own user_id column (in 2 files)"


def test_partition_values_are_unescaped_and_stay_data(tmp_path: Path) -> None:
    # Hive escapes a value's special characters as %XX; a quote or a backslash in a folder
    # name is data, never SQL.
    tracks = tmp_path / "in" / "tracks"
    name = "user_id=o'b\\x%3Ay"
    write_csv(tracks / name / "a.csv", [A, "timestamp"], [("a1", TIMES[0])])
    write_csv(tracks / "user_id=1001.0" / "a.csv", [A, "timestamp"], [("a2", TIMES[0])])
    run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (U, "o'b\\x:y")),
        ids((A, "a2"), (U, "1001")),
    }


def test_other_partition_keys_are_ignored_and_listed(tmp_path: Path) -> None:
    # dt= and source= describe the layout: neither an identifier, a time nor a trait.
    folder = tmp_path / "in" / "identifies" / "dt=2026-01-01" / "source=web"
    write_csv(folder / "p.csv", [A, U, "timestamp", "plan"], [("a1", "u1", TIMES[0], "pro")])
    record = run(tmp_path / "in", tmp_path / "out")
    assert record["input"]["trait_columns"] == ["plan"]
    assert [(e["key"], e["field"], e["reason"]) for e in record["input"]["partition_keys"]] == [
        ("dt", None, "not an identity or time column"),
        ("source", None, "not an identity or time column"),
    ]
    users = read_output(tmp_path / "out", "users")
    assert "dt" not in users.columns and "source" not in users.columns


def test_folders_above_the_input_are_not_partition_keys(tmp_path: Path) -> None:
    # A nightly run pointed at one day's folder of a lake: the folders that hold --input are
    # where the user keeps it, not a layout of the table, and fill nothing.
    root = tmp_path / "lake" / "user_id=u9" / "dt=2026-01-01"
    write_csv(root / "tracks.csv", [A, "timestamp"], [("a1", TIMES[0])])
    folder = root / "identifies" / "user_id=u8"
    write_csv(folder / "p.csv", [A, "timestamp"], [("a3", TIMES[0])])
    record = run(root, tmp_path / "out")
    assert persons(tmp_path / "out") == {ids((A, "a1")), ids((A, "a3"), (U, "u8"))}
    assert [(e["table"], e["key"]) for e in record["input"]["partition_keys"]] == [
        ("identifies", "user_id")
    ]


# -- numeric ids ---------------------------------------------------------------------------


def test_one_numeric_id_whatever_its_type_is_one_identifier(tmp_path: Path) -> None:
    # pandas writes an integer column with nulls as float64; warehouses export decimals;
    # other writers int64 or text. 1001 in each is one user id, '1001'.
    tracks = tmp_path / "in" / "tracks"
    parquet(tracks / "float.parquet", {A: ["a1", "a0"], U: [1001.0, None], "timestamp": TIMES})
    parquet(tracks / "int.parquet", {A: ["a2"], U: [1001], "timestamp": TIMES[:1]})
    parquet(tracks / "text.parquet", {A: ["a3"], U: ["1001"], "timestamp": TIMES[:1]})
    parquet(
        tracks / "decimal.parquet",
        {
            A: ["a4"],
            U: pa.array([Decimal("1001.00")], pa.decimal128(10, 2)),
            "timestamp": TIMES[:1],
        },
    )
    write_csv(tracks / "pandas.csv", [A, U, "timestamp"], [("a5", "1001.0", TIMES[0])])
    record = run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (A, "a2"), (A, "a3"), (A, "a4"), (A, "a5"), (U, "1001")),
        ids(
            (A, "a0"),
        ),
    }
    assert record["input"]["numeric_ids"] == {
        "tracks.user_id": {"whole": 2, "not_whole": 0, "nan_or_infinite": 0}
    }


def test_big_integer_ids_keep_every_digit_beside_float_files(tmp_path: Path) -> None:
    # Read together with a float64 file, an int64 column became double: 2**60 + 1 lost its
    # last digits and could meet another id.
    tracks = tmp_path / "in" / "tracks"
    big = 2**60 + 1
    parquet(tracks / "int.parquet", {A: ["a1", "a2"], U: [big, big + 1], "timestamp": TIMES})
    parquet(tracks / "float.parquet", {A: ["a3"], U: [7.0], "timestamp": TIMES[:1]})
    run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (U, str(big))),
        ids((A, "a2"), (U, str(big + 1))),
        ids((A, "a3"), (U, "7")),
    }


def test_nan_and_infinities_are_junk_and_link_nobody(tmp_path: Path) -> None:
    nan, inf = float("nan"), float("inf")
    parquet(
        tmp_path / "in" / "tracks.parquet",
        {
            A: ["a1", "a2", "a3", "a4", "a5", "a6"],
            U: [nan, nan, inf, inf, -inf, -inf],
            "timestamp": TIMES * 3,
        },
    )
    record = run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {ids((A, f"a{i}")) for i in range(1, 7)}
    quarantine = read_output(tmp_path / "out", "quarantine")
    assert sorted(quarantine["identifier"].to_list()) == ["-inf", "inf", "nan"]
    assert set(quarantine["reason"].to_list()) == {"junk_value"}
    assert record["input"]["numeric_ids"]["tracks.user_id"]["nan_or_infinite"] == 6


def test_a_non_integral_float_id_keeps_its_shortest_text_and_is_counted(tmp_path: Path) -> None:
    parquet(
        tmp_path / "in" / "tracks.parquet",
        {A: ["a1", "a2", "a3"], U: [1001.5, 0.1, 1e20], "timestamp": TIMES + TIMES[:1]},
    )
    record = run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (U, "1001.5")),
        ids((A, "a2"), (U, "0.1")),
        ids((A, "a3"), (U, "100000000000000000000")),
    }
    assert record["input"]["numeric_ids"] == {
        "tracks.user_id": {"whole": 1, "not_whole": 2, "nan_or_infinite": 0}
    }


INTEGER_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]
INTEGER_TYPES += [pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]


@pytest.mark.parametrize(
    "array",
    [pa.array([101, 101], t) for t in INTEGER_TYPES]
    + [
        pa.array([101.0, 101.0], pa.float32()),
        pa.array([101.0, 101.0], pa.float64()),
        pa.array([Decimal("101"), Decimal("101")], pa.decimal128(3, 0)),
        pa.array([Decimal("101.000000"), Decimal("101.0")], pa.decimal128(38, 6)),
        pa.array(["101", "101.00"]),
    ],
    ids=lambda a: str(a.type),
)
def test_every_numeric_type_reads_as_the_same_text(tmp_path: Path, array: pa.Array) -> None:
    # Each type beside a text file holding the same id: one person, one user id '101'.
    tracks = tmp_path / "in" / "tracks"
    parquet(tracks / "typed.parquet", {A: ["a1", "a2"], U: array, "timestamp": TIMES})
    write_csv(tracks / "text.csv", [A, U, "timestamp"], [("a3", "101", TIMES[0])])
    run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {ids((A, "a1"), (A, "a2"), (A, "a3"), (U, "101"))}


def test_boolean_ids_are_junk(tmp_path: Path) -> None:
    parquet(
        tmp_path / "in" / "tracks.parquet",
        {A: ["a1", "a2", "a3", "a4"], U: [True, True, False, False], "timestamp": TIMES * 2},
    )
    run(tmp_path / "in", tmp_path / "out")
    assert persons(tmp_path / "out") == {ids((A, f"a{i}")) for i in range(1, 5)}
    quarantine = read_output(tmp_path / "out", "quarantine")
    assert sorted(quarantine["identifier"].to_list()) == ["false", "true"]


def test_text_that_only_looks_numeric_stays_as_sent(tmp_path: Path) -> None:
    # Only whole numbers written as floats are rewritten: leading zeros, versions, signs and
    # exponents are text ids and stay as sent.
    values = ["007", "1.5", "1.50", "1.0.0", "+12.0", "1e3", "12.0 ", "-12.00"]
    rows = [(f"a{i}", v, TIMES[0]) for i, v in enumerate(values)]
    write_csv(tmp_path / "in" / "tracks.csv", [A, U, "timestamp"], rows)
    run(tmp_path / "in", tmp_path / "out")
    expected = [*values[:-1], "-12"]
    assert persons(tmp_path / "out") == {ids((A, f"a{i}"), (U, v)) for i, v in enumerate(expected)}


# -- every column of an identifier type ----------------------------------------------------


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "stitcher.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_every_column_of_an_identifier_type_is_an_identifier(tmp_path: Path) -> None:
    # Only the first non-null value of each row was kept: em2 never became an email, and the
    # person who signed up with it on another device was never linked.
    write_csv(
        tmp_path / "in" / "identifies.csv",
        [A, U, "timestamp", "em1", "em2"],
        [
            ("a1", "u1", TIMES[0], "x@a.com", "y@b.com"),
            ("a2", None, TIMES[1], None, "y@b.com"),
            ("a3", None, TIMES[1], "z@c.com", "z@c.com"),
        ],
    )
    cfg = _config(tmp_path, '[identifiers.email]\ncolumns = ["em1", "em2"]\n')
    record = run(tmp_path / "in", tmp_path / "out", "--config", cfg)
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (A, "a2"), (U, "u1"), ("email", "x@a.com"), ("email", "y@b.com")),
        ids((A, "a3"), ("email", "z@c.com")),
    }
    # The same value in both columns is one id, never a link of an id to itself.
    edges = read_output(tmp_path / "out", "edges")
    assert not any(a == b for a, b in zip(edges["from_id"], edges["to_id"], strict=True))
    assert record["identifiers"]["email"] == 3


def test_a_hub_rule_counts_every_column_of_a_type(tmp_path: Path) -> None:
    # A shared inbox seen with three user ids, the third time in the second column beside the
    # user's own address: a hub at a limit of 2.
    rows = [(f"a{i}", f"u{i}", TIMES[0], "team@x.com" if i != 2 else None, None) for i in range(3)]
    rows[2] = ("a2", "u2", TIMES[0], "own@x.com", "team@x.com")
    write_csv(tmp_path / "in" / "identifies.csv", [A, U, "timestamp", "em1", "em2"], rows)
    cfg = _config(
        tmp_path,
        '[identifiers.email]\ncolumns = ["em1", "em2"]\n[hubs]\nemail = { user_id = 2 }\n',
    )
    run(tmp_path / "in", tmp_path / "out", "--config", cfg)
    quarantine = read_output(tmp_path / "out", "quarantine")
    assert quarantine.select("identifier", "reason").rows() == [("team@x.com", "hub")]
    assert persons(tmp_path / "out") == {
        ids((A, "a0"), (U, "u0")),
        ids((A, "a1"), (U, "u1")),
        ids((A, "a2"), (U, "u2"), ("email", "own@x.com")),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[identifiers.email]\ncolumns = ["email", "E-mail"]\n',
            "identifier type 'email' lists the column 'E-mail' twice",
        ),
        (
            '[identifiers.work__email]\ncolumns = ["email"]\n',
            "identifier type name 'work__email' must not contain '__'",
        ),
    ],
)
def test_identifier_type_columns_that_cannot_be_read_apart_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    write_csv(tmp_path / "in" / "tracks.csv", [A, U, "timestamp"], [("a1", "u1", TIMES[0])])
    result = run_cli(
        "run",
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--config",
        _config(tmp_path, text),
        expect=1,
    )
    assert message in result.output
    assert not (tmp_path / "out").exists()


# -- duplicate and twin columns ------------------------------------------------------------


def _hashes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_two_columns_with_one_name_are_an_error(tmp_path: Path, file_format: str) -> None:
    # The second user_id was dropped in silence.
    write_csv(tmp_path / "good" / "tracks.csv", [A, U, "timestamp"], [("a1", "u1", TIMES[0])])
    run(tmp_path / "good", tmp_path / "out")
    before = _hashes(tmp_path / "out")
    bad = tmp_path / "bad" / f"tracks.{file_format}"
    if file_format == "csv":
        write_csv(bad, [A, U, U, "timestamp"], [("a1", "u1", "u2", TIMES[0])])
    else:
        bad.parent.mkdir()
        table = pa.table([["a1"], ["u1"], ["u2"], TIMES[:1]], names=[A, U, U, "timestamp"])
        pq.write_table(table, bad)
    result = run_cli(
        "run", "--input", str(tmp_path / "bad"), "--output", str(tmp_path / "out"), expect=1
    )
    assert result.stderr.strip().splitlines() == [
        f"Error: {bad} has two columns named 'user_id': rename or drop one, then run again"
    ]
    assert _hashes(tmp_path / "out") == before


def test_spelling_twins_follow_one_rule_and_disagreements_are_counted(tmp_path: Path) -> None:
    # userId and user_id in one file: the lower-case (warehouse) spelling is read where it is
    # set, the other fills its gaps; rows where both are set and differ are counted and named.
    write_csv(
        tmp_path / "in" / "tracks.csv",
        [A, "userId", U, "TimeStamp", "timestamp"],
        [
            ("a1", "U1", "u1", TIMES[0], TIMES[1]),
            ("a2", None, "u2", TIMES[0], None),
            ("a3", "u3", None, None, TIMES[1]),
            ("a4", "u4", "u4", TIMES[0], TIMES[0]),
        ],
    )
    result = run_cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert persons(tmp_path / "out") == {
        ids((A, "a1"), (U, "u1")),
        ids((A, "a2"), (U, "u2")),
        ids((A, "a3"), (U, "u3")),
        ids((A, "a4"), (U, "u4")),
    }
    record = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert record["input"]["twin_columns"] == [
        {
            "table": "tracks",
            "field": "user_id",
            "columns": ["user_id", "userId"],
            "rows_disagreeing": 1,
        },
        {
            "table": "tracks",
            "field": "timestamp",
            "columns": ["timestamp", "TimeStamp"],
            "rows_disagreeing": 1,
        },
    ]
    warnings = [line for line in result.stderr.splitlines() if "disagree" in line]
    assert len(warnings) == 1
    assert (
        "tracks: user_id and userId (both user_id) disagree on 1 rows, user_id is read; "
        "timestamp and TimeStamp (both timestamp) disagree on 1 rows, timestamp is read"
    ) in warnings[0]
    first_seen = read_output(tmp_path / "out", "id_map").filter(pl.col("identifier") == "a1")
    # The lower-case spelling wins wherever it stands in the file (here after TimeStamp).
    assert first_seen["first_seen_at"][0].isoformat() == "2026-02-03T10:00:00+00:00"


# -- traits --------------------------------------------------------------------------------

CLASHING_TRAITS = [
    "ts",
    "component",
    "person_id",
    "trait_person_id",
    "event_count",
    "_attributed_id",
    "_attributed_type",
    "m",
    "__trait_0",
]


def test_traits_named_like_our_columns_reach_users_under_documented_names(
    tmp_path: Path,
) -> None:
    # A trait named ts became the event time, one named component vanished, _attributed_id
    # nulled every trait. Each now reaches users with its value, under its name or, where
    # users has that column, trait_<name> (again until free).
    header = [A, U, "timestamp", *CLASHING_TRAITS]
    values = [f"v-{t}" for t in CLASHING_TRAITS]
    write_csv(tmp_path / "in" / "identifies.csv", header, [("a1", "u1", TIMES[0], *values)])
    write_csv(tmp_path / "in" / "tracks.csv", [A, U, "timestamp"], [("a2", "u1", TIMES[1])])
    record = run(tmp_path / "in", tmp_path / "out")
    users = read_output(tmp_path / "out", "users")
    assert users.height == 1
    renamed = {
        "person_id": "trait_person_id",
        "trait_person_id": "trait_person_id",
        "event_count": "trait_event_count",
    }
    row = users.row(0, named=True)
    for trait, value in zip(CLASHING_TRAITS, values, strict=True):
        if trait == "person_id":
            assert row["trait_trait_person_id"] == value
        else:
            assert row[renamed.get(trait, trait)] == value, trait
    assert row["event_count"] == 2
    assert row["first_seen_at"].isoformat() == "2026-02-02T10:00:00+00:00"
    assert row["last_seen_at"].isoformat() == "2026-02-03T10:00:00+00:00"
    assert sorted(record["input"]["trait_columns"]) == sorted(CLASHING_TRAITS)
