"""Snowflake and BigQuery: rewrites that make the pipeline's DuckDB SQL run there.

sqlglot translates syntax, but some of what the pipeline's SQL does has no one-to-one
translation. The rewrites here work on sqlglot's AST, statement by statement, after the
statement has been qualified and typed by sqlglot's optimizer against the schema of every table
the script created before it (so a column's STRUCT fields and their types are known):

* the least/greatest of a STRUCT (first evidence, a hub's worst rule, latest traits) becomes an
  ordered ARRAY_AGG of the struct (an OBJECT on Snowflake) whose first element is taken, ordered
  field by field with DuckDB's order of NULL fields made explicit;
* struct field access (`x.f`, `struct_extract(x, 'f')`) becomes `GET_PATH(x, 'f')` cast to the
  field's type on Snowflake, whose OBJECTs hold VARIANTs;
* `list_sort(list(x) FILTER (...))` becomes an ordered ARRAY_AGG (BigQuery has no array sort);
* smaller differences: `hash()`, DuckDB's `'g'` flag of regexp_replace, regex escapes, NULL
  ordering in window ORDER BY, empty array literals, type names and Snowflake's identifier case.

Each rule cites the vendor's documented behaviour it relies on. Neither warehouse is reachable
here: the rewritten scripts are checked by parsing them in their dialect, the same rewrites
rendered as DuckDB SQL are executed in the tests against the original, and the Snowflake
script runs on the emulator fakesnow (tests/test_snowflake.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from stitcher.engines.base import Column
from stitcher.errors import ConfigError, EngineError
from stitcher.warehouse import REWRITTEN_DIALECTS

# A name Snowflake would resolve the same way unquoted: it stores and matches unquoted names
# in upper case, and a double-quoted name exactly as written (docs.snowflake.com,
# sql-reference/identifiers-syntax).
SNOWFLAKE_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
# A key a Snowflake path names without brackets.
_PATH_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Regex escapes DuckDB's RE2 reads inside a bracket expression that Snowflake's POSIX ERE may
# not: Snowflake documents only the Perl classes \d \s \w \D \S \W \b \B on top of POSIX ERE
# (docs.snowflake.com, sql-reference/functions-regexp).
_CONTROL_ESCAPES = {"t": "\t", "n": "\n", "f": "\f", "r": "\r"}


# sqlglot's types of DuckDB expressions, and what it leaves unknown: regexp_replace gives text
# (the loader's id_text ends in one; an untyped id column that is also a trait left its
# latest-value STRUCT unrecognized, and MAX of it untranslated).
_TYPES = {
    **Dialect.get_or_raise("duckdb").EXPRESSION_METADATA,
    exp.RegexpReplace: {"returns": exp.DataType.Type.VARCHAR},
}


class WarehouseTranslator:
    """Translates the pipeline's statements, in script order, into one warehouse's SQL.

    `inputs`: the declared columns of each input table, by the reference the script reads it
    from (e.g. "analytics.tracks"). `form`: the dialect the rewrites are rendered in; by default
    the warehouse's own, "duckdb" renders the same ordering logic as DuckDB SQL (for tests).
    """

    def __init__(
        self,
        warehouse: str,
        inputs: Mapping[str, Sequence[Column]],
        form: str | None = None,
    ) -> None:
        if warehouse not in REWRITTEN_DIALECTS:
            raise ConfigError(
                f"no warehouse rewrites for {warehouse!r}; they exist for "
                f"{', '.join(REWRITTEN_DIALECTS)}"
            )
        self.warehouse = warehouse
        self.form = form or warehouse
        if self.form not in (warehouse, "duckdb"):
            raise ConfigError(f"form must be {warehouse!r} or 'duckdb', not {self.form!r}")
        self._schema = MappingSchema(dialect="duckdb")
        self._inputs = {_table_key(exp.to_table(ref)): list(cols) for ref, cols in inputs.items()}

    def declare(self, table: str, columns: Mapping[str, str]) -> None:
        """Make a table's columns {name: DuckDB type} known, as if a statement had created it."""
        self._schema.add_table(exp.to_table(table), dict(columns), dialect="duckdb")

    def translate(self, sql: str) -> str:
        """One DuckDB statement as SQL of the warehouse (or of the DuckDB form)."""
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.SqlglotError as exc:
            raise EngineError(f"cannot parse SQL: {exc}", sql=sql) from exc
        tree = self._rewrite_statement(tree, sql)
        tree = finish(tree, self.form)
        try:
            return tree.sql(dialect=self.form, pretty=True)
        except sqlglot.errors.SqlglotError as exc:
            raise EngineError(f"cannot write SQL for {self.form}: {exc}", sql=sql) from exc

    def _rewrite_statement(self, tree: exp.Expression, sql: str) -> exp.Expression:
        if isinstance(tree, exp.Create) and isinstance(tree.expression, exp.Query):
            # Declared as qualified as the script names it (the output schema, if any).
            query, name = tree.expression, _table_key(tree.this)
        elif isinstance(tree, exp.Query):
            query, name = tree, None
        else:
            return tree  # DROP and the like: nothing typed in them
        source = _star_source(query)
        if name and source is not None and _table_key(source) in self._inputs:
            # A view over an input table: its columns are the declared ones.
            self.declare(name, {c.name: c.engine_type for c in self._inputs[_table_key(source)]})
            return tree
        try:
            typed = qualify(
                query.copy(),
                schema=self._schema,
                dialect="duckdb",
                quote_identifiers=False,
                validate_qualify_columns=False,
            )
            typed = typed.transform(_struct_extract_as_dot)
            typed = annotate_types(
                typed, schema=self._schema, expression_metadata=_TYPES, dialect="duckdb"
            )
        except sqlglot.errors.SqlglotError as exc:
            raise EngineError(
                f"cannot type the statement for {self.warehouse}: {exc}", sql=sql
            ) from exc
        if name:
            self.declare(name, {s.alias_or_name: _type_sql(s.type) for s in typed.selects})
        rewritten = rewrite(typed, self.warehouse, self.form)
        if isinstance(tree, exp.Create):
            tree.set("expression", rewritten)
            return tree
        return rewritten


