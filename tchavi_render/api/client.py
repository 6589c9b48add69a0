"""The Tchavi clients, sync and async twins: each adds only its I/O path to the shared flows."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import httpx

from tchavi_render.api import flow
from tchavi_render.api.base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ClientCore,
    generation_params,
)
from tchavi_render.api.errors import RateLimitInfo
from tchavi_render.api.models import GenerationParams, Job, JobList
from tchavi_render.errors import DownloadError, InvalidParams, Problem

__all__ = ["AsyncTchaviClient", "TchaviClient"]

T = TypeVar("T")
JOB_STATUSES = ("pending", "processing", "completed", "failed")


class _BaseClient:
    """Settings and everything without I/O; the twins below add only how to send and sleep."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_rpm: int | None,
        max_retries: int,
        clock: Callable[[], float] | None,
    ) -> None:
        self._core = ClientCore(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_rpm=max_rpm,
            max_retries=max_retries,
            clock=clock or time.time,
        )

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def last_rate_limit(self) -> RateLimitInfo | None:
        """The rate-limit and credit headers of the latest answer (None before any)."""
        return self._core.last_rate_limit

    @property
    def request_budget(self) -> int | None:
        """Requests a minute this client may send: the lower of its own `max_rpm` and the
        service's latest X-RateLimit-RPM-Limit; None while neither is known."""
        info = self._core.last_rate_limit
        limits = [self._core.limiter.max_rpm, info.rpm_limit if info else None]
        known = [limit for limit in limits if limit is not None and limit > 0]
        return min(known) if known else None

    def send_delay(self) -> float:
        """Seconds until the limiter would let a request go (0: now), booking nothing."""
        return self._core.limiter.delay(self._core.clock())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key='***')"

    # Pure preparation shared by the twins' methods.

    def _download_flow(
        self, job: Job | str, path: str | os.PathLike[str]
    ) -> flow.Flow[tuple[str, int]]:
        if isinstance(job, str):
            return flow.download(self._core, job, Path(path))
        if job.output is None:
            raise DownloadError(
                f"job {job.id} has no video to download (status: {job.status}); "
                "wait for it to complete first"
            )
        return flow.download(
            self._core,
            job.output.video_url,
            Path(path),
            job_id=job.id,
            size_mb=job.output.file_size_mb,
            expires_at=job.output.url_expires_at,
        )

    def _list_flow(self, status: str | None, limit: int, offset: int) -> flow.Flow[JobList]:
        problems = []
        if status is not None and status not in JOB_STATUSES:
            problems.append(
                Problem(f"status: must be one of {', '.join(JOB_STATUSES)}, got {status!r}")
            )
        if not 1 <= limit <= flow.LIST_PAGE:
            problems.append(Problem(f"limit: must be 1..{flow.LIST_PAGE}, got {limit}"))
        if offset < 0:
            problems.append(Problem(f"offset: must be 0 or more, got {offset}"))
        if problems:
            raise InvalidParams(problems)
        return flow.list_jobs(self._core, status, limit, offset)

    def _find_unknown_flow(
        self, since: datetime | float, model: str, credits: int | None, known_ids: Iterable[str]
    ) -> flow.Flow[Job | None]:
        known = frozenset(known_ids)
        when = since.timestamp() if isinstance(since, datetime) else float(since)
        return flow.find_unknown(
            self._core,
            since=when,
            model=model,
            credits=credits,
            is_known=lambda job_id: job_id in known or self._core.claimed(job_id),
        )


# --- the sync client -------------------------------------------------------------------------


