"""OS file locks: one run at a time per output, and folders whose owner can be proved dead.

Why a kernel lock rather than a pid: a pid means something only in its own pid namespace and
on its own host. Two containers sharing a volume see different pids, and a run once judged
another live run's temporary folder dead (its pid was not alive in its own namespace) and
deleted it. The kernel releases a `flock` when its holder exits, however it exits (kill -9
included); Linux emulates `flock` on NFS with byte-range locks that the server keeps, so the
lock holds across hosts sharing the mount too.

- `output_lock`: `.NAME.stitcher-lock` beside the output, held for the whole run. While it is
  held, nothing else writes that output, so every `.NAME.stitcher-tmp-*` folder beside it is a
  dead run's (stitcher/output/files.py, `recover_interrupted`).
- `owned_folder`: a folder of this run's own in a shared place (spill folders in --temp-dir,
  staging folders for URL outputs), with a lock file inside held while the run lives. Another
  run removes it only when it can take that lock.

The lock file is unlinked when its holder is done. A waiter that opened it before the unlink
then holds a lock on a file no longer at the path: after locking, a holder checks that the
path still names the file it locked, and starts over when it does not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from stitcher.errors import OutputError

log = logging.getLogger("stitcher")

LOCK_MARK = ".stitcher-lock"
# Inside a folder made by owned_folder: locked by the run that uses the folder.
OWNER_FILE = ".stitcher-owner"
# How often a run given --wait tries the lock again.
_POLL_SECONDS = 0.2
# A folder with the owned_folder mark whose owner file is missing or empty: being made right
# now, made by an older stitcher, or left by a run killed while making it. A live run creates,
# locks and fills the file right after the folder, so a folder this old without a filled one
# has no live owner.
_UNOWNED_GRACE_SECONDS = 60.0


def lock_path(output_dir: Path) -> Path:
    return output_dir.parent / f".{output_dir.name}{LOCK_MARK}"


@contextmanager
def output_lock(output_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the output's lock for the block: the only writer of `output_dir`.

    Missing parent folders are created to hold the lock file; when the block fails and no
    output exists afterwards, the folders it created are removed again, so a run that fails
    early leaves nothing behind. Raises OutputError naming the run that holds the lock when it
    is not free within `wait_seconds`.
    """
    created = _make_parents(output_dir.parent)
    try:
        fd = _acquire(output_dir, wait_seconds)
    except BaseException:
        _remove_created(created)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path(output_dir))
        os.close(fd)
        if not output_dir.exists():
            _remove_created(created)


def _acquire(output_dir: Path, wait_seconds: float) -> int:
    path = lock_path(output_dir)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot create the lock file {path} for --output: {exc.strerror}; choose "
                "another --output"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise OutputError(f"cannot lock {path}: {exc.strerror}") from exc
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait_seconds:g} s" if wait_seconds else ""
                raise OutputError(
                    f"another stitcher run ({holder}) is writing {output_dir}{waited}; let it "
                    "finish, or pass --wait SECONDS to wait for it"
                ) from None
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            continue
        if _still_at(fd, path):
            _write_holder(fd)
            return fd
        os.close(fd)  # the holder before us unlinked it: lock the file now at the path


def _still_at(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _write_holder(fd: int) -> None:
    holder = {
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):  # the lock is what counts; this only names its holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"host {holder['host']}, pid {holder['pid']}, started at {holder['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its host and pid not yet written"


def _make_parents(parent: Path) -> list[Path]:
    """Create `parent` and any missing folders above it; the ones created, outermost first."""
    missing = []
    for folder in (parent, *parent.parents):
        if folder.exists():
            break
        missing.append(folder)
    missing.reverse()
    for folder in missing:
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_created(missing[: missing.index(folder)])
            raise OutputError(f"cannot create {folder} for --output: {exc.strerror}") from exc
    return missing


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return  # something else is in it now: not ours to remove


@contextmanager
def owned_folder(parent: Path, mark: str, what: str, place: str) -> Iterator[Path]:
    """A new folder `parent/<mark><pid>-<random>` for the block, removed afterwards; first the
    folders of the same mark that no live run owns are removed (a killed run's spill folder
    holds gigabytes). `what` names such a folder in the log, `place` the parent in an error."""
    remove_unowned(parent, mark, what)
    folder = parent / f"{mark}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir()
        fd = os.open(folder / OWNER_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        with contextlib.suppress(OSError):
            folder.rmdir()
        raise OutputError(f"cannot create a {what} in {place}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a new file: only a cleaner testing it can hold it
        # Written only with the lock held: a cleaner that finds the file empty may have tested
        # it between its creation and the lock above, so it goes by the folder's age instead.
        os.write(fd, f"{os.uname().nodename} {os.getpid()}\n".encode())
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def remove_unowned(parent: Path, mark: str, what: str) -> None:
    """Delete the folders `<mark>*` in `parent` whose owner lock nobody holds."""
    for entry in sorted(parent.glob(f"{mark}*")):
        if entry.is_dir() and not entry.is_symlink() and not _owner_alive(entry):
            log.info("removing the %s of an interrupted run: %s", what, entry)
            shutil.rmtree(entry, ignore_errors=True)


def _owner_alive(folder: Path) -> bool:
    try:
        fd = os.open(folder / OWNER_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return _young(folder)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return os.fstat(fd).st_size == 0 and _young(folder)
    except OSError:
        return True  # held: its run is alive
    finally:
        os.close(fd)


def _young(folder: Path) -> bool:
    """A folder whose owner file is missing or empty: being made right now, or left by an
    older stitcher or a run killed while making it. Only its age can tell."""
    try:
        return time.time() - folder.stat().st_mtime < _UNOWNED_GRACE_SECONDS
    except OSError:
        return True  # gone already, or not ours to judge
