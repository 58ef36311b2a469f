"""`stitcher sql`: golden scripts per dialect, and the DuckDB script run against the fixtures.

The fixtures are loaded as warehouse tables (Segment schema, typed timestamps) into a DuckDB
database; the generated script runs there and must give the same id_map and users as
`stitcher run` on the files. The Spark script runs in tests/test_spark.py; the Snowflake and
BigQuery scripts are checked as text. Regenerate the goldens after an intended change with
STITCHER_UPDATE_GOLDENS=1 and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import polars as pl
import pytest
import sqlglot
from sqlglot import exp

from stitcher.config import IdentifierType, JunkRules, RunOptions
from stitcher.engines.base import STRING
from stitcher.engines.duckdb import DuckDBEngine
from stitcher.errors import EngineError, UsageError
from stitcher.input.load import canonical
from stitcher.warehouse.dialects import WarehouseTranslator
from stitcher.warehouse.script import (
    DIALECTS,
    DISTRIBUTED_DIALECTS,
    OUTPUT_TABLES,
    OutputTables,
    build,
    parse_script,
    render_script,
    run_script,
)

from conftest import FIXTURES, read_output, run_cli, stitch

GOLDEN_SQL = Path(__file__).parent / "golden_sql"
TRAITS = ("email", "name", "plan")
GOLDEN_ARGS = [
    "--output-schema",
    "identity",
    "--table",
    "tracks=analytics.tracks",
    "--table",
    "pages=analytics.pages",
    "--table",
    "identifies=analytics.identifies",
    "--table",
    "aliases=analytics.aliases",
    "--trait",
    "plan",
]
WAREHOUSE_NAMES = {
    "messageid": "id",
    "anonymousid": "anonymous_id",
    "userid": "user_id",
    "previousid": "previous_id",
}
SCENARIOS = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if (p / "expected_clusters.csv").exists() and not list(p.glob("*.json*"))
)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_script(dialect: str) -> None:
    produced = run_cli("sql", "--dialect", dialect, *GOLDEN_ARGS).output
    golden = GOLDEN_SQL / f"{dialect}.sql"
    if os.environ.get("STITCHER_UPDATE_GOLDENS") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"no golden {golden}; run with STITCHER_UPDATE_GOLDENS=1 and review"
    assert produced == golden.read_text(encoding="utf-8")


def test_the_script_has_one_bounded_loop_with_a_check() -> None:
    items = parse_script(run_cli("sql", *GOLDEN_ARGS, "--max-rounds", "7").output)
    loops = [i for i in items if isinstance(i, tuple)]
    assert len(loops) == 1
    body, check, max_rounds = loops[0]
    assert max_rounds == 7
    assert any("cc_large" in s for s in body) and "unsettled" in check


def load_warehouse(engine: DuckDBEngine, scenario: Path) -> dict[str, str]:
    """The scenario's CSV tables as typed warehouse tables analytics.<name>."""
    engine.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    tables = {}
    for csv in sorted(scenario.glob("*.csv")):
        name = csv.stem
        if name.startswith("expected"):
            continue
        engine.register_files(f"raw_{name}", [csv], "csv")
        ts = engine.timestamp_expression('"timestamp"', STRING)
        # The warehouse spelling of every column (a fixture may use the JSON one, userId).
        columns = [
            ts + ' AS "timestamp"'
            if c.name == "timestamp"
            else f'"{c.name}" AS "{WAREHOUSE_NAMES.get(canonical(c.name), c.name)}"'
            for c in engine.columns(f"raw_{name}")
        ]
        engine.execute(
            f'CREATE TABLE analytics."{name}" AS SELECT {", ".join(columns)} FROM "raw_{name}"'
        )
        tables[name] = f"analytics.{name}"
    return tables


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_duckdb_script_gives_the_same_id_map_and_users(scenario: str, tmp_path: Path) -> None:
    files_run = stitch(FIXTURES / scenario, tmp_path / "run", "--no-report")
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, FIXTURES / scenario)
        traits = [t for t in TRAITS if "identifies" in tables]
        script = render_script(
            build(tables, RunOptions(Path("."), Path("out")), traits), "duckdb", tables
        )
        run_script(script, engine)
        id_map = pl.from_arrow(
            engine.fetch_arrow("SELECT * FROM id_map ORDER BY identifier_type, identifier")
        )
        users = pl.from_arrow(engine.fetch_arrow("SELECT * FROM users ORDER BY person_id"))
    want_map = read_output(files_run, "id_map")
    assert id_map.equals(want_map.cast(id_map.schema)), scenario
    want_users = read_output(files_run, "users")
    assert users.select(want_users.columns).equals(
        want_users.cast(users.select(want_users.columns).schema)
    )