class TchaviClient(_BaseClient):
    """A Tchavi API client. Thread-safe: threads share its limiter; submits take turns.

    `api_key` defaults to $TCHAVI_API_KEY (MissingApiKey if neither is set), `base_url` to
    $TCHAVI_BASE_URL or https://tchavi.com/api/v1. `max_rpm` caps requests per minute.
    `transport`, `sleep` and `clock` (epoch seconds) are seams for tests.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_rpm: int | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_rpm, max_retries, clock)
        self._sleep = sleep or time.sleep
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self._submit_turn = threading.Lock()
        self.videos = Videos(self)
        self.jobs = Jobs(self)

    def download(self, job: Job | str, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Download a completed job's video (or a video URL) to `path`: (sha256 hex, bytes)."""
        return self._run(self._download_flow(job, path))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, steps: flow.Flow[T]) -> T:
        """Drive a flow: perform each effect it yields, send it the result."""
        streamed: list[tuple[httpx.Response, Iterator[bytes]]] = []
        try:
            outcome: flow.Outcome = None
            while True:
                try:
                    effect = steps.send(outcome)
                except StopIteration as stop:
                    return cast(T, stop.value)
                outcome = self._perform(effect, streamed)
        finally:
            steps.close()
            for response, _ in streamed:
                response.close()

    def _perform(
        self, effect: flow.Effect, streamed: list[tuple[httpx.Response, Iterator[bytes]]]
    ) -> flow.Outcome:
        if isinstance(effect, flow.Sleep):
            self._sleep(effect.seconds)
            return None
        if isinstance(effect, flow.ReadChunk):
            for response, chunks in streamed:
                if response is effect.response:
                    try:
                        return next(chunks, b"")
                    except httpx.RequestError as exc:
                        return exc
            raise RuntimeError("ReadChunk of a response that is not streaming")
        # A flow reads one streamed answer at a time: sending again ends the previous one.
        while streamed:
            streamed.pop()[0].close()
        try:
            response = self._http.send(
                effect.request, stream=effect.stream, follow_redirects=effect.follow_redirects
            )
        except httpx.RequestError as exc:
            return exc
        if effect.stream:
            streamed.append((response, response.iter_bytes(flow.CHUNK)))
        return response


