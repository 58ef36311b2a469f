"""SIGINT and SIGTERM: stop at any moment, cleanly, with one line and the exit code a shell
gives a process a signal stopped (130, 143).

Airflow, systemd and Kubernetes stop a task with SIGTERM, then SIGKILL after a grace period.
Python's own SIGTERM ends the process at once, leaving the run's temporary folders for the next
run to clean. With `handled()` in force (the CLI), a signal raises `Interrupted` instead, so
every cleanup of the run (the `finally` and `except BaseException` blocks around the
temporary output, the spill folder, the engine) runs first.

DuckDB runs Python's signal handlers while it executes a query and, when one raises, stops the
query and raises its own `RuntimeError: Query interrupted`. That error, or any other failure
that follows a signal, is reported as the signal: `received()` says one arrived.

Once the new output starts to replace the old one (`point_of_no_return`), a signal no longer
stops the run: the swap takes two renames and the run is over a few milliseconds later, with
the new output in place; stopping between the renames would leave no output at all. The CLI
then exits as a finished run does, and says that the signal came late (`late()`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal stopped the run. A BaseException, as KeyboardInterrupt is, so that no
    `except Exception` on the way up mistakes it for a failure to handle."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    received: int | None = None  # the signal that stopped the run
    late: int | None = None  # a signal after point_of_no_return
    past_return: bool = False
    deferring: int = 0  # inside deferred(): raise when it ends


_state = _State()


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state.past_return:
        _state.late = _state.late or signum
        return
    if _state.received is not None:
        return  # the first one is being handled: let its cleanup finish
    _state.received = signum
    if not _state.deferring:
        raise Interrupted(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """Native code that calls back into Python cannot take an exception at any point: polars,
    raising inside one of its callbacks, panics with a Rust backtrace on stderr. A signal
    during the block is raised when the block ends. Without handled() (a library caller),
    Python's own Ctrl-C handler is held off the same way, and KeyboardInterrupt raised then."""
    own = _library_sigint()
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
        if own is not None:
            signal.signal(signal.SIGINT, own.previous)
    if own is not None and own.received:
        raise KeyboardInterrupt
    if not _state.deferring and _state.received is not None and not _state.past_return:
        raise Interrupted(_state.received)


class _HeldSigint:
    def __init__(self, previous: object) -> None:
        self.previous = previous
        self.received = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = True


def _library_sigint() -> _HeldSigint | None:
    """Hold Python's default SIGINT handler off, when it is the one in force."""
    if threading.current_thread() is not threading.main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if current is not signal.default_int_handler:
        return None
    held = _HeldSigint(current)
    signal.signal(signal.SIGINT, held)
    return held


def install() -> dict[int, object]:
    """Handle SIGINT and SIGTERM (raise Interrupted); returns the handlers replaced. Only in the
    main thread (the only one Python lets set handlers), and not for a signal the process was
    started ignoring (nohup, a background job's SIGINT), which stays ignored as Python leaves
    it. The `stitcher` command calls this first thing, before its imports."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        signum: signal.signal(signum, _handle)
        for signum in _SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }


@contextmanager
def handled() -> Iterator[None]:
    """A command's run: a signal raises Interrupted during the block. Afterwards a signal is
    only noted (the command is over; the process is exiting) and the handlers the block found
    come back."""
    global _state
    _state = _State()
    previous = install()
    try:
        yield
    finally:
        _state.past_return = True
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def exit_stopped(signum: int) -> NoReturn:
    """The one line and the exit code (128 + the signal's number, as a shell reports it)."""
    with contextlib.suppress(OSError):
        sys.stderr.write(
            f"Error: stopped by {signal_name(signum)}; nothing was written, the previous output "
            "is unchanged\n"
        )
        sys.stderr.flush()
    sys.exit(128 + signum)


def ignore_until_exit() -> None:
    """Ignore SIGINT and SIGTERM for the rest of the process (its exit). Python's teardown puts
    the default action back for a signal with a Python handler, not for an ignored one; any
    thread may take a signal, so blocking it in one thread would not do."""
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def point_of_no_return() -> None:
    """The output is about to be replaced: from here a signal is noted, not raised."""
    _state.past_return = True


def received() -> int | None:
    """The signal that stopped the run, if one did."""
    return _state.received


def late() -> int | None:
    """A signal that arrived once the new output was being put in place."""
    return _state.late


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
