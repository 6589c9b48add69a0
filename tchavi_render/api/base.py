"""What the sync and async clients share without I/O: settings, the key, requests, bookkeeping."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tchavi_render import __version__
from tchavi_render.api.account import api_key_from_env, configured_base_url
from tchavi_render.api.errors import RateLimitInfo
from tchavi_render.api.limiter import RateLimiter
from tchavi_render.api.models import GenerationParams, Job, check_request
from tchavi_render.errors import ApiConnectionError, InvalidParams, MissingApiKey, Problem

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ClientCore",
    "generation_params",
    "job_path",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 4
BACKOFF_BASE = 0.5  # seconds before the first retry, doubled each time
BACKOFF_CAP = 30.0


class _Secret:
    """The API key, kept out of every repr and str (an f-string cannot leak it)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def job_path(job_id: str) -> str:
    """The path of one job; the id is quoted so that it cannot walk to another path."""
    return "jobs/" + quote(job_id, safe="")


def generation_params(
    params: GenerationParams | None, fields: Mapping[str, Any]
) -> GenerationParams:
    """The validated request: a ready GenerationParams, or keyword fields checked by every rule."""
    if params is not None:
        if fields:
            raise TypeError("pass a GenerationParams or keyword fields, not both")
        return params
    checked, problems = check_request(fields)
    if checked is None:
        raise InvalidParams([Problem(p.message_with_param()) for p in problems])
    return checked


class ClientCore:
    """The state one client's flows share: settings, the key, the limiter, the jobs it knows.

    Holds no connection: the sync and async clients each own an httpx client and drive the
    flows of `tchavi_render.api.flow` over this core.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_rpm: int | None,
        max_retries: int,
        clock: Callable[[], float],
    ) -> None:
        key = api_key.strip() if api_key is not None else api_key_from_env()
        if not key:
            raise MissingApiKey("no Tchavi API key was given")
        self.secret = _Secret(key)
        url = configured_base_url(base_url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiConnectionError(f"the base URL must be an http(s) URL, got {url!r}")
        self.base_url = url
        self._origin = (parts.scheme, parts.netloc)
        if max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {max_retries}")
        self.timeout = timeout
        self.max_retries = max_retries
        self.clock = clock
        self.limiter = RateLimiter(max_rpm)
        self.rng = random.Random()
        self.last_rate_limit: RateLimitInfo | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}  # job id -> when first seen (a counter, not a time)
        self._claimed: set[str] = set()  # ids of jobs this client created or adopted
        self._counter = 0

    # --- requests -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Request:
        """A request to the API (a path under the base URL) or to an absolute media URL.

        The key is sent only to the API's own origin: a media URL on another host (a CDN,
        a signed storage URL) never sees it.
        """
        absolute = "://" in path_or_url
        url = path_or_url if absolute else f"{self.base_url}/{path_or_url.lstrip('/')}"
        headers = {"User-Agent": f"tchavi-render/{__version__}", "Accept": "application/json"}
        if self.same_origin(url):
            headers["Authorization"] = f"Bearer {self.secret.reveal()}"
        return httpx.Request(
            method,
            url,
            json=json,
            params=params,
            headers=headers,
            extensions={"timeout": httpx.Timeout(self.timeout).as_dict()},
        )

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) == self._origin

    def observe(self, response: httpx.Response) -> None:
        """Remember what an answer's headers say about rate and credits; feed the limiter."""
        info = RateLimitInfo.from_headers(response.headers)
        if info is None:
            return
        self.last_rate_limit = info
        if response.status_code != 429:  # a 429's Retry-After is more precise
            self.limiter.observe(self.clock(), info.rpm_limit, info.rpm_remaining)

    def backoff(self, attempt: int) -> float:
        """Jittered exponential delay before retry number `attempt` (1-based)."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + self.rng.random() / 2)

    # --- the jobs this client knows -------------------------------------------------------

    def note(self, jobs: Iterable[Job]) -> None:
        """Record job ids as seen (every job the client ever parsed)."""
        with self._lock:
            for job in jobs:
                if job.id not in self._seen:
                    self._counter += 1
                    self._seen[job.id] = self._counter

    def claim(self, job: Job) -> None:
        """Record a job as created by this client (by a submit, or adopted after one)."""
        self.note([job])
        with self._lock:
            self._claimed.add(job.id)

    def mark(self) -> int:
        """A marker of now, to ask later whether a job was seen before it."""
        with self._lock:
            self._counter += 1
            return self._counter

    def seen_before(self, job_id: str, marker: int) -> bool:
        with self._lock:
            return self._seen.get(job_id, marker) < marker

    def claimed(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._claimed
