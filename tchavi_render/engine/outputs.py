"""Output files: which ones a spec owns, and the rule every write and delete of one obeys.

A spec owns the files its lock placed: `<output_dir>/<id>.mp4`, regular files whose bytes
are the sha256 its lock records. The lock is untrusted input (users edit and merge it), so
ownership is checked against the disk before anything is overwritten or removed:

- a file is overwritten only when nothing is lost: it is absent, it already holds the
  bytes being placed, it is what this lock placed there, or its bytes are a render the
  cache keeps; a file another spec's lock placed is never overwritten (two specs in one
  folder sharing an output directory); a file modified by hand is overwritten only when
  the user asks (`--restore-modified`);
- a file is removed only when it is this lock's, under the spec's output directory, with
  the recorded bytes, and no other lock names it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from tchavi_render.engine.lock import LOCK_HEADER, LockEntry
from tchavi_render.engine.lockread import read_lock
from tchavi_render.errors import LockfileError
from tchavi_render.media import MediaIndex

__all__ = [
    "RESTORE_FLAG",
    "OutputFiles",
    "Outputs",
    "delete_problem",
    "spec_for_lock",
    "write_problem",
]

RESTORE_FLAG = "--restore-modified"
_HEADER = LOCK_HEADER.split(":")[0].encode()  # how a lock file of ours begins


class Outputs(Protocol):
    """What the plan may know about the output files: reads only."""

    def relpath_for(self, shot_id: str) -> str:
        """The file tchavi-render writes for `shot_id`, relative to the project."""
        ...

    def exists(self, relpath: str) -> bool:
        """Anything (a file, a symlink, a directory) is at `relpath`."""
        ...

    def sha256(self, relpath: str) -> str | None:
        """The digest of the regular file at `relpath` (never through a symlink), else None."""
        ...

    def owner(self, relpath: str) -> str | None:
        """The other spec whose lock placed `relpath`, as messages name it; None if none."""
        ...

    def recoverable(self, sha256: str) -> bool:
        """The render cache keeps these bytes, so overwriting a file holding them loses
        nothing."""
        ...


def write_problem(
    files: Outputs,
    shot_id: str,
    locked: LockEntry | None,
    placing: str | None,
    *,
    restore: bool = False,
) -> str | None:
    """Why the output of `shot_id` must not be (over)written now, or None when it may be.

    `locked` is what this spec's lock said of the shot before this apply; `placing` the
    sha256 of the bytes about to be written, when known.
    """
    relpath = files.relpath_for(shot_id)
    if not files.exists(relpath):
        return None
    other = files.owner(relpath)
    if other is not None:
        return (
            f"{relpath} belongs to {other}, another spec in this folder; give each spec its "
            "own output_dir"
        )
    current = files.sha256(relpath)
    if current is None:
        return (
            f"{relpath} is not a file tchavi-render placed (a symlink or a directory); move it away"
        )
    if current == placing:
        return None
    output = locked.output if locked is not None else None
    mine = output is not None and output.path == relpath
    if mine and output is not None and current == output.sha256:
        return None
    if files.recoverable(current) or restore:
        return None
    if mine:
        return (
            f"{relpath} was modified by hand since it was rendered; apply leaves it. Keep "
            f"your edit under another name, or pass {RESTORE_FLAG} to put the render back"
        )
    return (
        f"{relpath} exists and this spec's lock did not place it; apply leaves it. Move it "
        f"away, or pass {RESTORE_FLAG} to overwrite it"
    )


def delete_problem(files: Outputs, shot_id: str, entry: LockEntry) -> str | None:
    """Why the locked output of a shot leaving the spec stays on disk, or None when it
    goes (or is already gone)."""
    if entry.output is None:
        return None
    relpath = entry.output.path
    if not files.exists(relpath):
        return None
    if relpath != files.relpath_for(shot_id):
        return f"left {relpath} in place: it is outside the spec's output_dir"
    current = files.sha256(relpath)
    if current is None:
        return f"left {relpath} in place: it is not a file tchavi-render placed"
    if current != entry.output.sha256:
        return f"left {relpath} in place: it was modified by hand since it was rendered"
    other = files.owner(relpath)
    if other is not None:
        return f"left {relpath} in place: {other} uses it too"
    return None


def spec_for_lock(lock: Path) -> str:
    """How messages name the spec a lock belongs to: its spec file when there is one."""
    for suffix in (".yaml", ".yml"):
        spec = lock.with_suffix(suffix)
        if spec.is_file():
            return spec.name
    return lock.name


@dataclass
class OutputFiles:
    """The output files of one spec on disk (the Outputs the plan and apply read)."""

    project_dir: Path
    output_dir: Path
    lock_path: Path
    media: MediaIndex
    has_object: Callable[[str], bool]
    _owners: dict[str, str] | None = field(default=None, repr=False)

    def relpath_for(self, shot_id: str) -> str:
        return (self.output_dir / f"{shot_id}.mp4").relative_to(self.project_dir).as_posix()

    def path(self, relpath: str) -> Path:
        return self.project_dir / PurePosixPath(relpath)

    def exists(self, relpath: str) -> bool:
        return os.path.lexists(self.path(relpath))

    def sha256(self, relpath: str) -> str | None:
        path = self.path(relpath)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            return self.media.sha256(path)
        except OSError:
            return None

    def recoverable(self, sha256: str) -> bool:
        return self.has_object(sha256)

    def owner(self, relpath: str) -> str | None:
        if self._owners is None:
            self._owners = self._read_owners()
        return self._owners.get(relpath)

    def _read_owners(self) -> dict[str, str]:
        """relpath -> the spec whose lock placed it, for every other lock that can write into
        the output directory: the locks in the folders from the project down to it."""
        owners: dict[str, str] = {}
        for lock in self._other_locks():
            try:
                other = read_lock(lock)
            except LockfileError:
                continue  # not ours to judge here; that spec's own plan reports it
            for entry in other.shots.values():
                if entry.output is None:
                    continue
                placed = lock.parent / PurePosixPath(entry.output.path)
                try:
                    relpath = placed.relative_to(self.project_dir).as_posix()
                except ValueError:
                    continue
                owners.setdefault(relpath, spec_for_lock(lock))
        return owners

    def _other_locks(self) -> Iterable[Path]:
        folder = self.project_dir
        folders = [folder]
        for part in self.output_dir.relative_to(self.project_dir).parts:
            folder = folder / part
            folders.append(folder)
        for directory in folders:
            try:
                candidates = sorted(directory.glob("*.lock"))
            except OSError:
                continue
            for lock in candidates:
                if lock == self.lock_path or not lock.is_file():
                    continue
                try:
                    with lock.open("rb") as handle:
                        head = handle.read(len(_HEADER))
                except OSError:
                    continue
                if head == _HEADER:
                    yield lock
