"""Run metrics (stored in run.json) and the `--fail-if` conditions schedulers alert on."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from stitcher.errors import ConfigError

# exit code of a run whose output was written but breached a --fail-if condition
EXIT_THRESHOLD = 3

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def is_quarantined_key(key: str) -> bool:
    """run.json's `identifiers` counts quarantined ids under `<type>_quarantined` (`_junk` in
    outputs written before hubs were quarantined too)."""
    return key.endswith(("_quarantined", "_junk"))


def _identifiers(record: dict, quarantined: bool) -> int:
    return sum(v for k, v in record["identifiers"].items() if is_quarantined_key(k) == quarantined)


# name -> (what it measures, how to read it from run.json). Metrics about changes since the
# previous output exist only when --output already held one.
METRICS: dict[str, tuple[str, Callable[[dict], float | None]]] = {
    "events": ("input events read", lambda r: r["input"]["events"]),
    "hours_since_last_event": (
        "hours from the input's latest event time to the end of the run (how fresh it is)",
        lambda r: _hours_since_last_event(r),
    ),
    "identifiers": ("identifiers that are not junk", lambda r: _identifiers(r, quarantined=False)),
    "persons": ("persons written to users", lambda r: r["persons"]["count"]),
    "largest_person": (
        "identifiers in the largest person",
        lambda r: (r["persons"]["largest"] or {}).get("identifier_count", 0),
    ),
    "links_kept": ("links kept", lambda r: r["edges"]["kept"]),
    "links_rejected": ("links refused", lambda r: r["edges"]["rejected"]),
    "rejected_share": (
        "refused links / all candidate links (kept + refused)",
        lambda r: _share(r["edges"]["rejected"], r["edges"]["kept"] + r["edges"]["rejected"]),
    ),
    "quarantined_ids": (
        "identifiers put in quarantine (junk values, hubs)",
        lambda r: _identifiers(r, quarantined=True),
    ),
    "unattributed_share": (
        "events that belong to no person (only junk or no ids) / all events",
        lambda r: _share(r["input"]["events_unattributed"], r["input"]["events"]),
    ),
    "persons_changed": (
        "share of the previous output's persons that were merged, split or re-keyed",
        lambda r: _change(r, "persons_changed"),
    ),
    "persons_merged": (
        "persons that now hold the ids of 2+ previous persons",
        lambda r: _change(r, "persons_merged"),
    ),
    "persons_split": (
        "previous persons whose ids are now in 2+ persons",
        lambda r: _change(r, "persons_split"),
    ),
    "persons_rekeyed": (
        "previous persons whose ids moved, whole, to a new person_id",
        lambda r: _change(r, "persons_rekeyed"),
    ),
    "identifiers_added": (
        "identifiers not in the previous output",
        lambda r: _change(r, "identifiers_added"),
    ),
    "identifiers_removed": (
        "identifiers of the previous output that are gone",
        lambda r: _change(r, "identifiers_removed"),
    ),
}


def _hours_since_last_event(record: dict) -> float | None:
    """None when no event has a time."""
    last = record["input"].get("last_event_at")
    if last is None:
        return None
    finished = datetime.fromisoformat(record["finished_at"])
    seen = datetime.fromisoformat(last)
    return round((finished - seen).total_seconds() / 3600, 3)


def _change(record: dict, name: str) -> float | None:
    changes = record.get("changes_since_previous")
    return None if changes is None else changes["counts"][name]


def run_metrics(record: dict) -> dict[str, float | None]:
    """Every metric of a run record; None for change metrics when there was no previous output."""
    return {name: read(record) for name, (_, read) in METRICS.items()}


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    limit: float
    text: str

    def breached_by(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.limit)


_CONDITION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+]?[0-9.eE+-]+)\s*")


def parse_condition(text: str) -> Condition:
    """`metric>limit` (also <, >=, <=) with a known metric and a numeric limit."""
    match = _CONDITION.fullmatch(text)
    if match is None:
        raise ConfigError(
            f"cannot read condition {text!r}; write METRIC OP NUMBER, e.g. 'largest_person>500' "
            "(OP is one of >, <, >=, <=)"
        )
    metric, op, raw_limit = match.groups()
    if metric not in METRICS:
        raise ConfigError(
            f"unknown metric {metric!r} in {text!r}; valid metrics: {', '.join(METRICS)}"
        )
    try:
        limit = float(raw_limit)
    except ValueError:
        raise ConfigError(f"{raw_limit!r} in {text!r} is not a number") from None
    return Condition(metric=metric, op=op, limit=limit, text=text.strip())


@dataclass(frozen=True)
class Outcome:
    condition: Condition
    value: float | None

    @property
    def breached(self) -> bool:
        return self.value is not None and self.condition.breached_by(self.value)

    @property
    def status(self) -> str:
        """breached, passed, or not measured (a change metric on a first run)."""
        if self.value is None:
            return "not measured"
        return "breached" if self.breached else "passed"

    def as_record(self) -> dict:
        """The outcome as run.json keeps it."""
        return {
            "condition": self.condition.text,
            "metric": self.condition.metric,
            "value": self.value,
            "outcome": self.status,
        }

    def describe(self) -> str:
        c = self.condition
        if self.value is None:
            why = _UNMEASURED.get(c.metric, "no previous output to compare with")
            return f"{c.metric} not measured ({why})"
        return f"{c.metric}={_number(self.value)} {c.op} {_number(c.limit)}"


# Why a metric can be None, where it is not for want of a previous output.
_UNMEASURED = {"hours_since_last_event": "no event has a time"}


def check_conditions(conditions: list[Condition], metrics: dict) -> list[Outcome]:
    """Each condition with the metric's value from run.json (None: not measured this run)."""
    return [Outcome(condition=c, value=metrics.get(c.metric)) for c in conditions]


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else f"{value:.0f}"
