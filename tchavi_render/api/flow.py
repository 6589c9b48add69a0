"""Every multi-step exchange with the API, written once as generators of effects.

A flow yields an effect (`Send` a request, `ReadChunk` of a streamed answer, `Sleep`) and
receives its result: an `httpx.Response` or the `httpx.RequestError` that sending raised, the
next chunk of bytes (b"" at the end) or that error, and None after a sleep. The sync and async
clients each drive these generators with their own I/O; the retry rules, the reconciliation
of ambiguous submits, polling and downloads live only here.

Retry rules (the API has no idempotency key, so a second POST can bill a second job):
- 429: wait Retry-After (else a backoff) and try again, for every request: a 429'd request
  was certainly not acted on.
- GET: retry 5xx, unreadable answers and transport errors with jittered exponential backoff.
- POST: send again without looking for the job only when the request certainly did not
  reach the service (connection refused, connect or pool timeout; or the 429 above). After
  any other failure, look for the job in GET /jobs (`find_unknown`): adopt the one
  candidate, refuse when there are several, and submit again only when there is none.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import httpx

from tchavi_render.api.base import ClientCore, job_path
from tchavi_render.api.errors import error_from_answer, parse_retry_after, parse_time
from tchavi_render.api.errors import scrub as scrub_secret
from tchavi_render.api.models import GenerationParams, Job, JobList
from tchavi_render.atomic import staged
from tchavi_render.engine.pricing import estimate_credits
from tchavi_render.errors import (
    AmbiguousSubmit,
    ApiConnectionError,
    ApiError,
    DownloadError,
    InsufficientCredits,
    JobFailed,
    MediaExpired,
    ServerError,
    WaitTimeout,
)
from tchavi_render.failpoints import failpoint

__all__ = [
    "CLOCK_SKEW_MARGIN",
    "DEFAULT_POLL_INTERVAL",
    "Effect",
    "Flow",
    "Outcome",
    "ReadChunk",
    "Send",
    "Sleep",
    "download",
    "find_unknown",
    "list_jobs",
    "retrieve",
    "submit",
    "wait",
]

T = TypeVar("T")
logger = logging.getLogger("tchavi_render.api")

# Jobs created up to this long before a submit started may still be its job: the service's
# clock and ours need not agree, and created_at is only given to the second.
CLOCK_SKEW_MARGIN = 120.0
DEFAULT_POLL_INTERVAL = 5.0
POLL_GROWTH = 1.25  # each poll waits this much longer than the last ...
POLL_CAP = 30.0  # ... up to this (or the caller's interval, if longer)
RATE_LIMIT_RETRIES = 10  # 429s in a row before giving up on one request
MAX_RETRY_AFTER = 300.0  # a longer Retry-After is reported rather than slept through
LIST_PAGE = 50  # the most the API lists at once
MAX_LIST_PAGES = 100
CHUNK = 256 * 1024
ERROR_BODY_LIMIT = 64 * 1024

# Failures after which the request certainly did not reach the service.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
# Transport failures worth trying again (for requests that may be repeated).
TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Send:
    """Send a request; `stream` leaves the body unread, for `ReadChunk`."""

    request: httpx.Request
    stream: bool = False
    follow_redirects: bool = False


@dataclass(frozen=True)
class ReadChunk:
    """Read the next chunk of a streamed answer (b"" at its end)."""

    response: httpx.Response


@dataclass(frozen=True)
class Sleep:
    seconds: float


Effect: TypeAlias = Send | ReadChunk | Sleep
Outcome: TypeAlias = httpx.Response | httpx.RequestError | bytes | None
Flow: TypeAlias = Generator[Effect, Outcome, T]


# --- the smallest steps ------------------------------------------------------------------


def _sleep(seconds: float) -> Flow[None]:
    if seconds > 0:
        yield Sleep(seconds)


def _exchange(
    core: ClientCore,
    method: str,
    path_or_url: str,
    *,
    json: Any = None,
    params: Mapping[str, str | int] | None = None,
    stream: bool = False,
) -> Flow[httpx.Response | httpx.RequestError]:
    """One attempt: wait for the limiter, send, take in the answer's headers.

    Requests to other hosts (media on a CDN) neither use the API's budget nor follow its
    headers, and may follow redirects.
    """
    request = core.request(method, path_or_url, json=json, params=params)
    own = core.same_origin(str(request.url))
    if own:
        yield from _sleep(core.limiter.reserve(core.clock()))
    outcome = yield Send(request, stream=stream, follow_redirects=stream)
    if not isinstance(outcome, httpx.Response | httpx.RequestError):
        raise TypeError(f"a Send was answered with {type(outcome).__name__}")
    if own and isinstance(outcome, httpx.Response):
        core.observe(outcome)
    return outcome


def _read_chunk(response: httpx.Response) -> Flow[bytes | httpx.RequestError]:
    chunk = yield ReadChunk(response)
    if not isinstance(chunk, bytes | httpx.RequestError):
        raise TypeError(f"a ReadChunk was answered with {type(chunk).__name__}")
    return chunk


def _read_error_body(response: httpx.Response) -> Flow[bytes]:
    """The start of a streamed error answer (enough to read its JSON)."""
    body = b""
    while len(body) < ERROR_BODY_LIMIT:
        chunk = yield from _read_chunk(response)
        if not isinstance(chunk, bytes) or not chunk:
            break
        body += chunk
    return body


def _what(method: str, path_or_url: str) -> str:
    if "://" in path_or_url:
        return f"{method} {urlsplit(path_or_url).path}"
    return f"{method} /{path_or_url.lstrip('/')}"


def _error(
    core: ClientCore, response: httpx.Response, what: str, body: bytes | None = None
) -> ApiError:
    return error_from_answer(
        response.status_code,
        response.reason_phrase,
        response.headers,
        response.content if body is None else body,
        secret=core.secret.reveal(),
        now=core.clock(),
        what=what,
    )


def _connection_error(core: ClientCore, exc: httpx.RequestError, what: str) -> ApiConnectionError:
    detail = str(exc) or type(exc).__name__
    return ApiConnectionError(_scrub(f"{type(exc).__name__}: {detail} (on {what})", core))


def _malformed(core: ClientCore, response: httpx.Response, text: str) -> ServerError:
    """An answer that is not what the API documents (it quotes the server, so it is scrubbed)."""
    return ServerError(_scrub(text, core), status=response.status_code, code="malformed_response")


def _scrub(text: str, core: ClientCore) -> str:
    return scrub_secret(text, core.secret.reveal())


def _wait_rate_limit(
    core: ClientCore, response: httpx.Response, what: str, count: int
) -> Flow[None]:
    """Wait until the service lets us send again, or raise when that is too long.

    For the API the whole client waits (its limiter holds every request); another host
    (a media CDN) only delays this request.
    """
    delay = parse_retry_after(response.headers, core.clock())
    if delay is None:
        delay = core.backoff(count)
    if count > RATE_LIMIT_RETRIES or delay > MAX_RETRY_AFTER:
        raise _error(core, response, what)
    logger.info("%s: rate limited; sending again in %.1f s", what, delay)
    if core.same_origin(str(response.request.url)):
        core.limiter.hold(core.clock() + delay)
    else:
        yield from _sleep(delay)


# --- GET, with retries ---------------------------------------------------------------------


def _get(
    core: ClientCore,
    path: str,
    parse: Callable[[Any], T],
    params: Mapping[str, str | int] | None = None,
) -> Flow[T]:
    """GET a JSON resource and parse it, retrying what a GET may retry."""
    what = _what("GET", path)
    failures = rate_limited = 0
    while True:
        outcome = yield from _exchange(core, "GET", path, params=params)
        problem: ApiError
        if isinstance(outcome, httpx.RequestError):
            if not isinstance(outcome, TRANSIENT):
                raise _connection_error(core, outcome, what) from outcome
            problem = _connection_error(core, outcome, what)
        elif outcome.status_code == 429:
            rate_limited += 1
            yield from _wait_rate_limit(core, outcome, what, rate_limited)
            continue
        elif outcome.status_code >= 500:
            problem = _error(core, outcome, what)
        elif outcome.status_code >= 400:
            raise _error(core, outcome, what)
        else:
            try:
                return parse(outcome.json())
            except ValueError as exc:  # not JSON, or JSON of the wrong shape
                problem = _malformed(
                    core, outcome, f"the answer is not what the API documents: {exc} (on {what})"
                )
        failures += 1
        if failures > core.max_retries:
            raise problem
        delay = core.backoff(failures)
        logger.info("%s failed (%s); retry %d in %.1f s", what, problem.code, failures, delay)
        yield from _sleep(delay)


def _job(data: Any) -> Job:
    return Job.model_validate(data)


def _job_list(data: Any) -> JobList:
    # JobList tolerates shapes; an answer that names no list at all must not pass for an
    # empty one (reconciliation would take it for "no job was created").
    if not isinstance(data, list) and not (
        isinstance(data, dict) and ("data" in data or "jobs" in data)
    ):
        raise ValueError("the answer holds no list of jobs")
    return JobList.model_validate(data)


def retrieve(core: ClientCore, job_id: str) -> Flow[Job]:
    """GET /jobs/{id}."""
    job = yield from _get(core, job_path(job_id), _job)
    core.note([job])
    return job


def list_jobs(core: ClientCore, status: str | None, limit: int, offset: int) -> Flow[JobList]:
    """GET /jobs: the account's jobs, newest first."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status
    page = yield from _get(core, "jobs", _job_list, params)
    core.note(page.data)
    return page


