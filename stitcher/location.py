"""Where the input and the output live: a local path, or a URL (s3a://, abfss://, gs://,
hdfs://, file://) that only an engine can list, read and write.

The loader finds tables by walking a `Tree`: `LocalTree` walks local paths with the operating
system; `UrlTree` walks URLs through an engine that can list them (Spark's Hadoop FileSystem).
Both answer the same questions, so the table discovery rules are written once
(stitcher/input/load.py).
An output URL is written through the same engine's `UrlFileSystem` (stitcher/output/publish.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import unquote

from stitcher.errors import InputError

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://(.*)", re.DOTALL)


def is_hidden(name: str) -> bool:
    # Dot files, and `_SUCCESS` / `_temporary` that Spark and Hadoop leave beside the data.
    return name.startswith((".", "_"))


HIDDEN_REASON = "hidden name (starts with . or _, as writers' markers such as _SUCCESS do)"


@dataclass(frozen=True)
class Skipped:
    """A file or folder under --input that is not read, and why. `quiet` ones (writers'
    markers) are listed in run.json but left out of the warning line."""

    path: Path | Url
    reason: str
    quiet: bool = False

    def record(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason}


@dataclass(frozen=True, order=True)
class Url:
    """A file or folder named by a URL, kept as given (never turned into a local Path, which
    would fold `s3a://bucket` into `s3a:/bucket`). Offers the few Path members the loader and
    the output checks use: name, parent, parts, `/`, relative_to, parents, resolve."""

    text: str

    @staticmethod
    def parse(text: str) -> Url | None:
        """A Url when `text` starts with `scheme://`, else None (a local path)."""
        match = _URL.fullmatch(text.strip())
        if match is None:
            return None
        rest = match.group(2)
        stripped = rest.rstrip("/")
        # Keep the slash of a bare root (`file:///`), drop trailing ones otherwise.
        return Url(f"{match.group(1).lower()}://{stripped if stripped else rest}")

    @property
    def scheme(self) -> str:
        return self.text.split("://", 1)[0]

    def _split(self) -> tuple[str, str]:
        """(scheme://authority, /path) of the URL."""
        head, rest = self.text.split("://", 1)
        authority, slash, path = rest.partition("/")
        return f"{head}://{authority}", slash + path

    @property
    def parts(self) -> tuple[str, ...]:
        """The segments of the path (not the scheme or the bucket/host)."""
        return tuple(p for p in self._split()[1].split("/") if p)

    @property
    def name(self) -> str:
        parts = self.parts
        return parts[-1] if parts else ""

    @property
    def parent(self) -> Url:
        root, _ = self._split()
        parts = self.parts
        if not parts:
            return self
        return Url(root + "/" + "/".join(parts[:-1])) if len(parts) > 1 else Url(root + "/")

    @property
    def parents(self) -> tuple[Path, ...]:
        # No local folder is ever an ancestor of a remote URL (output checks).
        return ()

    def __truediv__(self, name: str) -> Url:
        return Url(self.text.rstrip("/") + "/" + name)

    def is_relative_to(self, other: Url) -> bool:
        """True when this URL is `other` or lies below it (same store, same bucket or host)."""
        mine, theirs = self._split()[0], other._split()[0]
        return _store(mine) == _store(theirs) and self.parts[: len(other.parts)] == other.parts

    def relative_to(self, other: Url) -> PurePosixPath:
        prefix = other.text.rstrip("/") + "/"
        if not self.text.startswith(prefix):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.text[len(prefix) :])

    def resolve(self) -> Path | Url:
        """A `file:` URL is the local folder it names (so the output checks see through it);
        any other URL is itself."""
        if self.scheme == "file":
            return Path(unquote(self._split()[1]) or "/").resolve()
        return self

    def __str__(self) -> str:
        return self.text


# Schemes that name the same store through different connectors (s3a:// and s3:// reach the
# same bucket), so that an output inside the input is recognized whichever spelling is used.
_SAME_STORE = {"s3": "s3a", "s3n": "s3a", "wasbs": "wasb", "abfs": "abfss"}


def _store(root: str) -> str:
    """`scheme://authority` of a URL, compared case-insensitively, one spelling per store."""
    scheme, authority = root.lower().split("://", 1)
    return f"{_SAME_STORE.get(scheme, scheme)}://{authority}"


def input_location(text: str) -> Path | Url:
    """--input as given: a Url when it has a scheme, else a local path."""
    return Url.parse(text) or Path(text)


def output_location(text: str) -> Path | Url:
    """--output as given: a Url when it has a scheme (written through an engine that can, see
    RunOptions), else a local path. Never Path("s3a://b/out"), the local folder `s3a:/b/out`."""
    return Url.parse(text) or Path(text)


class Tree(Protocol):
    """The questions the table finder asks about the input (local paths or URLs)."""

    def exists(self, location: Path | Url) -> bool: ...

    def is_dir(self, location: Path | Url) -> bool: ...

    def children(self, location: Path | Url) -> list:
        """The entries of a folder, sorted by name; OSError when it cannot be listed."""

    def walk_files(self, location: Path | Url) -> tuple[list, list[Skipped]]:
        """Every visible file below a folder, in the order os.walk visits them (a folder's
        files by name, then each subfolder by name), and the entries passed over (hidden files
        and folders, a folder reached a second time through a symbolic link)."""

    def size(self, location: Path | Url) -> int:
        """Bytes in a file; OSError when it cannot be read."""

    def problem(self, location: Path | Url) -> str | None:
        """Why a file of the right name cannot be read as a table, or None."""


