"""Load the pipeline's SQL steps from `sql/` and fill in their placeholders.

Placeholders are `{{name}}`. They only ever receive table names, quoted column names and SQL
the code generated from those; data values reach the engine as tables or bound parameters.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def sql_dir() -> Path:
    packaged = Path(__file__).parent / "_sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


@cache
def load(step: str) -> str:
    return (sql_dir() / f"{step}.sql").read_text(encoding="utf-8")


def render(step: str, **fragments: str) -> str:
    text = load(step)

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fragments:
            raise KeyError(f"sql/{step}.sql needs a value for {{{{{key}}}}}")
        return fragments[key]

    return _PLACEHOLDER.sub(fill, text).strip().rstrip(";")
