"""The layout's rules, read from the source (README, "Architecture"): which part of stitcher may
import which. A static check of every import statement, function-level ones included."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "stitcher"


def _imports() -> dict[str, set[str]]:
    """Each module of stitcher (as a dotted name) -> the modules it imports, anywhere in it."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                # `from stitcher import api` imports the module stitcher.api
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[module] = names
    return found


def _importers(prefix: str) -> set[str]:
    return {
        module
        for module, names in _imports().items()
        if any(name == prefix or name.startswith(prefix + ".") for name in names)
    }


def test_only_the_engines_import_duckdb_or_pyspark() -> None:
    for library in ("duckdb", "pyspark"):
        outside = {m for m in _importers(library) if not m.startswith("stitcher.engines")}
        assert not outside, f"{library} imported outside stitcher/engines/: {sorted(outside)}"


def test_the_product_never_imports_the_event_generator() -> None:
    # The generator is test and benchmark tooling; only the `generate` command loads it.
    users = {m for m in _importers("stitcher.synthetic") if not m.startswith("stitcher.synthetic")}
    assert users == {"stitcher.cli"}


def test_no_module_or_subpackage_takes_a_standard_library_name() -> None:
    # `spark-submit stitcher/__main__.py` (README, "On Apache Spark") runs the command by its
    # path, and Python then puts stitcher/ itself first on sys.path: a subpackage named
    # `inspect` there was imported by numpy in place of the standard library's, and the run died.
    names = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }
    assert not names & set(sys.stdlib_module_names)


def test_the_policies_come_from_their_registry() -> None:
    # One registry (stitcher/graph/policies/__init__.py): the CLI's choices and help, config
    # validation and the API read it; each entry's steps resolve to a function.
    import importlib

    from stitcher import config
    from stitcher.cli import cli
    from stitcher.graph.policies import POLICIES, script_policies

    names = tuple(POLICIES)
    for command in ("run", "sql"):
        option = next(p for p in cli.commands[command].params if p.name == "policy")
        assert tuple(option.type.choices) == names
    assert names == config.POLICIES
    help_text = next(p for p in cli.commands["run"].params if p.name == "policy").help
    for policy in POLICIES.values():
        assert f"{policy.name}" in help_text and policy.summary in help_text
        module, function = policy.steps.split(":")
        assert callable(getattr(importlib.import_module(module), function))
        assert policy.input_formats and (policy.needs or len(policy.input_formats) == 2)
    assert script_policies() == ("guarded", "connected", "mixpanel-simplified")


def test_the_output_tables_come_from_their_registry(tmp_path: Path) -> None:
    # One registry (stitcher/output/tables.py): what a run writes, in its order, and what
    # `stitcher sql` guards and publishes.
    import stitcher
    from stitcher.output.tables import OUTPUT_NAMES, OUTPUT_TABLES
    from stitcher.warehouse import script

    assert script.OUTPUT_TABLES is OUTPUT_TABLES
    fixture = PACKAGE.parent / "fixtures" / "junk_ids"
    for file_format in ("parquet", "csv"):
        result = stitcher.run(fixture, tmp_path / file_format, output_format=file_format)
        tables = [f"{name}.{file_format}" for name in OUTPUT_TABLES]
        assert result.files == [*tables, "report.html", "run.json"]
        assert set(result.files) <= OUTPUT_NAMES
        assert sorted(p.name for p in (tmp_path / file_format).iterdir()) == sorted(result.files)


def test_the_dialects_come_from_their_registry_which_loads_no_sqlglot() -> None:
    # One registry (stitcher/warehouse/__init__.py): `stitcher sql --dialect`'s choices and the
    # script builder read it; reading it at the command's start must not load sqlglot.
    from stitcher.cli import cli
    from stitcher.warehouse import DIALECTS, DISTRIBUTED_DIALECTS, REWRITTEN_DIALECTS, script

    option = next(p for p in cli.commands["sql"].params if p.name == "dialect")
    assert tuple(option.type.choices) == tuple(DIALECTS)
    assert script.DIALECTS is DIALECTS
    assert {"spark", "snowflake", "bigquery"} == DISTRIBUTED_DIALECTS
    assert REWRITTEN_DIALECTS == ("snowflake", "bigquery")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, stitcher.cli; print('sqlglot' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "False"


def test_the_input_formats_come_from_their_registry() -> None:
    # One registry (stitcher/input/formats.py): --input-format's choices and help, config and
    # the loader read it; each export format's module provides what the loader calls.
    from stitcher import config
    from stitcher.cli import cli
    from stitcher.input.formats import EXPORT_FORMATS, FORMAT_CHOICES, INPUT_FORMATS

    option = next(p for p in cli.commands["run"].params if p.name == "input_format")
    assert tuple(option.type.choices) == FORMAT_CHOICES == ("auto", *INPUT_FORMATS)
    assert config.INPUT_FORMATS == FORMAT_CHOICES
    for name, fmt in INPUT_FORMATS.items():
        assert f"{name} ({fmt.summary})" in option.help
    for name in EXPORT_FORMATS:
        reader = INPUT_FORMATS[name].reader()
        for attribute in ("TABLE", "NOT_PART", "NOT_PART_BESIDE", "EMPTY"):
            assert isinstance(getattr(reader, attribute), str)
        for function in ("export_entries", "file_format", "register_export", "finish_id_map"):
            assert callable(getattr(reader, function))


def test_a_first_run_imports_no_pandas_polars_scipy_or_sqlglot(tmp_path: Path) -> None:
    # pyarrow imports pandas on its first conversion of Python objects (~0.15 s of a ~1 s
    # start); the run builds its own arrays from buffers instead (stitcher/arrays.py).
    # Junk ids: the report lists quarantined ids, whose times once imported pandas.
    fixture = PACKAGE.parent / "fixtures" / "junk_ids"
    code = (
        "import sys\n"
        "from stitcher.cli import main\n"
        f"args = ['run', '--input', {str(fixture)!r}, '--output', {str(tmp_path / 'out')!r}]\n"
        "try:\n"
        "    main(args + ['-q'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(sorted(m for m in ('pandas', 'polars', 'scipy', 'sqlglot') if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded.splitlines()[-1] == "[]"