class LocalTree:
    """The local file system (and anything mounted into it)."""

    def exists(self, location: Path) -> bool:
        return location.exists()

    def is_dir(self, location: Path) -> bool:
        return location.is_dir()

    def children(self, location: Path) -> list[Path]:
        return sorted(location.iterdir())

    def walk_files(self, location: Path) -> tuple[list[Path], list[Skipped]]:
        # Symbolic links are followed (a partition folder linked in from elsewhere is data);
        # each real folder is walked once, so a link back up the tree ends instead of looping
        # and a folder linked in twice is not read twice. Linked folders wait until the real
        # ones are walked, so that the link, not the folder, is what is passed over.
        files: list[Path] = []
        skipped: list[Skipped] = []
        walked: dict[tuple[int, int], Path] = {}
        pending = [location]
        links: list[Path] = []
        while pending or links:
            folder = pending.pop() if pending else links.pop(0)
            try:
                status = folder.stat()
            except OSError as exc:
                raise InputError(f"cannot read folder {folder}: {exc.strerror}") from exc
            key = (status.st_dev, status.st_ino)
            if key in walked:
                skipped.append(Skipped(folder, f"a link to folder {walked[key]}, already read"))
                continue
            walked[key] = folder
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                raise InputError(f"cannot list folder {folder}: {exc.strerror}") from exc
            subfolders = []
            for entry in entries:
                path = folder / entry.name
                if is_hidden(entry.name):
                    skipped.append(Skipped(path, HIDDEN_REASON, quiet=True))
                elif entry.is_dir():
                    (links if entry.is_symlink() else subfolders).append(path)
                else:
                    _check_link(path)
                    files.append(path)
            pending.extend(reversed(subfolders))
        return files, skipped

    def size(self, location: Path) -> int:
        return location.stat().st_size

    def problem(self, location: Path) -> str | None:
        dangling = _dangling(location)
        if dangling is not None:
            return dangling
        if not location.is_file():
            # A FIFO would block the run forever; a device or socket is never a table.
            return "not a regular file (a pipe, socket or device); move it out of the input folder"
        if not os.access(location, os.R_OK):
            return "permission denied; check the file's owner"
        return None


def _dangling(path: Path) -> str | None:
    """Why a symbolic link leads nowhere (the data it stood for is missing), or None."""
    if path.is_symlink() and not path.exists():
        return (
            f"a symbolic link to {os.readlink(path)}, which does not exist (or is a link "
            "loop); fix the link or remove it"
        )
    return None


def _check_link(path: Path) -> None:
    # Checked while walking: a dangling link to a folder has no suffix for the loader to read.
    dangling = _dangling(path)
    if dangling is not None:
        raise InputError(f"{path} is {dangling}")


LOCAL_TREE = LocalTree()


@dataclass(frozen=True)
class ListedEntry:
    """One entry of a folder listed by an engine."""

    name: str
    is_dir: bool
    size: int = 0


class UrlTree:
    """A tree of URLs listed by an engine: `status(url)` says what is at a URL (None: nothing),
    `listing(url)` lists a folder's entries. Each folder is listed once."""

    def __init__(
        self,
        status: Callable[[str], ListedEntry | None],
        listing: Callable[[str], list[ListedEntry]],
    ) -> None:
        self._status = status
        self._listing = listing
        self._known: dict[str, ListedEntry | None] = {}

    def _entry(self, location: Url) -> ListedEntry | None:
        if location.text not in self._known:
            self._known[location.text] = self._status(location.text)
        return self._known[location.text]

    def exists(self, location: Url) -> bool:
        return self._entry(location) is not None

    def is_dir(self, location: Url) -> bool:
        entry = self._entry(location)
        return entry is not None and entry.is_dir

    def children(self, location: Url) -> list[Url]:
        entries = sorted(self._listing(location.text), key=lambda e: e.name)
        children = []
        for entry in entries:
            child = location / entry.name
            self._known[child.text] = entry
            children.append(child)
        return children

    def walk_files(self, location: Url) -> tuple[list[Url], list[Skipped]]:
        files: list[Url] = []
        skipped: list[Skipped] = []
        folders: list[Url] = []
        for child in self.children(location):
            if is_hidden(child.name):
                skipped.append(Skipped(child, HIDDEN_REASON, quiet=True))
                continue
            (folders if self.is_dir(child) else files).append(child)
        for folder in folders:
            below, passed = self.walk_files(folder)
            files.extend(below)
            skipped.extend(passed)
        return files, skipped

    def size(self, location: Url) -> int:
        entry = self._entry(location)
        if entry is None:
            raise InputError(f"cannot read {location}: it is gone")
        return entry.size

    def problem(self, location: Url) -> str | None:
        return None  # object stores and HDFS hold files only; the engine reports unreadable ones


class UrlFileSystem(Protocol):
    """What an engine offers to read and write files named by URLs (Spark: the session's
    Hadoop FileSystem). `status` and `listing` are what a UrlTree lists with; the rest is what
    publishing an output needs. Every method raises a StitcherError naming the URL when the
    store refuses."""

    def status(self, url: str) -> ListedEntry | None:
        """What is at `url` (None: nothing)."""

    def listing(self, url: str) -> list[ListedEntry]:
        """The entries of the folder at `url`, in no particular order."""

    def make_dirs(self, url: str) -> None:
        """Create the folder at `url` and any missing parents."""

    def upload(self, local: Path, url: str) -> None:
        """Copy the local file `local` to `url` (replacing a file there)."""

    def download(self, url: str, local: Path) -> None:
        """Copy the file at `url` to the local path `local`."""

    def rename(self, source: str, target: str) -> None:
        """Rename `source` to `target`, which must not exist (atomic on HDFS, ABFS with a
        hierarchical namespace and local disks; a copy and a delete on S3 and GCS)."""

    def delete(self, url: str) -> None:
        """Delete the file or folder (recursively) at `url`; nothing there is not an error."""
