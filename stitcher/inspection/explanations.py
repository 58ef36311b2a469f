"""Why is this id in this person, and what joins (or would have joined) two ids.

Reads a finished output folder only (id_map, edges, rejected_edges, quarantine), never the
events: every answer is made of links the run kept or refused, each with its first evidence.

- One id: its person, the person's identifiers with first/last seen, the kept links that hold
  the person together, and the refused links that touch the person (or the id, when it is junk).
- Two ids in one person: a shortest chain of kept links between them (breadth-first search over
  that person's links, so no shorter chain exists).
- Two ids in different persons: the nearest refused link(s) that would have joined them: the
  fewest refused links (breadth-first over persons), each hop entering and leaving persons by
  short chains of kept links.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from stitcher.errors import InputError
from stitcher.graph.identifiers import hub_reason
from stitcher.inspection.results import check_output_dir, scan_table, table_path

log = logging.getLogger("stitcher")

LINK_COLUMNS = [
    "from_type",
    "from_id",
    "to_type",
    "to_id",
    "rule",
    "event_count",
    "first_seen_at",
    "last_seen_at",
    "evidence_at",
    "evidence_message_id",
    "evidence_table",
]
REFUSED_COLUMNS = [*LINK_COLUMNS, "reason", "from_person_id", "to_person_id"]
ID_COLUMNS = ["identifier_type", "identifier", "first_seen_at", "last_seen_at", "event_count"]
# Prefix of the graph node of an identifier that has no person (junk or quarantined): person
# ids are hex digests, so this can never collide with one.
_NO_PERSON = "~"


@dataclass(frozen=True, order=True)
class Identifier:
    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(frozen=True)
class Resolved:
    """An identifier found in the output: its person, or its quarantine row when it is junk."""

    identifier: Identifier
    person_id: str | None
    quarantine: dict | None = None

    @property
    def node(self) -> str:
        return self.person_id or _junk_node(self.identifier)


def _junk_node(ident: Identifier) -> str:
    return f"{_NO_PERSON}{ident}"


class OutputGraph:
    """Lazy access to one output folder's identifiers and links."""

    def __init__(self, output_dir: Path) -> None:
        check_output_dir(output_dir)
        self.output_dir = output_dir
        self.id_map = scan_table(output_dir, "id_map", [*ID_COLUMNS, "person_id"])
        self.edges = scan_table(output_dir, "edges", ["person_id", *LINK_COLUMNS])
        self.rejected = (
            scan_table(output_dir, "rejected_edges", REFUSED_COLUMNS)
            if table_path(output_dir, "rejected_edges")
            else None
        )
        self.quarantine = (
            scan_table(output_dir, "quarantine") if table_path(output_dir, "quarantine") else None
        )
        self._kept_cache: dict[str, pl.DataFrame] = {}

    # -- lookups -------------------------------------------------------------------------------

    def resolve(self, text: str) -> Resolved:
        """`type:value` or a bare value; a bare value must name exactly one identifier."""
        typed: Identifier | None = None
        if ":" in text:
            prefix, rest = text.split(":", 1)
            typed = Identifier(prefix, rest)
        found = self._candidates(text, typed)
        if typed is not None:
            exact = [r for r in found if r.identifier == typed]
            if exact:
                return exact[0]
        if not found:
            raise InputError(
                f"no identifier {text!r} in {self.output_dir} (id_map or quarantine); ids are "
                "case-sensitive; write it as user_id:VALUE or anonymous_id:VALUE"
            )
        if len(found) > 1:
            choices = ", ".join(
                f"{r.identifier} ({'person ' + r.person_id if r.person_id else 'quarantined'})"
                for r in found
            )
            raise InputError(
                f"{text!r} is ambiguous: it is {choices}; give one of them with its type, "
                f"e.g. {found[0].identifier}"
            )
        return found[0]

    def _candidates(self, text: str, typed: Identifier | None) -> list[Resolved]:
        match = pl.col("identifier") == text
        if typed is not None:
            match = match | (
                (pl.col("identifier_type") == typed.type) & (pl.col("identifier") == typed.value)
            )
        found = [
            Resolved(Identifier(t, v), p)
            for t, v, p in self.id_map.filter(match)
            .select("identifier_type", "identifier", "person_id")
            .collect()
            .iter_rows()
        ]
        if self.quarantine is not None:
            for row in self.quarantine.filter(match).collect().iter_rows(named=True):
                ident = Identifier(row["identifier_type"], row["identifier"])
                found.append(Resolved(ident, None, quarantine=_jsonable(row)))
        return sorted(found, key=lambda r: r.identifier)

    def identifiers_of(self, person_id: str) -> pl.DataFrame:
        return (
            self.id_map.filter(pl.col("person_id") == person_id)
            .select(ID_COLUMNS)
            .sort("identifier_type", "identifier")
            .collect()
        )

    def kept_links_of(self, person_id: str) -> pl.DataFrame:
        if person_id not in self._kept_cache:
            self._kept_cache[person_id] = (
                self.edges.filter(pl.col("person_id") == person_id)
                .select(LINK_COLUMNS)
                .sort("from_type", "from_id", "to_type", "to_id", "rule")
                .collect()
            )
        return self._kept_cache[person_id]

    def refused_links_touching(self, resolved: Resolved) -> pl.DataFrame:
        if self.rejected is None:
            return pl.DataFrame(schema={c: pl.String for c in REFUSED_COLUMNS})
        if resolved.person_id is not None:
            match = (pl.col("from_person_id") == resolved.person_id) | (
                pl.col("to_person_id") == resolved.person_id
            )
        else:
            ident = resolved.identifier
            match = ((pl.col("from_type") == ident.type) & (pl.col("from_id") == ident.value)) | (
                (pl.col("to_type") == ident.type) & (pl.col("to_id") == ident.value)
            )
        return (
            self.rejected.filter(match)
            .sort("from_type", "from_id", "to_type", "to_id", "rule")
            .collect()
        )

    # -- searches ------------------------------------------------------------------------------

    def kept_chain(self, person_id: str, start: Identifier, goal: Identifier) -> list[dict]:
        """A shortest chain of kept links from start to goal inside one person."""
        if start == goal:
            return []
        links = self.kept_links_of(person_id)
        parents = _bfs(_adjacency(links), start, goal)
        if goal not in parents:
            # Both ids carry this person_id, so a kept chain must exist; if not, the output
            # folder was edited or mixed from different runs.
            raise InputError(
                f"{self.output_dir}: {start} and {goal} share person {person_id} but no chain "
                "of kept links joins them; the output folder looks edited or mixed from two runs"
            )
        return _walk_back(parents, goal, links)

    def distances_in(self, resolved_node: str, source: Identifier) -> dict[Identifier, int]:
        """Hops from source to every identifier of its person (just itself for junk)."""
        if resolved_node.startswith(_NO_PERSON):
            return {source: 0}
        adjacency = _adjacency(self.kept_links_of(resolved_node))
        dist = {source: 0}
        queue = deque([source])
        while queue:
            here = queue.popleft()
            for there, _ in adjacency.get(here, ()):
                if there not in dist:
                    dist[there] = dist[here] + 1
                    queue.append(there)
        return dist

    def refused_route(self, a: Resolved, b: Resolved) -> list[dict] | None:
        """Refused links (fewest possible) and kept links that would join a's and b's persons.

        Returns the links in walk order from a to b, or None when no refused link connects them
        even through other persons.
        """
        if self.rejected is None:
            return None
        table = self._refused_nodes()
        parent: dict[str, tuple[str, int] | None] = {a.node: None}
        frontier = {a.node}
        while frontier and b.node not in parent:
            hits = table.filter(
                pl.col("from_node").is_in(list(frontier)) | pl.col("to_node").is_in(list(frontier))
            )
            reached: set[str] = set()
            for row_id, u, v in hits.select("row_id", "from_node", "to_node").iter_rows():
                for here, there in ((u, v), (v, u)):
                    if here in frontier and there not in parent:
                        parent[there] = (here, row_id)
                        reached.add(there)
            frontier = reached
        if b.node not in parent:
            return None
        nodes = [b.node]
        while parent[nodes[-1]] is not None:
            nodes.append(parent[nodes[-1]][0])  # type: ignore[index]
        nodes.reverse()
        return self._route_through(nodes, a, b, table)

    def _route_through(
        self, nodes: list[str], a: Resolved, b: Resolved, table: pl.DataFrame
    ) -> list[dict]:
        route: list[dict] = []
        entry = a.identifier
        for i, (here, there) in enumerate(itertools.pairwise(nodes)):
            hop = table.filter(
                ((pl.col("from_node") == here) & (pl.col("to_node") == there))
                | ((pl.col("from_node") == there) & (pl.col("to_node") == here))
            )
            last = i == len(nodes) - 2
            near = self.distances_in(here, entry)
            far = self.distances_in(there, b.identifier) if last else {}
            best: tuple[int, tuple, dict] | None = None
            for row in hop.iter_rows(named=True):
                f = Identifier(row["from_type"], row["from_id"])
                t = Identifier(row["to_type"], row["to_id"])
                exit_, enter = (f, t) if row["from_node"] == here else (t, f)
                cost = near.get(exit_, 10**9) + (far.get(enter, 10**9) if last else 0)
                key = (cost, (str(exit_), str(enter), row["rule"]))
                if best is None or key < best[:2]:
                    best = (cost, key[1], row)
            assert best is not None
            row = best[2]
            f = Identifier(row["from_type"], row["from_id"])
            t = Identifier(row["to_type"], row["to_id"])
            exit_, enter = (f, t) if row["from_node"] == here else (t, f)
            if not here.startswith(_NO_PERSON):
                route += self.kept_chain(here, entry, exit_)
            refused = {k: row[k] for k in REFUSED_COLUMNS}
            refused["refused"] = True
            route.append(refused)
            entry = enter
        last_node = nodes[-1]
        if not last_node.startswith(_NO_PERSON):
            route += self.kept_chain(last_node, entry, b.identifier)
        return route

    def _refused_nodes(self) -> pl.DataFrame:
        assert self.rejected is not None

        def node(end: str) -> pl.Expr:
            return pl.coalesce(
                pl.col(f"{end}_person_id"),
                pl.concat_str(
                    pl.lit(_NO_PERSON), pl.col(f"{end}_type"), pl.lit(":"), pl.col(f"{end}_id")
                ),
            ).alias(f"{end}_node")

        return (
            self.rejected.with_columns(node("from"), node("to"))
            .filter(pl.col("from_node") != pl.col("to_node"))
            .sort("from_type", "from_id", "to_type", "to_id", "rule")
            .with_row_index("row_id")
            .collect()
        )


