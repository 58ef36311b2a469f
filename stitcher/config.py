"""The options of one run, validated once, frozen afterwards."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stitcher.engines import ENGINES, READS_URLS, WRITES_URLS
from stitcher.engines.base import DEFAULT_SPARK_EXECUTOR_TIMEOUT
from stitcher.errors import ConfigError
from stitcher.graph.policies import DEFAULT_POLICY
from stitcher.graph.policies import POLICY_NAMES as POLICIES
from stitcher.input.formats import AUTO
from stitcher.input.formats import FORMAT_CHOICES as INPUT_FORMATS
from stitcher.location import Url

OUTPUT_FORMATS = ("parquet", "csv")
# More engine threads than any machine has cores: DuckDB starts each one up front, and 100,000
# of them hung the run.
MAX_THREADS = 1024
# The components loop's rounds: a graph needs about log2(identifiers) of them.
MAX_ROUNDS = 10_000
# The smallest --memory-limit: a small CSV file still runs at 16 MB (a gzip file needs ~100 MB:
# DuckDB then says it is out of memory); 0GB once ran the whole way to that error.
MIN_MEMORY_LIMIT = 16 * 10**6
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def size_bytes(text: str) -> float | None:
    """The bytes in a size such as `6GB`, `512MiB` or `1.5 gb`; None when it is not one."""
    match = _SIZE.fullmatch(text)
    unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        return None
    return float(match.group(1)) * unit


def memory_limit_problem(text: str) -> str | None:
    """Why `text` is not a usable --memory-limit, or None."""
    size = size_bytes(text)
    if size is None:
        return f"{text!r} is not a size; use e.g. 6GB or 512MB"
    if size < MIN_MEMORY_LIMIT:
        return f"{text!r} is below the least a run can work in, 16MB"
    return None


NORMALIZATIONS = ("none", "trim", "lower_trim")
BUILTIN_TYPES = ("anonymous_id", "user_id")

# Values that SDKs, templating bugs and test accounts put where an id belongs. Compared after
# trimming whitespace and surrounding quotes, case-insensitively. Each one, left in, fuses every
# person who ever sent it into one "mega person".
DEFAULT_JUNK_VALUES: tuple[str, ...] = (
    "",
    "null",
    "undefined",
    "none",
    "nil",
    "nan",
    # A float id column's infinities (Engine.id_text): never a person's id.
    "inf",
    "-inf",
    "infinity",
    "-infinity",
    "0",
    "-1",
    "anonymous",
    "guest",
    "unknown",
    "n/a",
    "[object object]",
    "true",
    "false",
)
# Regexes match the normalized value in full. `^[0-]*$` catches all-zero ids such as
# 00000000-0000-0000-0000-000000000000 (Segment's suggested blocked value).
DEFAULT_JUNK_PATTERNS: tuple[str, ...] = (r"[0-]*",)

REGEX_PREFIX = "regex:"

# Components in SQL rounds need about log2(nodes) rounds: 100 is never a real graph's need.
DEFAULT_MAX_ROUNDS = 100
MAX_SPARK_EXECUTOR_TIMEOUT = 7 * 24 * 3600


def canonical(name: str) -> str:
    """A column name as the loader matches it: lower case with `_`, `-` and spaces removed, so
    `anonymous_id`, `anonymousId` and `ANONYMOUS_ID` are one column."""
    return re.sub(r"[_\-\s]", "", name).lower()


@dataclass(frozen=True)
class JunkRules:
    values: tuple[str, ...] = DEFAULT_JUNK_VALUES
    patterns: tuple[str, ...] = DEFAULT_JUNK_PATTERNS

    def extended(self, other: JunkRules) -> JunkRules:
        return JunkRules(
            values=tuple(dict.fromkeys(self.values + other.values)),
            patterns=tuple(dict.fromkeys(self.patterns + other.patterns)),
        )


def read_junk_file(path: Path, regex_problem: Callable[[str], str | None]) -> JunkRules:
    """One value per line; `regex:PATTERN` lines are full-match regexes; `#` starts a comment.
    `regex_problem` says why the engine that will run them cannot compile a pattern."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read junk file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"junk file {path} is not UTF-8 text") from exc
    values: list[str] = []
    patterns: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(REGEX_PREFIX):
            pattern = line[len(REGEX_PREFIX) :].strip()
            problem = regex_problem(pattern)
            if problem is not None:
                raise ConfigError(f"{path}:{number}: invalid regex {pattern!r}: {problem}")
            patterns.append(pattern)
        else:
            values.append(normalize_junk_value(line))
    return JunkRules(values=tuple(values), patterns=tuple(patterns))


