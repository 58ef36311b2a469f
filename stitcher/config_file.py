"""`stitcher.toml` (or `[tool.stitcher]` in pyproject.toml): read, validate, print.

The file is data only (TOML has no code); every key is checked and an unknown key is an error
that lists the valid ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from stitcher.config import (
    DEFAULT_HUBS,
    DEFAULT_LIMIT,
    DEFAULT_LIMITS,
    DEFAULT_SPARK_EXECUTOR_TIMEOUT,
    INPUT_FORMATS,
    MAX_SPARK_EXECUTOR_TIMEOUT,
    MIXPANEL_MAX_CLUSTER_IDS,
    NORMALIZATIONS,
    OUTPUT_FORMATS,
    POLICIES,
    HubRule,
    IdentifierType,
    JunkRules,
    RunOptions,
    normalize_junk_value,
    read_junk_file,
)
from stitcher.engines import ENGINES, regex_problem
from stitcher.errors import ConfigError

CONFIG_NAME = "stitcher.toml"

_TOP_KEYS = {
    "policy": "one of " + ", ".join(POLICIES),
    "input_format": "one of " + ", ".join(INPUT_FORMATS),
    "output_format": "one of " + ", ".join(OUTPUT_FORMATS),
    "dedupe": "true/false",
    "threads": "integer",
    "memory_limit": "size such as 6GB",
    "temp_dir": "path",
    "engine": "one of " + ", ".join(sorted(ENGINES)),
    "spark_master": "Spark master URL, e.g. local[*], spark://host:7077, yarn",
    "spark_conf": 'table of Spark settings, e.g. "spark.executor.memory" = "8g"',
    "spark_executor_timeout": "seconds a Spark job may wait with no executor (default "
    f"{DEFAULT_SPARK_EXECUTOR_TIMEOUT:g})",
    "junk": "table",
    "identifiers": "table of identifier types",
    "limits": "table: identifier type = max values per person",
    "priority": "list of identifier types, most trusted first",
    "hubs": "table",
    "mixpanel": "table",
}
_JUNK_KEYS = {"values", "patterns", "files", "replace_defaults"}
_IDENTIFIER_KEYS = {"column", "columns", "tables", "normalize", "junk_values", "junk_patterns"}
_HUB_KEYS = {"enabled", "min_contention", "outlier_factor"}
_MIXPANEL_KEYS = {"max_cluster_ids"}


def find_config(explicit: Path | None, cwd: Path | None = None) -> tuple[dict, Path | None]:
    """The config table and where it came from: --config, ./stitcher.toml, or pyproject.toml."""
    if explicit is not None:
        return _read(explicit), explicit
    cwd = cwd or Path.cwd()
    local = cwd / CONFIG_NAME
    if local.is_file():
        return _read(local), local
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        table = _read(pyproject).get("tool", {}).get("stitcher")
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(f"{pyproject}: [tool.stitcher] must be a table")
            return table, pyproject
    return {}, None


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); TOML files "
            "are UTF-8: re-encode it, e.g. `iconv -f latin1 -t utf-8`"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"{path} is not valid TOML: values nested too deep") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _check_keys(table: dict, valid: set[str] | dict, where: str) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(sorted(valid))}"
        )


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and int in kinds:
        raise ConfigError(f"{where} must be {what}, not {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where} must be {what}, not {value!r}")
    return value


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(value)


def options_from_config(config: dict, source: Path | None, **overrides: Any) -> RunOptions:
    """RunOptions from a config table; keyword overrides (CLI flags) win when not None."""
    where = str(source) if source else "config"
    _check_keys(config, _TOP_KEYS, where)
    # Junk regexes are compiled by the engine that will run them (the flag wins, as below).
    engine = overrides.get("engine") or config.get("engine") or "duckdb"
    checks = _RegexChecks(engine if engine in ENGINES else "duckdb", source)
    values: dict[str, Any] = {"config_file": source}
    for key in ("policy", "input_format", "output_format", "memory_limit"):
        if key in config:
            values[key] = _typed(config[key], str, f"{where}: {key}", _TOP_KEYS[key])
    if "dedupe" in config:
        values["dedupe"] = _typed(config["dedupe"], bool, f"{where}: dedupe", "true or false")
    if "threads" in config:
        values["threads"] = _typed(config["threads"], int, f"{where}: threads", "an integer")
    if "temp_dir" in config:
        values["temp_dir"] = Path(_typed(config["temp_dir"], str, f"{where}: temp_dir", "a path"))
    if "engine" in config:
        values["engine"] = _typed(config["engine"], str, f"{where}: engine", _TOP_KEYS["engine"])
        if values["engine"] not in ENGINES:
            raise ConfigError(
                f"{where}: unknown engine {values['engine']!r}; valid engines: "
                f"{', '.join(sorted(ENGINES))}"
            )
    if "spark_master" in config:
        master = _typed(config["spark_master"], str, f"{where}: spark_master", "a master URL")
        if not master.strip():
            raise ConfigError(
                f"{where}: spark_master must not be empty; e.g. local[*], spark://host:7077, yarn"
            )
        values["spark_master"] = master
    if "spark_conf" in config:
        values["spark_conf"] = _spark_conf(config["spark_conf"], where)
    if "spark_executor_timeout" in config:
        timeout = _typed(
            config["spark_executor_timeout"],
            (int, float),
            f"{where}: spark_executor_timeout",
            "a number of seconds",
        )
        if not 1 <= timeout <= MAX_SPARK_EXECUTOR_TIMEOUT:
            raise ConfigError(
                f"{where}: spark_executor_timeout must be from 1 to "
                f"{MAX_SPARK_EXECUTOR_TIMEOUT} seconds (got {timeout})"
            )
        values["spark_executor_timeout"] = float(timeout)
    values["junk"] = _junk(config.get("junk", {}), where, source, checks)
    values["identifier_types"] = _identifier_types(config.get("identifiers", {}), where, checks)
    if "limits" in config:
        limits = _typed(config["limits"], dict, f"{where}: limits", "a table")
        default = limits.get("default", DEFAULT_LIMIT)
        values["default_limit"] = _typed(default, int, f"{where}: limits.default", "an integer")
        values["limits"] = tuple(
            (k, _typed(v, int, f"{where}: limits.{k}", "an integer"))
            for k, v in limits.items()
            if k != "default"
        )
        if "user_id" not in dict(values["limits"]):
            values["limits"] = DEFAULT_LIMITS + values["limits"]
    if "priority" in config:
        values["priority"] = _string_list(config["priority"], f"{where}: priority")
    if "hubs" in config:
        values["hubs"] = _hubs(config["hubs"], where)
        hubs = config["hubs"]
        if "min_contention" in hubs:
            values["hub_min_contention"] = _typed(
                hubs["min_contention"], int, f"{where}: hubs.min_contention", "an integer"
            )
        if "outlier_factor" in hubs:
            values["hub_outlier_factor"] = float(
                _typed(
                    hubs["outlier_factor"],
                    (int, float),
                    f"{where}: hubs.outlier_factor",
                    "a number",
                )
            )
    if "mixpanel" in config:
        mixpanel = _typed(config["mixpanel"], dict, f"{where}: mixpanel", "a table")
        _check_keys(mixpanel, _MIXPANEL_KEYS, f"{where} [mixpanel]")
        if "max_cluster_ids" in mixpanel:
            values["mixpanel_max_cluster_ids"] = _typed(
                mixpanel["max_cluster_ids"], int, f"{where}: mixpanel.max_cluster_ids", "an integer"
            )
    # --spark-conf adds to the file's settings; a key given in both takes the flag's value.
    cli_conf = overrides.pop("spark_conf", None)
    if cli_conf:
        values["spark_conf"] = tuple(
            {**dict(values.get("spark_conf", ())), **dict(cli_conf)}.items()
        )
    junk_override = overrides.pop("junk", None)
    if junk_override is not None:
        values["junk"] = junk_override
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    return RunOptions(**values)


def _spark_conf(table: Any, where: str, prefix: str = "") -> tuple[tuple[str, str], ...]:
    """Spark settings as (key, value) text pairs. Keys may be quoted ("spark.executor.memory")
    or dotted (TOML reads spark.executor.memory = ... as nested tables: joined back here)."""
    table = _typed(table, dict, f"{where}: spark_conf{prefix}", "a table of key = value")
    pairs: list[tuple[str, str]] = []
    for key, value in table.items():
        name = f"{prefix[1:]}.{key}" if prefix else key
        if isinstance(value, dict):
            pairs += _spark_conf(value, where, f"{prefix}.{key}")
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            pairs.append((name, str(value)))
        else:
            raise ConfigError(
                f"{where}: spark_conf.{name} must be text, a number or true/false, not {value!r}"
            )
        if not name.strip():
            raise ConfigError(f"{where}: spark_conf has an empty key")
    return tuple(pairs)


# Spark settings whose values are credentials: `config --show` prints their names only.
_SECRET_KEY = re.compile(r"secret|password|token|credential|access\.key|account\.key|\.sas\.", re.I)


class _RegexChecks:
    """Whether the run's engine compiles a junk regex from the config file, and where in the
    file the regex is written, for an error that names the line."""

    def __init__(self, engine: str, source: Path | None) -> None:
        self.engine = engine
        self.source = source

    def problem(self, pattern: str) -> str | None:
        return regex_problem(self.engine, pattern)

    def check(self, patterns: tuple[str, ...], section: str, key: str) -> None:
        for pattern in patterns:
            problem = self.problem(pattern)
            if problem is not None:
                line = self._line(pattern)
                where = str(self.source or "config") + (f":{line}" if line else "")
                raise ConfigError(
                    f"{where}: {section} {key} {pattern!r} is not a regex the {self.engine} "
                    f"engine can compile: {problem}"
                )

    def _line(self, pattern: str) -> int | None:
        if self.source is None:
            return None
        try:
            lines = self.source.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeError):
            return None
        # As written in a literal string ('...') or a basic one ("..." doubles backslashes).
        spellings = (pattern, pattern.replace("\\", "\\\\").replace('"', '\\"'))
        for number, line in enumerate(lines, start=1):
            if any(s in line for s in spellings):
                return number
        return None


def _junk(table: Any, where: str, source: Path | None, checks: _RegexChecks) -> JunkRules:
    table = _typed(table, dict, f"{where}: junk", "a table")
    _check_keys(table, _JUNK_KEYS, f"{where} [junk]")
    replace = _typed(table.get("replace_defaults", False), bool, f"{where}: junk", "true/false")
    rules = JunkRules(values=(), patterns=()) if replace else JunkRules()
    extra = JunkRules(
        values=tuple(normalize_junk_value(v) for v in _string_list(table.get("values", []), where)),
        patterns=_string_list(table.get("patterns", []), f"{where}: junk.patterns"),
    )
    rules = rules.extended(extra)
    for name in _string_list(table.get("files", []), f"{where}: junk.files"):
        path = Path(name)
        if not path.is_absolute() and source is not None:
            path = source.parent / path
        rules = rules.extended(read_junk_file(path, checks.problem))
    checks.check(extra.patterns, "[junk]", "patterns")
    return rules


def _identifier_types(table: Any, where: str, checks: _RegexChecks) -> tuple[IdentifierType, ...]:
    table = _typed(table, dict, f"{where}: identifiers", "a table")
    types = []
    for name, spec in table.items():
        at = f"{where} [identifiers.{name}]"
        spec = _typed(spec, dict, at, "a table")
        _check_keys(spec, _IDENTIFIER_KEYS, at)
        columns = _string_list(spec.get("columns", spec.get("column", [])), f"{at} columns")
        normalize = spec.get("normalize", "none")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(
                f"{at}: unknown normalize {normalize!r}; valid: {', '.join(NORMALIZATIONS)}"
            )
        patterns = _string_list(spec.get("junk_patterns", []), f"{at} junk_patterns")
        checks.check(patterns, f"[identifiers.{name}]", "junk_patterns")
        types.append(
            IdentifierType(
                name=name,
                columns=columns,
                tables=_string_list(spec.get("tables", []), f"{at} tables"),
                normalize=normalize,
                junk=JunkRules(
                    values=tuple(
                        normalize_junk_value(v)
                        for v in _string_list(spec.get("junk_values", []), f"{at} junk_values")
                    ),
                    patterns=patterns,
                ),
            )
        )
    return tuple(types)


def _hubs(table: Any, where: str) -> tuple[HubRule, ...]:
    table = _typed(table, dict, f"{where}: hubs", "a table")
    if not table.get("enabled", True):
        return ()
    rules = {(h.identifier_type, h.linked_type): h.max_linked for h in DEFAULT_HUBS}
    for key, spec in table.items():
        if key in _HUB_KEYS:
            continue
        spec = _typed(spec, dict, f"{where}: hubs.{key}", "a table of linked type = threshold")
        for linked, threshold in spec.items():
            rules[(key, linked)] = _typed(
                threshold, int, f"{where}: hubs.{key}.{linked}", "an integer"
            )
    return tuple(HubRule(a, b, n) for (a, b), n in rules.items())


def effective_config_toml(options: RunOptions) -> str:
    """The options as a stitcher.toml that would reproduce them (for `stitcher config --show`)."""
    lines = [
        f"policy = {_toml(options.policy)}",
        f"input_format = {_toml(options.input_format)}",
        f"output_format = {_toml(options.output_format)}",
        f"dedupe = {_toml(options.dedupe)}",
    ]
    if options.threads is not None:
        lines.append(f"threads = {options.threads}")
    if options.memory_limit is not None:
        lines.append(f"memory_limit = {_toml(options.memory_limit)}")
    if options.temp_dir is not None:
        lines.append(f"temp_dir = {_toml(str(options.temp_dir))}")
    lines.append(f"engine = {_toml(options.engine)}")
    if options.spark_master is not None:
        lines.append(f"spark_master = {_toml(options.spark_master)}")
    lines.append(f"spark_executor_timeout = {float(options.spark_executor_timeout)!r}")
    lines.append(f"priority = {_toml(list(options.priority_order()))}")
    lines += ["", "[junk]", "replace_defaults = true"]
    lines.append(f"values = {_toml(list(options.junk.values))}")
    lines.append(f"patterns = {_toml(list(options.junk.patterns))}")
    lines += ["", "[limits]", f"default = {options.default_limit}"]
    lines += [f"{k} = {v}" for k, v in options.limits]
    lines += ["", "[hubs]", f"enabled = {_toml(bool(options.hubs))}"]
    lines.append(f"min_contention = {options.hub_min_contention}")
    lines.append(f"outlier_factor = {float(options.hub_outlier_factor)!r}")
    by_type: dict[str, list[HubRule]] = {}
    for hub in options.hubs:
        by_type.setdefault(hub.identifier_type, []).append(hub)
    for type_name, hubs in by_type.items():
        inner = ", ".join(f"{h.linked_type} = {h.max_linked}" for h in hubs)
        lines.append(f"{type_name} = {{ {inner} }}")
    lines += ["", "[mixpanel]", f"max_cluster_ids = {options.mixpanel_max_cluster_ids}"]
    if options.spark_conf:
        lines += ["", "[spark_conf]"]
        if any(_SECRET_KEY.search(k) for k, _ in options.spark_conf):
            lines.append("# values of credential settings are not shown")
        lines += [
            f"{_toml(k)} = {_toml('***' if _SECRET_KEY.search(k) else v)}"
            for k, v in options.spark_conf
        ]
    for t in options.identifier_types:
        lines += [
            "",
            f"[identifiers.{t.name}]",
            f"columns = {_toml(list(t.columns))}",
            f"tables = {_toml(list(t.tables))}",
            f"normalize = {_toml(t.normalize)}",
            f"junk_values = {_toml(list(t.junk.values))}",
            f"junk_patterns = {_toml(list(t.junk.patterns))}",
        ]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


__all__ = [
    "CONFIG_NAME",
    "MIXPANEL_MAX_CLUSTER_IDS",
    "effective_config_toml",
    "find_config",
    "options_from_config",
]
