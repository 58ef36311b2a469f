"""One error hierarchy: the CLI turns any StitcherError into a one-line message and exit code 1."""

from __future__ import annotations


class StitcherError(Exception):
    """A problem the user can act on; the message is shown as-is after 'Error: '."""


class InputError(StitcherError):
    """The input folder, a table, a file or a column is not usable."""


class ConfigError(StitcherError):
    """An option or config value is invalid."""


class OutputError(StitcherError):
    """The output location cannot be written."""


class EngineError(StitcherError):
    """The engine failed; carries the SQL that failed so --debug can show it."""

    def __init__(self, message: str, sql: str | None = None) -> None:
        super().__init__(message)
        self.sql = sql