class Generations:
    def __init__(self, client: TchaviClient) -> None:
        self._client = client

    def create(
        self,
        params: GenerationParams | None = None,
        /,
        *,
        known_job_ids: Iterable[str] = (),
        **fields: Any,
    ) -> Job:
        """Submit a generation (validated first); never pays twice for one call.

        `known_job_ids`: jobs that are certainly not this one (e.g. from a journal), which
        helps tell this submit's job apart after an ambiguous failure.
        """
        request = generation_params(params, fields)
        with self._client._submit_turn:
            return self._client._run(
                flow.submit(self._client._core, request, frozenset(known_job_ids))
            )

    def create_and_wait(
        self,
        params: GenerationParams | None = None,
        /,
        *,
        known_job_ids: Iterable[str] = (),
        poll_interval: float | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> Job:
        """Submit, then wait until the job completes (see `Jobs.wait`)."""
        job = self.create(params, known_job_ids=known_job_ids, **fields)
        return self._client._run(
            flow.wait(
                self._client._core,
                job.id,
                poll_interval=poll_interval,
                timeout=timeout,
                first=job,
            )
        )


class Videos:
    def __init__(self, client: TchaviClient) -> None:
        self.generations = Generations(client)


class Jobs:
    def __init__(self, client: TchaviClient) -> None:
        self._client = client

    def retrieve(self, job_id: str) -> Job:
        return self._client._run(flow.retrieve(self._client._core, job_id))

    def list(self, status: str | None = None, limit: int = 20, offset: int = 0) -> JobList:
        """The account's jobs, newest first."""
        return self._client._run(self._client._list_flow(status, limit, offset))

    def wait(
        self, job_id: str, *, poll_interval: float | None = None, timeout: float | None = None
    ) -> Job:
        """Poll until the job completes and return it. Raises JobFailed if it fails, and
        WaitTimeout after `timeout` seconds (the job keeps running)."""
        return self._client._run(
            flow.wait(self._client._core, job_id, poll_interval=poll_interval, timeout=timeout)
        )

    def find_unknown(
        self,
        *,
        since: datetime | float,
        model: str,
        credits: int | None = None,
        known_ids: Iterable[str] = (),
    ) -> Job | None:
        """The job that a submit started at `since` created, or None if it created none.

        Looks for jobs created since then (less CLOCK_SKEW_MARGIN: pass the raw start time),
        of this model, costing `credits` (when given and listed), that are neither in
        `known_ids` nor created by this client. One such job is the one (and is remembered
        as this client's); several raise AmbiguousSubmit with their ids.
        """
        return self._client._run(self._client._find_unknown_flow(since, model, credits, known_ids))


# --- the async client ------------------------------------------------------------------------


class AsyncTchaviClient(_BaseClient):
    """The asyncio twin of TchaviClient: same arguments, same methods, awaited.

    Tasks share its limiter; submits take turns. `sleep` is an async callable.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_rpm: int | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_rpm, max_retries, clock)
        self._sleep = sleep or asyncio.sleep
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._submit_turn = asyncio.Lock()
        self.videos = AsyncVideos(self)
        self.jobs = AsyncJobs(self)

    async def download(self, job: Job | str, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Download a completed job's video (or a video URL) to `path`: (sha256 hex, bytes)."""
        return await self._run(self._download_flow(job, path))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(self, steps: flow.Flow[T]) -> T:
        """Drive a flow: perform each effect it yields, send it the result."""
        streamed: list[tuple[httpx.Response, AsyncIterator[bytes]]] = []
        try:
            outcome: flow.Outcome = None
            while True:
                try:
                    effect = steps.send(outcome)
                except StopIteration as stop:
                    return cast(T, stop.value)
                outcome = await self._perform(effect, streamed)
        finally:
            steps.close()
            for response, _ in streamed:
                await response.aclose()

    async def _perform(
        self, effect: flow.Effect, streamed: list[tuple[httpx.Response, AsyncIterator[bytes]]]
    ) -> flow.Outcome:
        if isinstance(effect, flow.Sleep):
            await self._sleep(effect.seconds)
            return None
        if isinstance(effect, flow.ReadChunk):
            for response, chunks in streamed:
                if response is effect.response:
                    try:
                        return await anext(chunks, b"")
                    except httpx.RequestError as exc:
                        return exc
            raise RuntimeError("ReadChunk of a response that is not streaming")
        while streamed:
            await streamed.pop()[0].aclose()
        try:
            response = await self._http.send(
                effect.request, stream=effect.stream, follow_redirects=effect.follow_redirects
            )
        except httpx.RequestError as exc:
            return exc
        if effect.stream:
            streamed.append((response, response.aiter_bytes(flow.CHUNK)))
        return response


class AsyncGenerations:
    def __init__(self, client: AsyncTchaviClient) -> None:
        self._client = client

    async def create(
        self,
        params: GenerationParams | None = None,
        /,
        *,
        known_job_ids: Iterable[str] = (),
        **fields: Any,
    ) -> Job:
        """Submit a generation (validated first); never pays twice for one call."""
        request = generation_params(params, fields)
        async with self._client._submit_turn:
            return await self._client._run(
                flow.submit(self._client._core, request, frozenset(known_job_ids))
            )

    async def create_and_wait(
        self,
        params: GenerationParams | None = None,
        /,
        *,
        known_job_ids: Iterable[str] = (),
        poll_interval: float | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> Job:
        """Submit, then wait until the job completes (see `AsyncJobs.wait`)."""
        job = await self.create(params, known_job_ids=known_job_ids, **fields)
        return await self._client._run(
            flow.wait(
                self._client._core,
                job.id,
                poll_interval=poll_interval,
                timeout=timeout,
                first=job,
            )
        )


class AsyncVideos:
    def __init__(self, client: AsyncTchaviClient) -> None:
        self.generations = AsyncGenerations(client)


class AsyncJobs:
    def __init__(self, client: AsyncTchaviClient) -> None:
        self._client = client

    async def retrieve(self, job_id: str) -> Job:
        return await self._client._run(flow.retrieve(self._client._core, job_id))

    async def list(self, status: str | None = None, limit: int = 20, offset: int = 0) -> JobList:
        """The account's jobs, newest first."""
        return await self._client._run(self._client._list_flow(status, limit, offset))

    async def wait(
        self, job_id: str, *, poll_interval: float | None = None, timeout: float | None = None
    ) -> Job:
        """Poll until the job completes and return it (see `Jobs.wait`)."""
        return await self._client._run(
            flow.wait(self._client._core, job_id, poll_interval=poll_interval, timeout=timeout)
        )

    async def find_unknown(
        self,
        *,
        since: datetime | float,
        model: str,
        credits: int | None = None,
        known_ids: Iterable[str] = (),
    ) -> Job | None:
        """The job that a submit started at `since` created, or None (see `Jobs.find_unknown`)."""
        return await self._client._run(
            self._client._find_unknown_flow(since, model, credits, known_ids)
        )
