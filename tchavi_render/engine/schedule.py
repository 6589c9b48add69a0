"""When apply's one poller looks at the jobs in flight: a pure schedule over an injected clock.

Renders of one apply take about as long as each other, so the shortest time a job took from
submit to done (`quickest`) says when each job in flight should be done: the poller wakes at
the first such moment after its last look, and one list call settles every job due by then.
A job not known to be due yet (before any job finished) or past its moment is looked at
again after a tenth of its age, at least `first_interval` after its submit and at most
`max_interval` after the last look: it is seen done within about a tenth of its render time,
however long renders take. Polls are never closer than `floor`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = [
    "MIN_POLL_INTERVAL",
    "POLL_SHARE_WHILE_SUBMITTING",
    "PollSchedule",
    "poll_floor",
]

MIN_POLL_INTERVAL = 0.1
# While submits wait for the request budget, polls take at most this share of it: each
# poll settles every job done by then, so rarer polls cost little time and leave the
# budget to submits. With no submit waiting, polls may use all of it.
POLL_SHARE_WHILE_SUBMITTING = 0.25


def poll_floor(budget: int | None, submitting: bool) -> float:
    """The shortest time between polls for a client allowed `budget` requests a minute."""
    if budget is None:
        return MIN_POLL_INTERVAL
    share = POLL_SHARE_WHILE_SUBMITTING if submitting else 1.0
    return max(MIN_POLL_INTERVAL, 60.0 / (budget * share))


class PollSchedule:
    """The jobs being watched, since when, and when the next look is due."""

    def __init__(
        self,
        first_interval: float,
        max_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_interval = first_interval
        self.max_interval = max_interval
        self.clock = clock
        self.floor = MIN_POLL_INTERVAL
        self._since: dict[str, float] = {}  # job id -> when it began to be watched
        self.quickest: float | None = None  # the shortest watch that ended in a settle
        self.last_poll = clock()

    def start(self, job_id: str) -> None:
        """`job_id` is watched from now on."""
        self._since[job_id] = self.clock()

    def settle(self, job_id: str) -> None:
        """`job_id` was seen done: its watch times the renders of this apply."""
        started = self._since.pop(job_id, None)
        if started is not None:
            took = self.clock() - started
            self.quickest = took if self.quickest is None else min(self.quickest, took)

    def drop(self, job_id: str) -> None:
        """`job_id` is no longer watched, and says nothing about render times."""
        self._since.pop(job_id, None)

    def polled(self, at: float) -> None:
        """Every job in flight was looked at `at` (or jobs to watch came after none)."""
        self.last_poll = at

    def delay(self) -> float:
        """Seconds from now until the next poll."""
        now = self.clock()
        last = self.last_poll
        wakes: list[float] = []
        unknown = list(self._since.values())  # jobs not known to be due at a given moment
        if self.quickest is not None:
            due = [t + self.quickest for t in unknown]
            wakes += [d for d in due if d > last]
            unknown = [t for t, d in zip(unknown, due, strict=True) if d <= last]
        if unknown:
            oldest = min(unknown)
            wait = min(self.max_interval, (last - oldest) / 10)
            wakes.append(max(oldest + self.first_interval, last + wait))
        wake = min(wakes, default=last + self.first_interval)
        return max(0.0, max(wake, last + self.floor) - now)
