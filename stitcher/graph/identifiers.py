"""The shape of the identity graph for a run: which columns are identifiers, which pairs of them
link, which hub rules apply. Produces the SQL fragments the graph steps in `sql/` are filled with.

Identifier columns of the events: `anonymous_id`, `user_id` and `previous_id` (a user id, only
on aliases) always; one column per configured extra type (named after the type).
"""

from __future__ import annotations

from itertools import combinations

import pyarrow as pa

from stitcher import arrays
from stitcher.config import DEFAULT_HUB_MIN_CONTENTION, DEFAULT_HUB_OUTLIER_FACTOR, RunOptions
from stitcher.engines.base import quote_identifier, quote_literal

# Names the events view already uses; an extra identifier type cannot take them.
RESERVED_COLUMNS = {"source_table", "message_id", "previous_id", "ts", "anonymous_id", "user_id"}


def event_columns(options: RunOptions) -> list[tuple[str, str]]:
    """(identifier type, events column) for every column carrying a same-event identifier."""
    return [("anonymous_id", "anonymous_id"), ("user_id", "user_id")] + [
        (t.name, c) for t in options.identifier_types for c in t.event_columns
    ]


def _linked_pairs(options: RunOptions) -> list[tuple[str, str]]:
    """Column pairs whose co-occurrence on an event is a link, directed from the less trusted
    type to the more trusted one (the policy's limits read links that way)."""
    rank = {name: i for i, name in enumerate(options.priority_order())}
    pairs = []
    for (type_a, col_a), (type_b, col_b) in combinations(event_columns(options), 2):
        if rank[type_a] < rank[type_b]:
            (type_a, col_a), (type_b, col_b) = (type_b, col_b), (type_a, col_a)
        pairs.append((col_a, col_b))
    return pairs


def sql_fragments(options: RunOptions) -> dict[str, str]:
    q, lit = quote_identifier, quote_literal
    types = {col: type_name for type_name, col in event_columns(options)}
    extras = [c for t in options.identifier_types for c in t.event_columns]
    fragments: dict[str, str] = {
        "extra_columns": "".join(f", {q(c)}" for c in extras),
        "extra_columns_doc": "".join(f", {c}" for c in extras),
        "extra_order": "".join(f", {q(c)} NULLS LAST" for c in extras),
    }
    if extras:
        present = " + ".join(
            f"(CASE WHEN {q(c)} IS NOT NULL THEN 1 ELSE 0 END)" for _, c in event_columns(options)
        )
        fragments["links_condition"] = (
            f"({present}) >= 2 OR (previous_id IS NOT NULL AND user_id IS NOT NULL)"
        )
    else:
        fragments["links_condition"] = (
            "(anonymous_id IS NOT NULL AND user_id IS NOT NULL) "
            "OR (previous_id IS NOT NULL AND user_id IS NOT NULL)"
        )
    fragments["extra_occurrences"] = "".join(
        f"\n    UNION ALL\n    SELECT {lit(types[c])}, {q(c)}, first_ts, last_ts, event_count, "
        f"false FROM pairs WHERE {q(c)} IS NOT NULL"
        for c in extras
    )
    links = []
    for col_a, col_b in _linked_pairs(options):
        if {col_a, col_b} == {"anonymous_id", "user_id"}:
            continue  # written out in sql/40_candidate_edges.sql
        # Two columns of one type (em1, em2) holding the same value are one id, not a link.
        same = f" AND {q(col_a)} <> {q(col_b)}" if types[col_a] == types[col_b] else ""
        links.append(
            f"\n    UNION ALL\n    SELECT {lit(types[col_a])}, {q(col_a)}, {lit(types[col_b])}, "
            f"{q(col_b)}, 'same_event', source_table, event_count, first_ts, last_ts, "
            f"first_evidence FROM pairs WHERE {q(col_a)} IS NOT NULL AND {q(col_b)} IS NOT NULL"
            f"{same}"
        )
    fragments["extra_links"] = "".join(links)
    fragments.update(_hub_fragments(options))
    return fragments


def _hub_fragments(options: RunOptions) -> dict[str, str]:
    """The hub rules for sql/31_hub_degrees.sql: each unordered pair of types some rule links
    (pair_no, a_type, b_type), that pair's links read off pairs (pair_no, a, b: every column of
    a_type against every column of b_type), and the rules (rule_no, pair_no, side,
    identifier_type, linked_type, max_linked), side naming the end of the pair a rule judges."""
    q, lit = quote_identifier, quote_literal
    columns: dict[str, list[str]] = {}
    for type_name, col in event_columns(options):
        columns.setdefault(type_name, []).append(col)
    type_pairs: dict[frozenset[str], tuple[int, str, str]] = {}
    rules = []
    for rule_no, hub in enumerate(options.hubs):
        key = frozenset((hub.identifier_type, hub.linked_type))
        if key not in type_pairs:
            type_pairs[key] = (len(type_pairs), hub.identifier_type, hub.linked_type)
        pair_no, a_type, _ = type_pairs[key]
        side = "a" if hub.identifier_type == a_type else "b"
        # max_linked is a validated int: safe to write into the statement.
        rules.append(
            f"SELECT {rule_no} AS rule_no, {pair_no} AS pair_no, {lit(side)} AS side, "
            f"{lit(hub.identifier_type)} AS identifier_type, {lit(hub.linked_type)} AS "
            f"linked_type, {int(hub.max_linked)} AS max_linked"
        )
    pairs = [
        f"SELECT {n} AS pair_no, {lit(a)} AS a_type, {lit(b)} AS b_type"
        for n, a, b in type_pairs.values()
    ]
    links = [
        f"SELECT {n} AS pair_no, {q(ca)} AS a, {q(cb)} AS b FROM pairs "
        f"WHERE {q(ca)} IS NOT NULL AND {q(cb)} IS NOT NULL"
        for n, a, b in type_pairs.values()
        for ca in columns[a]
        for cb in columns[b]
    ]
    if not rules:
        # No rules (--no-hubs): typed empty rows, so the step finds no hub.
        pairs = ["SELECT 0 AS pair_no, 'none' AS a_type, 'none' AS b_type WHERE false"]
        rules = [
            "SELECT 0 AS rule_no, 0 AS pair_no, 'a' AS side, 'none' AS identifier_type, "
            "'none' AS linked_type, 0 AS max_linked WHERE false"
        ]
        links = [
            "SELECT 0 AS pair_no, CAST(NULL AS VARCHAR) AS a, CAST(NULL AS VARCHAR) AS b "
            "WHERE false"
        ]
    union = "\n    UNION ALL\n    ".join
    return {
        "hub_type_pairs": union(pairs),
        "hub_rules": union(rules),
        "hub_links": union(links),
        # Validated numbers (config.RunOptions): safe to write into the statement.
        "min_contention": str(int(options.hub_min_contention)),
        "outlier_factor": repr(float(options.hub_outlier_factor)),
    }


