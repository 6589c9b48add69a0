"""A clock for an emulator that a test moves forward instead of sleeping."""

from __future__ import annotations

import threading
import time

__all__ = ["MovableClock"]


class MovableClock:
    """Real time (seconds since the epoch) plus an offset that only grows.

    Time still passes, so the emulator's renders and clients' polls run as usual; a test
    calls `advance` to be past a job's latency or a URL's expiry at once.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time only moves forward"
        with self._lock:
            self._offset += seconds
