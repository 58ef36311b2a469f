"""Mixpanel's documented ID Merge examples (../shared/peers/mixpanel-docs) under the matching
policy, read from Mixpanel's export format.

Every case of the peer folder is one test per input shape: the CSVs are turned into a Mixpanel
export here (JSON lines in Mixpanel's `{"event", "properties"}` shape, split over a plain and a
gzipped file, and the same fields flattened into an `events.csv`). All cases of a policy go into
one export, each case's ids namespaced (`MS1a.U1`) so no two cases share an id, and the run's
id_map is split back per case. Compared per case: the partition; for Simplified also each
member's resolved distinct_id (the cluster's canonical id) and each event's resolved
distinct_id.

D1/D2 in MO1-MO3 stand for SDK-generated UUIDv4 device ids (the folder's README says so): they,
and the UUID of MR1, become a fresh UUIDv4 per case.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest

from conftest import read_output, require_peers, stitch

PEER = "mixpanel-docs"
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z; each case's event `seq` happens at T0 + seq seconds

# case -> the rule it checks (Simplified ID Merge; identifying-users-simplified and
# migrating-to-simplified-id-merge-system).
SIMPLIFIED_CASES = {
    "MS1a": "events with only a $device_id stay one anonymous cluster, $device:<id>",
    "MS1b": "the first event carrying $device_id and $user_id links them, retroactively",
    "MS2a": "a second device stays apart until an event links it to the user",
    "MS2b": "any number of devices join the one $user_id",
    "MS3": "after reset() a new device and a second user form their own cluster",
    "MS4a": "a user who logs in again from a new device id absorbs it",
    "MS4b": "a device first linked to one user never joins a second user",
    "MS5": "the same string as $device_id and as $user_id is two different ids",
    "MS6": "a distinct_id-only event: `$device:` prefix means device, otherwise user",
}
# case -> the rule it checks (Original ID Merge; identifying-users-original, the $merge gist,
# and MR1/MR2 derived from the rule sentences by the folder's author).
ORIGINAL_CASES = {
    "MO1": "$identify merges a UUIDv4 $anon_id into the $identified_id",
    "MO2": "$identify from a second device merges it into the same identified id",
    "MO3": "two users after reset(): two $identify on two devices, two clusters",
    "MO4": "$merge joins any two clusters, in any order, transitively",
    "MR1": "an $anon_id already merged with one identified id is refused for another",
    "MR2": "an $anon_id that is not a UUIDv4 is refused",
}
# The peer folder gives each event's resolved distinct_id for these cases only.
EVENT_CASES = ("MS1a", "MS1b", "MS2a", "MS2b", "MS3", "MS4a", "MS4b")
SHAPES = ("json", "csv")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def _rows(name: str) -> list[dict[str, str]]:
    with (require_peers(PEER) / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Names:
    """Per-case namespacing of ids, and the way back."""

    def __init__(self, uuid_like: bool) -> None:
        self.uuid_like = uuid_like
        self.back: dict[str, tuple[str, str]] = {}

    def __call__(self, case: str, raw: str) -> str:
        if raw.startswith("$device:"):
            return "$device:" + self(case, raw[len("$device:") :])
        if self.uuid_like and (re.fullmatch(r"D\d+", raw) or _UUID.fullmatch(raw)):
            digest = hashlib.md5(f"{case}/{raw}".encode()).digest()
            name = str(uuid.UUID(bytes=digest, version=4))
        else:
            name = f"{case}.{raw}"
        self.back[name] = (case, raw)
        return name

    def case_of(self, name: str) -> tuple[str, str]:
        if name.startswith("$device:"):
            case, raw = self.back[name[len("$device:") :]]
            return case, "$device:" + raw
        return self.back[name]


def _write_export(folder: Path, records: list[dict], shape: str) -> Path:
    """The records as Mixpanel's export (two JSON-lines files, one gzipped, any names) or as
    one flattened events.csv."""
    folder.mkdir(parents=True)
    if shape == "json":
        half = len(records) // 2
        (folder / "export-part-1.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records[:half]), encoding="utf-8"
        )
        with gzip.open(folder / "export-part-2.json.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records[half:])
        return folder
    columns = ["event", "time", "distinct_id", "$device_id", "$user_id", "$anon_id"]
    columns += ["$identified_id", "$distinct_ids", "$insert_id"]
    with (folder / "events.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in records:
            props = r["properties"]
            ids = props.get("$distinct_ids")
            flat = {**props, "event": r["event"], "$distinct_ids": json.dumps(ids) if ids else ""}
            writer.writerow([flat.get(c, "") for c in columns])
    return folder


def _record(event: str, case: str, seq: str, **props: object) -> dict:
    properties = {"time": T0 + int(seq), "$insert_id": f"{case}-{seq}"}
    properties.update({k: v for k, v in props.items() if v not in (None, "", [])})
    return {"event": event, "properties": properties}


# -- Simplified ---------------------------------------------------------------------------------


def _simplified_event_ids(row: dict[str, str], ns: Names) -> tuple[str | None, str | None]:
    """(device id, user id) of one event, namespaced, as the SDK sends them."""
    case = row["case_id"]
    device = ns(case, row["device_id"]) if row["device_id"] else None
    user = ns(case, row["user_id"]) if row["user_id"] else None
    return device, user


def _simplified_records(rows: list[dict[str, str]], ns: Names) -> list[dict]:
    """The peer folder's Simplified events as Mixpanel export records."""
    records = []
    for row in rows:
        case, seq = row["case_id"], row["seq"]
        if row["distinct_id_in"]:
            # An old, distinct_id-only event: neither $device_id nor $user_id.
            records.append(
                _record(row["event"], case, seq, distinct_id=ns(case, row["distinct_id_in"]))
            )
            continue
        device, user = _simplified_event_ids(row, ns)
        distinct_id = user if user else f"$device:{device}"
        records.append(
            _record(
                row["event"],
                case,
                seq,
                distinct_id=distinct_id,
                **{"$device_id": device, "$user_id": user},
            )
        )
    return records


