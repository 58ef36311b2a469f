"""report.html: one self-contained page that says what a run did, readable offline.

Built from a few figures the run computes in its engine while the tables are still there
(sql/95_report_*.sql: persons by size, the largest persons, the most-linked and the quarantined
identifiers) and from its run record. Reading the written tables back for them took ~0.5-1 s
at 10M events, and the readers' imports (polars, or pandas through pyarrow's query engine)
~0.2 s of every run. Charts are inline SVG drawn by stitcher/inspection/charts.py, so the page
needs no script, no network and no other file.
"""

from __future__ import annotations

import bisect
import html
import itertools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stitcher.engines.base import Engine
from stitcher.inspection.charts import bar_chart, log_histogram
from stitcher.inspection.thresholds import is_quarantined_key
from stitcher.output.files import REPORT_FILE, write_error
from stitcher.sql import render

log = logging.getLogger("stitcher")

TOP_N = 15
_BLUE, _RED, _GREY = "#3366aa", "#cc4444", "#999999"


def write_report(output_dir: Path, record: dict, figures: ReportFigures) -> Path:
    """Write report.html into `output_dir` from the run's figures and its run record."""
    target = output_dir / REPORT_FILE
    text = build_report(record, figures, output_dir)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise write_error(target, exc) from exc
    log.info("wrote %s", target.name)
    return target


@dataclass(frozen=True)
class ReportFigures:
    """What the report shows of the output tables, computed by the engine (report_figures).

    `sizes`: (identifier_count, persons), ascending; `largest`: person_id, user_id,
    identifier_count, event_count; `most_linked`: identifier_type, identifier, kept, refused,
    event_count; `quarantined`: how many; `top_quarantined`: identifier_type, identifier, reason,
    event_count, hub_rule, hub_degree, hub_contention, refused."""

    sizes: list[tuple[int, int]]
    largest: list[dict[str, Any]]
    most_linked: list[dict[str, Any]]
    quarantined: int
    top_quarantined: list[dict[str, Any]]


