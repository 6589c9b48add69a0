"""Threads for work with slack: checking and storing downloads, the emulator's renders.

A downloaded video can wait a moment before it is checked and cached, and an emulated
render is not visible before its latency anyway; submits and polls cannot wait, since they
decide how fast an apply goes. On Linux these threads run at a lower CPU priority (a
higher nice value), so on a busy machine the event loop and the emulator's request
handling go first. Elsewhere they are plain threads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["NICENESS", "background_pool"]

NICENESS = 10  # added to the process's nice value (19 at most)


def _lower_priority() -> None:
    # Only on Linux is a thread's native id a scheduling entity that setpriority accepts;
    # elsewhere the same call would name a process.
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, tid) + NICENESS
        os.setpriority(os.PRIO_PROCESS, tid, min(19, niceness))


def background_pool(workers: int, name: str) -> ThreadPoolExecutor:
    """A pool of `workers` threads named `name-N`, at lower CPU priority where possible."""
    return ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=_lower_priority)