def normalize_junk_value(value: str) -> str:
    """The same normalization the SQL applies before comparing: trim, strip quotes, lower."""
    return value.strip().strip("\"'").strip().lower()


@dataclass(frozen=True)
class IdentifierType:
    """An extra identifier type read from columns, e.g. `email` from identifies' email trait."""

    name: str
    columns: tuple[str, ...]
    tables: tuple[str, ...] = ()  # empty: every table that has one of the columns
    normalize: str = "none"
    junk: JunkRules = field(default_factory=lambda: JunkRules(values=(), patterns=()))

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ConfigError(
                f"identifier type name {self.name!r} must be lower_snake_case (a-z, 0-9, _)"
            )
        if self.name in BUILTIN_TYPES:
            raise ConfigError(f"identifier type {self.name!r} is built in; choose another name")
        if "__" in self.name:
            # The events view names a type's second, third... column `<type>__2`, `<type>__3`.
            raise ConfigError(
                f"identifier type name {self.name!r} must not contain '__' (reserved)"
            )
        if not self.columns:
            raise ConfigError(f"identifier type {self.name!r} needs at least one column")
        spellings: dict[str, str] = {}
        for column in self.columns:
            key = canonical(column)
            if key in spellings:
                raise ConfigError(
                    f"identifier type {self.name!r} lists the column {column!r} twice "
                    f"(as {spellings[key]!r}; names match ignoring case, '_' and '-')"
                )
            spellings[key] = column
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(
                f"identifier type {self.name!r}: unknown normalize {self.normalize!r}; "
                f"valid values: {', '.join(NORMALIZATIONS)}"
            )

    @property
    def event_columns(self) -> tuple[str, ...]:
        """The events view's columns of this type, one per configured column (each column's
        value is an identifier of this type): `email`, then `email__2`, `email__3`..."""
        extra = tuple(f"{self.name}__{i}" for i in range(2, len(self.columns) + 1))
        return (self.name, *extra)


@dataclass(frozen=True)
class HubRule:
    """An identifier of `identifier_type` linked to more than `max_linked` distinct identifiers
    of `linked_type` is a hub: shared by far more people than any one person has ids."""

    identifier_type: str
    linked_type: str
    max_linked: int

    def __post_init__(self) -> None:
        if self.max_linked < 1:
            raise ConfigError(
                f"hub threshold {self.identifier_type}.{self.linked_type} must be at least 1"
            )


# The fixed bounds: whatever the shape of the graph, an anonymous id seen with more than 50 user
# ids (a shared kiosk, a hard-coded device id) or a user id seen with more than 1,000 anonymous
# ids (a shared login such as a guest account) is a hub. Below them, sql/31_hub_degrees.sql
# judges by contention and by the data's own degree distribution.
DEFAULT_HUBS: tuple[HubRule, ...] = (
    HubRule("anonymous_id", "user_id", 50),
    HubRule("user_id", "anonymous_id", 1000),
)
# Segment Unify's documented defaults: user_id 1, every other identifier 5.
DEFAULT_LIMITS: tuple[tuple[str, int], ...] = (("user_id", 1),)
DEFAULT_LIMIT = 5
DEFAULT_PRIORITY: tuple[str, ...] = ("user_id", "email")
MIXPANEL_MAX_CLUSTER_IDS = 500
# A hub by contention: its partners lead to at least this many other identifiers of its type. A
# family of three sharing a computer reaches 3 at most (the computer), 2 for each login.
DEFAULT_HUB_MIN_CONTENTION = 4
# A hub as an outlier: with contention 2, more than this many times the type's 99th-percentile
# degree (at least 3); the bar falls to 0 as contention nears min_contention
# (sql/31_hub_degrees.sql). Real users with contention 2 in generated data stay within 2x.
DEFAULT_HUB_OUTLIER_FACTOR = 2.0


