"""One emulator per data dir: an OS file lock held while it serves, plus a note of who holds it.

Two emulators on one data dir would both resume its unfinished jobs (rendering them twice)
and share one SQLite file from two processes that each think they own it. The lock is the
OS's (released when its process dies, so a crashed emulator leaves no stale lock); the note
beside it names the holder's address and pid, for the refusal message.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from tchavi_render.atomic import atomic_write_text
from tchavi_render.emulator.config import EmulatorStartError

__all__ = ["IN_USE_HINT", "DataDirInUse", "hold_data_dir"]

LOCK_NAME = "emulator.lock"
NOTE_NAME = "emulator.holder.json"
IN_USE_HINT = "stop it or pass another --data-dir"
# A holder writes its note right after it takes the lock: wait that long for it to appear.
NOTE_WAIT = 1.0


class DataDirInUse(EmulatorStartError):
    """Another emulator (a server, or the local backend of an apply) serves the data dir."""


def _holder(note: Path) -> str:
    deadline = time.monotonic() + NOTE_WAIT
    while True:
        try:
            info = json.loads(note.read_text(encoding="utf-8"))
            return f"the emulator at {info['url']} (pid {int(info['pid'])})"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "another emulator"
            time.sleep(0.05)


@contextlib.contextmanager
def hold_data_dir(data_dir: Path, url: str, *, in_use_hint: str = IN_USE_HINT) -> Iterator[None]:
    """Hold `data_dir` for the block as the emulator serving at `url`.

    Raises DataDirInUse, naming the holder and ending with `in_use_hint`, when another
    emulator (in this process or another) holds it; OSError when the dir cannot be made.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # Not thread-local: the emulator holds it, whichever thread leaves the block.
    lock = FileLock(str(data_dir / LOCK_NAME), thread_local=False)
    note = data_dir / NOTE_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DataDirInUse(
            f"data dir {data_dir} is in use by {_holder(note)}; {in_use_hint}"
        ) from None
    try:
        atomic_write_text(note, json.dumps({"pid": os.getpid(), "url": url}))
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()
