"""The options of one run, validated once, frozen afterwards."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stitcher.errors import ConfigError

POLICIES = ("guarded", "connected")
OUTPUT_FORMATS = ("parquet", "csv")

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


@dataclass(frozen=True)
class JunkRules:
    values: tuple[str, ...] = DEFAULT_JUNK_VALUES
    patterns: tuple[str, ...] = DEFAULT_JUNK_PATTERNS

    def extended(self, other: JunkRules) -> JunkRules:
        return JunkRules(
            values=tuple(dict.fromkeys(self.values + other.values)),
            patterns=tuple(dict.fromkeys(self.patterns + other.patterns)),
        )


def read_junk_file(path: Path) -> JunkRules:
    """One value per line; `regex:PATTERN` lines are full-match regexes; `#` starts a comment."""
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
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{path}:{number}: invalid regex {pattern!r}: {exc}") from exc
            patterns.append(pattern)
        else:
            values.append(normalize_junk_value(line))
    return JunkRules(values=tuple(values), patterns=tuple(patterns))


def normalize_junk_value(value: str) -> str:
    """The same normalization the SQL applies before comparing: trim, strip quotes, lower."""
    return value.strip().strip("\"'").strip().lower()


@dataclass(frozen=True)
class RunOptions:
    input_dir: Path
    output_dir: Path
    policy: str = "guarded"
    output_format: str = "parquet"
    dedupe: bool = False
    junk: JunkRules = field(default_factory=JunkRules)
    engine: str = "duckdb"
    threads: int | None = None
    memory_limit: str | None = None
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(
                f"unknown policy {self.policy!r}; valid policies: {', '.join(POLICIES)}"
            )
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(
                f"unknown output format {self.output_format!r}; "
                f"valid formats: {', '.join(OUTPUT_FORMATS)}"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1 (got {self.threads})")
        if self.memory_limit is not None and not re.fullmatch(
            r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", self.memory_limit, re.I
        ):
            raise ConfigError(
                f"--memory-limit {self.memory_limit!r} is not a size; use e.g. 6GB or 512MB"
            )

    def as_record(self) -> dict:
        """The options as plain JSON values, for run.json."""
        record = asdict(self)
        for key, value in record.items():
            if isinstance(value, Path):
                record[key] = str(value)
        record["junk"] = {
            "values": list(self.junk.values),
            "patterns": list(self.junk.patterns),
        }
        return record
