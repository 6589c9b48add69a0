"""Test doubles for client edge cases: a scriptable fake Tchavi for MockTransport, a fake clock."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from tchavi_render.api.pricing import estimate_credits

API_KEY = "sk-tch_test_5ecret_k3y"
BASE_URL = "http://tchavi.test/api/v1"
MEDIA_HOST = "http://tchavi.test"
START = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC).timestamp()

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    """An error answer in the documented nested shape."""
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "status": status, **extra}}
    )


def fresh(answer: httpx.Response) -> httpx.Response:
    """A new copy of a scripted answer: a Response is read once, so each request gets its own."""
    return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class FakeTime:
    """A clock that only moves when the client sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class FakeTchavi:
    """Plays the service for MockTransport: jobs, listing, media, plus scripted answers.

    `script(method, path, *answers)` queues answers for the next matching requests: an
    httpx.Response, an exception to raise (a transport failure), or a callable taking the
    request. `create_then(answer)` is an answer that creates the job and then fails.
    """

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.jobs: dict[str, dict[str, Any]] = {}  # in creation order
        self.requests: list[httpx.Request] = []
        self.scripts: dict[tuple[str, str], deque[Answer]] = {}
        self.progress: list[str] = ["completed"]  # statuses a job goes through, one per poll
        self.video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
        self.media: dict[str, httpx.Response | Callable[[httpx.Request], httpx.Response]] = {}
        self._polls: dict[str, int] = {}

    # --- what tests look at ----------------------------------------------------------------

    def count(self, method: str, path: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if r.method == method and (path is None or self._path(r) == path)
        )

    def calls(self) -> list[str]:
        return [f"{r.method} {self._path(r)}" for r in self.requests]

    # --- setting the scene -----------------------------------------------------------------

    def script(self, method: str, path: str, *answers: Answer) -> None:
        self.scripts.setdefault((method, path), deque()).extend(answers)

    def create_then(self, answer: httpx.Response | Exception) -> Callable[[httpx.Request], Any]:
        def create_and_fail(request: httpx.Request) -> httpx.Response:
            self._create(json.loads(request.content))
            if isinstance(answer, Exception):
                raise answer
            return fresh(answer)

        return create_and_fail

    def add_job(
        self,
        model: str = "seedance-2",
        credits: int | None = 1300,
        created_at: float | None = None,
        status: str = "pending",
    ) -> str:
        """A job someone else (another process) made."""
        job_id = f"job_other_{len(self.jobs) + 1}"
        tchavi = {} if credits is None else {"credits_used": credits}
        self.jobs[job_id] = {
            "id": job_id,
            "object": "job",
            "status": status,
            "model": model,
            "created_at": iso(self.time.now if created_at is None else created_at),
            "tchavi": tchavi,
        }
        return job_id

    # --- the transport ---------------------------------------------------------------------

    @staticmethod
    def _path(request: httpx.Request) -> str:
        path = request.url.path
        return path.removeprefix("/api/v1")

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = self._path(request)
        queued = self.scripts.get((request.method, path))
        if queued:
            answer = queued.popleft()
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, httpx.Response):
                return fresh(answer)
            return answer(request)
        authorized = request.headers.get("authorization") == f"Bearer {API_KEY}"
        if not authorized and not path.startswith("/media/"):
            return error(401, "invalid_api_key", "Invalid API key")
        if request.method == "POST" and path == "/videos/generations":
            job = self._create(json.loads(request.content))
            return httpx.Response(202, json=job)
        if request.method == "GET" and path == "/jobs":
            return self._list(request)
        if request.method == "GET" and path.startswith("/jobs/"):
            return self._retrieve(path.removeprefix("/jobs/"))
        if request.method == "GET" and path.startswith("/media/"):
            media = self.media.get(path)
            if callable(media):
                return media(request)
            return media or httpx.Response(200, content=self.video)
        return error(404, "not_found", f"no route {request.method} {path}")

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id = f"job_{len(self.jobs) + 1}"
        credits = estimate_credits(body.get("resolution", "480p"), body.get("duration", 5))
        job = {
            "id": job_id,
            "object": "job",
            "status": "pending",
            "model": body["model"],
            "created_at": iso(self.time.now),
            "tchavi": {"credits_used": credits},
        }
        self.jobs[job_id] = job
        return dict(job)

    def _retrieve(self, job_id: str) -> httpx.Response:
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "job_not_found", f"Job {job_id} not found")
        polls = self._polls.get(job_id, 0)
        self._polls[job_id] = polls + 1
        status = self.progress[min(polls, len(self.progress) - 1)]
        job["status"] = status
        if status == "completed":
            job["output"] = {
                "video_url": f"{MEDIA_HOST}/media/{job_id}.mp4",
                "duration": 5,
                "resolution": "480p",
                "file_size_mb": round(len(self.video) / 1e6, 2),
                "url_expires_at": iso(self.time.now + 3600),
            }
        if status == "failed":
            job["error"] = {"code": "upstream_error", "message": "the renderer crashed"}
            job["tchavi"]["credits_refunded"] = job["tchavi"].get("credits_used", 0)
        return httpx.Response(200, json=job)

    def _list(self, request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        limit = int(query.get("limit", ["20"])[0])
        offset = int(query.get("offset", ["0"])[0])
        newest_first = list(reversed(self.jobs.values()))
        page = newest_first[offset : offset + limit]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": page,
                "limit": limit,
                "offset": offset,
                "has_more": offset + limit < len(newest_first),
            },
        )


class Blocking:
    """The async client seen through blocking calls, so one test body checks both twins."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return lambda *a, **kw: self._runner.run(value(*a, **kw))
        if type(value).__module__ == "tchavi_render.api.client":
            return Blocking(value, self._runner)
        return value

    def __repr__(self) -> str:
        return repr(self._target)


PARAMS = {"model": "seedance-2", "prompt": "a lighthouse at dusk"}  # 5 s at 480p: 1300 credits
