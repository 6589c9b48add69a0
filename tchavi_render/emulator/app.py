"""The emulator's HTTP surface: the Tchavi API routes under /api/v1, video files, hosted files.

Every API request goes through one gate (`Emulator._api`): bearer auth, the per-account
request count, the rate limit, injected 5xx faults, then the route; every answer, errors
included, carries the X-RateLimit-*, X-Credits-* and X-Request-Id headers.

A client that hangs up before its answer is sent (a killed download, a cancelled submit) is
no error: the request is dropped with one access-log line at INFO, as 499, never a traceback.

Video files live at `/files/<job id>.mp4` and local files shared with `host_file` at
`/_local/<sha256>/<name>`: like a CDN's signed URLs they need no key, are not rate
limited and get no injected faults. Neither is part of the contract.
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from tchavi_render.api.models import ParamProblem, check_request
from tchavi_render.api.pricing import CREDITS_PER_SECOND, billed_seconds, estimate_credits
from tchavi_render.emulator.config import EmulatorConfig
from tchavi_render.emulator.faults import Faults, InjectedError, RateDecision, RateLimiter
from tchavi_render.emulator.fetch import check_media, fetch_all, media_urls
from tchavi_render.emulator.store import (
    InsufficientBalance,
    JobRow,
    NewJob,
    Store,
    key_hash,
)
from tchavi_render.emulator.video import auto_duration, random_seed
from tchavi_render.emulator.worker import RenderPool

__all__ = ["API_PREFIX", "Emulator", "error_body", "iso_utc", "job_record"]

API_PREFIX = "/api/v1"
STATUSES = ("pending", "processing", "completed", "failed")
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 50
log = logging.getLogger("tchavi_render.emulator")

Handler = Callable[[Request, str, InjectedError | None], Awaitable[Response]]


class ApiFailure(Exception):
    """Raised inside a route to answer with the service's error body."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