def rewrite(tree: exp.Expression, warehouse: str, form: str | None = None) -> exp.Expression:
    """The warehouse rewrites of one typed (annotate_types) query, rendered for `form`."""
    form = form or warehouse
    if form == "snowflake":
        tree = tree.transform(_snowflake_field_access)
    tree = tree.transform(lambda node: _struct_extreme(node, warehouse, form))
    tree = tree.transform(lambda node: _sorted_list(node, form))
    return tree


def finish(tree: exp.Expression, form: str) -> exp.Expression:
    """Rewrites that need no types: function names, literals, NULL ordering, identifiers."""
    if form == "bigquery":
        tree = tree.transform(_bigquery_node)
        tree = tree.transform(_bigquery_null_order)
    elif form == "snowflake":
        tree = tree.transform(_snowflake_node)
    return tree


# -- the least/greatest of a STRUCT ---------------------------------------------------------


def struct_extreme(
    aggregate: exp.Min | exp.Max,
    warehouse: str,
    form: str | None = None,
    condition: exp.Expression | None = None,
) -> exp.Expression:
    """MIN/MAX(struct) [FILTER (WHERE condition)] as an ordered aggregate taking the first
    element, ordered field by field as DuckDB orders structs (a NULL field after every value).

    The argument is a struct constructor or any expression of a typed STRUCT.
    BigQuery: ARRAY_AGG(IF(c, s, NULL) IGNORE NULLS ORDER BY keys LIMIT 1)[SAFE_OFFSET(0)];
    Snowflake: GET(ARRAY_AGG(IFF(c, OBJECT_CONSTRUCT(...), NULL)) WITHIN GROUP (ORDER BY keys), 0);
    DuckDB form: (ARRAY_AGG(s ORDER BY keys) FILTER (WHERE c AND s IS NOT NULL))[1].
    """
    form = form or warehouse
    descending = isinstance(aggregate, exp.Max)
    argument = aggregate.this
    fields = _struct_fields(argument, form)
    # DuckDB compares structs field by field, and a NULL field sorts after any value (MIN
    # prefers a value, MAX a NULL): ASC NULLS LAST for MIN, DESC NULLS FIRST for MAX.
    keys = [exp.Ordered(this=value, desc=descending, nulls_first=descending) for _, value in fields]
    keys = _emulated_null_order(keys) if warehouse == "bigquery" else _distinct_keys(keys)
    if form == "snowflake":
        # Snowflake (docs.snowflake.com, sql-reference/functions/array_agg, object_construct):
        # ARRAY_AGG omits NULL values and returns an empty array for no input; WITHIN GROUP
        # takes the parameters of a query's ORDER BY (NULLS FIRST/LAST included); GET(array, 0)
        # is the first element, NULL when there is none. OBJECT_CONSTRUCT leaves out a pair
        # whose value is NULL, so GET of that field gives SQL NULL. ARRAY_AGG returns at most
        # 16 MB (see README).
        value = (
            _object_construct([(name, value) for name, value in _struct_items(argument)])
            if isinstance(argument, exp.Struct)
            else argument.copy()
        )
        if condition is not None:
            value = exp.If(this=condition.copy(), true=value, false=exp.Null())
            # The rows the condition keeps sort first, so element 0 is theirs even where an
            # ARRAY_AGG keeps NULLs (the emulator fakesnow does, unlike Snowflake).
            first = exp.If(
                this=condition.copy(), true=exp.Literal.number(0), false=exp.Literal.number(1)
            )
            keys = [exp.Ordered(this=first, desc=False, nulls_first=False), *keys]
        ordered = exp.WithinGroup(
            this=exp.ArrayAgg(this=value), expression=exp.Order(expressions=keys)
        )
        return exp.Anonymous(this="GET", expressions=[ordered, exp.Literal.number(0)])
    value = argument.copy()
    if form == "bigquery":
        # BigQuery (cloud.google.com/bigquery/docs/reference/standard-sql: data-types,
        # aggregate-function-calls): MIN/MAX need an orderable type and STRUCT is not one; an
        # aggregate call takes IGNORE NULLS, then ORDER BY (ASC/DESC only) and LIMIT; and
        # SAFE_OFFSET(0) of an empty or NULL array is NULL, as MIN over no rows is.
        if condition is not None:
            value = exp.If(this=condition.copy(), true=value, false=exp.Null())
        aggregated = exp.IgnoreNulls(
            this=exp.ArrayAgg(
                this=exp.Limit(
                    this=exp.Order(this=value, expressions=keys), expression=exp.Literal.number(1)
                )
            )
        )
        return exp.Bracket(
            this=aggregated, expressions=[exp.Literal.number(0)], offset=0, safe=True
        )
    keep = exp.Not(this=exp.Is(this=_operand(argument), expression=exp.Null()))
    if condition is not None:
        keep = exp.And(this=exp.Paren(this=condition.copy()), expression=keep)
    aggregated = exp.Filter(
        this=exp.ArrayAgg(this=exp.Order(this=value, expressions=keys)),
        expression=exp.Where(this=keep),
    )
    return exp.Bracket(
        this=exp.Paren(this=aggregated), expressions=[exp.Literal.number(0)], offset=0
    )


