"""Every persistent write goes through here: temp file in the same directory, fsync, rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "Staged",
    "atomic_copy",
    "atomic_open",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_mode",
    "fsync_dir",
    "staged",
]


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_mode(path: Path) -> int:
    """The mode a rewrite of `path` gets: its current one, else what the umask allows.

    mkstemp makes temp files private (0600); renamed into place they would stay so."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


class Staged:
    """A temp file beside `target`; `commit()` makes it the target, all or nothing."""

    def __init__(self, target: Path, path: Path) -> None:
        self.target = target
        self.path = path
        self.committed = False

    def commit(self) -> None:
        """Flush the temp file to disk with the target's mode, then rename it over the target."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fchmod(fd, file_mode(self.target))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.path, self.target)
        self.committed = True
        fsync_dir(self.target.parent)


@contextlib.contextmanager
def staged(target: Path, *, suffix: str = ".tmp") -> Iterator[Staged]:
    """A temp file in `target`'s directory, removed on the way out unless committed.

    For writers that decide late whether the result is worth keeping (a download that may
    turn out short); `atomic_path` and `atomic_open` commit whenever their block completes.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    pending = Staged(target, Path(name))
    try:
        yield pending
    finally:
        if not pending.committed:
            pending.path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temp path to write `target` through by name (an encoder opens it itself): it
    replaces `target` when the block completes and is removed when the block raises."""
    with staged(target) as pending:
        yield pending.path
        pending.commit()


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Write `path` all or nothing: readers see the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as pending:
        with pending.path.open("wb") as handle:
            yield handle
        pending.commit()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(source: Path, target: Path, *, expect_sha256: str | None = None) -> str:
    """Copy `source` to `target` atomically and return the sha256 of what was copied.

    With `expect_sha256`, a copy whose bytes differ is discarded and ValueError is raised,
    so a corrupt source never lands at the target.
    """
    digest = hashlib.sha256()
    with source.open("rb") as src, atomic_open(target) as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
        if expect_sha256 is not None and digest.hexdigest() != expect_sha256:
            raise ValueError(f"{source}: sha256 {digest.hexdigest()} is not {expect_sha256}")
    shutil.copymode(source, target)
    return digest.hexdigest()
