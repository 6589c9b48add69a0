"""Submitting without paying twice: the POST, and finding the job an ambiguous one made."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tchavi_render.api.base import ClientCore
from tchavi_render.api.errors import parse_time
from tchavi_render.api.flow.jobs import LIST_PAGE, list_jobs
from tchavi_render.api.flow.steps import (
    NOT_SENT,
    Flow,
    answer_error,
    connection_error,
    exchange,
    logger,
    malformed,
    sleep,
    wait_rate_limit,
)
from tchavi_render.api.models import GenerationParams, Job
from tchavi_render.api.pricing import estimate_credits
from tchavi_render.errors import AmbiguousSubmit, ApiError, InsufficientCredits

__all__ = ["CLOCK_SKEW_MARGIN", "find_unknown", "submit"]

# Jobs created up to this long before a submit started may still be its job: the service's
# clock and ours need not agree, and created_at is only given to the second.
CLOCK_SKEW_MARGIN = 120.0
MAX_LIST_PAGES = 100


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
        outcome = yield from exchange(core, "POST", "videos/generations", json=body)
        failure: ApiError
        if isinstance(outcome, httpx.Response):
            if outcome.status_code == 429:
                rate_limited += 1
                yield from wait_rate_limit(core, outcome, what, rate_limited)
                continue
            if outcome.status_code == 402:
                raise _insufficient(core, outcome, what, credits)
            if 400 <= outcome.status_code < 500:
                raise answer_error(core, outcome, what)
            if outcome.status_code < 400:
                try:
                    job = Job.model_validate(outcome.json())
                except ValueError as exc:
                    # Accepted, but we cannot read which job it made: ambiguous.
                    failure = malformed(
                        core,
                        outcome,
                        f"the submit was accepted but its answer is unreadable: {exc} (on {what})",
                    )
                    reason = f"an unreadable {outcome.status_code} answer"
                else:
                    core.claim(job)
                    return job
            else:
                failure = answer_error(core, outcome, what)
                reason = f"HTTP {failure.status} {failure.code}"
        else:
            failure = connection_error(core, outcome, what)
            reason = type(outcome).__name__
            if isinstance(outcome, httpx.UnsupportedProtocol):
                raise failure from outcome
            if isinstance(outcome, NOT_SENT):
                attempts += 1
                if attempts > core.max_retries:
                    raise failure from outcome
                delay = core.backoff(attempts)
                logger.info("%s was not sent (%s); retry in %.1f s", what, reason, delay)
                yield from sleep(delay)
                continue

        # Ambiguous: the service may have created (and billed) the job. Give it a moment to
        # finish what it was doing, then look for the job before submitting again.
        attempts += 1
        logger.warning("%s failed ambiguously (%s); looking for its job", what, reason)
        yield from sleep(core.backoff(attempts))
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
    err = answer_error(core, response, what)
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