def _struct_extreme(node: exp.Expression, warehouse: str, form: str) -> exp.Expression:
    aggregate, condition = node, None
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.Min | exp.Max):
        aggregate, condition = node.this, node.expression.this
    elif isinstance(node, exp.Min | exp.Max) and _guarded_struct(node.this) is not None:
        # MAX(CASE WHEN c THEN struct END): the same aggregate as MAX(struct) FILTER (WHERE c).
        case = node.this
        aggregate = node.copy()
        aggregate.set("this", _guarded_struct(case).copy())
        condition = case.args["ifs"][0].this
    if not isinstance(aggregate, exp.Min | exp.Max) or not _is_struct(aggregate.this):
        return node
    if isinstance(node.parent, exp.Window) or aggregate.expressions:
        raise ConfigError(f"cannot rewrite {node.sql('duckdb')} for {warehouse}")
    return struct_extreme(aggregate, warehouse, form, condition)


def _guarded_struct(node: exp.Expression) -> exp.Struct | None:
    """The struct of `CASE WHEN c THEN struct END` (one branch, no ELSE), else None."""
    if not isinstance(node, exp.Case) or node.args.get("default") is not None:
        return None
    branches = node.args.get("ifs") or []
    if len(branches) != 1 or not isinstance(branches[0].args.get("true"), exp.Struct):
        return None
    return branches[0].args["true"]


