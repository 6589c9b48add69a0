"""The exception tree of tchavi-render: every error a user can cause or meet, with its exit code.

    TchaviRenderError                    exit 1 unless said otherwise
    ├── SpecError                        the spec is invalid; carries every Problem at once
    ├── InvalidParams                    generation parameters break an API rule (checked
    │                                    before sending); carries the Problems
    ├── ApiError                         the service answered with an error (or could not be
    │   │                                reached); status, code, param, request_id
    │   ├── InvalidRequest               400 invalid_request
    │   ├── InvalidApiKey                401 invalid_api_key
    │   │   └── MissingApiKey            no key given at all (nothing was sent)
    │   ├── InsufficientCredits          402 insufficient_credits
    │   ├── ModelNotAllowed              403 model_not_allowed
    │   ├── JobNotFound                  404 job_not_found
    │   ├── MediaExpired                 410 on a download: the output URL expired
    │   ├── RateLimited                  429 rate_limit_exceeded & co; retry_after
    │   ├── ServerError                  500 internal_error, 502 upstream_error, other 5xx
    │   ├── ApiConnectionError           the request did not get an answer (refused, timeout)
    │   └── AmbiguousSubmit              a submit failed ambiguously and the client cannot tell
    │                                    whether it created a job; candidate_ids
    ├── JobFailed                        a job ended `failed` (refunded by the service)
    ├── WaitTimeout                      a job did not finish in time; it keeps running
    ├── DownloadError                    a download was refused, truncated or corrupt
    ├── BudgetExceeded                   --max-credits would be exceeded
    ├── FrozenWouldSpend                 --frozen and some shot needs a new job
    ├── PlanStale                        a saved plan no longer matches spec, lock or media
    ├── NoSuchShot                       --target, --replace or pick names no shot
    ├── PickError                        `pick` cannot write that pick into the spec
    ├── LockHeld                         another apply holds the spec's lock
    ├── LockfileError                    the lockfile (tchavi.lock) cannot be read
    ├── RevisionError                    a git revision (or its repository) cannot be read
    ├── ShotsNotReady                    export needs shots that are not rendered or out of
    │                                    date; names each one
    ├── ExportError                      the final cut cannot be made from the rendered files
    └── RemoteCacheError                 the remote cache (S3) is misconfigured, unreachable
                                         or refuses a request

Messages name the place and end with what to do. The API key never appears in any of them:
nothing here is ever given the key (nor the S3 credentials, nor the cache-signing secret).
What the user wrote may still be a secret, so a Problem's message goes through
`tchavi_render.redact.redact`, as does every message the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tchavi_render.redact import redact

__all__ = [
    "AmbiguousSubmit",
    "ApiConnectionError",
    "ApiError",
    "BudgetExceeded",
    "DownloadError",
    "ExportError",
    "FrozenWouldSpend",
    "InsufficientCredits",
    "InvalidApiKey",
    "InvalidParams",
    "InvalidRequest",
    "JobFailed",
    "JobNotFound",
    "LockHeld",
    "LockfileError",
    "MediaExpired",
    "ModelNotAllowed",
    "NoSuchShot",
    "PickError",
    "PlanStale",
    "Problem",
    "RateLimited",
    "RemoteCacheError",
    "RevisionError",
    "ServerError",
    "ShotsNotReady",
    "SpecError",
    "TchaviRenderError",
    "WaitTimeout",
]


@dataclass(frozen=True)
class Problem:
    """One located complaint about user input; `file` is None when there is no file."""

    message: str
    file: Path | None = None
    line: int | None = None
    column: int | None = None
    severity: str = "error"  # "error" or "warning"

    def __post_init__(self) -> None:
        # Messages quote what the user wrote, which may be a secret (a spec or var file
        # that is really a .env file): nothing credential-like leaves in a Problem.
        object.__setattr__(self, "message", redact(self.message))

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        place = str(self.file)
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": None if self.file is None else str(self.file),
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


class TchaviRenderError(Exception):
    """Base of every error that is the user's or the world's, not a bug of ours."""

    exit_code: int = 1


class SpecError(TchaviRenderError):
    """The spec is invalid. `problems` holds every error found, in file order."""

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None) -> None:
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        count = len(self.problems)
        head = f"{count} error{'s' if count != 1 else ''} in the spec"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class InvalidParams(TchaviRenderError):
    """Generation parameters break a documented API rule; caught before anything is sent."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid generation parameters:\n" + "\n".join(map(str, problems)))


class ApiError(TchaviRenderError):
    """The Tchavi API answered with an error, or could not be reached."""

    status: int | None = None
    code: str = "api_error"
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.param = param
        self.request_id = request_id
        self.detail = message
        text = message
        if param:
            text = f"{param}: {text}"
        if self.status is not None:
            text = f"Tchavi API {self.status} {self.code}: {text}"
        if self.hint:
            text = f"{text}. {self.hint}"
        if request_id:
            text = f"{text} (request {request_id})"
        super().__init__(text)


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"
    hint = "Fix the named field; retrying the same request will not help"


