"""One error hierarchy, one class per exit code of the `stitcher` command.

| exit | class                 | what happened                                                 |
| ---- | --------------------- | ------------------------------------------------------------- |
| 1    | StitcherError         | bad input, config or output, or a failure: nothing written     |
| 2    | UsageError            | a bad argument or option value: nothing ran                    |
| 3    | ThresholdBreached     | the output was written, but a --fail-if condition was breached |

The subclasses of StitcherError that keep exit code 1 (InputError, ConfigError, OutputError,
EngineError) say which part was at fault. The CLI prints `Error: <message>` and exits with
`exit_code`; a library caller catches the class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stitcher.pipeline import RunResult


class StitcherError(Exception):
    """A problem the user can act on; the message is shown as-is after 'Error: '. Exit 1:
    nothing was written and the previous output is unchanged."""

    exit_code = 1


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


class UsageError(StitcherError):
    """An argument the call (or command line) itself got wrong: an unknown choice, a number out
    of range, a malformed --fail-if condition. Exit 2; nothing ran."""

    exit_code = 2


class ThresholdBreached(StitcherError):
    """The run finished and its output is in place, but a --fail-if condition was breached.
    Exit 3. `result` is the finished run's RunResult (its `thresholds` say which)."""

    exit_code = 3

    def __init__(self, message: str, result: RunResult | Any) -> None:
        super().__init__(message)
        self.result = result
