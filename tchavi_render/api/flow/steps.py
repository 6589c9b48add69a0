"""What every flow is made of: the effects, one exchange, errors, 429s, GET with retries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import httpx

from tchavi_render.api.base import ClientCore
from tchavi_render.api.errors import error_from_answer, parse_retry_after
from tchavi_render.api.errors import scrub as scrub_secret
from tchavi_render.errors import ApiConnectionError, ApiError, ServerError

__all__ = [
    "CHUNK",
    "NOT_SENT",
    "TRANSIENT",
    "Effect",
    "Flow",
    "Outcome",
    "ReadChunk",
    "Send",
    "Sleep",
    "answer_error",
    "connection_error",
    "describe",
    "exchange",
    "get",
    "logger",
    "malformed",
    "read_chunk",
    "read_error_body",
    "scrub",
    "sleep",
    "wait_rate_limit",
]

T = TypeVar("T")
logger = logging.getLogger("tchavi_render.api")

RATE_LIMIT_RETRIES = 10  # 429s in a row before giving up on one request
MAX_RETRY_AFTER = 300.0  # a longer Retry-After is reported rather than slept through
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


def sleep(seconds: float) -> Flow[None]:
    """Pause the flow (nothing is yielded for no time at all)."""
    if seconds > 0:
        yield Sleep(seconds)


def exchange(
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
        yield from sleep(core.limiter.reserve(core.clock()))
    outcome = yield Send(request, stream=stream, follow_redirects=stream)
    if not isinstance(outcome, httpx.Response | httpx.RequestError):
        raise TypeError(f"a Send was answered with {type(outcome).__name__}")
    if own and isinstance(outcome, httpx.Response):
        core.observe(outcome)
    return outcome


def read_chunk(response: httpx.Response) -> Flow[bytes | httpx.RequestError]:
    chunk = yield ReadChunk(response)
    if not isinstance(chunk, bytes | httpx.RequestError):
        raise TypeError(f"a ReadChunk was answered with {type(chunk).__name__}")
    return chunk


def read_error_body(response: httpx.Response) -> Flow[bytes]:
    """The start of a streamed error answer (enough to read its JSON)."""
    body = b""
    while len(body) < ERROR_BODY_LIMIT:
        chunk = yield from read_chunk(response)
        if not isinstance(chunk, bytes) or not chunk:
            break
        body += chunk
    return body


def describe(method: str, path_or_url: str) -> str:
    """A request as messages name it: `GET /jobs`; only the path of an absolute URL."""
    if "://" in path_or_url:
        return f"{method} {urlsplit(path_or_url).path}"
    return f"{method} /{path_or_url.lstrip('/')}"


def answer_error(
    core: ClientCore, response: httpx.Response, what: str, body: bytes | None = None
) -> ApiError:
    """The documented error an answer stands for (`body` when the answer was streamed)."""
    return error_from_answer(
        response.status_code,
        response.reason_phrase,
        response.headers,
        response.content if body is None else body,
        secret=core.secret.reveal(),
        now=core.clock(),
        what=what,
    )


def connection_error(core: ClientCore, exc: httpx.RequestError, what: str) -> ApiConnectionError:
    detail = str(exc) or type(exc).__name__
    return ApiConnectionError(scrub(f"{type(exc).__name__}: {detail} (on {what})", core))


def malformed(core: ClientCore, response: httpx.Response, text: str) -> ServerError:
    """An answer that is not what the API documents (it quotes the server, so it is scrubbed)."""
    return ServerError(scrub(text, core), status=response.status_code, code="malformed_response")


def scrub(text: str, core: ClientCore) -> str:
    """`text` without this client's API key in it."""
    return scrub_secret(text, core.secret.reveal())


def wait_rate_limit(
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
        raise answer_error(core, response, what)
    logger.info("%s: rate limited; sending again in %.1f s", what, delay)
    if core.same_origin(str(response.request.url)):
        core.limiter.hold(core.clock() + delay)
    else:
        yield from sleep(delay)


# --- GET, with retries ---------------------------------------------------------------------


def get(
    core: ClientCore,
    path: str,
    parse: Callable[[Any], T],
    params: Mapping[str, str | int] | None = None,
) -> Flow[T]:
    """GET a JSON resource and parse it, retrying what a GET may retry."""
    what = describe("GET", path)
    failures = rate_limited = 0
    while True:
        outcome = yield from exchange(core, "GET", path, params=params)
        problem: ApiError
        if isinstance(outcome, httpx.RequestError):
            if not isinstance(outcome, TRANSIENT):
                raise connection_error(core, outcome, what) from outcome
            problem = connection_error(core, outcome, what)
        elif outcome.status_code == 429:
            rate_limited += 1
            yield from wait_rate_limit(core, outcome, what, rate_limited)
            continue
        elif outcome.status_code >= 500:
            problem = answer_error(core, outcome, what)
        elif outcome.status_code >= 400:
            raise answer_error(core, outcome, what)
        else:
            try:
                return parse(outcome.json())
            except ValueError as exc:  # not JSON, or JSON of the wrong shape
                problem = malformed(
                    core, outcome, f"the answer is not what the API documents: {exc} (on {what})"
                )
        failures += 1
        if failures > core.max_retries:
            raise problem
        delay = core.backoff(failures)
        logger.info("%s failed (%s); retry %d in %.1f s", what, problem.code, failures, delay)
        yield from sleep(delay)