class InvalidApiKey(ApiError):
    status: int | None = 401
    code = "invalid_api_key"
    hint = "Set a valid key: export TCHAVI_API_KEY=sk-tch_..."


class MissingApiKey(InvalidApiKey):
    """No API key was given; raised when a client is made, before anything is sent."""

    status = None  # nothing was sent, so there is no HTTP status
    code = "missing_api_key"
    hint = "Set one: export TCHAVI_API_KEY=sk-tch_... (or pass api_key=)"


class InsufficientCredits(ApiError):
    status = 402
    code = "insufficient_credits"
    hint = "Top up the account's credits, or render fewer or shorter shots"


class ModelNotAllowed(ApiError):
    status = 403
    code = "model_not_allowed"
    hint = "Choose a model this account may use"


class JobNotFound(ApiError):
    status = 404
    code = "job_not_found"
    hint = "The job is gone; it will not be polled again"


class MediaExpired(ApiError):
    status = 410
    code = "url_expired"
    hint = "Output URLs expire; retrieve the job again for a fresh URL, or render it again"


class RateLimited(ApiError):
    status = 429
    code = "rate_limit_exceeded"
    hint = "Slow down (lower --concurrency) or raise the account level"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ServerError(ApiError):
    status = 500
    code = "internal_error"
    hint = "The service had a problem; try again later"


class ApiConnectionError(ApiError):
    code = "connection_error"
    hint = "Check the network and the base URL (--base-url or TCHAVI_BASE_URL)"


class AmbiguousSubmit(ApiError):
    """A submit failed after it may have reached the service, and the jobs list cannot tell
    whether it created a job: several unknown jobs match it, or the list could not be read.
    Nothing is submitted again (that could pay twice); `candidate_ids` are the jobs that may
    be the one this submit created."""

    code = "ambiguous_submit"
    hint = (
        "Nothing was submitted again, to avoid paying twice. Check the account's recent jobs "
        "(the candidates, if named); if none of them is this one, submit it again"
    )

    def __init__(self, message: str, *, candidate_ids: tuple[str, ...] = (), **kw: object) -> None:
        self.candidate_ids = tuple(candidate_ids)
        super().__init__(message, **kw)  # type: ignore[arg-type]


class JobFailed(TchaviRenderError):
    """A job ended in `failed`. The service refunds it (`credits_refunded`)."""

    def __init__(self, job_id: str, code: str, message: str, refunded: int = 0) -> None:
        self.job_id = job_id
        self.code = code
        self.refunded = refunded
        super().__init__(f"job {job_id} failed ({code}): {message}; {refunded} credits refunded")


class WaitTimeout(TchaviRenderError):
    """Waiting for a job took longer than the caller allowed. The job was neither cancelled
    nor submitted again: it keeps running and can be waited for later by its id."""

    def __init__(self, job_id: str, status: str, waited: float) -> None:
        self.job_id = job_id
        self.status = status
        self.waited = waited
        super().__init__(
            f"job {job_id} is still {status} after waiting {waited:.0f} s. It keeps running "
            f"on the service (not cancelled, not submitted again): wait for it later with "
            f"client.jobs.wait({job_id!r})"
        )


class DownloadError(TchaviRenderError):
    """A video download was refused, cut short, or did not match what the job said."""


class BudgetExceeded(TchaviRenderError):
    """Rendering would spend more credits than --max-credits allows."""


class FrozenWouldSpend(TchaviRenderError):
    """--frozen forbids new jobs, and some shots need one."""


class PlanStale(TchaviRenderError):
    """A saved plan no longer matches the spec, the lock or the media."""


class NoSuchShot(TchaviRenderError):
    """--target, --replace or `pick` names no shot of the spec (or its lock)."""


class PickError(TchaviRenderError):
    """`pick` cannot write the pick: the take is out of range, or the shot is made by a
    for_each or a templated id (the message says what to edit instead)."""


class LockHeld(TchaviRenderError):
    """Another apply holds the spec's lock."""


class LockfileError(TchaviRenderError):
    """The lockfile exists but is not one we can read."""


class RevisionError(TchaviRenderError):
    """A spec cannot be read at a git revision: no repository, no such commit, no spec there."""


class ShotsNotReady(TchaviRenderError):
    """Some shots a command needs are not rendered, or no longer match the spec."""


class ExportError(TchaviRenderError):
    """The final cut cannot be made: a rendered file does not decode, a trim overruns it."""


class RemoteCacheError(TchaviRenderError):
    """The remote cache cannot be used: bad settings, no boto3, no credentials, no bucket,
    access denied, or unreachable."""