def test_script_folder_runs_like_the_script(tmp_path: Path) -> None:
    scenario = FIXTURES / "several_devices_several_logins"
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        args = [a for name, ref in tables.items() for a in ("--table", f"{name}={ref}")]
        run_cli("sql", *args, "--out", str(tmp_path / "steps"), "-q")
        names = sorted(p.name for p in (tmp_path / "steps").glob("*.sql"))
        assert names[0] == "000_README.sql" and any("_loop.sql" in n for n in names)
        # a path given as text is read as one, and a missing one is refused, not run as SQL
        with pytest.raises(UsageError, match="no script file or folder"):
            run_script(str(tmp_path / "no-steps"), engine)
        rounds = run_script(str(tmp_path / "steps"), engine)
        persons = engine.fetch_rows("SELECT count(DISTINCT person_id) FROM id_map")[0][0]
    assert rounds >= 1
    expected = pl.read_csv(scenario / "expected_clusters.csv")["cluster"].n_unique()
    assert persons == expected


def test_a_policy_that_replays_in_python_cannot_be_a_script() -> None:
    result = run_cli("sql", *GOLDEN_ARGS, "--policy", "segment", expect=1)
    assert "--policy segment" in result.output


def test_guarded_with_extra_types_replays_so_cannot_be_a_script(tmp_path: Path) -> None:
    config = tmp_path / "stitcher.toml"
    config.write_text('[identifiers.email]\ncolumns = ["email"]\n')
    args = ["sql", "--table", "identifies=a.identifies", "--trait", "email", "--config"]
    result = run_cli(*args, str(config), expect=1)
    assert "--policy guarded needs the data in Python" in result.output
    run_cli(*args, str(config), "--policy", "connected")


def test_unknown_table_name_is_refused() -> None:
    result = run_cli("sql", "--table", "events=analytics.events", expect=1)
    assert "tracks, pages, screens, identifies, aliases" in result.output


def test_loop_that_never_converges_is_an_error() -> None:
    script = (
        "-- stitcher:loop max_rounds=2\nSELECT 1;\n-- stitcher:until-zero\nSELECT 1;\n"
        "-- stitcher:end-loop\n"
    )
    with DuckDBEngine() as engine, pytest.raises(EngineError, match="did not converge in 2"):
        run_script(script, engine)


# -- Snowflake and BigQuery: the rewrites of stitcher/warehouse/dialects.py ----------------
# Neither warehouse is reachable here. What is checked: every statement parses in its
# dialect; the rewrite functions give the expected SQL on small expressions; and the same
# rewrites rendered as DuckDB SQL (same ordering keys, same NULL handling) are executed
# against the original MIN/MAX of a STRUCT, on small tables and on a whole generated run.

WAREHOUSES = ("snowflake", "bigquery")
OUTPUT_ORDER = {
    "id_map": "identifier_type, identifier",
    "users": "person_id",
    "edges": "from_type, from_id, to_type, to_id, rule",
    "rejected_edges": "from_type, from_id, to_type, to_id, rule",
    "quarantine": "identifier_type, identifier",
}
GENERATED_TRAITS = ("email", "name", "plan")