# --- reconciliation ------------------------------------------------------------------------


def _candidates(
    core: ClientCore,
    *,
    since: float,
    model: str,
    credits: int | None,
    is_known: Callable[[str], bool],
) -> Flow[tuple[Job, ...]]:
    """Jobs that a submit started at `since` may have created, newest first.

    Pages through GET /jobs (newest first) down to jobs older than `since` minus
    CLOCK_SKEW_MARGIN, and keeps the jobs that `is_known` does not claim, of the same model,
    with `credits_used` equal to `credits` when both are given. A job whose created_at
    cannot be read cannot be ruled out, so it is kept.
    """
    cutoff = since - CLOCK_SKEW_MARGIN
    found: dict[str, Job] = {}
    offset = 0
    for _ in range(MAX_LIST_PAGES):
        page = yield from list_jobs(core, None, LIST_PAGE, offset)
        reached_older = False
        for job in page.data:
            created = parse_time(job.created_at)
            if created is not None and created < cutoff:
                reached_older = True
                continue
            if job.id in found or is_known(job.id):
                continue
            if job.model is not None and job.model != model:
                continue
            billed = "credits_used" in job.tchavi.model_fields_set
            if credits is not None and billed and job.credits_used != credits:
                continue
            found[job.id] = job
        if reached_older or not page.has_more or not page.data:
            return tuple(found.values())
        # New jobs only push older ones to later offsets: a job may show twice, never not.
        offset += len(page.data)
    raise AmbiguousSubmit(
        f"more than {MAX_LIST_PAGES * LIST_PAGE} jobs were created since the submit started, "
        "too many to tell which one it created",
        candidate_ids=tuple(found),
    )


