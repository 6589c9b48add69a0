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
    "atomic_copy",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_mode",
    "fsync_dir",
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


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Write `path` all or nothing: readers see the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, file_mode(path))
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


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