def script_options() -> dict[str, RunOptions]:
    base = RunOptions(Path("."), Path("out"))
    email = IdentifierType(
        "email",
        ("email",),
        normalize="lower_trim",
        junk=JunkRules(values=("noreply@example.com",), patterns=(r".*@test\.example",)),
    )
    return {
        "guarded": base,
        "dedupe": dataclasses.replace(base, dedupe=True),
        "connected_email": dataclasses.replace(base, policy="connected", identifier_types=(email,)),
        "mixpanel_simplified": dataclasses.replace(base, policy="mixpanel-simplified"),
        "junk_patterns": dataclasses.replace(
            base, junk=base.junk.extended(JunkRules(values=(), patterns=(r"tab\there", "x-\\d+")))
        ),
    }


def statements(script: str) -> list[str]:
    out: list[str] = []
    for item in parse_script(script):
        out += [item] if isinstance(item, str) else [*item[0], item[1]]
    return out


@pytest.mark.parametrize("variant", sorted(script_options()))
@pytest.mark.parametrize("warehouse", WAREHOUSES)
def test_warehouse_script_parses_in_its_dialect(warehouse: str, variant: str) -> None:
    tables = {"tracks": "analytics.tracks", "identifies": "analytics.identifies"}
    tables["aliases"] = "analytics.aliases"
    options = script_options()[variant]
    outputs = OutputTables("identity")
    items = build(tables, options, TRAITS, warehouse, outputs)
    script = render_script(items, warehouse, tables)
    parsed = [sqlglot.parse_one(s, read=warehouse) for s in statements(script)]
    assert len(parsed) > 30
    text = script.upper()
    # What neither warehouse has: MIN/MAX of a STRUCT, LIST_SORT/ARRAY_SORT of an aggregate,
    # FILTER clauses, DuckDB's struct literals and struct_extract.
    for node in (n for tree in parsed for n in tree.walk()):
        if isinstance(node, exp.Min | exp.Max):
            # Not even inside a CASE (the latest value of a trait that is also an id column).
            inner = node.this.sql(warehouse).upper()
            assert not node.this.find(exp.Struct) and "OBJECT_CONSTRUCT" not in inner, inner
    assert "FILTER(" not in text.replace(" ", "")
    assert "STRUCT_EXTRACT" not in text and "LIST_SORT" not in text
    assert "{'" not in script
    if warehouse == "bigquery":
        assert "ARRAY_SORT" not in text and "HASH(" not in text.replace("FINGERPRINT(", "")
        assert "NULLS LAST" not in text.split("ORDER BY")[0]  # only a query's ORDER BY may
    else:
        assert "TIMESTAMPNTZ" not in text and ", 'G')" not in text


def load_generated(engine: DuckDBEngine, folder: Path) -> dict[str, str]:
    """Generated events as typed warehouse tables, with some unknown times, missing message
    ids and times rounded to the hour, so that NULL struct fields and ties occur."""
    engine.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    tables = {}
    for name in ("tracks", "pages", "identifies", "aliases"):
        extra = {"aliases": ", previous_id", "identifies": ", email, name, plan"}.get(name, "")
        engine.execute(
            f"CREATE TABLE analytics.{name} AS SELECT "
            "CASE WHEN hash(id) % 11 = 0 THEN NULL ELSE id END AS id, "
            f"anonymous_id, user_id{extra}, CASE WHEN hash(id) % 7 = 0 THEN NULL "
            'ELSE date_trunc(\'hour\', CAST("timestamp" AS TIMESTAMP)) END AS "timestamp" '
            f"FROM read_parquet('{folder / name}.parquet')"
        )
        tables[name] = f"analytics.{name}"
    return tables