def _struct_items(struct: exp.Struct) -> list[tuple[str, exp.Expression]]:
    items = []
    for item in struct.expressions:
        if not isinstance(item, exp.PropertyEQ | exp.Alias):
            raise ConfigError(f"a struct field needs a name: {struct.sql('duckdb')}")
        value = item.expression if isinstance(item, exp.PropertyEQ) else item.this
        name = item.this.name if isinstance(item, exp.PropertyEQ) else item.alias
        items.append((name, value))
    return items


def _struct_fields(argument: exp.Expression, form: str) -> list[tuple[str, exp.Expression]]:
    """(name, expression) of each field, in order: the constructor's own expressions, or a field
    access per field of the argument's STRUCT type."""
    if isinstance(argument, exp.Struct):
        return [(name, value.copy()) for name, value in _struct_items(argument)]
    fields = []
    for column in argument.type.expressions:
        fields.append((column.name, field_access(argument, column.name, column.args["kind"], form)))
    return fields


def field_access(
    value: exp.Expression, name: str, field_type: exp.DataType, form: str
) -> exp.Expression:
    """`value.name` in `form`. Snowflake: a field of an OBJECT is a VARIANT; GET returns SQL
    NULL for a key the OBJECT lacks, and a VARIANT holding a value (a timestamp included, per
    TO_TIMESTAMP's reference) casts back to the field's type."""
    if form != "snowflake":
        target = (
            value.copy()
            if isinstance(value, exp.Column | exp.Dot)
            else exp.Paren(this=value.copy())
        )
        return exp.Dot(this=target, expression=exp.to_identifier(name))
    # GET_PATH(x, 'f') is x:f (docs.snowflake.com, functions/get_path); cast from the VARIANT,
    # a string value gives the string itself (the emulator fakesnow agrees for GET_PATH, and
    # keeps the JSON quotes for GET). A key that is not a plain name would need quoting inside
    # the path: GET(x, 'key') looks it up exactly.
    function = "GET_PATH" if _PATH_KEY.fullmatch(name) else "GET"
    got = exp.Anonymous(this=function, expressions=[value.copy(), exp.Literal.string(name)])
    if field_type.is_type(exp.DataType.Type.STRUCT):
        return got  # a nested OBJECT stays one
    return exp.Cast(this=got, to=_snowflake_type(field_type, name))


def _snowflake_field_access(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Dot) and _is_struct(node.this):
        return field_access(node.this, node.name, node.type or _unknown(), "snowflake")
    return node


def _object_construct(items: list[tuple[str, exp.Expression]]) -> exp.Expression:
    args: list[exp.Expression] = []
    for name, value in items:
        args += [exp.Literal.string(name), value.copy()]
    return exp.Anonymous(this="OBJECT_CONSTRUCT", expressions=args)


# -- list_sort(list(x) FILTER (WHERE c)) ----------------------------------------------------


def _sorted_list(node: exp.Expression, form: str) -> exp.Expression:
    if not isinstance(node, exp.ArraySort):
        return node
    rewritten = _sorted_aggregate(node, form)
    if rewritten is not None:
        return rewritten
    if form == "bigquery":
        raise ConfigError(f"BigQuery has no array sort for {node.sql('duckdb')}")
    return node


def _sorted_aggregate(node: exp.ArraySort, form: str) -> exp.Expression | None:
    inner, condition = node.this, None
    if isinstance(inner, exp.Filter):
        inner, condition = inner.this, inner.expression.this
    if not isinstance(inner, exp.ArrayAgg) or isinstance(inner.this, exp.Order):
        return None
    element = inner.this
    # The elements are sorted ascending; none is NULL once filtered (ARRAY_AGG drops NULLs on
    # Snowflake and with IGNORE NULLS on BigQuery), so NULL placement does not matter.
    key = exp.Ordered(this=element.copy(), desc=False, nulls_first=form == "bigquery")
    if form == "duckdb":
        aggregated: exp.Expression = exp.ArrayAgg(
            this=exp.Order(this=element.copy(), expressions=[key])
        )
        if condition is not None:
            aggregated = exp.Filter(this=aggregated, expression=exp.Where(this=condition.copy()))
        return aggregated
    value = element.copy()
    if condition is not None:
        value = exp.If(this=condition.copy(), true=value, false=exp.Null())
    if form == "snowflake":
        # Snowflake: ARRAY_AGG ... WITHIN GROUP (ORDER BY ...) orders the array.
        return exp.WithinGroup(
            this=exp.ArrayAgg(this=value), expression=exp.Order(expressions=[key])
        )
    # BigQuery has no ARRAY_SORT; an aggregate's ORDER BY orders its array.
    return exp.IgnoreNulls(this=exp.ArrayAgg(this=exp.Order(this=value, expressions=[key])))