def report_figures(engine: Engine, top: int = TOP_N) -> ReportFigures:
    """The report's figures from the run's tables in `engine` (persons, person_activity,
    classified_edges, id_map, quarantine), a few rows each."""

    def rows(step: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
        found = engine.fetch_rows(render(step, top=str(int(top))))
        return [dict(zip(names, row, strict=True)) for row in found]

    sizes = [(int(size), int(n)) for size, n in engine.fetch_rows(render("95_report_sizes"))]
    largest = rows("95_report_largest", ("person_id", "user_id", "identifier_count", "event_count"))
    linked = rows(
        "95_report_most_linked", ("identifier_type", "identifier", "kept", "refused", "event_count")
    )
    quarantined = rows(
        "95_report_quarantined",
        (
            "identifier_type",
            "identifier",
            "reason",
            "event_count",
            "hub_rule",
            "hub_degree",
            "hub_contention",
            "refused",
            "quarantined",
        ),
    )
    return ReportFigures(
        sizes=sizes,
        largest=largest,
        most_linked=linked,
        quarantined=int(quarantined[0]["quarantined"]) if quarantined else 0,
        top_quarantined=quarantined,
    )


def build_report(record: dict, figures: ReportFigures, output_dir: Path | None = None) -> str:
    """The report page as a string."""
    sections = [
        _totals_section(record),
        _thresholds_section(record),
        _sizes_section(figures),
        _hubs_section(figures),
        _rejected_section(record),
        _changes_section(record),
        _timings_section(record),
        _options_section(record),
    ]
    title = f"stitcher run: {record.get('options', {}).get('output_dir', output_dir)}"
    return _PAGE.format(
        title=_e(title),
        subtitle=_e(
            f"finished {record.get('finished_at', '?')} · stitcher "
            f"{record.get('stitcher_version', '?')} · policy "
            f"{record.get('options', {}).get('policy', '?')}"
        ),
        body="\n".join(s for s in sections if s),
    )


# --- sections ---------------------------------------------------------------------------------


def _totals_section(record: dict) -> str:
    inp, persons, edges = record["input"], record["persons"], record["edges"]
    identifiers = record.get("identifiers", {})
    real = sum(v for k, v in identifiers.items() if not is_quarantined_key(k))
    junk = sum(v for k, v in identifiers.items() if is_quarantined_key(k))
    largest = persons.get("largest") or {}
    rows = [
        ("events", f"{inp['events']:,}"),
        ("first event at (UTC)", inp.get("first_event_at") or "no event has a time"),
        ("last event at (UTC)", inp.get("last_event_at") or "no event has a time"),
        ("events that belong to no person", f"{inp.get('events_unattributed', 0):,}"),
        ("identifiers", f"{real:,}"),
        ("quarantined identifiers (junk, hubs)", f"{junk:,}"),
        ("persons", f"{persons['count']:,}"),
        ("persons with a user id", f"{persons.get('with_user_id', 0):,}"),
        ("persons with several user ids", f"{persons.get('with_several_user_ids', 0):,}"),
        ("largest person (identifiers)", f"{largest.get('identifier_count', 0):,}"),
        ("links kept", f"{edges['kept']:,}"),
        ("links refused", f"{edges['rejected']:,}"),
    ]
    metrics = record.get("metrics") or {}
    metric_rows = [(k, "not measured" if v is None else _num(v)) for k, v in metrics.items()]
    out = "<section><h2>Totals</h2>" + _table(("", "count"), rows, numeric=(1,))
    if metric_rows:
        out += "<h3>Metrics (usable with <code>--fail-if</code>)</h3>" + _table(
            ("metric", "value"), metric_rows, numeric=(1,)
        )
    return out + "</section>"


def _sizes_section(figures: ReportFigures) -> str:
    out = "<section><h2>Persons by size</h2>"
    if not figures.sizes:
        return out + "<p>No persons.</p></section>"
    out += _size_histogram([s for s, _ in figures.sizes], [n for _, n in figures.sizes])
    rows = figures.largest
    out += f"<h3>Largest persons (top {len(rows)})</h3>"
    out += _barh(
        [_short(r["person_id"], r["user_id"]) for r in rows],
        [r["identifier_count"] for r in rows],
        "identifiers",
        _BLUE,
    )
    out += _table(
        ("person_id", "user_id", "identifiers", "events"),
        ((r["person_id"], r["user_id"], r["identifier_count"], r["event_count"]) for r in rows),
        numeric=(2, 3),
    )
    return out + "</section>"


def _hubs_section(figures: ReportFigures) -> str:
    out = "<section><h2>Hubs and quarantined ids</h2>"
    # Junk ids link nothing and have their own list below; hubs are the real ids most linked.
    hubs = figures.most_linked
    if hubs:
        out += (
            f"<h3>Most-linked identifiers (top {len(hubs)}): links kept and refused</h3>"
            + _stacked_barh(
                [f"{h['identifier_type']}:{h['identifier']}" for h in hubs],
                [
                    ("kept", [h["kept"] for h in hubs], _BLUE),
                    ("refused", [h["refused"] for h in hubs], _RED),
                ],
                "links",
            )
            + _table(
                ("identifier", "links kept", "links refused", "events"),
                (
                    (
                        f"{h['identifier_type']}:{h['identifier']}",
                        h["kept"],
                        h["refused"],
                        h["event_count"],
                    )
                    for h in hubs
                ),
                numeric=(1, 2, 3),
            )
        )
    else:
        out += "<p>No identifier has any link.</p>"
    top = figures.top_quarantined
    if figures.quarantined:
        out += (
            f"<h3>Quarantined ids ({figures.quarantined:,}; top {len(top)} by events)</h3>"
            + _barh(
                [f"{q['identifier_type']}:{_visible(q['identifier'])}" for q in top],
                [q["event_count"] for q in top],
                "events",
                _GREY,
            )
            + _table(
                ("identifier", "reason", "events", "hub evidence", "links refused"),
                (
                    (
                        f"{q['identifier_type']}:{_visible(q['identifier'])}",
                        q["reason"],
                        q["event_count"],
                        _hub_evidence(q),
                        q["refused"],
                    )
                    for q in top
                ),
                numeric=(2, 4),
            )
        )
    else:
        out += "<p>No identifier was quarantined.</p>"
    return out + "</section>"


def _hub_evidence(row: dict) -> str | None:
    """Why a hub was quarantined (31_hub_degrees.sql); junk values have no evidence."""
    if row.get("hub_degree") is None:
        return None
    return (
        f"{row.get('hub_rule') or 'max_linked'}: degree {row['hub_degree']}, "
        f"contention {row.get('hub_contention') or 0}"
    )


def _rejected_section(record: dict) -> str:
    by_reason = record["edges"].get("rejected_by_reason", {})
    out = "<section><h2>Refused links by reason</h2>"
    if not by_reason:
        return out + "<p>No link was refused.</p></section>"
    items = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return (
        out
        + _barh([k for k, _ in items], [v for _, v in items], "links", _RED)
        + _table(("reason", "links"), items, numeric=(1,))
        + "</section>"
    )


def _changes_section(record: dict) -> str:
    changes = record.get("changes_since_previous")
    if not changes:
        return (
            "<section><h2>Changes since the previous output</h2><p>No previous output in this "
            "folder to compare with.</p></section>"
        )
    rows = [(k, _num(v)) for k, v in changes["counts"].items()]
    out = (
        "<section><h2>Changes since the previous output</h2>"
        + f"<p>The previous output finished at {_e(str(changes.get('previous_finished_at')))}.</p>"
        + _table(("", "count"), rows, numeric=(1,))
    )
    # Imported here: changes.py brings polars, which a run without a previous output needs
    # nowhere else.
    from stitcher.inspection.changes import sample_lines_by_kind

    for title, lines in sample_lines_by_kind(changes.get("samples", {})):
        out += f"<h3>{_e(title)} (sample)</h3><ul>"
        out += "".join(f"<li><code>{_e(line)}</code></li>" for line in lines) + "</ul>"
    return out + "<p>More with <code>stitcher diff</code>.</p></section>"


def _thresholds_section(record: dict) -> str:
    """The --fail-if conditions this run checked, each with its value and outcome."""
    outcomes = record.get("thresholds") or []
    out = "<section><h2>Checks (<code>--fail-if</code>)</h2>"
    if not outcomes:
        return out + "<p>No <code>--fail-if</code> condition was given.</p></section>"
    breached = sum(o["outcome"] == "breached" for o in outcomes)
    out += (
        f"<p><strong>{breached} of {len(outcomes)} breached</strong>: the run exited 3.</p>"
        if breached
        else f"<p>None of {len(outcomes)} breached.</p>"
    )
    return (
        out
        + _table(
            ("condition", "value", "outcome"),
            (
                (o["condition"], "" if o["value"] is None else _num(o["value"]), o["outcome"])
                for o in outcomes
            ),
            numeric=(1,),
        )
        + "</section>"
    )


def _options_section(record: dict) -> str:
    """The options the run used (as run.json records them), config file first."""
    options = dict(record.get("options") or {})
    if not options:
        return ""
    rows = [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in options.items()
    ]
    return (
        "<section><h2>Options used</h2>"
        + _table(("option", "value"), rows)
        + "<p>As recorded in <code>run.json</code> under <code>options</code>.</p></section>"
    )


def _timings_section(record: dict) -> str:
    timings = {k: v for k, v in record.get("timings_seconds", {}).items() if k != "total"}
    if not timings:
        return ""
    total = record.get("timings_seconds", {}).get("total")
    return (
        "<section><h2>Time per step</h2>"
        + _barh(list(timings), list(timings.values()), "seconds", _GREY)
        + _table(
            ("step", "seconds"),
            [*((k, f"{v:.3f}") for k, v in timings.items()), ("total", f"{total or 0:.3f}")],
            numeric=(1,),
        )
        + "</section>"
    )


# --- charts -----------------------------------------------------------------------------------


def _size_histogram(sizes: list[int], counts: list[int]) -> str:
    biggest = max(sizes)
    # One bin each for 1..4 identifiers, then doubling: 5-8, 9-16, ... A bin [lo, hi) holds
    # sizes lo..hi-1.
    edges = [1, 2, 3, 4, 5]
    while edges[-1] <= biggest:
        edges.append((edges[-1] - 1) * 2 + 1)
    per_bin = [0] * (len(edges) - 1)
    for size, count in zip(sizes, counts, strict=True):
        per_bin[bisect.bisect_right(edges, size) - 1] += count
    names = [
        f"{lo:,}" if hi - lo == 1 else f"{lo:,}-{hi - 1:,}" for lo, hi in itertools.pairwise(edges)
    ]
    chart = log_histogram(names, per_bin, _BLUE, "identifiers per person", "persons (log scale)")
    return f'<figure class="chart-sizes">{chart}</figure>'


def _barh(labels: Sequence[str], values: Sequence[float], xlabel: str, color: str) -> str:
    return _stacked_barh(labels, [(xlabel, list(values), color)], xlabel, legend=False)


def _stacked_barh(
    labels: Sequence[str],
    series: list[tuple[str, list[float], str]],
    xlabel: str,
    legend: bool = True,
) -> str:
    chart = bar_chart([_clip(label) for label in labels], series, xlabel, legend=legend)
    return f'<figure class="chart-bars">{chart}</figure>'


# --- html helpers -----------------------------------------------------------------------------


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            css = ' class="n"' if i in numeric else ""
            text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
            cells.append(f"<td{css}>{_e('' if text is None else str(text))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _num(value: float | int) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return f"{int(value):,}"


def _short(person_id: str, user_id: str | None) -> str:
    return f"{person_id[:10]}… {user_id}" if user_id else f"{person_id[:10]}…"


_INVISIBLE = re.compile(r"^\s*$")


def _visible(value: str | None) -> str:
    """Junk ids are often blank: show them quoted so the row does not look empty."""
    if value is None or _INVISIBLE.match(value):
        return repr(value or "")
    return value


def _clip(label: str, width: int = 48) -> str:
    """A chart label: control characters escaped (ids can hold tabs or newlines), then cut."""
    label = "".join(c if c.isprintable() else repr(c)[1:-1] for c in label)
    return label if len(label) <= width else label[: width - 1] + "…"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222;
       padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; margin-bottom: 0.2rem; }}
.sub {{ color: #666; margin-top: 0; }}
section {{ border-top: 1px solid #ddd; margin-top: 1.5rem; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }}
th, td {{ padding: 0.2rem 0.8rem; border-bottom: 1px solid #eee; text-align: left;
          word-break: break-all; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 0.5rem 0; }}
figure svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="sub">{subtitle}</p>
{body}
</body>
</html>
"""
