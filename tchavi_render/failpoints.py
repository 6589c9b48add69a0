"""A test seam: SIGKILL the process at a named moment, when TCHAVI_RENDER_FAILPOINT names it.

The crash suite (`tests/reliability/test_crash.py`) runs `apply` in a child process with
`TCHAVI_RENDER_FAILPOINT=NAME` (the first time NAME is reached) or `NAME:N` (the N-th
time) and checks that the next apply neither pays twice nor finds a broken lock. A
SIGKILL gives the process no chance to clean up, exactly like a power cut or the OOM
killer, so the moment is deterministic where a timed kill is not.

Unset (always, outside that suite), `failpoint()` is one dictionary lookup. Never set the
variable in a process you care about.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["ENV", "POINTS", "failpoint"]

ENV = "TCHAVI_RENDER_FAILPOINT"

# Every point the code reaches, in the order one render passes them.
POINTS = (
    "before-intent",  # apply: nothing about this key is journaled yet
    "before-submit",  # apply: the intent is journaled, the POST not sent
    "after-submit",  # apply: the job exists (and is paid), its id is not journaled
    "after-journal",  # apply: the job id is journaled, not yet polled
    "after-poll",  # apply: a poll answered, its jobs not yet settled
    "mid-download",  # api: part of the video is written to the temp file
    "after-download",  # apply: the video is downloaded, not yet in the cache
    "after-cache",  # apply: the cache holds the render, the output is not placed
    "mid-lock-write",  # lock: the new lock is in its temp file, not yet renamed
    "after-lock",  # apply: the lock is written, the journal not yet compacted
)

_hits: dict[str, int] = {}
_hits_lock = threading.Lock()  # points are reached from the event loop and from threads


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL if TCHAVI_RENDER_FAILPOINT asks for `name` now."""
    armed = os.environ.get(ENV)
    if not armed:
        return
    point, _, nth = armed.partition(":")
    if point != name:
        return
    with _hits_lock:
        _hits[name] = hits = _hits.get(name, 0) + 1
    if hits >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
