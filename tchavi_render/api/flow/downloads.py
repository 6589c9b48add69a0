"""Downloading a video: streamed beside its path, checked, renamed; retried like a GET."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tchavi_render.api.base import ClientCore
from tchavi_render.api.errors import parse_time
from tchavi_render.api.flow.steps import (
    TRANSIENT,
    Flow,
    answer_error,
    describe,
    exchange,
    logger,
    read_chunk,
    read_error_body,
    scrub,
    sleep,
    wait_rate_limit,
)
from tchavi_render.atomic import staged
from tchavi_render.errors import DownloadError, MediaExpired
from tchavi_render.failpoints import failpoint

__all__ = ["download"]


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
    what = describe("GET", url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    failures = rate_limited = 0
    while True:
        outcome = yield from exchange(core, "GET", url, stream=True)
        if isinstance(outcome, httpx.RequestError):
            if not isinstance(outcome, TRANSIENT):
                raise DownloadError(
                    scrub(f"could not download the video{of}: {outcome}", core)
                ) from outcome
            problem = f"{type(outcome).__name__}: {outcome}"
        elif outcome.status_code == 429:
            rate_limited += 1
            yield from wait_rate_limit(core, outcome, what, rate_limited)
            continue
        elif outcome.status_code != 200:
            body = yield from read_error_body(outcome)
            if _expired(core, outcome.status_code, body, expires_at):
                when = f" at {expires_at}" if expires_at else ""
                raise MediaExpired(
                    f"the video URL{of} expired{when} (on {what})", status=outcome.status_code
                )
            if outcome.status_code < 500:
                err = answer_error(core, outcome, what, body)
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
        yield from sleep(delay)


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
                chunk = yield from read_chunk(response)
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