def iso_utc(timestamp: float) -> str:
    """ISO 8601 UTC with a Z, to the second, as the service writes times."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if param is not None:
        error["param"] = param
    return {"error": error}


def job_record(job: JobRow, root_url: str) -> dict[str, Any]:
    """A job as the API shows it."""
    record: dict[str, Any] = {
        "id": job.id,
        "object": "job",
        "status": job.status,
        "model": job.model,
        "created_at": iso_utc(job.created_at),
    }
    credits: dict[str, int] = {"credits_used": job.credits_used}
    if job.status == "completed" and job.file_name is not None:
        record["output"] = {
            "video_url": f"{root_url}/files/{job.file_name}",
            "duration": job.duration,
            "resolution": job.resolution,
            "file_size_mb": round((job.file_size or 0) / 1e6, 2),
            "url_expires_at": iso_utc(job.url_expires_at or job.created_at),
        }
    elif job.status == "failed":
        record["error"] = {"code": job.fail_code or "upstream_error", "message": job.fail_message}
        credits["credits_refunded"] = job.credits_refunded
    record["tchavi"] = credits
    return record


def _sentences(messages: Iterable[str]) -> str:
    """Problems joined into one message: 'a: x; b: y.'"""
    return "; ".join(m.rstrip(".") for m in messages) + "."


def _problem_param(problem: ParamProblem) -> str | None:
    return str(problem.param[0]) if problem.param else None


class Emulator:
    """One emulator's state (store, render pool, faults, limiter) and its Starlette app."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.data_dir)
        self.faults = Faults(config.fail_rate, config.error_rate, config.fault_seed)
        self.limiter = RateLimiter(config.rpm)
        self.ip_limiter = RateLimiter(config.ip_rpm)  # keyed by client address
        self.pool = RenderPool(
            self.store, latency=config.latency, url_ttl=config.url_ttl, clock=clock
        )
        self.app = Starlette(
            routes=[
                Route(f"{API_PREFIX}/videos/generations", self._submit_route, methods=["POST"]),
                Route(f"{API_PREFIX}/jobs", self._list_route, methods=["GET"]),
                Route(f"{API_PREFIX}/jobs/{{job_id}}", self._get_route, methods=["GET"]),
                Route(
                    f"{API_PREFIX}/{{rest:path}}",
                    self._unknown_route,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
                Route("/files/{name}", self.serve_video, methods=["GET"]),
                Route("/_local/{digest}/{name}", self.serve_local, methods=["GET"]),
            ],
            exception_handlers={ClientDisconnect: self._client_gone},
        )

    def start(self) -> None:
        """Resume the renders an earlier run left unfinished."""
        resumed = self.pool.resume()
        if resumed:
            log.info("resuming %d unfinished job(s)", resumed)

    def close(self) -> None:
        self.pool.close()
        self.store.close()

    # --- the gate --------------------------------------------------------------------------

    async def _submit_route(self, request: Request) -> Response:
        return await self._api(request, self._submit, is_submit=True)

    async def _list_route(self, request: Request) -> Response:
        return await self._api(request, self._list)

    async def _get_route(self, request: Request) -> Response:
        return await self._api(request, self._get)

    async def _unknown_route(self, request: Request) -> Response:
        return await self._api(request, self._unknown)

    async def _api(
        self, request: Request, handler: Handler, *, is_submit: bool = False
    ) -> Response:
        request_id = f"req_{secrets.token_hex(8)}"
        account: str | None = None
        rate = self.limiter.idle()
        try:
            account = self._authenticate(request)
            self.store.count_request(account, self.config.credits)
            if self.config.ip_rpm is not None:
                address = request.client.host if request.client else "unknown"
                by_address = self.ip_limiter.hit(address)
                if not by_address.allowed:
                    rate = by_address
                    raise ApiFailure(
                        429,
                        "rate_limit_exceeded",
                        f"Rate limit of {rate.limit} requests per minute per IP address"
                        f" exceeded. Retry after {rate.retry_after} s.",
                    )
            rate = self.limiter.hit(account)
            if not rate.allowed:
                raise ApiFailure(
                    429,
                    "rate_limit_exceeded",
                    f"Rate limit of {rate.limit} requests per minute exceeded."
                    f" Retry after {rate.retry_after} s.",
                )
            self.store.settle(self.clock())
            injected = self.faults.request_error(is_submit)
            if injected is not None and not injected.after_create:
                raise ApiFailure(injected.status, injected.code, injected.message)
            response = await handler(request, account, injected)
        except ClientDisconnect:
            raise  # nobody to answer; the app's handler notes it
        except ApiFailure as failure:
            response = JSONResponse(
                error_body(failure.status, failure.code, failure.message, failure.param),
                status_code=failure.status,
            )
        except Exception:
            log.exception("request %s failed", request_id)
            response = JSONResponse(
                error_body(500, "internal_error", "Internal server error."), status_code=500
            )
        self._headers(response, request_id, account, rate)
        return response

    @staticmethod
    def _client_gone(request: Request, exc: Exception) -> Response:
        # 499 as nginx logs it; the answer goes nowhere (the server drops it).
        log.info("%s %s 499: the client hung up", request.method, request.url.path)
        return Response(status_code=499)

    def _authenticate(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiFailure(
                401,
                "invalid_api_key",
                "Missing API key. Send it as 'Authorization: Bearer <key>'.",
            )
        expected = self.config.api_key
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            raise ApiFailure(401, "invalid_api_key", "The API key is not valid.")
        return key_hash(token)

    def _headers(
        self, response: Response, request_id: str, account: str | None, rate: RateDecision
    ) -> None:
        balance = None if account is None else self.store.account(account)
        response.headers["X-Request-Id"] = request_id
        response.headers["X-RateLimit-RPM-Limit"] = str(rate.limit)
        response.headers["X-RateLimit-RPM-Remaining"] = str(rate.remaining)
        response.headers["X-Credits-Used"] = str(0 if balance is None else balance.credits_used)
        response.headers["X-Credits-Remaining"] = str(
            0 if balance is None else balance.credits_remaining
        )
        if not rate.allowed:
            response.headers["Retry-After"] = str(rate.retry_after)

    def root_url(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    # --- routes ----------------------------------------------------------------------------

    async def _submit(
        self, request: Request, account: str, injected: InjectedError | None
    ) -> Response:
        body = await request.body()
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiFailure(
                400, "invalid_request", f"The request body is not valid JSON ({exc})."
            ) from None
        if not isinstance(data, dict):
            raise ApiFailure(400, "invalid_request", "The request body must be a JSON object.")
        params, problems = check_request(data)
        if params is None or problems:
            raise ApiFailure(
                400,
                "invalid_request",
                _sentences(p.message_with_param() for p in problems),
                _problem_param(problems[0]) if problems else None,
            )
        cost = estimate_credits(params.resolution, params.duration)
        balance = self.store.account(account)
        available = 0 if balance is None else balance.credits_remaining
        if available < cost:
            raise self._insufficient(params.resolution, params.duration, cost, available)

        urls = media_urls(params)
        unreachable: list[str] = []
        frames: dict[str, str] = {}
        if urls:
            fetched = await fetch_all([url for _, url in urls], self.store.media_dir)
            verdict = await run_in_threadpool(check_media, params, fetched)
            if verdict.problems:
                raise ApiFailure(
                    400,
                    "invalid_request",
                    _sentences(f"{param}: {message}" for param, message in verdict.problems),
                    verdict.problems[0][0],
                )
            unreachable, frames = verdict.unreachable, verdict.frames

        seed = random_seed() if params.seed is None else params.seed
        duration = auto_duration(params.prompt, seed) if params.duration == -1 else params.duration
        if unreachable:
            fail_code: str | None = "upstream_error"
            fail_message: str | None = "; ".join(unreachable) + ". The credits were refunded."
        else:
            fail_code, fail_message = self.faults.job_failure(), None
        try:
            job = self.store.create_job(
                NewJob(
                    id=f"job_{secrets.token_hex(12)}",
                    account=account,
                    params=params.to_request(),
                    model=params.model,
                    seed=seed,
                    duration=duration,
                    resolution=params.resolution,
                    created_at=self.clock(),
                    credits=cost,
                    media=frames,
                    fail_code=fail_code,
                    fail_message=fail_message,
                )
            )
        except InsufficientBalance as short:
            raise self._insufficient(
                params.resolution, params.duration, short.needed, short.available
            ) from None
        self.pool.submit(job.id)
        if injected is not None:
            raise ApiFailure(injected.status, injected.code, injected.message)
        return JSONResponse(job_record(job, self.root_url(request)), status_code=202)

    @staticmethod
    def _insufficient(resolution: str, duration: int, needed: int, available: int) -> ApiFailure:
        seconds = billed_seconds(duration)
        return ApiFailure(
            402,
            "insufficient_credits",
            f"This job needs {needed} credits ({seconds} s at {resolution},"
            f" {CREDITS_PER_SECOND[resolution]} credits/s); the account has {available}"
            " available.",
        )

    async def _get(
        self, request: Request, account: str, injected: InjectedError | None
    ) -> Response:
        job_id = request.path_params["job_id"]
        job = self.store.job(job_id)
        if job is None or job.account != account:
            raise ApiFailure(404, "job_not_found", f"No job with id {job_id!r}.")
        return JSONResponse(job_record(job, self.root_url(request)))

    async def _list(
        self, request: Request, account: str, injected: InjectedError | None
    ) -> Response:
        query = request.query_params
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            raise ApiFailure(
                400,
                "invalid_request",
                f"status must be one of {', '.join(STATUSES)}; got {status!r}.",
                "status",
            )
        limit = self._int_param(query.get("limit"), "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX)
        offset = self._int_param(query.get("offset"), "offset", 0, 0, None)
        jobs, has_more = self.store.list_jobs(account, status, limit, offset)
        root = self.root_url(request)
        return JSONResponse(
            {
                "object": "list",
                "data": [job_record(job, root) for job in jobs],
                "limit": limit,
                "offset": offset,
                "has_more": has_more,
            }
        )

    @staticmethod
    def _int_param(raw: str | None, name: str, default: int, low: int, high: int | None) -> int:
        if raw is None or raw == "":
            return default
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        if not re.fullmatch(r"-?\d+", raw):
            raise ApiFailure(
                400, "invalid_request", f"{name} must be an integer {bounds}; got {raw!r}.", name
            )
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise ApiFailure(400, "invalid_request", f"{name} must be {bounds}; got {value}.", name)
        return value

    async def _unknown(
        self, request: Request, account: str, injected: InjectedError | None
    ) -> Response:
        raise ApiFailure(
            404, "not_found", f"No such endpoint: {request.method} {request.url.path}."
        )

    # --- files -----------------------------------------------------------------------------

    async def serve_video(self, request: Request) -> Response:
        name: str = request.path_params["name"]
        self.store.settle(self.clock())
        job = self.store.job(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        path = (
            None if job is None or job.file_name is None else self.store.videos_dir / job.file_name
        )
        if job is None or job.status != "completed" or path is None or not path.is_file():
            return JSONResponse(error_body(404, "not_found", "No such video."), status_code=404)
        expires = job.url_expires_at or 0.0
        if self.clock() >= expires:
            return JSONResponse(
                error_body(
                    410,
                    "url_expired",
                    f"This video URL expired at {iso_utc(expires)}."
                    " Video URLs are valid for a limited time after the job completes.",
                ),
                status_code=410,
            )
        return FileResponse(path, media_type="video/mp4")

    async def serve_local(self, request: Request) -> Response:
        digest: str = request.path_params["digest"]
        path = self.store.media_dir / digest
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not path.is_file():
            return JSONResponse(error_body(404, "not_found", "No such file."), status_code=404)
        media_type = mimetypes.guess_type(request.path_params["name"])[0]
        return FileResponse(path, media_type=media_type or "application/octet-stream")
