"""Reading Tchavi answers: error bodies to exceptions; the rate-limit and credit headers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tchavi_render.errors import (
    ApiError,
    InsufficientCredits,
    InvalidApiKey,
    InvalidRequest,
    JobNotFound,
    ModelNotAllowed,
    RateLimited,
    ServerError,
)

__all__ = [
    "RateLimitInfo",
    "error_from_answer",
    "parse_retry_after",
    "parse_time",
    "scrub",
]

ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    "invalid_request": InvalidRequest,
    "invalid_api_key": InvalidApiKey,
    "insufficient_credits": InsufficientCredits,
    "model_not_allowed": ModelNotAllowed,
    "job_not_found": JobNotFound,
    "rate_limit_exceeded": RateLimited,
    "user_rate_limit_exceeded": RateLimited,
    "tpm_rate_limit_exceeded": RateLimited,
    "internal_error": ServerError,
    "upstream_error": ServerError,
}
# For codes we do not know. 403 and 404 stay generic: a proxy's 404 usually means a wrong
# base URL, not a vanished job, and a 403 is not necessarily about the model.
ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: InvalidApiKey,
    402: InsufficientCredits,
    429: RateLimited,
}
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SNIPPET = 200


@dataclass(frozen=True)
class RateLimitInfo:
    """What the last answer's headers said about the account's request rate and credits."""

    rpm_limit: int | None
    rpm_remaining: int | None
    credits_used: int | None
    credits_remaining: int | None
    request_id: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """The values of the X-RateLimit-* / X-Credits-* headers; None when none is present."""
        info = cls(
            rpm_limit=_int_header(headers, "x-ratelimit-rpm-limit"),
            rpm_remaining=_int_header(headers, "x-ratelimit-rpm-remaining"),
            credits_used=_int_header(headers, "x-credits-used"),
            credits_remaining=_int_header(headers, "x-credits-remaining"),
            request_id=headers.get("x-request-id"),
        )
        if info == cls(None, None, None, None, None):
            return None
        return info


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw.strip()))
    except ValueError:
        return None


# Query parameters of presigned URLs (S3 and the like) that carry credentials or
# signatures: a service error quoting a media URL must not print them.
_SIGNED_QUERY = re.compile(
    r"((?:X-Amz-(?:Credential|Signature|Security-Token))|Signature|AWSAccessKeyId)=[^&\s\"']+",
    re.IGNORECASE,
)


def scrub(text: str, secret: str) -> str:
    """`text` with every occurrence of the secret replaced, so no message can carry the key,
    and the credentials of any presigned URL it quotes redacted."""
    text = text.replace(secret, "***") if secret else text
    return _SIGNED_QUERY.sub(lambda m: f"{m.group(1)}=***", text)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent
    or unreadable. `now` is the epoch time, used for the date form."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp such as 2026-11-24T10:00:00Z; None if unreadable."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # the docs always give UTC with a zone; a naive time cannot be placed
    return when.timestamp()


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)  # some frameworks answer a list of messages
    return None


def _read_body(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, param) from either documented error shape; Nones when not JSON."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    error = data.get("error")
    if isinstance(error, dict):
        # {"error": {"code", "message", "status", "param"}}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        param = error.get("param") if isinstance(error.get("param"), str) else None
        return code, _text_of(error.get("message")), param
    # {"error", "message", "statusCode"}: `error` is a code or an HTTP reason phrase.
    message = _text_of(data.get("message"))
    if isinstance(error, str):
        if _CODE_RE.match(error):
            return error, message, None
        return None, message or error, None
    return None, message, None


def _snippet(body: bytes) -> str:
    text = " ".join(body[: _SNIPPET * 4].decode("utf-8", "replace").split())
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")


def error_from_answer(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    now: float,
    what: str,
) -> ApiError:
    """The exception for an error answer. `what` names the request ("GET /jobs/job_1").

    The class follows the error code when it is documented, else the HTTP status; the
    server's code is kept either way. Bodies that are not JSON are quoted (shortened).
    """
    code, message, param = _read_body(body)
    if message is None:
        snippet = _snippet(body)
        message = f"{reason or 'error'} (body: {snippet!r})" if snippet else (reason or "error")
    cls: type[ApiError] | None = ERRORS_BY_CODE.get(code or "")
    if cls is None:
        cls = ServerError if status >= 500 else ERRORS_BY_STATUS.get(status, ApiError)
    text = f"{message.strip().rstrip('.')} (on {what})"
    if status == 404 and cls is ApiError:
        text += "; is the base URL right (--base-url or TCHAVI_BASE_URL)?"
    text = scrub(text, secret)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "param": param,
        "request_id": headers.get("x-request-id"),
    }
    if cls is RateLimited:
        return RateLimited(text, retry_after=parse_retry_after(headers, now), **kwargs)
    return cls(text, **kwargs)