@pytest.fixture(scope="module", params=SHAPES)
def simplified_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    rows = _rows("simplified_events.csv")
    ns = Names(uuid_like=False)
    records = _simplified_records(rows, ns)
    root = tmp_path_factory.mktemp(f"simplified-{request.param}")
    export = _write_export(root / "export", records, request.param)
    out = stitch(export, root / "out", "--policy", "mixpanel-simplified")
    id_map = read_output(out, "id_map")
    members: dict[str, dict[str, tuple[str, str]]] = {}  # case -> member -> (person, distinct)
    for identifier_type, identifier, person_id, distinct_id in id_map.select(
        "identifier_type", "identifier", "person_id", "distinct_id"
    ).iter_rows():
        mixpanel_id = identifier if identifier_type == "user_id" else f"$device:{identifier}"
        case, member = ns.case_of(mixpanel_id)
        members.setdefault(case, {})[member] = (person_id, ns.case_of(distinct_id)[1])
    return rows, ns, members, read_output(out, "rejected_edges")


@pytest.mark.conformance
@pytest.mark.parametrize("case", sorted(SIMPLIFIED_CASES))
def test_simplified_partition_and_canonical_id(case: str, simplified_run) -> None:
    _, _, members, _ = simplified_run
    expected = [r for r in _rows("simplified_expected_clusters.csv") if r["case_id"] == case]
    want_clusters: dict[str, set[str]] = {}
    for r in expected:
        want_clusters.setdefault(r["cluster"], set()).add(r["member_id"])
    got_clusters: dict[str, set[str]] = {}
    for member, (person, _) in members.get(case, {}).items():
        got_clusters.setdefault(person, set()).add(member)
    assert {frozenset(c) for c in got_clusters.values()} == {
        frozenset(c) for c in want_clusters.values()
    }, SIMPLIFIED_CASES[case]
    for r in expected:
        assert members[case][r["member_id"]][1] == r["canonical_distinct_id"], r


@pytest.mark.conformance
@pytest.mark.parametrize("case", EVENT_CASES)
def test_simplified_event_resolves_to_its_person(case: str, simplified_run) -> None:
    rows, _, members, _ = simplified_run
    expected = {
        r["seq"]: r["resolved_distinct_id"]
        for r in _rows("simplified_expected_event_distinct_id.csv")
        if r["case_id"] == case
    }
    assert expected, f"the peer folder lost the per-event expectations of {case}"
    for row in rows:
        if row["case_id"] != case or row["seq"] not in expected:
            continue
        # An event belongs to its user's person when it has a user id, else to its device's.
        member = row["user_id"] or f"$device:{row['device_id']}"
        assert members[case][member][1] == expected[row["seq"]], row


def test_simplified_refuses_only_a_second_user_on_a_device(simplified_run) -> None:
    # MS4b: anonymous222 was first seen with no user, then with taylor: that is its first user,
    # so nothing is refused there; no case offers a device a second user, so no refusals.
    _, _, _, rejected = simplified_run
    assert rejected.height == 0


# -- Original -----------------------------------------------------------------------------------


