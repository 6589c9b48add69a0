"""The client-side request limiter: one sliding one-minute window shared by a client's requests."""

from __future__ import annotations

import bisect
import math
import threading

__all__ = ["WINDOW", "RateLimiter"]

WINDOW = 60.0  # the service counts requests per minute


class RateLimiter:
    """Books a send time for every request so that no minute holds more than `max_rpm`.

    A request asks `reserve(now)` for its slot and sleeps the returned delay; the booking is
    made under a short lock and never held while waiting, so one limiter serves threads and
    asyncio tasks alike. Besides its own budget it obeys the service: `hold(until)` after a
    429's Retry-After, and `observe()` of the X-RateLimit-RPM-* headers, which holds every
    request once the service says none remain (instead of eating a 429).
    """

    def __init__(self, max_rpm: int | None = None) -> None:
        if max_rpm is not None and max_rpm < 1:
            raise ValueError(f"max_rpm must be at least 1, got {max_rpm}")
        self.max_rpm = max_rpm
        self._booked: list[float] = []  # send times, sorted; older than a window are dropped
        self._held_until = -math.inf
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Book the earliest allowed send time; return the seconds to wait for it (>= 0)."""
        with self._lock:
            at = self._earliest(now)
            bisect.insort(self._booked, at)
            del self._booked[: bisect.bisect_right(self._booked, now - WINDOW)]
            return at - now

    def delay(self, now: float) -> float:
        """The seconds a request asking now would wait, booking nothing (>= 0)."""
        with self._lock:
            return self._earliest(now) - now

    def _earliest(self, now: float) -> float:
        at = max(now, self._held_until)
        if self.max_rpm is not None:
            # The window ending at `at` must hold fewer than max_rpm bookings, counting
            # those already booked later than `now` by requests still waiting.
            while True:
                start = bisect.bisect_right(self._booked, at - WINDOW)
                end = bisect.bisect_right(self._booked, at)
                if end - start < self.max_rpm:
                    break
                at = self._booked[end - self.max_rpm] + WINDOW
        return at

    def hold(self, until: float) -> None:
        """Send nothing before `until` (epoch seconds): the service asked us to wait."""
        with self._lock:
            self._held_until = max(self._held_until, until)

    def observe(self, now: float, limit: int | None, remaining: int | None) -> None:
        """Take in the service's X-RateLimit-RPM-Limit / -Remaining from an answer at `now`.

        When nothing remains, a slot frees when the oldest request in the service's window
        leaves it. That is certain once our own oldest request of the minute is a minute
        old, but the window may hold older requests (an earlier process's, another
        machine's) that leave much sooner. So the next request waits for the earlier of
        that moment and one average slot (a minute / limit): if the window is still full
        then, the service's 429 says exactly how long to wait (a refused request does not
        count against the limit).
        """
        if remaining is None or remaining > 0:
            return
        with self._lock:
            until = now + WINDOW / (limit if limit and limit > 0 else WINDOW)
            first = bisect.bisect_right(self._booked, now - WINDOW)
            if first < len(self._booked) and self._booked[first] <= now:
                until = min(until, self._booked[first] + WINDOW)
            self._held_until = max(self._held_until, until)