def find_unknown(
    core: ClientCore,
    *,
    since: float,
    model: str,
    credits: int | None,
    is_known: Callable[[str], bool],
    failure: str = "",
) -> Flow[Job | None]:
    """The job a submit started at `since` created, or None if it created none.

    Exactly one candidate (see `_candidates`) is that job, and is claimed by this client;
    several raise AmbiguousSubmit naming them. `failure` says how the submit failed, for
    that message.
    """
    found = yield from _candidates(
        core, since=since, model=model, credits=credits, is_known=is_known
    )
    if len(found) == 1:
        core.claim(found[0])
        return found[0]
    if not found:
        return None
    ids = tuple(job.id for job in found)
    how = f" failed ({failure}) and" if failure else ""
    raise AmbiguousSubmit(
        f"a submit of a {model} job{how} {len(ids)} jobs of that model"
        f"{f' costing {credits} credits' if credits is not None else ''} appeared since it "
        f"started; any of them may be the one it created: {', '.join(ids)}",
        candidate_ids=ids,
    )


# --- submit ------------------------------------------------------------------------------


def submit(core: ClientCore, params: GenerationParams, known_ids: frozenset[str]) -> Flow[Job]:
    """POST /videos/generations without ever paying twice for one call.

    The caller must not run two submits of one client at once: a job found after an
    ambiguous failure is adopted only because no other submit of this client could own it.
    """
    what = "POST /videos/generations"
    body = params.to_request()
    credits = estimate_credits(params.resolution, params.duration)
    started = core.clock()
    marker = core.mark()

    def is_known(job_id: str) -> bool:
        # Jobs seen before this submit began existed before it, so are not its job.
        return job_id in known_ids or core.claimed(job_id) or core.seen_before(job_id, marker)

    attempts = rate_limited = 0
    while True:
        outcome = yield from _exchange(core, "POST", "videos/generations", json=body)
        failure: ApiError
        if isinstance(outcome, httpx.Response):
            if outcome.status_code == 429:
                rate_limited += 1
                yield from _wait_rate_limit(core, outcome, what, rate_limited)
                continue
            if outcome.status_code == 402:
                raise _insufficient(core, outcome, what, credits)
            if 400 <= outcome.status_code < 500:
                raise _error(core, outcome, what)
            if outcome.status_code < 400:
                try:
                    job = Job.model_validate(outcome.json())
                except ValueError as exc:
                    # Accepted, but we cannot read which job it made: ambiguous.
                    failure = _malformed(
                        core,
                        outcome,
                        f"the submit was accepted but its answer is unreadable: {exc} (on {what})",
                    )
                    reason = f"an unreadable {outcome.status_code} answer"
                else:
                    core.claim(job)
                    return job
            else:
                failure = _error(core, outcome, what)
                reason = f"HTTP {failure.status} {failure.code}"
        else:
            failure = _connection_error(core, outcome, what)
            reason = type(outcome).__name__
            if isinstance(outcome, httpx.UnsupportedProtocol):
                raise failure from outcome
            if isinstance(outcome, NOT_SENT):
                attempts += 1
                if attempts > core.max_retries:
                    raise failure from outcome
                delay = core.backoff(attempts)
                logger.info("%s was not sent (%s); retry in %.1f s", what, reason, delay)
                yield from _sleep(delay)
                continue

        # Ambiguous: the service may have created (and billed) the job. Give it a moment to
        # finish what it was doing, then look for the job before submitting again.
        attempts += 1
        logger.warning("%s failed ambiguously (%s); looking for its job", what, reason)
        yield from _sleep(core.backoff(attempts))
        try:
            adopted = yield from find_unknown(
                core,
                since=started,
                model=params.model,
                credits=credits,
                is_known=is_known,
                failure=reason,
            )
        except AmbiguousSubmit:
            raise
        except ApiError as exc:
            raise AmbiguousSubmit(
                f"{what} failed ({reason}) and the jobs list could not be read to see "
                f"whether it created a job ({exc.detail}); the job may exist",
            ) from exc
        if adopted is not None:
            logger.warning("%s: adopted job %s, created before the failure", what, adopted.id)
            return adopted
        if attempts > core.max_retries:
            raise failure
        logger.warning("%s created no job; submitting again", what)