def _adjacency(links: pl.DataFrame) -> dict[Identifier, list[tuple[Identifier, int]]]:
    adjacency: dict[Identifier, list[tuple[Identifier, int]]] = {}
    for i, (ft, fi, tt, ti) in enumerate(
        links.select("from_type", "from_id", "to_type", "to_id").iter_rows()
    ):
        f, t = Identifier(ft, fi), Identifier(tt, ti)
        adjacency.setdefault(f, []).append((t, i))
        adjacency.setdefault(t, []).append((f, i))
    return adjacency


def _bfs(
    adjacency: dict[Identifier, list[tuple[Identifier, int]]], start: Identifier, goal: Identifier
) -> dict[Identifier, tuple[Identifier, int] | None]:
    parents: dict[Identifier, tuple[Identifier, int] | None] = {start: None}
    queue = deque([start])
    while queue and goal not in parents:
        here = queue.popleft()
        for there, link in adjacency.get(here, ()):
            if there not in parents:
                parents[there] = (here, link)
                queue.append(there)
    return parents


def _walk_back(
    parents: dict[Identifier, tuple[Identifier, int] | None], goal: Identifier, links: pl.DataFrame
) -> list[dict]:
    steps = []
    here = goal
    while parents[here] is not None:
        previous, link = parents[here]  # type: ignore[misc]
        steps.append(link)
        here = previous
    steps.reverse()
    rows = links.to_dicts()
    return [{**rows[i], "refused": False} for i in steps]