def run_outputs(folder: Path, options: RunOptions, dialect: str, form: str) -> dict:
    with DuckDBEngine() as engine:
        tables = load_generated(engine, folder)
        items = build(tables, options, GENERATED_TRAITS, dialect)
        script = render_script(items, dialect, tables, form)
        run_script(script, engine)
        return {
            name: engine.fetch_arrow(f"SELECT * FROM {name} ORDER BY {order}")
            for name, order in OUTPUT_ORDER.items()
        }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    run_cli("generate", str(folder), "--events", "20000", "--hardcoded-device-people", "60", "-q")
    return folder


@pytest.mark.parametrize("variant", ["guarded", "connected_email", "dedupe"])
def test_rewritten_aggregates_give_the_original_outputs_on_generated_data(
    generated: Path, variant: str
) -> None:
    options = script_options()[variant]
    want = run_outputs(generated, options, "duckdb", "duckdb")
    assert want["edges"].num_rows > 1000 and want["quarantine"].num_rows > 0
    assert want["edges"].column("evidence_at").null_count > 0  # unknown times took part
    for warehouse in WAREHOUSES:
        got = run_outputs(generated, options, warehouse, "duckdb")
        for name in OUTPUT_ORDER:
            assert got[name].equals(want[name]), (warehouse, name)


def typed_translator(warehouse: str, form: str | None = None) -> WarehouseTranslator:
    translator = WarehouseTranslator(warehouse, {}, form)
    translator.declare(
        "t",
        {
            "g": "INTEGER",
            "x": "INTEGER",
            "y": "VARCHAR",
            "c": "BOOLEAN",
            "s": 'STRUCT("ts" TIMESTAMP, "v" VARCHAR)',
        },
    )
    return translator


def compact(sql: str) -> str:
    return " ".join(sql.split()).replace("( ", "(").replace(" )", ")")


def test_bigquery_min_of_a_struct_is_an_ordered_array_agg() -> None:
    sql = typed_translator("bigquery").translate(
        "SELECT min({'x_unknown': x IS NULL, 'x': x, 'y': y}) FILTER (WHERE c) AS m FROM t"
    )
    assert compact(sql) == (
        "SELECT ARRAY_AGG(IF(t.c, STRUCT(t.x IS NULL AS x_unknown, t.x AS x, t.y AS y), NULL) "
        "IGNORE NULLS ORDER BY t.x IS NULL ASC, t.x ASC, t.y IS NULL ASC, t.y ASC LIMIT 1)"
        "[SAFE_OFFSET(0)] AS m FROM t AS t"
    )


def test_bigquery_max_of_a_struct_column_and_its_field() -> None:
    sql = typed_translator("bigquery").translate("SELECT struct_extract(max(s), 'v') AS v FROM t")
    assert compact(sql) == (
        "SELECT (ARRAY_AGG(t.s IGNORE NULLS ORDER BY t.s.ts IS NULL DESC, t.s.ts DESC, "
        "t.s.v IS NULL DESC, t.s.v DESC LIMIT 1)[SAFE_OFFSET(0)]).v AS v FROM t AS t"
    )


def test_snowflake_min_of_a_struct_is_the_first_of_an_ordered_array_agg() -> None:
    sql = typed_translator("snowflake").translate(
        "SELECT min({'x': x, 'y': y}) FILTER (WHERE c) AS m FROM t"
    )
    assert compact(sql) == (
        'SELECT GET(ARRAY_AGG(IFF("T"."C", OBJECT_CONSTRUCT(\'x\', "T"."X", \'y\', "T"."Y"), '
        'NULL)) WITHIN GROUP (ORDER BY IFF("T"."C", 0, 1) ASC, "T"."X" ASC, "T"."Y" ASC), 0) '
        'AS "M" FROM "T" AS "T"'
    )


