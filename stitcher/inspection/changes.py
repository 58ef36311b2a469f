"""What changed between two outputs: persons merged, split, re-keyed; identifiers added, removed.

Both id_maps are joined on (identifier_type, identifier). Over the identifiers present in both,
each (previous person, new person) pair that shares at least one identifier is an overlap:

- a **merge** is a new person overlapping two or more previous persons;
- a **split** is a previous person overlapping two or more new persons;
- a **re-key** is a previous person overlapping exactly one new person that overlaps no other
  previous person, under a different person_id (its identifier set may also have gained new or
  lost removed identifiers);
- identifiers **added** are only in the new id_map, **removed** only in the previous one.

`persons_changed` is the share of previous persons that were merged, split or re-keyed: the
persons whose person_id a downstream table can no longer rely on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from stitcher.errors import InputError
from stitcher.inspection.results import check_output_dir, read_run_record, scan_table, table_path

log = logging.getLogger("stitcher")

KEY = ["identifier_type", "identifier"]
DEFAULT_SAMPLE = 5
# Identifiers listed per sampled person; persons can hold thousands.
_IDS_PER_SAMPLE = 5


@dataclass
class OutputDiff:
    """Counts and a deterministic sample (sorted, first N) of each kind of change."""

    counts: dict[str, int | float]
    samples: dict[str, list[dict]] = field(default_factory=dict)

    def as_record(self) -> dict:
        """As `stitcher diff --json` prints it (and run.json's changes_since_previous holds)."""
        return {
            "counts": dict(self.counts),
            "samples": {k: list(v) for k, v in self.samples.items()},
        }

    def text(self, old_label: str = "old", new_label: str = "new") -> str:
        """As `stitcher diff` prints it."""
        return format_diff(self, old_label, new_label)


def diff_outputs(old_dir: Path, new_dir: Path, sample: int = DEFAULT_SAMPLE) -> OutputDiff:
    """Compare the id_maps of two output folders (either may be Parquet or CSV)."""
    check_output_dir(old_dir)
    check_output_dir(new_dir)
    return diff_id_maps(
        scan_table(old_dir, "id_map", [*KEY, "person_id"]),
        scan_table(new_dir, "id_map", [*KEY, "person_id"]),
        sample=sample,
    )


def compare_with_previous(
    previous_dir: Path, new_dir: Path, sample: int = DEFAULT_SAMPLE
) -> dict | None:
    """The changes from the output already in `previous_dir` to `new_dir`, for run.json.

    None when there is no previous output. A previous output that cannot be read is not worth
    failing a run for: it is logged and skipped.
    """
    if table_path(previous_dir, "id_map") is None:
        return None
    try:
        diff = diff_outputs(previous_dir, new_dir, sample=sample)
    except InputError as exc:
        log.warning("not comparing with the previous output: %s", exc)
        return None
    previous = read_run_record(previous_dir) or {}
    return {"previous_finished_at": previous.get("finished_at"), **diff.as_record()}


def diff_id_maps(old: pl.LazyFrame, new: pl.LazyFrame, sample: int = DEFAULT_SAMPLE) -> OutputDiff:
    """Compare two id_maps (columns identifier_type, identifier, person_id)."""
    try:
        return _diff(old, new, sample)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot compare the two id_maps: {exc}") from exc


def _diff(old: pl.LazyFrame, new: pl.LazyFrame, sample: int) -> OutputDiff:
    joined = (
        old.select(*KEY, pl.col("person_id").alias("old_pid"))
        .join(
            new.select(*KEY, pl.col("person_id").alias("new_pid")),
            on=KEY,
            how="full",
            coalesce=True,
        )
        .collect()
    )
    common = joined.filter(pl.col("old_pid").is_not_null() & pl.col("new_pid").is_not_null())
    added = joined.filter(pl.col("old_pid").is_null()).sort(KEY)
    removed = joined.filter(pl.col("new_pid").is_null()).sort(KEY)

    # Counts first, over (previous person, new person) overlaps; lists and example identifiers
    # only for the few persons that changed and are sampled. Building them for every overlap
    # (nearly one per person between two nights) took ~6 of ~8 s at 1.6M identifiers. Each
    # overlap carries its previous person's fan-out and its new person's fan-in, counted in
    # place: joining them back from two group-bys on the person_id strings cost ~0.5 s.
    overlaps = (
        common.group_by("old_pid", "new_pid")
        .len("shared")
        .with_columns(
            pl.len().over("old_pid").alias("n_new"), pl.len().over("new_pid").alias("n_old")
        )
    )
    fan_out = overlaps.group_by("old_pid").agg(pl.col("n_new").first())
    fan_in = overlaps.group_by("new_pid").agg(pl.col("n_old").first())
    merged = fan_in.filter(pl.col("n_old") >= 2).sort("new_pid")
    split = fan_out.filter(pl.col("n_new") >= 2).sort("old_pid")
    one_to_one = overlaps.filter(
        (pl.col("n_new") == 1) & (pl.col("n_old") == 1) & (pl.col("old_pid") != pl.col("new_pid"))
    ).sort("old_pid")
    old_in_merges = overlaps.filter(pl.col("n_old") >= 2).select("old_pid")
    changed_old = pl.concat(
        [old_in_merges, split.select("old_pid"), one_to_one.select("old_pid")]
    ).n_unique()

    # Persons are those with a shared identifier (fan_out, fan_in) plus those whose every
    # identifier was removed (added): counting the few of the latter is much cheaper than a
    # distinct count over every identifier's person_id.
    old_persons = fan_out.height + _persons_outside(removed, "old_pid", fan_out)
    new_persons = fan_in.height + _persons_outside(added, "new_pid", fan_in)
    counts: dict[str, int | float] = {
        "previous_persons": old_persons,
        "persons": new_persons,
        "previous_identifiers": joined["old_pid"].count(),
        "identifiers": joined["new_pid"].count(),
        "persons_merged": merged.height,
        "previous_persons_merged": old_in_merges.n_unique(),
        "persons_split": split.height,
        "persons_rekeyed": one_to_one.height,
        "persons_removed": old_persons - fan_out.height,
        "persons_added": new_persons - fan_in.height,
        "identifiers_added": added.height,
        "identifiers_removed": removed.height,
        "identifiers_moved": common.filter(pl.col("old_pid") != pl.col("new_pid")).height,
        "persons_changed": round(changed_old / old_persons, 6) if old_persons else 0.0,
    }

    merged_sample = merged.head(sample)
    merged_sample = merged_sample.join(
        overlaps.join(merged_sample.select("new_pid"), on="new_pid")
        .select("new_pid", "old_pid")
        .sort("old_pid")
        .group_by("new_pid", maintain_order=True)
        .agg(pl.col("old_pid").alias("old_pids")),
        on="new_pid",
        how="left",
    )
    # One identifier from each previous person (its least), so a merge sample shows what was
    # joined; old persons in order, at most _IDS_PER_SAMPLE of them.
    merge_examples = (
        common.join(merged_sample.select("new_pid"), on="new_pid")
        .sort(KEY)
        .group_by("new_pid", "old_pid")
        .agg(pl.struct(KEY).first().alias("id"))
        .sort("old_pid")
        .group_by("new_pid", maintain_order=True)
        .agg(pl.col("id").head(_IDS_PER_SAMPLE).alias("ids"))
    )
    merged_sample = merged_sample.join(merge_examples, on="new_pid", how="left")
    split_sample = split.head(sample)
    split_sample = split_sample.join(
        overlaps.join(split_sample.select("old_pid"), on="old_pid")
        .sort("new_pid")
        .group_by("old_pid", maintain_order=True)
        .agg(pl.col("new_pid").alias("new_pids")),
        on="old_pid",
        how="left",
    )
    rekeyed_sample = one_to_one.head(sample)
    rekeyed_sample = rekeyed_sample.join(
        common.join(rekeyed_sample.select("old_pid", "new_pid"), on=["old_pid", "new_pid"])
        .sort(KEY)
        .group_by("old_pid", "new_pid", maintain_order=True)
        .agg(pl.struct(KEY).head(_IDS_PER_SAMPLE).alias("ids")),
        on=["old_pid", "new_pid"],
        how="left",
    )
    samples = {
        "merged": [
            {
                "person_id": row["new_pid"],
                "previous_person_ids": row["old_pids"],
                "identifiers": _typed(row["ids"]),
            }
            for row in merged_sample.sort("new_pid").iter_rows(named=True)
        ],
        "split": [
            {"previous_person_id": row["old_pid"], "person_ids": row["new_pids"]}
            for row in split_sample.sort("old_pid").iter_rows(named=True)
        ],
        "rekeyed": [
            {
                "previous_person_id": row["old_pid"],
                "person_id": row["new_pid"],
                "identifiers": _typed(row["ids"]),
            }
            for row in rekeyed_sample.sort("old_pid").iter_rows(named=True)
        ],
        "identifiers_added": [
            {"identifier": f"{t}:{i}", "person_id": p}
            for t, i, p in added.head(sample).select(*KEY, "new_pid").iter_rows()
        ],
        "identifiers_removed": [
            {"identifier": f"{t}:{i}", "previous_person_id": p}
            for t, i, p in removed.head(sample).select(*KEY, "old_pid").iter_rows()
        ],
    }
    return OutputDiff(counts=counts, samples=samples)


def _persons_outside(rows: pl.DataFrame, column: str, persons: pl.DataFrame) -> int:
    """How many distinct persons of `rows[column]` are not among `persons[column]`."""
    candidates = rows.select(column).unique()
    if candidates.height == 0:
        return 0
    return candidates.join(persons.select(column), on=column, how="anti").height


def _typed(ids: list[dict] | None) -> list[str]:
    return [f"{d['identifier_type']}:{d['identifier']}" for d in ids or []]


def format_diff(diff: OutputDiff, old_label: str, new_label: str) -> str:
    """The diff as plain text for a terminal."""
    c = diff.counts
    lines = [
        f"{old_label} → {new_label}",
        f"  persons:      {c['previous_persons']:,} → {c['persons']:,} "
        f"(+{c['persons_added']:,} new, -{c['persons_removed']:,} gone)",
        f"  identifiers:  {c['previous_identifiers']:,} → {c['identifiers']:,} "
        f"(+{c['identifiers_added']:,} added, -{c['identifiers_removed']:,} removed, "
        f"{c['identifiers_moved']:,} moved to another person_id)",
        f"  merged:       {c['persons_merged']:,} persons now hold the ids of "
        f"{c['previous_persons_merged']:,} previous persons",
        f"  split:        {c['persons_split']:,} previous persons are now in several persons",
        f"  re-keyed:     {c['persons_rekeyed']:,} persons kept their ids under a new person_id",
        f"  changed:      {c['persons_changed']:.2%} of previous persons (merged, split or "
        "re-keyed)",
    ]
    for title, sample_lines in sample_lines_by_kind(diff.samples):
        lines += ["", f"{title} (sample):"]
        lines += [f"  {line}" for line in sample_lines]
    return "\n".join(lines)


def sample_lines_by_kind(samples: dict[str, list[dict]]) -> list[tuple[str, list[str]]]:
    """Each kind of change that has samples, as a title and one line per sample (for the
    terminal and for report.html)."""
    kinds = [
        ("Merged", "merged", _merged_line),
        ("Split", "split", _split_line),
        ("Re-keyed", "rekeyed", _rekeyed_line),
        ("Identifiers added", "identifiers_added", _added_line),
        ("Identifiers removed", "identifiers_removed", _removed_line),
    ]
    return [
        (title, [line(row) for row in samples[key]])
        for title, key, line in kinds
        if samples.get(key)
    ]


def _merged_line(row: dict) -> str:
    return (
        f"{row['person_id']} ← {', '.join(row['previous_person_ids'])} "
        f"(e.g. {', '.join(row['identifiers'])})"
    )


def _split_line(row: dict) -> str:
    return f"{row['previous_person_id']} → {', '.join(row['person_ids'])}"


def _rekeyed_line(row: dict) -> str:
    return (
        f"{row['previous_person_id']} → {row['person_id']} (e.g. {', '.join(row['identifiers'])})"
    )


def _added_line(row: dict) -> str:
    return f"{row['identifier']} (person {row['person_id']})"


def _removed_line(row: dict) -> str:
    return f"{row['identifier']} (was person {row['previous_person_id']})"