@dataclass(frozen=True)
class RunOptions:
    input_dir: Path | Url  # a Url (s3a://, hdfs://, file://...) is listed and read by the engine
    output_dir: Path | Url  # a Url is written locally, then published through the engine
    policy: str = DEFAULT_POLICY
    output_format: str = "parquet"
    dedupe: bool = False
    junk: JunkRules = field(default_factory=JunkRules)
    engine: str = "duckdb"
    threads: int | None = None
    memory_limit: str | None = None
    temp_dir: Path | None = None
    input_format: str = AUTO
    identifier_types: tuple[IdentifierType, ...] = ()
    hubs: tuple[HubRule, ...] = DEFAULT_HUBS
    hub_min_contention: int = DEFAULT_HUB_MIN_CONTENTION
    hub_outlier_factor: float = DEFAULT_HUB_OUTLIER_FACTOR
    limits: tuple[tuple[str, int], ...] = DEFAULT_LIMITS
    default_limit: int = DEFAULT_LIMIT
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    mixpanel_max_cluster_ids: int = MIXPANEL_MAX_CLUSTER_IDS
    report: bool = True
    # Spark engine: master URL (None: local[*], or spark-submit's) and extra session settings.
    spark_master: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = ()
    # Engines that solve components in SQL rounds stop with an error past this many.
    max_rounds: int = DEFAULT_MAX_ROUNDS
    # Spark on a cluster: fail when the run's jobs have had no executor for this many seconds.
    spark_executor_timeout: float = DEFAULT_SPARK_EXECUTOR_TIMEOUT
    # Replace an --output folder that is not a stitcher output (--force).
    force: bool = False
    # How long to wait for another run writing the same --output (--wait); 0: fail at once.
    wait_seconds: float = 0.0
    # --fail-if conditions (stitcher.inspection.thresholds.Condition), checked and recorded in
    # run.json.
    fail_if: tuple = ()
    # The config file these options were read from (None: none was found); for run.json.
    config_file: Path | None = None

    @property
    def type_names(self) -> tuple[str, ...]:
        return BUILTIN_TYPES + tuple(t.name for t in self.identifier_types)

    def limit_for(self, identifier_type: str) -> int:
        return dict(self.limits).get(identifier_type, self.default_limit)

    def priority_order(self) -> tuple[str, ...]:
        """Every identifier type, most trusted first: the listed ones, then the rest as
        declared (anonymous_id last among the built-ins' followers)."""
        listed = [t for t in self.priority if t in self.type_names]
        rest = [t for t in self.type_names if t not in listed and t != "anonymous_id"]
        tail = [] if "anonymous_id" in listed else ["anonymous_id"]
        return tuple(listed + rest + tail)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(
                f"unknown engine {self.engine!r}; valid engines: {', '.join(sorted(ENGINES))}"
            )
        if isinstance(self.input_dir, Url) and self.engine not in READS_URLS:
            raise ConfigError(
                f"--input {self.input_dir} is a URL, which only --engine "
                f"{' or '.join(sorted(READS_URLS))} reads; add --engine spark, or copy the "
                "files to a local (or mounted) folder"
            )
        if isinstance(self.output_dir, Url) and self.engine not in WRITES_URLS:
            raise ConfigError(
                f"--output {self.output_dir} is a URL, which only --engine "
                f"{' or '.join(sorted(WRITES_URLS))} writes; add --engine spark, or give a "
                "local (or mounted) folder"
            )
        if self.spark_master is not None and not self.spark_master.strip():
            raise ConfigError("spark_master must not be empty; e.g. local[*] or spark://host:7077")
        if not 0 <= self.wait_seconds < float("inf"):
            raise ConfigError(f"wait_seconds must be 0 or more (got {self.wait_seconds})")
        if not 1 <= self.max_rounds <= MAX_ROUNDS:
            raise ConfigError(f"max_rounds must be from 1 to {MAX_ROUNDS} (got {self.max_rounds})")
        if not 1 <= self.spark_executor_timeout <= MAX_SPARK_EXECUTOR_TIMEOUT:
            raise ConfigError(
                f"spark_executor_timeout must be from 1 to {MAX_SPARK_EXECUTOR_TIMEOUT} seconds "
                f"(got {self.spark_executor_timeout})"
            )
        for key, _ in self.spark_conf:
            if not key.strip():
                raise ConfigError("--spark-conf needs KEY=VALUE with a non-empty key")
        if self.input_format not in INPUT_FORMATS:
            raise ConfigError(
                f"unknown input format {self.input_format!r}; "
                f"valid formats: {', '.join(INPUT_FORMATS)}"
            )
        names = self.type_names
        if len(set(names)) != len(names):
            raise ConfigError("identifier types must have distinct names")
        for type_name, limit in self.limits:
            if type_name not in names:
                raise ConfigError(
                    f"limit for unknown identifier type {type_name!r}; "
                    f"known types: {', '.join(names)}"
                )
            if limit < 1:
                raise ConfigError(f"limit for {type_name} must be at least 1 (got {limit})")
        for type_name in self.priority:
            if type_name not in names and type_name != "email":
                raise ConfigError(
                    f"priority names unknown identifier type {type_name!r}; "
                    f"known types: {', '.join(names)}"
                )
        for hub in self.hubs:
            if hub.identifier_type == hub.linked_type:
                raise ConfigError(
                    f"hub rule {hub.identifier_type} = {{ {hub.linked_type} = ... }} links a "
                    "type to itself; a hub rule names two different identifier types"
                )
            for type_name in (hub.identifier_type, hub.linked_type):
                if type_name not in names:
                    raise ConfigError(
                        f"hub rule names unknown identifier type {type_name!r}; "
                        f"known types: {', '.join(names)}"
                    )
        if isinstance(self.hub_min_contention, bool) or not isinstance(
            self.hub_min_contention, int
        ):
            raise ConfigError("hubs min_contention must be an integer")
        if self.hub_min_contention < 2:
            raise ConfigError(
                f"hubs min_contention must be at least 2 (got {self.hub_min_contention}): "
                "with 1, every login that shares one device with anyone would be a hub"
            )
        if isinstance(self.hub_outlier_factor, bool) or not isinstance(
            self.hub_outlier_factor, int | float
        ):
            raise ConfigError("hubs outlier_factor must be a number")
        if not math.isfinite(self.hub_outlier_factor) or self.hub_outlier_factor < 1:
            raise ConfigError(
                f"hubs outlier_factor must be a finite number of at least 1 "
                f"(got {self.hub_outlier_factor})"
            )
        if self.mixpanel_max_cluster_ids < 2:
            raise ConfigError("mixpanel max_cluster_ids must be at least 2")
        if self.policy not in POLICIES:
            raise ConfigError(
                f"unknown policy {self.policy!r}; valid policies: {', '.join(POLICIES)}"
            )
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(
                f"unknown output format {self.output_format!r}; "
                f"valid formats: {', '.join(OUTPUT_FORMATS)}"
            )
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"threads must be from 1 to {MAX_THREADS} (got {self.threads})")
        problem = None if self.memory_limit is None else memory_limit_problem(self.memory_limit)
        if problem is not None:
            raise ConfigError(f"memory_limit {problem}")

    def as_record(self) -> dict:
        """The options as plain JSON values, for run.json."""
        record = asdict(self)
        for key, value in record.items():
            if isinstance(value, Path):
                record[key] = str(value)
        record["input_dir"] = str(self.input_dir)
        record["fail_if"] = [condition.text for condition in self.fail_if]
        record["config_file"] = None if self.config_file is None else str(self.config_file)
        record["output_dir"] = str(self.output_dir)
        # Spark settings may carry credentials (s3a keys): run.json keeps their names only.
        record["spark_conf"] = {key: "***" for key, _ in self.spark_conf}
        record["junk"] = {
            "values": list(self.junk.values),
            "patterns": list(self.junk.patterns),
        }
        record["limits"] = dict(self.limits)
        record["priority"] = list(self.priority_order())
        record["hubs"] = [
            {
                "identifier_type": h.identifier_type,
                "linked_type": h.linked_type,
                "max_linked": h.max_linked,
            }
            for h in self.hubs
        ]
        record["identifier_types"] = [
            {
                "name": t.name,
                "columns": list(t.columns),
                "tables": list(t.tables),
                "normalize": t.normalize,
                "junk_values": list(t.junk.values),
                "junk_patterns": list(t.junk.patterns),
            }
            for t in self.identifier_types
        ]
        return record