def test_snowflake_struct_field_is_a_typed_get_path() -> None:
    translator = typed_translator("snowflake")
    sql = translator.translate("SELECT s.ts AS ts, struct_extract(max(s), 'v') AS v FROM t")
    assert compact(sql) == (
        'SELECT CAST(GET_PATH("T"."S", \'ts\') AS TIMESTAMP_NTZ) AS "TS", CAST(GET_PATH((GET('
        'ARRAY_AGG("T"."S") WITHIN GROUP (ORDER BY CAST(GET_PATH("T"."S", \'ts\') AS '
        "TIMESTAMP_NTZ) DESC, CAST(GET_PATH(\"T\".\"S\", 'v') AS VARCHAR) DESC), 0)), 'v') AS "
        'VARCHAR) AS "V" FROM "T" AS "T"'
    )


def test_sorted_lists_hash_regex_and_null_order() -> None:
    bigquery = typed_translator("bigquery")
    sql = compact(
        bigquery.translate(
            "SELECT list_sort(list(y) FILTER (WHERE c)) AS ys, hash(y) AS h, "
            "regexp_replace(y, '^[\\t ]+', '', 'g') AS r, "
            "row_number() OVER (ORDER BY y NULLS LAST) AS n FROM t GROUP BY y"
        )
    )
    assert "ARRAY_AGG(IF(t.c, t.y, NULL) IGNORE NULLS ORDER BY t.y ASC) AS ys" in sql
    assert "FARM_FINGERPRINT(t.y) AS h" in sql
    assert "REGEXP_REPLACE(t.y, '^[\\\\t ]+', '') AS r" in sql
    assert "ROW_NUMBER() OVER (ORDER BY t.y IS NULL ASC, t.y ASC) AS n" in sql
    snowflake = compact(
        typed_translator("snowflake").translate(
            "SELECT list_sort(list(y) FILTER (WHERE c)) AS ys, "
            "regexp_replace(y, '^[\\t ]+', '', 'g') AS r, CAST([] AS VARCHAR[]) AS e FROM t"
        )
    )
    assert (
        'ARRAY_AGG(IFF("T"."C", "T"."Y", NULL)) WITHIN GROUP (ORDER BY "T"."Y" ASC) AS "YS"'
        in snowflake
    )
    # The tab is a tab in the pattern (Snowflake's POSIX ERE has no \t escape).
    assert 'REGEXP_REPLACE("T"."Y", \'^[\\t ]+\', \'\') AS "R"' in snowflake
    assert 'ARRAY_CONSTRUCT() AS "E"' in snowflake


SMALL_ROWS = """
SELECT * FROM (VALUES
    (1, 1, 'b', true), (1, NULL, 'a', true), (1, 1, NULL, true), (1, 0, 'z', false),
    (2, NULL, 'b', true), (2, NULL, NULL, true), (2, NULL, 'a', true),
    (3, 5, 'a', false), (3, 5, 'b', false),
    (4, 2, NULL, true), (4, 2, 'c', true), (4, 3, 'c', NULL)
) AS v(g, x, y, c)
"""


@pytest.mark.parametrize("warehouse", WAREHOUSES)
@pytest.mark.parametrize(
    "aggregate",
    [
        "min({'x': x, 'y': y})",
        "max({'x': x, 'y': y})",
        "min({'x': x, 'y': y}) FILTER (WHERE c)",
        "max({'x': x, 'y': y}) FILTER (WHERE c)",
    ],
)
def test_rewritten_aggregate_orders_null_fields_as_duckdb(warehouse: str, aggregate: str) -> None:
    """No *_unknown flags here: the keys alone must put a NULL field where DuckDB does (after
    every value), in the warehouse's key style, executed by DuckDB."""
    translator = typed_translator(warehouse, form="duckdb")
    original = f"SELECT g, {aggregate} AS m FROM t GROUP BY g ORDER BY g"
    rewritten = translator.translate(original)
    assert "ARRAY_AGG" in rewritten.upper()
    with DuckDBEngine() as engine:
        engine.execute(f"CREATE TABLE t AS {SMALL_ROWS}")
        want = engine.fetch_rows(original)
        got = engine.fetch_rows(rewritten)
    assert got == want
    assert any(m is None for _, m in want) or "FILTER" not in aggregate


