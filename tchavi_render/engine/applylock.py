"""One apply per spec at a time: an OS file lock (released when its process dies, so a
crashed apply leaves no stale lock) plus a note of who holds it, for the refusal message."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from tchavi_render.atomic import atomic_write_text
from tchavi_render.engine.journal import state_dir_for
from tchavi_render.errors import LockHeld

__all__ = ["apply_lock"]


def _holder(note: Path) -> str:
    try:
        info = json.loads(note.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"pid {info['pid']} on {info['host']}, since {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def apply_lock(spec_path: Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold the spec's apply lock for the block; fail fast (or after `timeout` seconds)."""
    state = state_dir_for(spec_path)
    state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state / f"{spec_path.stem}.apply.lock"))
    note = state / f"{spec_path.stem}.apply.holder"
    try:
        lock.acquire(timeout=max(timeout, 0.0), poll_interval=0.1)
    except Timeout:
        raise LockHeld(
            f"{spec_path.name} is being applied by {_holder(note)}. Wait for it to finish, "
            "or pass --lock-timeout SECONDS to wait"
        ) from None
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        atomic_write_text(note, json.dumps(holder))
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()
