"""run.json, the run record: built here and only here, in the order a run learns its parts.

`measure` reads what the run did off the engine once the output tables are built; the run
then adds what it wrote (`written`), how the output compares with the one it replaces and the
metrics and --fail-if outcomes that follow (`compared`), the report (`reported`) and its final
timings (`timed`). Every reader (the report, explain, diff, --fail-if, schedulers) reads the
dict in `data`, written sorted by key (files.write_json).
"""

from __future__ import annotations

import platform
import time
from datetime import UTC, datetime

import pyarrow as pa

from stitcher import __version__
from stitcher.config import RunOptions
from stitcher.engines import Engine
from stitcher.graph.identifiers import hub_reason
from stitcher.input.load import LoadedInput, numeric_id_counts
from stitcher.inspection.thresholds import check_conditions, run_metrics
from stitcher.output.files import REPORT_FILE
from stitcher.output.tables import RUN_RECORD

# What `measure` reads once the steps are done, besides the output tables: the totals the steps
# keep of tables they free, and each person's activity. The pipeline keeps these.
RECORD_READS = ("pair_totals", "identifier_totals", "edge_totals", "person_activity")


class RunRecord:
    """A run's record as it is completed; `data` is run.json's content."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def written(self, files: list[str]) -> None:
        """The output tables are written, as `files`."""
        self.data["finished_at"] = _now()
        self.data["outputs"] = list(files)

    def compared(self, changes: dict | None, options: RunOptions) -> None:
        """What changed since the output this run replaces (None: there was none), and the
        metrics and --fail-if outcomes, which read it."""
        if changes is not None:
            self.data["changes_since_previous"] = changes
        self.data["metrics"] = run_metrics(self.data)
        self.data["thresholds"] = [
            outcome.as_record()
            for outcome in check_conditions(list(options.fail_if), self.data["metrics"])
        ]

    def reported(self) -> None:
        """report.html is among the outputs."""
        self.data["outputs"].append(REPORT_FILE)

    def timed(self, seconds: dict[str, float], started: float) -> None:
        """Each step's seconds, and the total since `started` (time.perf_counter)."""
        self.data["timings_seconds"] = {
            **seconds,
            "total": round(time.perf_counter() - started, 3),
        }

    @property
    def files(self) -> list[str]:
        """What the run publishes: the files the record lists, and the record itself."""
        return [*self.data["outputs"], RUN_RECORD]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def measure(
    engine: Engine,
    options: RunOptions,
    loaded: LoadedInput,
    timings: dict[str, float],
    started: float,
) -> RunRecord:
    """The record of a run whose output tables are built and not yet written: what it read,
    kept, refused and made, read off the engine's tables (the totals the steps kept, and the
    output tables)."""

    def rows(sql: str) -> list[tuple]:
        return engine.fetch_rows(sql)

    per_table = {
        table: int(count)
        for table, count in rows(
            "SELECT source_table, event_count FROM pair_totals ORDER BY source_table"
        )
    }
    events, without_ts, first_ts, last_ts = rows(
        "SELECT coalesce(sum(event_count), 0), coalesce(sum(events_without_ts), 0), "
        "min(first_ts), max(last_ts) FROM pair_totals"
    )[0]
    identifiers = {
        f"{t}{'' if quarantined is None else '_quarantined'}": int(n)
        for t, quarantined, n in rows(
            "SELECT identifier_type, quarantined OR NULL, identifiers FROM identifier_totals "
            "ORDER BY 1, 2"
        )
    }
    quarantined = dict(rows("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 1"))
    recorded = options.as_record()
    hubs = [
        {
            "identifier_type": row["identifier_type"],
            "identifier": row["identifier"],
            "linked_type": row["hub_linked_type"],
            "degree": int(row["hub_degree"]),
            "contention": int(row["hub_contention"]),
            "typical_degree": int(row["hub_typical_degree"]),
            "rule": row["hub_rule"],
            "why": hub_reason(row, recorded),
            "event_count": int(row["event_count"]),
        }
        for row in engine.fetch_arrow(
            "SELECT identifier_type, identifier, hub_linked_type, hub_degree, hub_contention, "
            "hub_typical_degree, hub_rule, event_count FROM quarantine WHERE reason = 'hub' "
            "ORDER BY hub_degree DESC, identifier_type, identifier LIMIT 50"
        ).to_pylist()
    ]
    kept = dict(rows("SELECT reason, edges FROM edge_totals WHERE kept"))
    rejected = dict(rows("SELECT reason, edges FROM edge_totals WHERE NOT kept"))
    n_persons, with_user, multi_user = rows(
        "SELECT count(*), count(user_id), count(*) FILTER (WHERE array_length(user_ids) > 1) "
        "FROM users"
    )[0]
    largest = rows(
        "SELECT person_id, identifier_count FROM users "
        "ORDER BY identifier_count DESC, person_id LIMIT 1"
    )
    unattributed = rows(
        "SELECT coalesce(sum(event_count), 0) FROM person_activity WHERE component IS NULL"
    )[0][0]
    record = {
        "stitcher_version": __version__,
        "finished_at": _now(),
        "options": recorded,
        "input": {
            "tables": loaded.tables,
            "events_per_table": per_table,
            "events": int(events),
            "events_without_timestamp": int(without_ts),
            # How fresh the data is: the earliest and latest event times (UTC).
            "first_event_at": _utc_text(first_ts),
            "last_event_at": _utc_text(last_ts),
            "events_unattributed": int(unattributed),
            "skipped_files": loaded.skipped_files,
            "partition_keys": loaded.partition_keys,
            "twin_columns": loaded.twin_columns,
            "numeric_ids": numeric_id_counts(engine, loaded),
            "dedupe": options.dedupe,
            "tables_without_message_ids": loaded.tables_without_message_ids,
            "trait_columns": loaded.trait_columns,
        },
        "identifiers": identifiers,
        "quarantine": {
            "by_reason": {k: int(v) for k, v in quarantined.items()},
            "hubs": hubs,
        },
        "edges": {
            "kept": int(sum(kept.values())),
            "rejected": int(sum(rejected.values())),
            "kept_by_rule": {k: int(v) for k, v in sorted(kept.items())},
            "rejected_by_reason": {k: int(v) for k, v in sorted(rejected.items())},
        },
        "persons": {
            "count": int(n_persons),
            "with_user_id": int(with_user),
            "anonymous_only": int(n_persons - with_user),
            "with_several_user_ids": int(multi_user),
            "largest": (
                {"person_id": largest[0][0], "identifier_count": int(largest[0][1])}
                if largest
                else None
            ),
        },
        "timings_seconds": dict(timings),
        "versions": {
            "stitcher": __version__,
            "engine": engine.version(),
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
        },
    }
    record["timings_seconds"]["total"] = round(time.perf_counter() - started, 3)
    if options.dedupe:
        raw = rows("SELECT count(*) FROM events")[0][0]
        record["input"]["duplicates_removed"] = int(raw) - int(events)
    return RunRecord(record)


def _utc_text(value: datetime | None) -> str | None:
    """An event time (UTC, as every engine's session keeps it) as ISO text with its zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")
