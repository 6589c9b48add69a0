"""Fault injection and rate limiting: which jobs fail, which requests answer 5xx, who gets 429."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "FAILURE_CODES",
    "FAILURE_MESSAGES",
    "UNLIMITED_RPM",
    "Faults",
    "InjectedError",
    "RateDecision",
    "RateLimiter",
]

FAILURE_MESSAGES: dict[str, str] = {
    "upstream_error": "The video model failed to generate this job. The credits were refunded.",
    "timeout": "The job did not finish within the time limit. The credits were refunded.",
    "content_policy_violation": (
        "The prompt or a reference was flagged by the content policy. The credits were refunded."
    ),
}
FAILURE_CODES: tuple[str, ...] = tuple(FAILURE_MESSAGES)

# What X-RateLimit-RPM-Limit says when no --rpm is set: a number (clients parse it as one)
# far above anything a client can reach.
UNLIMITED_RPM = 1_000_000
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class InjectedError:
    """A 5xx the emulator answers on purpose. `after_create`: a POST creates (and bills) its
    job first, then answers the error: the ambiguous case a client must reconcile."""

    status: int
    code: str
    message: str
    after_create: bool


class Faults:
    """Draws the faults; with a seed, the same sequence of calls gives the same faults."""

    def __init__(self, fail_rate: float, error_rate: float, seed: int | None = None) -> None:
        self.fail_rate = fail_rate
        self.error_rate = error_rate
        # Separate streams, so how many requests a client makes does not change which jobs fail.
        self._jobs = random.Random(None if seed is None else f"jobs:{seed}")
        self._requests = random.Random(None if seed is None else f"requests:{seed}")
        self._lock = threading.Lock()

    def job_failure(self) -> str | None:
        """The failure code for a newly submitted job, or None if it will succeed."""
        with self._lock:
            if self._jobs.random() >= self.fail_rate:
                return None
            return self._jobs.choice(FAILURE_CODES)

    def request_error(self, is_submit: bool) -> InjectedError | None:
        """A 500/502 to answer instead of this request, or None to serve it."""
        with self._lock:
            if self._requests.random() >= self.error_rate:
                return None
            status = self._requests.choice((500, 502))
            after_create = is_submit and self._requests.random() < 0.5
        if status == 500:
            return InjectedError(500, "internal_error", "Internal server error.", after_create)
        return InjectedError(
            502, "upstream_error", "The upstream video service did not answer.", after_create
        )


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds until a request would be allowed; 0 when allowed


class RateLimiter:
    """Per-account sliding one-minute window of accepted requests. Refused ones don't count."""

    def __init__(self, rpm: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rpm = rpm
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return UNLIMITED_RPM if self.rpm is None else self.rpm

    def hit(self, account: str) -> RateDecision:
        """Count one request by `account` if the window has room."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(account, deque())
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= self.limit:
                wait = hits[0] + WINDOW_SECONDS - now
                return RateDecision(False, self.limit, 0, max(1, math.ceil(wait)))
            hits.append(now)
            return RateDecision(True, self.limit, self.limit - len(hits), 0)

    def idle(self) -> RateDecision:
        """The headers for a request that belongs to no account (e.g. a 401)."""
        return RateDecision(True, self.limit, self.limit, 0)
