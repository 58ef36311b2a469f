"""The shape of the identity graph for a run: which columns are identifiers, which pairs of them
link, which hub rules apply. Produces the SQL fragments the graph steps in `sql/` are filled with.

Identifier columns of the events: `anonymous_id`, `user_id` and `previous_id` (a user id, only
on aliases) always; one column per configured extra type (named after the type).
"""

from __future__ import annotations

from itertools import combinations

import pyarrow as pa

from stitcher.config import RunOptions
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
    fragments["degree_queries"] = _degree_queries(options)
    return fragments


def _degree_queries(options: RunOptions) -> str:
    q, lit = quote_identifier, quote_literal
    columns: dict[str, list[str]] = {}
    for type_name, col in event_columns(options):
        columns.setdefault(type_name, []).append(col)
    queries = []
    for hub in options.hubs:
        a_columns, b_columns = columns[hub.identifier_type], columns[hub.linked_type]
        source = "pairs"
        col_a, col_b = q(a_columns[0]), q(b_columns[0])
        if len(a_columns) > 1 or len(b_columns) > 1:
            # A type read from several columns: every (column of one, column of the other).
            source = (
                "("
                + " UNION ALL ".join(
                    f"SELECT {q(a)} AS a, {q(b)} AS b FROM pairs"
                    for a in a_columns
                    for b in b_columns
                )
                + ")"
            )
            col_a, col_b = "a", "b"
        # max_linked is a validated int: safe to write into the statement.
        # Junk partners are left out by an anti-join with the junk identifiers only (a few
        # rows), not a join with every identifier: at 10M events that join probed 1.3M ids.
        queries.append(
            f"SELECT {lit(hub.identifier_type)} AS identifier_type, p.{col_a} AS identifier, "
            f"{lit(hub.linked_type)} AS linked_type, count(DISTINCT p.{col_b}) AS degree "
            f"FROM {source} AS p LEFT JOIN identifiers_junk AS j ON j.identifier_type = "
            f"{lit(hub.linked_type)} AND j.identifier = p.{col_b} "
            f"WHERE p.{col_a} IS NOT NULL AND p.{col_b} IS NOT NULL AND j.identifier IS NULL "
            f"GROUP BY p.{col_a} HAVING count(DISTINCT p.{col_b}) > {int(hub.max_linked)}"
        )
    if not queries:
        return (
            "SELECT CAST(NULL AS VARCHAR) AS identifier_type, CAST(NULL AS VARCHAR) AS "
            "identifier, CAST(NULL AS VARCHAR) AS linked_type, CAST(NULL AS BIGINT) AS degree "
            "WHERE false"
        )
    return "\nUNION ALL\n".join(queries)


def junk_tables(options: RunOptions) -> tuple[pa.Table, pa.Table]:
    """junk_values(identifier_type, value) and junk_patterns(identifier_type, pattern); a NULL
    type applies to every type."""
    value_rows: list[tuple[str | None, str]] = [(None, v) for v in options.junk.values]
    pattern_rows: list[tuple[str | None, str]] = [(None, p) for p in options.junk.patterns]
    for t in options.identifier_types:
        value_rows += [(t.name, v) for v in t.junk.values]
        pattern_rows += [(t.name, p) for p in t.junk.patterns]
    values = pa.table(
        {
            "identifier_type": pa.array([r[0] for r in value_rows], pa.string()),
            "value": pa.array([r[1] for r in value_rows], pa.string()),
        }
    )
    patterns = pa.table(
        {
            "identifier_type": pa.array([r[0] for r in pattern_rows], pa.string()),
            "pattern": pa.array([r[1] for r in pattern_rows], pa.string()),
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