def _insufficient(core: ClientCore, response: httpx.Response, what: str, credits: int) -> ApiError:
    """The 402, saying what this request needs and what the account has (unless it does)."""
    err = _error(core, response, what)
    if str(credits) in err.detail:
        return err
    remaining = core.last_rate_limit.credits_remaining if core.last_rate_limit else None
    have = f"; the account has {remaining}" if remaining is not None else ""
    return InsufficientCredits(
        f"{err.detail}; this request needs {credits} credits{have}",
        status=err.status,
        code=err.code,
        param=err.param,
        request_id=err.request_id,
    )


# --- waiting -----------------------------------------------------------------------------


def wait(
    core: ClientCore,
    job_id: str,
    *,
    poll_interval: float | None,
    timeout: float | None,
    first: Job | None = None,
) -> Flow[Job]:
    """Poll a job until it completes; raise JobFailed if it fails, WaitTimeout when too long.

    Polls wait `poll_interval` (default 5 s), each a quarter longer than the last up to 30 s,
    so long renders cost few requests. `first` is a record already in hand (skips one poll).
    A timeout neither cancels nor resubmits the job.
    """
    interval = DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval
    cap = max(POLL_CAP, interval)
    start = core.clock()
    job = first
    while True:
        if job is None:
            job = yield from retrieve(core, job_id)
        if job.status == "completed":
            return job
        if job.status == "failed":
            error_code = job.error.code if job.error else "upstream_error"
            message = job.error.message if job.error else "no reason given"
            raise JobFailed(job.id, error_code, message, job.credits_refunded)
        waited = core.clock() - start
        if timeout is not None and waited >= timeout:
            raise WaitTimeout(job.id, job.status, waited)
        delay = interval if timeout is None else min(interval, timeout - waited)
        yield from _sleep(delay)
        interval = min(cap, interval * POLL_GROWTH)
        job = None


# --- download ----------------------------------------------------------------------------


