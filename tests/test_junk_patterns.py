"""Junk patterns: full-match regexes, bound as query parameters, typed or for every type."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from conftest import partition, read_output, stitch, write_csv

TS = "2026-11-01T00:00:{:02d}Z"


def test_junk_file_regex_is_a_full_match_on_the_normalized_id(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "in" / "tracks.csv",
        ["id", "anonymous_id", "user_id", "timestamp"],
        [
            ("m1", ' "TEST-1" ', "u1", TS.format(1)),  # normalized to test-1: junk
            ("m2", "test-2", "u2", TS.format(2)),  # junk
            ("m3", "xtest-3", "u3", TS.format(3)),  # not a full match: kept
            ("m4", "test-4x'", "u4", TS.format(4)),  # normalized to test-4x: kept
            ("m5", "00000000-0000", "u5", TS.format(5)),  # the built-in pattern still applies
        ],
    )
    junk = tmp_path / "junk.txt"
    junk.write_text("regex:test-[0-9]+\n# a comment\n")
    out = stitch(tmp_path / "in", tmp_path / "out", "--junk-file", str(junk))
    quarantine = read_output(out, "quarantine")
    assert dict(zip(quarantine["identifier"], quarantine["reason"], strict=True)) == {
        ' "TEST-1" ': "junk_pattern",
        "test-2": "junk_pattern",
        "00000000-0000": "junk_pattern",
    }
    kept = set(read_output(out, "id_map")["identifier"].to_list())
    assert {"xtest-3", "test-4x'", "u1", "u2", "u5"} <= kept


def test_replace_junk_without_patterns_quarantines_nothing_by_pattern(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "in" / "tracks.csv",
        ["id", "anonymous_id", "user_id", "timestamp"],
        [("m1", "0000", "u1", TS.format(1)), ("m2", "undefined", "u2", TS.format(2))],
    )
    junk = tmp_path / "junk.txt"
    junk.write_text("undefined\n")
    out = stitch(tmp_path / "in", tmp_path / "out", "--junk-file", str(junk), "--replace-junk")
    quarantine = read_output(out, "quarantine")
    assert quarantine.select("identifier", "reason").rows() == [("undefined", "junk_value")]
    assert frozenset({("anonymous_id", "0000"), ("user_id", "u1")}) in partition(
        read_output(out, "id_map")
    )


def test_typed_junk_pattern_applies_to_its_type_only(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "in" / "identifies.csv",
        ["id", "anonymous_id", "user_id", "timestamp", "email"],
        [
            ("i1", "a1", None, TS.format(1), "bot-1@example.com"),
            ("i2", "a2", None, TS.format(2), "bot-1@example.com"),
            ("i3", "bot-1@example.com", None, TS.format(3), "jane@example.com"),
        ],
    )
    (tmp_path / "stitcher.toml").write_text(
        '[identifiers.email]\ncolumns = ["email"]\njunk_patterns = ["bot-[0-9]+@.*"]\n'
    )
    out = stitch(tmp_path / "in", tmp_path / "out", "--config", str(tmp_path / "stitcher.toml"))
    quarantine = read_output(out, "quarantine").filter(pl.col("reason") == "junk_pattern")
    assert quarantine.select("identifier_type", "identifier").rows() == [
        ("email", "bot-1@example.com")
    ]
    persons = partition(read_output(out, "id_map"))
    # The email is junk, so a1 and a2 stay apart; the same text as an anonymous id is not.
    assert frozenset({("anonymous_id", "a1")}) in persons
    assert frozenset({("anonymous_id", "a2")}) in persons
    assert (
        frozenset({("anonymous_id", "bot-1@example.com"), ("email", "jane@example.com")}) in persons
    )