def hub_reason(row: dict, options: dict) -> str:
    """One sentence saying why a hub was condemned, from its quarantine row (the hub_* columns
    of sql/31_hub_degrees.sql) and the run's options as run.json records them
    (RunOptions.as_record; the defaults where an older run.json lacks a setting)."""
    kind, linked = row["identifier_type"], row["hub_linked_type"]
    degree, contention = int(row["hub_degree"]), int(row.get("hub_contention") or 0)
    rule = row.get("hub_rule") or "max_linked"
    min_contention = int(options.get("hub_min_contention", DEFAULT_HUB_MIN_CONTENTION))
    if rule == "max_linked":
        bound = next(
            (
                f"the bound of {h['max_linked']:,}"
                for h in options.get("hubs", [])
                if (h["identifier_type"], h["linked_type"]) == (kind, linked)
            ),
            "its bound",
        )
        setting = f"[hubs] {kind} = {{ {linked} = ... }}"
        return f"linked to {degree:,} {linked} values, more than {bound} ({setting})"
    if rule == "contention":
        return (
            f"its {degree:,} {linked} values lead to {contention:,} other {kind} values (a hub "
            f"at {min_contention} or more: [hubs] min_contention)"
        )
    # The outlier bar of sql/31_hub_degrees.sql, spelled out.
    factor = float(options.get("hub_outlier_factor", DEFAULT_HUB_OUTLIER_FACTOR))
    typical = int(row.get("hub_typical_degree") or 0)
    floor = max(typical, 3)
    bar = factor * floor * (min_contention - contention) / (min_contention - 2)
    return (
        f"linked to {degree:,} {linked} values, {contention:,} of them leading to other {kind} "
        f"values: more than {bar:g} = {factor:g} x {floor:,} x ({min_contention} - "
        f"{contention}) / ({min_contention} - 2), from the 99th-percentile {kind} degree "
        f"{typical:,} (at least 3), lower as contention nears {min_contention} ([hubs] "
        "outlier_factor, min_contention)"
    )


def junk_tables(options: RunOptions) -> tuple[pa.Table, pa.Table]:
    """junk_values(identifier_type, value) and junk_patterns(identifier_type, pattern); a NULL
    type applies to every type."""
    value_rows: list[tuple[str | None, str]] = [(None, v) for v in options.junk.values]
    pattern_rows: list[tuple[str | None, str]] = [(None, p) for p in options.junk.patterns]
    for t in options.identifier_types:
        value_rows += [(t.name, v) for v in t.junk.values]
        pattern_rows += [(t.name, p) for p in t.junk.patterns]
    values = arrays.table(
        {
            "identifier_type": arrays.string_array([r[0] for r in value_rows]),
            "value": arrays.string_array([r[1] for r in value_rows]),
        }
    )
    patterns = arrays.table(
        {
            "identifier_type": arrays.string_array([r[0] for r in pattern_rows]),
            "pattern": arrays.string_array([r[1] for r in pattern_rows]),
        }
    )
    return values, patterns


def junk_pattern_match(options: RunOptions) -> tuple[str, list[str]]:
    """The junk-pattern test of sql/30_identifiers.sql: SQL over `n.junk_key` and
    `n.identifier_type`, and the values of its `?` parameters in order.

    The patterns are bound parameters, never part of the SQL text. An engine compiles a bound
    regex once per query; read from a table column it would compile it once per identifier.
    """
    rows = [(None, p) for p in options.junk.patterns]
    for t in options.identifier_types:
        rows += [(t.name, p) for p in t.junk.patterns]
    conditions: list[str] = []
    params: list[str] = []
    for identifier_type, pattern in rows:
        # An anchored partial match is a full match on every engine (junk_key has no trailing
        # newline for Java's $ to stop before); regexp_full_match is DuckDB-only.
        test = "regexp_matches(n.junk_key, ?)"
        if identifier_type is not None:
            test = f"(n.identifier_type = ? AND {test})"
            params.append(identifier_type)
        conditions.append(test)
        params.append(f"^({pattern})$")
    return (" OR ".join(conditions) or "false"), params