# -- rewrites without types -----------------------------------------------------------------


def _bigquery_node(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.RegexpReplace):
        _drop_global_flag(node)
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "hash":
        # BigQuery has no HASH(); FARM_FINGERPRINT is a deterministic 64-bit INT64 hash of a
        # STRING (standard-sql/hash_functions). Snowflake's HASH is signed 64-bit: kept.
        return exp.Anonymous(this="FARM_FINGERPRINT", expressions=node.expressions)
    if isinstance(node, exp.TimestampTrunc):
        # The pipeline's times are DATETIMEs here; TIMESTAMP_TRUNC is documented for TIMESTAMP,
        # DATETIME_TRUNC for DATETIME or TIMESTAMP (standard-sql/datetime_functions).
        return exp.DatetimeTrunc(this=node.this, unit=node.args.get("unit"))
    if _is_date_literal_timestamp(node):
        # Spelled in DATETIME's full canonical form 'YYYY-MM-DD HH:MM:SS', not a bare date.
        node.this.replace(exp.Literal.string(node.this.name + " 00:00:00"))
    return node


def _bigquery_null_order(node: exp.Expression) -> exp.Expression:
    # BigQuery documents no NULLS FIRST/LAST for the ORDER BY of a window or of an aggregate
    # (standard-sql/window-function-calls, aggregate-function-calls); there NULL is the least
    # value: first in ASC, last in DESC (standard-sql/data-types, "Ordering NULLs"). Where the
    # DuckDB order puts NULLs elsewhere, `x IS NULL` is sorted first (false < true) in the same
    # direction.
    if isinstance(node, exp.Order) and not isinstance(node.parent, exp.Select):
        node.set("expressions", _emulated_null_order(node.expressions))
    return node


def _emulated_null_order(keys: list[exp.Expression]) -> list[exp.Expression]:
    out: list[exp.Expression] = []
    for key in keys:
        if not isinstance(key, exp.Ordered):
            out.append(key)
            continue
        descending = bool(key.args.get("desc"))
        nulls_first = bool(key.args.get("nulls_first"))
        default_nulls_first = not descending
        if nulls_first != default_nulls_first and not _never_null(key.this):
            out.append(
                exp.Ordered(
                    this=exp.Is(this=_operand(key.this), expression=exp.Null()),
                    desc=descending,
                    nulls_first=default_nulls_first,
                )
            )
        out.append(
            exp.Ordered(this=key.this.copy(), desc=descending, nulls_first=default_nulls_first)
        )
    return _distinct_keys(out)


def _distinct_keys(keys: list[exp.Expression]) -> list[exp.Expression]:
    """Keys without repeats: a key equal to an earlier one cannot change a lexicographic order
    (a struct's `x_unknown` flag is the `x IS NULL` key the NULL order needs anyway)."""
    seen: set[str] = set()
    out = []
    for key in keys:
        this = key.this if isinstance(key, exp.Ordered) else key
        text = this.sql(dialect="duckdb")
        if text not in seen:
            seen.add(text)
            out.append(key)
    return out


def _operand(node: exp.Expression) -> exp.Expression:
    """`node` as the operand of an operator: parenthesized unless it is atomic."""
    atomic = exp.Column | exp.Dot | exp.Literal | exp.Func | exp.Paren | exp.Cast | exp.Bracket
    return node.copy() if isinstance(node, atomic) else exp.Paren(this=node.copy())


