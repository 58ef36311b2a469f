"""`stitcher diff` and run.json's changes_since_previous, on inputs whose answer is known.

- Run 1 without the alias, run 2 with it: the two halves of one person merge (1 merge of 2).
- The reverse direction is a split.
- Adding events with new ids adds identifiers; dropping a table removes them.
- A new, earlier user id joining a person changes its anchor: a re-key.
Plus an oracle on random id_maps, computed from plain Python sets.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import polars as pl
import pytest

from stitcher.inspection.changes import diff_id_maps

from conftest import FIXTURES, read_output, run_cli, stitch, write_csv

ALIAS = FIXTURES / "alias_from_old_user_id"


def copy_without(source: Path, target: Path, *drop: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("expected_*", "golden"))
    for name in drop:
        (target / name).unlink()
    return target


def diff_json(old: Path, new: Path, *extra: str) -> dict:
    return json.loads(run_cli("diff", str(old), str(new), "--json", *extra).stdout)


@pytest.fixture(scope="module")
def alias_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("alias")
    without = stitch(copy_without(ALIAS, root / "in_without", "aliases.csv"), root / "without")
    with_alias = stitch(ALIAS, root / "with")
    return without, with_alias


def test_adding_the_alias_is_one_merge(alias_runs: tuple[Path, Path]) -> None:
    without, with_alias = alias_runs
    assert read_output(without, "users").height == 2
    result = diff_json(without, with_alias)
    counts = result["counts"]
    assert counts["persons_merged"] == 1
    assert counts["previous_persons_merged"] == 2
    assert counts["persons_split"] == 0
    assert counts["persons_rekeyed"] == 0
    assert counts["identifiers_added"] == counts["identifiers_removed"] == 0
    assert counts["persons_changed"] == 1.0
    [merge] = result["samples"]["merged"]
    assert merge["person_id"] == read_output(with_alias, "users")["person_id"][0]
    previous = sorted(read_output(without, "users")["person_id"])
    assert sorted(merge["previous_person_ids"]) == previous
    # one example identifier from each previous person
    assert len(merge["identifiers"]) == 2


def test_removing_the_alias_is_one_split(alias_runs: tuple[Path, Path]) -> None:
    without, with_alias = alias_runs
    counts = diff_json(with_alias, without)["counts"]
    assert counts["persons_split"] == 1
    assert counts["persons_merged"] == 0
    assert counts["persons_changed"] == 1.0


def test_same_output_has_no_changes(alias_runs: tuple[Path, Path]) -> None:
    _, with_alias = alias_runs
    counts = diff_json(with_alias, with_alias)["counts"]
    changes = {k: v for k, v in counts.items() if not k.endswith(("persons", "identifiers"))}
    assert all(v == 0 for v in changes.values()), changes


def test_text_output(alias_runs: tuple[Path, Path]) -> None:
    without, with_alias = alias_runs
    text = run_cli("diff", str(without), str(with_alias)).stdout
    assert "merged:       1 persons now hold the ids of 2 previous persons" in text
    assert "Merged (sample):" in text


def test_split_by_removing_the_linking_event(tmp_path: Path) -> None:
    """Two devices of one user; without the login on device 2, device 2 stands alone."""
    rows = [
        ("m1", "dev1", "u1", "2026-01-01T10:00:00Z"),
        ("m2", "dev2", "u1", "2026-01-02T10:00:00Z"),
        ("m3", "dev2", None, "2026-01-02T09:00:00Z"),
        ("m4", "dev3", "u2", "2026-01-03T10:00:00Z"),
    ]
    header = ["id", "anonymous_id", "user_id", "timestamp"]
    old = stitch(write_csv(tmp_path / "a" / "tracks.csv", header, rows).parent, tmp_path / "old")
    without_link = [r for r in rows if r[0] != "m2"]
    new = stitch(
        write_csv(tmp_path / "b" / "tracks.csv", header, without_link).parent, tmp_path / "new"
    )
    counts = diff_json(old, new)["counts"]
    assert counts["persons_split"] == 1
    assert counts["persons_merged"] == counts["persons_rekeyed"] == 0
    assert counts["persons_added"] == 0  # dev2's new person is a piece of an old one
    assert counts["previous_persons"] == 2 and counts["persons"] == 3
    assert counts["persons_changed"] == 0.5


def test_added_removed_and_rekeyed_identifiers(tmp_path: Path) -> None:
    header = ["id", "anonymous_id", "user_id", "timestamp"]
    base = [
        ("m1", "dev1", "u1", "2026-01-05T10:00:00Z"),
        ("m2", "dev2", "u2", "2026-01-05T11:00:00Z"),
        ("m3", "dev3", "u3", "2026-01-05T12:00:00Z"),
    ]
    old = stitch(write_csv(tmp_path / "a" / "tracks.csv", header, base).parent, tmp_path / "old")
    changed = [
        *base[:2],  # dev3/u3 are gone
        ("m4", "dev4", "u4", "2026-01-06T10:00:00Z"),  # a new person
        ("m5", "dev1", None, "2026-01-06T11:00:00Z"),
    ]
    folder = write_csv(tmp_path / "b" / "tracks.csv", header, changed).parent
    # u0 is seen before u1 and aliased to it: u1's person gains an id and its anchor moves to u0
    write_csv(
        folder / "aliases.csv",
        ["id", "previous_id", "user_id", "timestamp"],
        [("a1", "u0", "u1", "2026-01-07T00:00:00Z")],
    )
    write_csv(
        folder / "identifies.csv",
        ["id", "anonymous_id", "user_id", "timestamp"],
        [("i1", None, "u0", "2026-01-01T00:00:00Z")],
    )
    new = stitch(folder, tmp_path / "new")
    result = diff_json(old, new)
    counts = result["counts"]
    assert counts["identifiers_added"] == 3  # dev4, u4, u0
    assert counts["identifiers_removed"] == 2  # dev3, u3
    assert counts["persons_added"] == 1
    assert counts["persons_removed"] == 1
    assert counts["persons_rekeyed"] == 1
    assert counts["persons_merged"] == counts["persons_split"] == 0
    assert counts["persons_changed"] == pytest.approx(1 / 3, abs=1e-6)
    assert {s["identifier"] for s in result["samples"]["identifiers_added"]} == {
        "anonymous_id:dev4",
        "user_id:u4",
        "user_id:u0",
    }
    assert {s["identifier"] for s in result["samples"]["identifiers_removed"]} == {
        "anonymous_id:dev3",
        "user_id:u3",
    }
    [rekey] = result["samples"]["rekeyed"]
    assert "user_id:u1" in rekey["identifiers"]
    # --sample limits the examples, not the counts
    small = diff_json(old, new, "--sample", "1")
    assert len(small["samples"]["identifiers_added"]) == 1
    assert small["counts"] == counts


def test_run_json_records_changes_against_the_previous_output(
    alias_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    stitch(copy_without(ALIAS, tmp_path / "in_without", "aliases.csv"), out)
    first = json.loads((out / "run.json").read_text())
    assert "changes_since_previous" not in first
    assert first["metrics"]["persons_changed"] is None
    stitch(ALIAS, out)
    second = json.loads((out / "run.json").read_text())
    changes = second["changes_since_previous"]
    assert changes["previous_finished_at"] == first["finished_at"]
    without, with_alias = alias_runs
    assert changes["counts"] == diff_json(without, with_alias)["counts"]
    assert second["metrics"]["persons_changed"] == 1.0
    assert second["metrics"]["persons_merged"] == 1
    assert "compare" in second["timings_seconds"]


def test_previous_csv_output_compares_with_new_parquet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stitch(copy_without(ALIAS, tmp_path / "in", "aliases.csv"), out, "--output-format", "csv")
    stitch(ALIAS, out)
    changes = json.loads((out / "run.json").read_text())["changes_since_previous"]
    assert changes["counts"]["persons_merged"] == 1


def test_not_an_output_folder(tmp_path: Path, alias_runs: tuple[Path, Path]) -> None:
    result = run_cli("diff", str(tmp_path), str(alias_runs[0]), expect=1)
    assert result.stderr.startswith("Error:") and "id_map" in result.stderr


# --- oracle on random id_maps -----------------------------------------------------------------


def oracle(old: dict[str, str], new: dict[str, str]) -> dict[str, int]:
    common = old.keys() & new.keys()
    new_of: dict[str, set[str]] = {}
    old_of: dict[str, set[str]] = {}
    for ident in common:
        new_of.setdefault(old[ident], set()).add(new[ident])
        old_of.setdefault(new[ident], set()).add(old[ident])
    merged = {n for n, olds in old_of.items() if len(olds) > 1}
    split = {o for o, news in new_of.items() if len(news) > 1}
    rekeyed = {
        o
        for o, news in new_of.items()
        if len(news) == 1 and len(old_of[next(iter(news))]) == 1 and next(iter(news)) != o
    }
    in_merges = {o for n in merged for o in old_of[n]}
    old_persons = set(old.values())
    return {
        "persons_merged": len(merged),
        "previous_persons_merged": len(in_merges),
        "persons_split": len(split),
        "persons_rekeyed": len(rekeyed),
        "persons_removed": len(old_persons - new_of.keys()),
        "persons_added": len(set(new.values()) - old_of.keys()),
        "identifiers_added": len(new.keys() - old.keys()),
        "identifiers_removed": len(old.keys() - new.keys()),
        "identifiers_moved": sum(1 for i in common if old[i] != new[i]),
        "changed": len(in_merges | split | rekeyed),
    }


def frame(mapping: dict[str, str]) -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "identifier_type": ["user_id"] * len(mapping),
            "identifier": list(mapping),
            "person_id": list(mapping.values()),
        },
        schema={"identifier_type": pl.String, "identifier": pl.String, "person_id": pl.String},
    ).lazy()


@pytest.mark.parametrize("seed", range(20))
def test_random_id_maps_match_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"id{i}" for i in range(rng.randrange(0, 60))]
    old = {i: f"p{rng.randrange(12)}" for i in ids if rng.random() < 0.8}
    new = {i: f"p{rng.randrange(12)}" for i in ids if rng.random() < 0.8}
    if rng.random() < 0.5:  # mostly stable data, as between two nights
        new = {i: old.get(i, p) for i, p in new.items() if rng.random() < 0.9}
    counts = diff_id_maps(frame(old), frame(new)).counts
    want = oracle(old, new)
    changed = want.pop("changed")
    assert {k: counts[k] for k in want} == want
    persons = len(set(old.values()))
    assert counts["persons_changed"] == pytest.approx(changed / persons if persons else 0.0)


def sample_oracle(
    old: dict[str, str], new: dict[str, str], types: dict[str, str], n: int
) -> dict[str, list[dict]]:
    """The samples diff_id_maps should list, from plain dictionaries."""
    common = sorted(old.keys() & new.keys(), key=lambda i: (types[i], i))
    old_of: dict[str, list[str]] = {}
    new_of: dict[str, list[str]] = {}
    ids_of: dict[tuple[str, str], list[str]] = {}
    for ident in common:
        o, p = old[ident], new[ident]
        old_of.setdefault(p, []).append(o)
        new_of.setdefault(o, []).append(p)
        ids_of.setdefault((o, p), []).append(f"{types[ident]}:{ident}")
    merged = sorted(p for p, olds in old_of.items() if len(set(olds)) > 1)[:n]
    split = sorted(o for o, news in new_of.items() if len(set(news)) > 1)[:n]
    rekeyed = sorted(
        (o, next(iter(set(news))))
        for o, news in new_of.items()
        if len(set(news)) == 1 and len(set(old_of[news[0]])) == 1 and news[0] != o
    )[:n]
    added = sorted(new.keys() - old.keys(), key=lambda i: (types[i], i))[:n]
    removed = sorted(old.keys() - new.keys(), key=lambda i: (types[i], i))[:n]
    return {
        "merged": [
            {
                "person_id": p,
                "previous_person_ids": sorted(set(old_of[p])),
                "identifiers": [ids_of[(o, p)][0] for o in sorted(set(old_of[p]))][:5],
            }
            for p in merged
        ],
        "split": [{"previous_person_id": o, "person_ids": sorted(set(new_of[o]))} for o in split],
        "rekeyed": [
            {"previous_person_id": o, "person_id": p, "identifiers": ids_of[(o, p)][:5]}
            for o, p in rekeyed
        ],
        "identifiers_added": [
            {"identifier": f"{types[i]}:{i}", "person_id": new[i]} for i in added
        ],
        "identifiers_removed": [
            {"identifier": f"{types[i]}:{i}", "previous_person_id": old[i]} for i in removed
        ],
    }


@pytest.mark.parametrize("seed", range(40))
def test_random_id_maps_samples_match_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"id{i}" for i in range(rng.randrange(0, 80))]
    types = {i: rng.choice(["user_id", "anonymous_id"]) for i in ids}
    old = {i: f"p{rng.randrange(15)}" for i in ids if rng.random() < 0.8}
    new = {i: f"p{rng.randrange(15)}" for i in ids if rng.random() < 0.8}
    if rng.random() < 0.5:
        new = {i: old.get(i, p) for i, p in new.items() if rng.random() < 0.9}
    n = rng.choice([1, 3, 5, 50])

    def typed_frame(mapping: dict[str, str]) -> pl.LazyFrame:
        return pl.DataFrame(
            {
                "identifier_type": [types[i] for i in mapping],
                "identifier": list(mapping),
                "person_id": list(mapping.values()),
            },
            schema={"identifier_type": pl.String, "identifier": pl.String, "person_id": pl.String},
        ).lazy()

    samples = diff_id_maps(typed_frame(old), typed_frame(new), sample=n).samples
    assert samples == sample_oracle(old, new, types, n)