def test_bigquery_truncates_its_datetimes_with_datetime_trunc() -> None:
    sql = compact(typed_translator("bigquery").translate("SELECT date_trunc('minute', x) FROM t"))
    assert "DATETIME_TRUNC(" in sql and "TIMESTAMP_TRUNC" not in sql


@pytest.mark.parametrize("dialect", DIALECTS)
def test_distributed_dialects_number_nodes_in_buckets(dialect: str) -> None:
    """The warehouses and Spark would run an unpartitioned window in one task: their scripts
    number node ids bucket by bucket; DuckDB's keeps its one ordered window."""
    tables = {"tracks": "analytics.tracks"}
    outputs = OutputTables("identity")
    items = build(tables, RunOptions(Path("."), Path("out")), dialect=dialect, outputs=outputs)
    text = render_script(items, dialect, tables).upper().replace('"', "")
    bucketed = re.search(r"PARTITION BY\s+(KEYED\.)?BUCKET_LATER_TYPE", text) is not None
    assert bucketed == (dialect in DISTRIBUTED_DIALECTS) == (dialect != "duckdb")


# -- whose tables: scratch names, the guard over the outputs, and the options naming them --


def _segment_users(engine: DuckDBEngine, schema: str) -> list[tuple]:
    """Segment's own `users` table (one row per user id, with traits), as its warehouse
    destination makes it, in `schema`; returns its rows."""
    engine.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    engine.execute(
        f"CREATE TABLE {schema}.users AS SELECT * FROM (VALUES ('u-1', 'a@example.com', "
        "TIMESTAMP '2026-11-01 10:00:00')) AS t(id, email, received_at)"
    )
    return engine.fetch_rows(f"SELECT * FROM {schema}.users")


def _relations(engine: DuckDBEngine) -> set[str]:
    rows = engine.fetch_rows("SELECT table_schema, table_name FROM information_schema.tables")
    return {f"{schema}.{name}" for schema, name in rows}


def _script(tables: dict[str, str], *extra: str) -> str:
    args = [a for name, ref in tables.items() for a in ("--table", f"{name}={ref}")]
    return run_cli("sql", *args, *extra).output


@pytest.mark.parametrize(
    "where", [[], ["--output-schema", "ANALYTICS"], ["--output-table", "users=USERS"]]
)
def test_the_script_stops_before_touching_a_users_table_it_did_not_make(where: list[str]) -> None:
    """In the current schema (the default), or named in another case: DuckDB resolves names
    without regard to case, so the guard must compare them so too."""
    scenario = FIXTURES / "several_devices_several_logins"
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        engine.execute("USE analytics")  # the outputs' default place: the current schema
        segment = _segment_users(engine, "analytics")
        before = _relations(engine)
        with pytest.raises(EngineError) as stopped:
            run_script(_script(tables, *where), engine)
        assert engine.fetch_rows("SELECT * FROM analytics.users") == segment
        assert _relations(engine) == before  # nothing made, nothing dropped
    message = str(stopped.value)
    assert "stitcher: table analytics.users exists and was not made by stitcher sql" in message
    assert "--output-schema or --output-table" in message


def test_outputs_elsewhere_leave_segment_tables_alone_and_no_scratch_behind() -> None:
    scenario = FIXTURES / "several_devices_several_logins"
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        engine.execute("USE analytics")
        segment = _segment_users(engine, "analytics")
        engine.execute("CREATE SCHEMA identity")
        inputs = _relations(engine)
        script = _script(tables, "--output-schema", "identity")
        run_script(script, engine)
        first = engine.fetch_rows("SELECT * FROM identity.id_map ORDER BY ALL")
        # Run again: the outputs it made are its own to replace.
        run_script(script, engine)
        assert engine.fetch_rows("SELECT * FROM identity.id_map ORDER BY ALL") == first
        made = _relations(engine) - inputs
        assert engine.fetch_rows("SELECT * FROM analytics.users") == segment
        comments = engine.fetch_rows(
            "SELECT table_name, table_comment FROM information_schema.tables "
            "WHERE table_schema = 'identity' ORDER BY table_name"
        )
    assert made == {f"identity.{name}" for name in OUTPUT_TABLES}
    assert all(c.startswith(f"stitcher sql output: {n} ") for n, c in comments)
    assert len(first) > 0