# --- the two questions ------------------------------------------------------------------------


def _run_options(output_dir: Path) -> dict:
    """The options recorded in the output's run.json ({} if it cannot be read)."""
    try:
        options = json.loads((output_dir / "run.json").read_text(encoding="utf-8"))["options"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return options if isinstance(options, dict) else {}


@dataclass(frozen=True)
class IdentifierExplanation:
    """Why one identifier is where it is: its person (None: quarantined or unknown to any
    person), the person's identifiers and the kept links that hold it together, and the refused
    links that touch the identifier. Lists hold plain dicts (times as ISO text), at most the
    `limit` asked for; the counts are the full numbers."""

    identifier: str
    person_id: str | None
    quarantine: dict | None
    identifier_count: int
    identifiers: list[dict]
    link_count: int
    links: list[dict]
    refused_count: int
    refused_links: list[dict]

    def as_record(self) -> dict:
        """As `stitcher explain --json` prints it."""
        return dataclasses.asdict(self)

    def text(self) -> str:
        """As `stitcher explain` prints it."""
        return format_identifier(self.as_record())


@dataclass(frozen=True)
class PairExplanation:
    """What joins two identifiers: in one person, `chain` (the kept links of a shortest path)
    and `path` (the identifiers it visits); in two, `nearest_refused` (the route with the
    fewest refused links that would have joined them, or None when nothing connects them)."""

    identifiers: list[str]
    person_ids: list[str | None]
    same_person: bool
    chain: list[dict] | None
    path: list[str] | None
    nearest_refused: dict | None

    def as_record(self) -> dict:
        """As `stitcher explain ID ID2 --json` prints it."""
        return dataclasses.asdict(self)

    def text(self) -> str:
        """As `stitcher explain ID ID2` prints it."""
        return format_pair(self.as_record())


def explain_identifier(
    output_dir: Path, text: str, limit: int | None = None
) -> IdentifierExplanation:
    """Everything the output says about one identifier and its person."""
    graph = OutputGraph(output_dir)
    resolved = graph.resolve(text)
    refused = graph.refused_links_touching(resolved)
    result: dict[str, Any] = {
        "identifier": str(resolved.identifier),
        "person_id": resolved.person_id,
        "quarantine": resolved.quarantine,
    }
    if resolved.quarantine is not None and resolved.quarantine.get("reason") == "hub":
        result["quarantine"] = {
            **resolved.quarantine,
            "why": hub_reason(resolved.quarantine, _run_options(output_dir)),
        }
    if resolved.person_id is not None:
        identifiers = graph.identifiers_of(resolved.person_id)
        links = graph.kept_links_of(resolved.person_id)
        result["identifier_count"] = identifiers.height
        result["identifiers"] = _rows(identifiers, limit)
        result["link_count"] = links.height
        result["links"] = _rows(links, limit)
    else:
        result.update(identifier_count=0, identifiers=[], link_count=0, links=[])
    result["refused_count"] = refused.height
    result["refused_links"] = _rows(refused.select(REFUSED_COLUMNS), limit)
    return IdentifierExplanation(**result)


def explain_pair(output_dir: Path, first: str, second: str) -> PairExplanation:
    """The chain of kept links joining two ids, or the nearest refused route."""
    graph = OutputGraph(output_dir)
    a, b = graph.resolve(first), graph.resolve(second)
    if a.identifier == b.identifier:
        raise InputError(
            f"{first!r} and {second!r} are the same identifier; give two different ones"
        )
    result: dict[str, Any] = {
        "identifiers": [str(a.identifier), str(b.identifier)],
        "person_ids": [a.person_id, b.person_id],
        "same_person": a.person_id is not None and a.person_id == b.person_id,
    }
    if result["same_person"]:
        chain = graph.kept_chain(a.person_id, a.identifier, b.identifier)  # type: ignore[arg-type]
        result["chain"] = [_jsonable(link) for link in chain]
        result["path"] = _path(a.identifier, chain)
        result["nearest_refused"] = None
        return PairExplanation(**result)
    result["chain"] = None
    result["path"] = None
    route = graph.refused_route(a, b)
    if route is None:
        result["nearest_refused"] = None
    else:
        result["nearest_refused"] = {
            "refused_links": sum(1 for link in route if link["refused"]),
            "chain": [_jsonable(link) for link in route],
            "path": _path(a.identifier, route),
        }
    return PairExplanation(**result)


def _path(start: Identifier, chain: list[dict]) -> list[str]:
    """The identifiers visited by a chain, in order, starting at `start`."""
    path = [start]
    for link in chain:
        f = Identifier(link["from_type"], link["from_id"])
        t = Identifier(link["to_type"], link["to_id"])
        path.append(t if path[-1] == f else f)
    return [str(p) for p in path]


def _rows(frame: pl.DataFrame, limit: int | None) -> list[dict]:
    if limit:
        frame = frame.head(limit)
    return [_jsonable(row) for row in frame.iter_rows(named=True)]


def _jsonable(row: dict) -> dict:
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _iso(value: datetime) -> str:
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


# --- plain text -------------------------------------------------------------------------------


def format_identifier(result: dict) -> str:
    """explain_identifier's result for a terminal."""
    lines: list[str] = []
    ident = _show(result["identifier"])
    if result["person_id"] is None:
        q = result["quarantine"] or {}
        lines.append(
            f"{ident} is quarantined ({q.get('reason', '?')}): it belongs to no person and "
            "links nothing"
        )
        lines.append(
            f"  {q.get('event_count', 0):,} events, seen {_t(q.get('first_seen_at'))} → "
            f"{_t(q.get('last_seen_at'))}"
        )
        if q.get("why"):
            lines.append(f"  a hub: {q['why']}")
    else:
        lines.append(f"{ident} is in person {result['person_id']}")
        lines.append(
            f"  {_n(result['identifier_count'], 'identifier')}, "
            f"{_n(result['link_count'], 'link')} kept, "
            f"{_n(result['refused_count'], 'refused link')} touching it"
        )
        lines += ["", "Identifiers (first seen → last seen, events):"]
        width = max(
            (len(_show_id(r["identifier_type"], r["identifier"])) for r in result["identifiers"]),
            default=0,
        )
        for r in result["identifiers"]:
            name = _show_id(r["identifier_type"], r["identifier"])
            lines.append(
                f"  {name:<{width}}  {_t(r['first_seen_at'])} → {_t(r['last_seen_at'])}  "
                f"{r['event_count']:>6,}"
            )
        lines += _more(result["identifier_count"], len(result["identifiers"]))
        lines += ["", "Links that hold the person together:"]
        if not result["links"]:
            lines.append("  none: this identifier is a person on its own")
        for link in result["links"]:
            lines += _link_lines(link)
        lines += _more(result["link_count"], len(result["links"]))
    lines += ["", "Refused links:"]
    if not result["refused_links"]:
        lines.append("  none")
    for link in result["refused_links"]:
        lines += _link_lines(link, refused=True)
    lines += _more(result["refused_count"], len(result["refused_links"]))
    return "\n".join(lines)


def format_pair(result: dict) -> str:
    """explain_pair's result for a terminal."""
    a, b = (_show(i) for i in result["identifiers"])
    pa, pb = result["person_ids"]
    if result["same_person"]:
        chain = result["chain"]
        lines = [
            f"{a} and {b} are in the same person {pa}, joined by a chain of "
            f"{_n(len(chain), 'link')} (no shorter chain exists):",
        ]
        lines += _walk_lines(result["path"], chain)
        return "\n".join(lines)
    lines = [
        f"{a} and {b} are in different persons:",
        f"  {a} → {('person ' + pa) if pa else 'quarantined, no person'}",
        f"  {b} → {('person ' + pb) if pb else 'quarantined, no person'}",
        "",
    ]
    nearest = result["nearest_refused"]
    if nearest is None:
        lines.append(
            "No refused link joins them, directly or through other persons: nothing in the "
            "input connects them."
        )
        return "\n".join(lines)
    n = nearest["refused_links"]
    lines.append(
        f"Nearest refused link{'s' if n != 1 else ''} that would have joined them ({n} refused, "
        f"{_n(len(nearest['chain']), 'link')} in all):"
    )
    lines += _walk_lines(nearest["path"], nearest["chain"])
    return "\n".join(lines)


def _walk_lines(path: list[str], chain: list[dict]) -> list[str]:
    lines = [f"  {_show(path[0])}"]
    for node, link in zip(path[1:], chain, strict=True):
        mark = f"REFUSED ({link['reason']}) " if link.get("refused") else ""
        lines.append(f"    │ {mark}{_evidence(link)}")
        lines.append(f"  {_show(node)}")
    return lines


def _link_lines(link: dict, refused: bool = False) -> list[str]:
    head = (
        f"  {_show_id(link['from_type'], link['from_id'])} ── "
        f"{_show_id(link['to_type'], link['to_id'])}"
    )
    lines = [head]
    if refused:
        persons = (
            f"persons {link.get('from_person_id') or 'none (quarantined)'} / "
            f"{link.get('to_person_id') or 'none (quarantined)'}"
        )
        lines.append(f"      refused: {link['reason']}; {persons}")
    lines.append(f"      {_evidence(link)}")
    return lines


def _evidence(link: dict) -> str:
    events = link.get("event_count") or 0
    return (
        f"{link['rule']}, {_n(events, 'event')}, "
        f"{_t(link.get('first_seen_at'))} → {_t(link.get('last_seen_at'))}; first evidence: "
        f"{link.get('evidence_table') or '?'} message {link.get('evidence_message_id') or '?'} "
        f"at {_t(link.get('evidence_at'))}"
    )


def _more(total: int, shown: int) -> list[str]:
    if total > shown:
        return [f"  … and {total - shown:,} more (--limit 0 shows all, --json for tools)"]
    return []


def _t(value: str | None) -> str:
    return value.replace("T", " ") if value else "?"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _show_id(identifier_type: str, value: str) -> str:
    """type:value, with blank or padded values (junk ids often are) quoted so they show."""
    if not value or value != value.strip():
        value = repr(value)
    return f"{identifier_type}:{value}"


def _show(typed: str) -> str:
    identifier_type, _, value = typed.partition(":")
    return _show_id(identifier_type, value)
