"""Where a run's files end up: a local folder, or a URL the engine's file system writes.

A run always writes its whole output into a local folder first, with the same code whatever
the destination, so the files are byte for byte the same. Then:

- **a local (or mounted) --output**: the folder was created beside it and replaces it by two
  renames (stitcher/output/files.py, `atomic_output_dir`);
- **a URL --output** (s3a://, abfss://, gs://, hdfs://, file://; `--engine spark`): the folder
  is a staging folder under --temp-dir (or the system's temporary folder), published through
  the engine's file system (Spark: the session's Hadoop FileSystem, with its s3a/abfss
  settings). The files are copied into a temporary folder beside the output URL,
  `.NAME.stitcher-tmp-HOST-PID-X`, their sizes checked, and swapped in as locally: the
  previous output renamed aside to `.NAME.stitcher-old-X`, the new one renamed into place, the
  old one deleted. A failure before the swap deletes the temporary folder; a failure during it
  renames the previous output back. The next run cleans up after a killed one (`_recover`).

How atomic the swap is depends on the store's rename: one metadata operation on HDFS, on ABFS
with a hierarchical namespace and on a local disk (file://); a copy of every object and a
delete on S3 (s3a://) and GCS (gs://), so there a reader may meanwhile see the output folder
missing or partly copied (README, known limits).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from stitcher import interrupts
from stitcher.config import OUTPUT_FORMATS as FORMATS
from stitcher.errors import OutputError, StitcherError
from stitcher.location import Url, UrlFileSystem
from stitcher.output.files import OLD_MARK, TMP_MARK, atomic_output_dir, refuse_foreign
from stitcher.output.locks import owned_folder

if TYPE_CHECKING:
    from stitcher.engines import Engine

log = logging.getLogger("stitcher")

_STAGE_MARK = ".stitcher-stage-"
# What `compare` reads of the previous output (stitcher/inspection/changes.py:
# compare_with_previous): its id_map, in either format, and run.json for the time it finished.
_COMPARED_FILES = (*(f"id_map.{f}" for f in FORMATS), "run.json")


class OutputStage(Protocol):
    """The local folder a run writes into, and how it reaches --output."""

    folder: Path
    # True: publishing needs the engine (its file system), so the run finishes before closing it.
    publishes_through_engine: bool

    def connect(self, engine: Engine) -> None:
        """Called once the engine is open, before any work: check the destination and clean up
        after an interrupted run."""

    def previous(self) -> Path | None:
        """A local folder holding what `compare` reads of the output being replaced, or None
        when there is none."""

    def publish(self, files: list[str]) -> None:
        """Make `files` of `folder` the output, all at once, or fail and leave the previous
        output as it was."""


class LocalStage:
    """A local (or mounted) --output: `folder` sits beside it and atomic_output_dir swaps it in
    when the run's `with` block ends."""

    publishes_through_engine = False

    def __init__(self, output_dir: Path, folder: Path) -> None:
        self.output_dir = output_dir
        self.folder = folder

    def connect(self, engine: Engine) -> None:
        pass  # checked, and cleaned after a killed run, before the engine opened

    def previous(self) -> Path | None:
        # As a URL output's: an output without an id_map has nothing to compare with.
        if any((self.output_dir / f"id_map.{f}").is_file() for f in FORMATS):
            return self.output_dir
        return None

    def publish(self, files: list[str]) -> None:
        pass  # the swap is atomic_output_dir's, when the run's `with` block ends