def test_output_tables_can_be_renamed_and_an_input_named_like_a_step_is_read_not_dropped(
    tmp_path: Path,
) -> None:
    """An input table called `pairs` in the current schema: the old script's
    `DROP TABLE IF EXISTS pairs` (before its own pairs existed) dropped it."""
    scenario = FIXTURES / "several_devices_several_logins"
    files_run = stitch(scenario, tmp_path / "run", "--no-report")
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        engine.execute("CREATE TABLE main.pairs AS SELECT * FROM analytics.tracks")
        tables["tracks"] = "pairs"
        engine.execute("CREATE SCHEMA identity")
        script = _script(
            tables, "--output-schema", "identity", "--output-table", "users=people",
            "--output-table", "id_map=identity_map",
        )  # fmt: skip
        run_script(script, engine)
        assert engine.fetch_rows("SELECT count(*) FROM main.pairs")[0][0] > 0
        id_map = pl.from_arrow(
            engine.fetch_arrow(
                "SELECT * FROM identity.identity_map ORDER BY identifier_type, identifier"
            )
        )
        people = engine.fetch_rows("SELECT count(*) FROM identity.people")[0][0]
        names = {r[0] for r in engine.fetch_rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'identity'"
        )}  # fmt: skip
    want_map = read_output(files_run, "id_map")
    assert id_map.equals(want_map.cast(id_map.schema))
    assert people == read_output(files_run, "users").height
    assert names == {"identity_map", "people", "edges", "rejected_edges", "quarantine"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output-table", "persons=p"], "--output-table persons=...: the outputs are id_map"),
        (["--output-table", "users=a.b"], "give a plain table name"),
        (["--output-table", "users=stitcher__users"], "not starting with stitcher__"),
        (["--output-table", "users=edges"], "names two outputs alike"),
        (["--output-schema", "a.b.c"], "--output-schema a.b.c: give schema or database.schema"),
        (["--dialect", "bigquery"], "give --output-schema DATASET"),
    ],
)
def test_output_names_that_cannot_work_are_refused(extra: list[str], message: str) -> None:
    result = run_cli("sql", "--table", "tracks=analytics.tracks", *extra, expect=1)
    assert message in result.output
    assert result.output.count("\n") == 1


def test_a_users_table_made_while_the_script_runs_stops_it_before_publishing() -> None:
    """The guard runs again just before the outputs are published: a table someone made
    under an output's name meanwhile is not dropped."""
    scenario = FIXTURES / "several_devices_several_logins"
    with DuckDBEngine() as engine:
        tables = load_warehouse(engine, scenario)
        engine.execute("USE analytics")
        items = parse_script(_script(tables))
        guards = [i for i, item in enumerate(items) if str(item).startswith("SELECT error(")]
        assert len(guards) == 2
        for item in items[: guards[1]]:
            if isinstance(item, str):
                engine.execute(item)
            else:
                body, check, _ = item
                while True:
                    for statement in body:
                        engine.execute(statement)
                    if engine.fetch_rows(check)[0][0] == 0:
                        break
        segment = _segment_users(engine, "analytics")
        with pytest.raises(EngineError, match=r"analytics\.users exists and was not made by"):
            run_script("".join(f"{i};\n" for i in items[guards[1] :]), engine)
        assert engine.fetch_rows("SELECT * FROM analytics.users") == segment
