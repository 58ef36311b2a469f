"""Mixpanel input and the two Mixpanel policies, without the peer data: the hand-written
fixture (fixtures/mixpanel_export), the export shapes and their detection, the Original replay's
rules one by one, and the errors a person can act on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stitcher.graph.mixpanel_replay import MergeRequest, is_uuid4, replay_original

from conftest import FIXTURES, partition, read_output, run_cli, stitch, write_csv

EXPORT = FIXTURES / "mixpanel_export"
T0 = 1_735_689_600
U1 = "0b5e4b6a-2f7c-4e1d-9a3b-5c6d7e8f9a01"
U2 = "1c6f5c7b-3a8d-4f2e-8b4c-6d7e8f9a0b02"


def _clusters(path: Path) -> set[frozenset[tuple[str, str]]]:
    table = pl.read_csv(path, infer_schema=False)
    return {
        frozenset(zip(g["identifier_type"], g["identifier"], strict=True))
        for _, g in table.group_by("cluster")
    }


def _export(folder: Path, records: list[dict], name: str = "export.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


def _event(event: str, seconds: int, **props: object) -> dict:
    return {"event": event, "properties": {"time": T0 + seconds, **props}}


def _distinct_ids(out: Path) -> dict[tuple[str, str], str]:
    id_map = read_output(out, "id_map")
    return {
        (t, i): d
        for t, i, d in id_map.select("identifier_type", "identifier", "distinct_id").iter_rows()
    }


# -- the hand-written fixture -------------------------------------------------------------------


def test_fixture_under_simplified(tmp_path: Path) -> None:
    out = stitch(EXPORT, tmp_path / "o", "--policy", "mixpanel-simplified")
    assert partition(read_output(out, "id_map")) == _clusters(EXPORT / "expected_clusters.csv")
    rejected = read_output(out, "rejected_edges")
    assert rejected.select("from_id", "to_id", "reason").rows() == [
        ("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03", "carol", "device_has_earlier_user_id")
    ]
    ids = _distinct_ids(out)
    assert ids[("anonymous_id", "7c2e4b19-1d3f-4e8a-b5c6-0a9d8e7f6b02")] == "alice"
    assert ids[("anonymous_id", "f00dfeed")] == "$device:f00dfeed"
    # $create_alias and $merge are ignored: their ids are nobody's unless other events name them.
    assert ("user_id", "bob@example.com") not in ids


def test_fixture_under_original(tmp_path: Path) -> None:
    out = stitch(EXPORT, tmp_path / "o", "--policy", "mixpanel-original")
    expected = _clusters(EXPORT / "expected_clusters_original.csv")
    assert partition(read_output(out, "id_map")) == expected
    want = pl.read_csv(EXPORT / "expected_rejected_original.csv", infer_schema=False)
    got = read_output(out, "rejected_edges").select("from_id", "to_id", "rule", "reason")
    assert set(got.rows()) == set(want.rows())
    edges = read_output(out, "edges")
    assert sorted(edges["rule"].to_list()) == ["$create_alias"] + ["$identify"] * 4 + ["$merge"]
    # The merge's evidence is the special event that asked for it.
    merge = edges.filter(pl.col("rule") == "$merge").row(0, named=True)
    assert merge["evidence_message_id"] == "e18"
    ids = _distinct_ids(out)
    # The earliest $identified_id of the cluster, not its (earlier-seen) device id.
    assert ids[("user_id", "alice-legacy-7")] == "alice"
    assert ids[("user_id", "bob@example.com")] == "bob"
    assert ids[("user_id", "guest-tablet")] == "guest-tablet"
    record = json.loads((out / "run.json").read_text())
    assert record["edges"]["rejected_by_reason"] == {
        "errAnonDistinctIdAssignedAlready": 1,
        "errAnonDistinctIdNonGUIDForm": 1,
        "errSameIDs": 1,
    }


def test_migration_comparison_on_one_export(tmp_path: Path) -> None:
    # What a team moving from Original to Simplified wants to see: the persons that split.
    original = stitch(EXPORT, tmp_path / "original", "--policy", "mixpanel-original")
    simplified = stitch(EXPORT, tmp_path / "simplified", "--policy", "mixpanel-simplified")
    before = dict(read_output(original, "id_map").select("identifier", "distinct_id").iter_rows())
    after = dict(read_output(simplified, "id_map").select("identifier", "distinct_id").iter_rows())
    moved = {i for i in before.keys() & after.keys() if before[i] != after[i]}
    # alice's old server-side id was joined by $merge, which Simplified cannot do.
    assert moved == {"alice-legacy-7"}


# -- export shapes and detection ----------------------------------------------------------------


def test_gzip_and_any_file_names_and_subfolders(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "2025" / "01"
    folder.mkdir(parents=True)
    lines = [
        _event("Page View", 0, distinct_id="$device:d1", **{"$device_id": "d1"}),
        _event("Log In", 5, distinct_id="u1", **{"$device_id": "d1", "$user_id": "u1"}),
    ]
    with gzip.open(folder / "mixpanel-2025-01-01.ndjson.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in lines)
    out = stitch(tmp_path / "in", tmp_path / "o")
    assert partition(read_output(out, "id_map")) == {
        frozenset({("anonymous_id", "d1"), ("user_id", "u1")})
    }


def test_one_json_file_as_input(tmp_path: Path) -> None:
    export = _export(tmp_path / "in", [_event("x", 0, distinct_id="u1")])
    out = stitch(export / "export.json", tmp_path / "o")
    assert read_output(out, "id_map")["distinct_id"].to_list() == ["u1"]


def test_keys_vary_between_events_and_flat_records(tmp_path: Path) -> None:
    # No schema is inferred: a key first seen on line 3, a nested object, a number as an id, and
    # a record without `properties` (its own keys are the properties).
    records = [
        _event("a", 0, distinct_id="$device:d1", nested={"deep": [1, 2]}),
        _event("b", 1, distinct_id=12345),
        _event("c", 2, **{"$device_id": "d1", "$user_id": "u9"}),
        {"event": "d", "time": T0 + 3, "distinct_id": "u9", "$device_id": "d2", "$user_id": "u9"},
    ]
    out = stitch(_export(tmp_path / "in", records), tmp_path / "o")
    assert partition(read_output(out, "id_map")) == {
        frozenset({("anonymous_id", "d1"), ("anonymous_id", "d2"), ("user_id", "u9")}),
        frozenset({("user_id", "12345")}),
    }


def test_time_in_seconds_milliseconds_and_text(tmp_path: Path) -> None:
    records = [
        {"event": "a", "properties": {"time": 1735689600, "distinct_id": "s"}},
        {"event": "a", "properties": {"time": 1735689600123, "distinct_id": "ms"}},
        {"event": "a", "properties": {"time": "2025-01-01T00:00:00Z", "distinct_id": "iso"}},
        {"event": "a", "properties": {"distinct_id": "notime"}},
    ]
    out = stitch(_export(tmp_path / "in", records), tmp_path / "o", "--output-format", "csv")
    seen = dict(read_output(out, "id_map").select("identifier", "first_seen_at").iter_rows())
    assert seen["s"].startswith("2025-01-01 00:00:00")
    assert seen["ms"].startswith("2025-01-01 00:00:00.123")
    assert seen["iso"].startswith("2025-01-01 00:00:00")
    assert seen["notime"] is None


def test_flattened_parquet_with_mixed_case_and_list_columns(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    pq.write_table(
        pa.table(
            {
                "EVENT": ["Page View", "Log In", "$merge"],
                "Time": [T0, T0 + 1, T0 + 2],
                "Distinct_ID": [U1, "u1", None],
                "properties.$Device_Id": [U1, U1, None],
                "$USER_ID": [None, "u1", None],
                "$distinct_ids": [None, None, ["u1", "u2"]],
            }
        ),
        tmp_path / "in" / "events.parquet",
    )
    simplified = stitch(tmp_path / "in", tmp_path / "s", "--policy", "mixpanel-simplified")
    assert partition(read_output(simplified, "id_map")) == {
        frozenset({("anonymous_id", U1), ("user_id", "u1")})
    }
    original = stitch(tmp_path / "in", tmp_path / "o", "--policy", "mixpanel-original")
    assert partition(read_output(original, "id_map")) == {
        frozenset({("user_id", U1)}),
        frozenset({("user_id", "u1"), ("user_id", "u2")}),
    }


def test_files_beside_an_export_are_left_alone(tmp_path: Path) -> None:
    export = _export(tmp_path / "in", [_event("x", 0, distinct_id="u1")])
    write_csv(export / "notes.csv", ["a", "b"], [[1, 2]])
    (export / "README.txt").write_text("not an export")
    out = stitch(export, tmp_path / "o")
    assert read_output(out, "id_map")["identifier"].to_list() == ["u1"]


def test_explicit_format_reads_files_without_a_suffix(tmp_path: Path) -> None:
    export = _export(tmp_path / "in", [_event("x", 0, distinct_id="u1")], name="export")
    run_cli("run", "--input", str(export), "--output", str(tmp_path / "a"), expect=1)
    out = stitch(export, tmp_path / "b", "--input-format", "mixpanel")
    assert read_output(out, "id_map")["identifier"].to_list() == ["u1"]


def test_segment_input_is_unchanged_and_has_no_distinct_id(tmp_path: Path) -> None:
    out = stitch(FIXTURES / "anonymous_then_signup", tmp_path / "o")
    assert "distinct_id" not in read_output(out, "id_map").columns


def test_segment_format_refuses_an_export(tmp_path: Path) -> None:
    export = _export(tmp_path / "in", [_event("x", 0, distinct_id="u1")])
    result = run_cli(
        "run", "--input", str(export), "--output", str(tmp_path / "o"),
        "--input-format", "segment", expect=1,
    )  # fmt: skip
    assert "no event tables" in result.stderr


def test_original_needs_a_mixpanel_export(tmp_path: Path) -> None:
    result = run_cli(
        "run", "--input", str(FIXTURES / "anonymous_then_signup"), "--output",
        str(tmp_path / "o"), "--policy", "mixpanel-original", expect=1,
    )  # fmt: skip
    assert "mixpanel-original" in result.stderr and "Mixpanel export" in result.stderr
    assert not (tmp_path / "o").exists()


def test_simplified_on_segment_input_never_joins_user_ids(tmp_path: Path) -> None:
    out = stitch(FIXTURES / "alias_from_old_user_id", tmp_path / "o", "--policy",
                 "mixpanel-simplified")  # fmt: skip
    rejected = read_output(out, "rejected_edges")
    assert set(rejected.filter(pl.col("rule") == "alias")["reason"]) == {"ignored_by_simplified"}
    users = read_output(out, "users")
    assert (users["user_ids"].list.len() <= 1).all()


def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    export = _export(tmp_path / "in", [_event("x", 0, distinct_id="u1")] * 3)
    with (export / "export.json").open("a", encoding="utf-8") as f:
        f.write('{"event": "broken", "properties": {"distinct_id": \n')
    result = run_cli("run", "--input", str(export), "--output", str(tmp_path / "o"), expect=1)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "export.json: line 4 is not valid JSON" in lines[0]


def test_flat_table_without_ids_is_one_clear_error(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "events.csv", ["event", "time", "user"], [["x", T0, "u1"]])
    result = run_cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                     expect=1)  # fmt: skip
    assert "no distinct_id, $device_id or $user_id column" in result.stderr


def test_cluster_cap_is_a_setting(tmp_path: Path) -> None:
    # Three $merge into one cluster under a cap of 3 ids: the third merge is refused.
    records = [
        _event("$merge", i, **{"$distinct_ids": ["a", other]})
        for i, other in enumerate(["b", "c", "d"])
    ]
    export = _export(tmp_path / "in", records)
    config = tmp_path / "stitcher.toml"
    config.write_text('policy = "mixpanel-original"\n\n[mixpanel]\nmax_cluster_ids = 3\n')
    out = stitch(export, tmp_path / "o", "--config", str(config))
    assert partition(read_output(out, "id_map")) == {
        frozenset({("user_id", "a"), ("user_id", "b"), ("user_id", "c")}),
        frozenset({("user_id", "d")}),
    }
    assert read_output(out, "rejected_edges")["reason"].to_list() == ["errManyIDs"]


def test_junk_ids_in_special_events_merge_nothing(tmp_path: Path) -> None:
    records = [
        _event("$merge", 0, **{"$distinct_ids": ["u1", "undefined"]}),
        _event("$identify", 1, **{"$anon_id": U1, "$identified_id": "null"}),
    ]
    out = stitch(_export(tmp_path / "in", records), tmp_path / "o", "--policy",
                 "mixpanel-original")  # fmt: skip
    assert set(read_output(out, "rejected_edges")["reason"]) == {"junk_user_id"}
    assert set(read_output(out, "quarantine")["identifier"]) == {"undefined", "null"}


# -- the Original replay, rule by rule ----------------------------------------------------------


def _replay(*requests: tuple[str, str, str], cap: int = 500) -> list[str | None]:
    return replay_original([MergeRequest(*r) for r in requests], cap).refusals


def test_uuid4_form() -> None:
    assert is_uuid4(U1) and is_uuid4(U1.upper())
    assert not is_uuid4("0b5e4b6a-2f7c-1e1d-9a3b-5c6d7e8f9a01")  # version 1
    assert not is_uuid4("0b5e4b6a-2f7c-4e1d-7a3b-5c6d7e8f9a01")  # wrong variant
    assert not is_uuid4("$device:" + U1)


def test_identify_refusals() -> None:
    assert _replay(("$identify", "u1", "u1")) == ["errSameIDs"]
    assert _replay(("$identify", "device-abc", "u1")) == ["errAnonDistinctIdNonGUIDForm"]
    assert _replay(("$identify", U1, "u1"), ("$identify", U1, "u2")) == [
        None,
        "errAnonDistinctIdAssignedAlready",
    ]
    # Asking again for a merge that already holds changes nothing and is not refused.
    assert _replay(("$identify", U1, "u1"), ("$identify", U1, "u1")) == [None, None]


def test_identify_refused_for_an_anon_id_merged_into_an_identified_cluster() -> None:
    # U2 joined u1's identified cluster through $merge: it may not be identified as u2.
    assert _replay(("$identify", U1, "u1"), ("$merge", U2, U1), ("$identify", U2, "u2")) == [
        None,
        None,
        "errAnonDistinctIdAssignedAlready",
    ]
    # A device merged only with other anonymous ids is still free.
    assert _replay(("$merge", U2, U1), ("$identify", U2, "u2")) == [None, None]


def test_alias_maps_to_one_distinct_id() -> None:
    assert _replay(("$create_alias", "al", "u1"), ("$create_alias", "al", "u2")) == [
        None,
        "errAliasAlreadyExists",
    ]
    assert _replay(("$create_alias", "al", "u1"), ("$create_alias", "al", "u1")) == [None, None]
    assert _replay(("$create_alias", "u1", "u1")) == ["errSameIDs"]


def test_merge_joins_any_clusters_up_to_the_cap() -> None:
    assert _replay(("$identify", U1, "u1"), ("$identify", U2, "u2"), ("$merge", "u1", "u2")) == [
        None,
        None,
        None,
    ]
    assert _replay(("$merge", "a", "b"), ("$merge", "c", "d"), ("$merge", "a", "c"), cap=3) == [
        None,
        None,
        "errManyIDs",
    ]
    assert _replay(("$merge", "a", "b"), ("$merge", "a", "c"), cap=3) == [None, None]


def test_a_refused_request_stays_refused_whatever_else_is_asked() -> None:
    result = replay_original(
        [
            MergeRequest("$merge", "a", "b", refusal="junk_user_id"),
            MergeRequest("$merge", "b", "c"),
        ],
        500,
    )
    assert result.refusals == ["junk_user_id", None]
    assert result.identified == set()


@pytest.mark.parametrize("policy", ["guarded", "connected", "segment"])
def test_other_policies_read_an_export_as_devices_and_users(tmp_path: Path, policy: str) -> None:
    out = stitch(EXPORT, tmp_path / "o", "--policy", policy)
    id_map = read_output(out, "id_map")
    assert set(id_map["identifier_type"]) == {"anonymous_id", "user_id"}
    assert "distinct_id" in id_map.columns


def test_empty_folder_as_mixpanel_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    result = run_cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                     "--input-format", "mixpanel", expect=1)  # fmt: skip
    assert "holds no files to read as a Mixpanel export" in result.stderr


def test_original_without_special_events_merges_nothing(tmp_path: Path) -> None:
    records = [_event("a", 0, distinct_id="x"), _event("b", 1, distinct_id="y")]
    out = stitch(_export(tmp_path / "in", records), tmp_path / "o", "--policy",
                 "mixpanel-original")  # fmt: skip
    assert len(partition(read_output(out, "id_map"))) == 2
    assert read_output(out, "edges").height == 0


def test_numeric_ids_are_one_id_with_their_text(tmp_path: Path) -> None:
    # A JSON number 1001.0 and a float column's 1001.0 are the user id 1001, as the text is.
    _export(
        tmp_path / "json",
        [
            _event("Page View", 0, distinct_id=U1, **{"$device_id": U1}),
            _event("Log In", 1, distinct_id=1001.0, **{"$device_id": U1, "$user_id": 1001.0}),
            _event("Log In", 2, distinct_id="1001", **{"$device_id": U2, "$user_id": "1001"}),
        ],
    )
    out = stitch(tmp_path / "json", tmp_path / "j", "--policy", "mixpanel-simplified")
    expected = {frozenset({("anonymous_id", U1), ("anonymous_id", U2), ("user_id", "1001")})}
    assert partition(read_output(out, "id_map")) == expected
    (tmp_path / "flat").mkdir()
    pq.write_table(
        pa.table(
            {
                "event": ["Log In", "Log In"],
                "time": [T0, T0 + 1],
                "distinct_id": [1001.0, 1001.0],
                "$device_id": [U1, U2],
                "$user_id": [1001.0, 1001.0],
            }
        ),
        tmp_path / "flat" / "events.parquet",
    )
    out = stitch(tmp_path / "flat", tmp_path / "f", "--policy", "mixpanel-simplified")
    assert partition(read_output(out, "id_map")) == expected