def _snowflake_node(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.RegexpReplace):
        _drop_global_flag(node)
    if isinstance(node, exp.RegexpReplace | exp.RegexpLike):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            pattern.replace(exp.Literal.string(_control_characters(pattern.name)))
    if isinstance(node, exp.DataType) and node.is_type(exp.DataType.Type.TIMESTAMPNTZ):
        return _snowflake_type(node, "a timestamp")
    if (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Array)
        and not node.this.expressions
    ):
        # An empty ARRAY: Snowflake's ARRAY_CONSTRUCT() with no arguments.
        return exp.Anonymous(this="ARRAY_CONSTRUCT", expressions=[])
    if isinstance(node, exp.Identifier) and SNOWFLAKE_PLAIN.fullmatch(node.name):
        # Double-quoted upper case is what an unquoted name resolves to, and stays a name even
        # where it is a reserved word (Snowflake reserves all ANSI keywords).
        return exp.Identifier(this=node.name.upper(), quoted=True)
    return node


def _drop_global_flag(node: exp.RegexpReplace) -> None:
    # DuckDB replaces the first match unless given the 'g' flag. BigQuery's REGEXP_REPLACE
    # replaces every match and takes no flags; Snowflake's replaces every match by default
    # (occurrence 0) and would read a 4th argument as a start position.
    modifiers = node.args.get("modifiers")
    if modifiers is None or modifiers.name != "g":
        raise ConfigError(f"only a global regexp_replace translates: {node.sql('duckdb')}")
    node.set("modifiers", None)
    node.set("single_replace", None)


def _control_characters(pattern: str) -> str:
    """\\t \\n \\f \\r of a regex as the characters themselves (other escapes unchanged)."""
    return re.sub(
        r"\\(.)",
        lambda m: _CONTROL_ESCAPES.get(m.group(1), m.group(0)),
        pattern,
        flags=re.DOTALL,
    )


# -- helpers ---------------------------------------------------------------------------------


def _struct_extract_as_dot(node: exp.Expression) -> exp.Expression:
    # struct_extract(x, 'f') is x.f; as a Dot it is typed like any other field access.
    if isinstance(node, exp.StructExtract) and isinstance(node.expression, exp.Literal):
        return exp.Dot(
            this=exp.Paren(this=node.this), expression=exp.to_identifier(node.expression.name)
        )
    return node


def _is_struct(node: exp.Expression) -> bool:
    return node.type is not None and node.type.is_type(exp.DataType.Type.STRUCT)


def _never_null(node: exp.Expression) -> bool:
    if isinstance(node, exp.Paren):
        return _never_null(node.this)
    if isinstance(node, exp.Coalesce):
        return any(_never_null(e) for e in [node.this, *node.expressions])
    if isinstance(node, exp.Cast):
        return isinstance(node.this, exp.Literal)
    return isinstance(node, exp.Is | exp.Boolean | exp.Literal) or (
        isinstance(node, exp.Not) and isinstance(node.this, exp.Is)
    )


def _is_date_literal_timestamp(node: exp.Expression) -> bool:
    return (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Literal)
        and node.this.is_string
        and re.fullmatch(r"\d{4}-\d{2}-\d{2}", node.this.name) is not None
        and node.to.is_type(exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ)
    )


def _snowflake_type(data_type: exp.DataType, what: str) -> exp.DataType:
    if data_type.is_type(exp.DataType.Type.UNKNOWN):
        raise ConfigError(f"the type of {what} is unknown, so Snowflake cannot read it back")
    if data_type.is_type(exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ):
        # DuckDB's TIMESTAMP is wall-clock time without a zone: Snowflake's TIMESTAMP_NTZ.
        return exp.DataType(this=exp.DataType.Type.USERDEFINED, kind="TIMESTAMP_NTZ")
    return data_type.copy()


def _unknown() -> exp.DataType:
    return exp.DataType.build("UNKNOWN")


def _type_sql(data_type: exp.DataType | None) -> str:
    return "UNKNOWN" if data_type is None else data_type.sql(dialect="duckdb")


def _star_source(query: exp.Query) -> exp.Table | None:
    """The table of a plain `SELECT * FROM table`, else None."""
    if not isinstance(query, exp.Select) or len(query.selects) != 1:
        return None
    if not isinstance(query.selects[0], exp.Star) or query.args.get("joins"):
        return None
    source = query.args.get("from_") or query.args.get("from")
    table = source.this if source is not None else None
    return table if isinstance(table, exp.Table) else None


def _table_key(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts)