class UrlStage:
    """A URL --output: written into a local staging folder, published through the engine."""

    publishes_through_engine = True

    def __init__(self, url: Url, root: Path, replaceable: frozenset[str] | None) -> None:
        self.url = url
        self._root = root
        self._replaceable = replaceable
        self.folder = root / "output"
        self.folder.mkdir()
        self._fs: UrlFileSystem | None = None

    def connect(self, engine: Engine) -> None:
        self._fs = fs = engine.url_files(self.url)
        status = fs.status(str(self.url))
        if status is not None and not status.is_dir:
            raise OutputError(f"--output {self.url} is a file; give a folder URL")
        parent = fs.status(str(self.url.parent))
        if parent is not None and not parent.is_dir:
            raise OutputError(
                f"--output {self.url}: {self.url.parent} is a file, not a folder; choose "
                "another --output"
            )
        if parent is not None:
            self._recover(fs)
        if status is not None and self._replaceable is not None:
            # As a local --output (outputs.check_replaceable); run.json is not downloaded for
            # this: its name is the mark.
            names = sorted(e.name + ("/" if e.is_dir else "") for e in fs.listing(str(self.url)))
            refuse_foreign(self.url, names, "run.json" in names, self._replaceable)

    def previous(self) -> Path | None:
        fs = self._files()
        url = self.url
        status = fs.status(str(url))
        if status is None or not status.is_dir:
            return None
        present = {e.name: e.size for e in fs.listing(str(url)) if not e.is_dir}
        wanted = [name for name in _COMPARED_FILES if name in present]
        if not any(name.startswith("id_map.") for name in wanted):
            return None
        folder = self._root / "previous"
        folder.mkdir(exist_ok=True)
        started = time.perf_counter()
        try:
            for name in wanted:
                fs.download(str(url / name), folder / name)
        except StitcherError as exc:
            # As for a local output that cannot be read: not worth failing the run for.
            log.warning("not comparing with the previous output: %s", exc)
            return None
        log.info(
            "copied %s of the previous output down from %s (%.1f MB) in %.2f s",
            ", ".join(wanted),
            url,
            sum(present[n] for n in wanted) / 1e6,
            time.perf_counter() - started,
        )
        return folder

    def publish(self, files: list[str]) -> None:
        fs = self._files()
        url = self.url
        started = time.perf_counter()
        tmp = url.parent / f".{url.name}{TMP_MARK}{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # run.json last: a folder without it never held a finished output (see _recover).
        ordered = sorted(files, key=lambda name: name == "run.json")
        sizes = {name: (self.folder / name).stat().st_size for name in ordered}
        try:
            fs.make_dirs(str(tmp))
            for name in ordered:
                fs.upload(self.folder / name, str(tmp / name))
            copied = {e.name: e.size for e in fs.listing(str(tmp))}
            for name, size in sizes.items():
                if copied.get(name) != size:
                    raise OutputError(
                        f"cannot publish to {url}: {tmp / name} holds {copied.get(name)} bytes "
                        f"after the copy, not {size}; check the store and rerun"
                    )
        except BaseException:
            _discard(fs, tmp)
            raise
        self._swap_in(fs, tmp)
        log.info(
            "published %d files (%.1f MB) to %s in %.2f s",
            len(ordered),
            sum(sizes.values()) / 1e6,
            url,
            time.perf_counter() - started,
        )

    def _swap_in(self, fs: UrlFileSystem, tmp: Url) -> None:
        interrupts.point_of_no_return()  # as for a local output (outputs._swap_in)
        url = self.url
        old = None
        try:
            if fs.status(str(url)) is not None:
                old = url.parent / f".{url.name}{OLD_MARK}{uuid.uuid4().hex[:8]}"
                fs.rename(str(url), str(old))
        except BaseException:
            _discard(fs, tmp)
            raise
        try:
            fs.rename(str(tmp), str(url))
        except BaseException as exc:
            if old is not None:
                _restore(fs, old, url)
            _discard(fs, tmp)
            if isinstance(exc, StitcherError):
                raise OutputError(f"cannot move the new output into {url}: {exc}") from exc
            raise
        if old is not None:
            try:
                fs.delete(str(old))
            except StitcherError as exc:
                # The new output is in place: a stale copy of the old one is only clutter.
                log.warning("could not delete the previous output at %s (%s)", old, exc)

    def _recover(self, fs: UrlFileSystem) -> None:
        """Undo what a killed run may have left beside the output URL.

        `.NAME.stitcher-old-*`: a run died during its swap. When the output is missing, or holds
        no run.json (a store whose rename is a copy was interrupted mid-copy: it was never a
        finished output), the old output is put back; otherwise the swap had finished and the
        old copy is deleted. `.NAME.stitcher-tmp-HOST-PID-*` folders of dead runs on this host
        are deleted; those of other hosts are left (that run may be alive) and named.
        """
        url = self.url
        name = url.name
        for entry in sorted(fs.listing(str(url.parent)), key=lambda e: e.name):
            location = url.parent / entry.name
            if entry.name.startswith(f".{name}{OLD_MARK}"):
                current = fs.status(str(url))
                if current is None or fs.status(str(url / "run.json")) is None:
                    log.warning("restoring %s from an interrupted run (%s)", url, location)
                    _restore(fs, location, url)
                else:
                    log.info("removing the previous output an interrupted run left: %s", location)
                    fs.delete(str(location))
            elif entry.name.startswith(f".{name}{TMP_MARK}"):
                # HOST-PID-X; a host name may hold dashes, so split from the right.
                host, _, pid = (
                    entry.name[len(f".{name}{TMP_MARK}") :].rpartition("-")[0].rpartition("-")
                )
                if host == HOST and pid.isdigit() and not process_alive(int(pid)):
                    log.info("removing leftover temporary folder %s", location)
                    fs.delete(str(location))
                elif host != HOST:
                    log.warning(
                        "leaving %s: a temporary folder of a run on host %s; delete it if that "
                        "run is over",
                        location,
                        host,
                    )

    def _files(self) -> UrlFileSystem:
        if self._fs is None:
            raise RuntimeError("UrlStage.connect(engine) must be called first")
        return self._fs


# The host in temporary folder names: a run may only judge whether a process of its own host
# is still alive.
# os.uname, not socket.gethostname: the same name, without touching the socket module (the
# security tests hold the tool to no socket use at all).
HOST = os.uname().nodename.replace("/", "_") or "localhost"


def process_alive(pid: int) -> bool:
    """Whether `pid` runs on this host, in this pid namespace: the only test a URL output's
    temporary folders get (no lock spans a store; see README, known limits)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _restore(fs: UrlFileSystem, old: Url, url: Url) -> None:
    try:
        if fs.status(str(url)) is not None:
            fs.delete(str(url))  # a partial copy, never a finished output
        fs.rename(str(old), str(url))
    except StitcherError as exc:
        log.error("the previous output is at %s; rename it to %s (%s)", old, url, exc)


def _discard(fs: UrlFileSystem, tmp: Url) -> None:
    try:
        fs.delete(str(tmp))
    except StitcherError as exc:
        log.warning("could not delete the temporary folder %s (%s)", tmp, exc)


@contextmanager
def staged_output(
    output: Path | Url, temp_dir: Path | None, replaceable: frozenset[str] | None = None
) -> Iterator[OutputStage]:
    """The stage a run writes into: beside a local --output, or, for a URL, a staging folder of
    this run's own under --temp-dir (default: the system's temporary folder), removed at the
    end whatever happens. A URL holding a name outside `replaceable` is refused (None: replace
    whatever is there, --force); a local --output was checked already, under its lock."""
    if not isinstance(output, Url):
        with atomic_output_dir(output) as folder:
            yield LocalStage(output, folder)
        return
    parent = temp_dir or Path(tempfile.gettempdir())
    where = f"{parent} for --output {output} (give another --temp-dir)"
    with owned_folder(parent, _STAGE_MARK, "staging folder", where) as root:
        yield UrlStage(output, root, replaceable)