def download(
    core: ClientCore,
    url: str,
    path: Path,
    *,
    job_id: str | None = None,
    size_mb: float | None = None,
    expires_at: str | None = None,
) -> Flow[tuple[str, int]]:
    """Stream a video into `path` (temp file beside it, fsync, rename); (sha256, bytes).

    Retries like a GET (a dropped or truncated body starts over). 410, or a 403 that says
    it expired (or comes after `expires_at`), raises MediaExpired.
    """
    of = f" of job {job_id}" if job_id else ""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(
            f"refusing to download{of} from a {scheme or 'relative'} URL; only http(s) is allowed"
        )
    what = _what("GET", url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    failures = rate_limited = 0
    while True:
        outcome = yield from _exchange(core, "GET", url, stream=True)
        if isinstance(outcome, httpx.RequestError):
            if not isinstance(outcome, TRANSIENT):
                raise DownloadError(
                    _scrub(f"could not download the video{of}: {outcome}", core)
                ) from outcome
            problem = f"{type(outcome).__name__}: {outcome}"
        elif outcome.status_code == 429:
            rate_limited += 1
            yield from _wait_rate_limit(core, outcome, what, rate_limited)
            continue
        elif outcome.status_code != 200:
            body = yield from _read_error_body(outcome)
            if _expired(core, outcome.status_code, body, expires_at):
                when = f" at {expires_at}" if expires_at else ""
                raise MediaExpired(
                    f"the video URL{of} expired{when} (on {what})", status=outcome.status_code
                )
            if outcome.status_code < 500:
                err = _error(core, outcome, what, body)
                raise DownloadError(f"could not download the video{of}: {err}")
            problem = f"HTTP {outcome.status_code}"
        else:
            result = yield from _stream_to_file(outcome, path, size_mb, of)
            if isinstance(result, tuple):
                return result
            problem = result
        failures += 1
        if failures > core.max_retries:
            raise DownloadError(f"the download{of} failed: {problem}; tried {failures} times")
        delay = core.backoff(failures)
        logger.info("download%s failed (%s); retry %d in %.1f s", of, problem, failures, delay)
        yield from _sleep(delay)


def _expired(core: ClientCore, status: int, body: bytes, expires_at: str | None) -> bool:
    if status == 410:
        return True
    if status != 403:
        return False
    expiry = parse_time(expires_at)
    return b"expired" in body.lower() or (expiry is not None and core.clock() >= expiry)


def _stream_to_file(
    response: httpx.Response, path: Path, size_mb: float | None, of: str
) -> Flow[tuple[str, int] | str]:
    """Write the body to a temp file beside `path`, check it, rename it into place.

    Returns (sha256, size), or why the body was cut short (worth another try). A body that
    is complete but not the job's raises DownloadError. The temp file never outlives this.
    """
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    declared = response.headers.get("content-length", "")
    expected = int(declared) if declared.isdigit() and not encoded else None
    try:
        digest = hashlib.sha256()
        size = 0
        with staged(path, suffix=".part") as pending, pending.path.open("wb") as out:
            while True:
                chunk = yield from _read_chunk(response)
                if isinstance(chunk, httpx.RequestError):
                    return f"the connection dropped after {size} bytes ({type(chunk).__name__})"
                if not chunk:
                    break
                out.write(chunk)
                failpoint("mid-download")
                digest.update(chunk)
                size += len(chunk)
            if expected is not None and size != expected:
                return f"truncated: got {size} of the {expected} bytes announced"
            if size == 0:
                return "the answer was empty"
            _check_size(size, size_mb, of)
            out.flush()
            pending.commit()
        return digest.hexdigest(), size
    except OSError as exc:
        raise _unwritable(path, exc) from exc


def _unwritable(path: Path, exc: OSError) -> DownloadError:
    return DownloadError(f"could not write the video to {path}: {exc.strerror or exc}")


def _check_size(size: int, size_mb: float | None, of: str) -> None:
    """The job's file_size_mb, read loosely: the service may mean MB or MiB, rounded."""
    if size_mb is None or size_mb <= 0:
        return
    tolerance = 0.05 * size_mb + 0.01
    if any(abs(size / unit - size_mb) <= tolerance for unit in (1e6, 2**20)):
        return
    raise DownloadError(
        f"the video{of} has {size} bytes but the job says {size_mb} MB; not keeping it"
    )