def _original_records(ns: Names) -> tuple[list[dict], dict[str, list[frozenset[str]]]]:
    records = []
    expected: dict[str, dict[str, set[str]]] = {}
    for row in _rows("original_events.csv"):
        case, seq = row["case_id"], row["seq"]
        ids = [ns(case, i) for i in row["merge_ids"].split("|")] if row["merge_ids"] else []
        records.append(
            _record(
                row["event"],
                case,
                seq,
                distinct_id=ns(case, row["distinct_id"]) if row["distinct_id"] else None,
                **{
                    "$anon_id": ns(case, row["anon_id"]) if row["anon_id"] else None,
                    "$identified_id": (
                        ns(case, row["identified_id"]) if row["identified_id"] else None
                    ),
                    "$distinct_ids": ids,
                },
            )
        )
    for r in _rows("original_expected_clusters.csv"):
        expected.setdefault(r["case_id"], {}).setdefault(r["cluster"], set()).add(r["member_id"])
    partitions = {c: [frozenset(m) for m in cl.values()] for c, cl in expected.items()}
    last: dict[str, dict[str, str]] = {}
    for row in _rows("original_rule_cases.csv"):
        case, seq = row["case_id"], row["seq"]
        records.append(
            _record(
                row["event"],
                case,
                seq,
                distinct_id=ns(case, row["distinct_id"]),
                **{
                    "$anon_id": ns(case, row["anon_id"]),
                    "$identified_id": ns(case, row["identified_id"]),
                },
            )
        )
        if case not in last or int(seq) > int(last[case]["seq"]):
            last[case] = row
    for case, row in last.items():
        # "{a,U1} {U2}": the clusters after the case's last event.
        partitions[case] = [
            frozenset(group.split(","))
            for group in re.findall(r"\{([^}]*)\}", row["expected_after"])
        ]
    return records, partitions


@pytest.fixture(scope="module", params=SHAPES)
def original_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    ns = Names(uuid_like=True)
    records, partitions = _original_records(ns)
    root = tmp_path_factory.mktemp(f"original-{request.param}")
    export = _write_export(root / "export", records, request.param)
    out = stitch(export, root / "out", "--policy", "mixpanel-original")
    id_map = read_output(out, "id_map")
    members: dict[str, dict[str, tuple[str, str]]] = {}
    for identifier_type, identifier, person_id, distinct_id in id_map.select(
        "identifier_type", "identifier", "person_id", "distinct_id"
    ).iter_rows():
        assert identifier_type == "user_id"  # one namespace of distinct ids
        case, member = ns.case_of(identifier)
        members.setdefault(case, {})[member] = (person_id, ns.case_of(distinct_id)[1])
    rejected = {
        (ns.case_of(f)[0], ns.case_of(f)[1], ns.case_of(t)[1], reason)
        for f, t, reason in read_output(out, "rejected_edges")
        .select("from_id", "to_id", "reason")
        .iter_rows()
    }
    return partitions, members, rejected


@pytest.mark.conformance
@pytest.mark.parametrize("case", sorted(ORIGINAL_CASES))
def test_original_partition(case: str, original_run) -> None:
    partitions, members, _ = original_run
    got: dict[str, set[str]] = {}
    for member, (person, _) in members.get(case, {}).items():
        got.setdefault(person, set()).add(member)
    assert {frozenset(c) for c in got.values()} == set(partitions[case]), ORIGINAL_CASES[case]


@pytest.mark.conformance
def test_original_refusals_use_mixpanel_error_names(original_run) -> None:
    _, _, rejected = original_run
    uuid_anon = "5f0c7a4e-0b8e-4d54-9a43-3f1c2b6d7e81"
    assert rejected == {
        ("MR1", uuid_anon, "U2", "errAnonDistinctIdAssignedAlready"),
        ("MR2", "device-abc", "U1", "errAnonDistinctIdNonGUIDForm"),
    }


@pytest.mark.conformance
def test_original_distinct_id_is_the_earliest_identified_id(original_run) -> None:
    # Mixpanel picks a cluster's canonical id at random; stitcher reports its earliest
    # $identified_id, else its earliest-seen id.
    _, members, _ = original_run
    assert {m: d for m, (_, d) in members["MO2"].items()} == dict.fromkeys(("D1", "D2", "U1"), "U1")
    assert {members["MO3"][m][1] for m in ("D2", "U2")} == {"U2"}
    assert {d for _, d in members["MO4"].values()} == {"A"}
    assert members["MR2"]["device-abc"][1] == "device-abc"


def test_peer_cases_are_all_covered() -> None:
    """Every case in the peer folder has a test above (a new case must be added with its rule)."""
    simplified = {r["case_id"] for r in _rows("simplified_events.csv")}
    original = {r["case_id"] for r in _rows("original_events.csv")}
    original |= {r["case_id"] for r in _rows("original_rule_cases.csv")}
    assert simplified == set(SIMPLIFIED_CASES)
    assert original == set(ORIGINAL_CASES)
