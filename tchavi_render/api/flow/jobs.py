"""Reading jobs: one job, a page of the account's jobs, and polling a job until it ends."""

from __future__ import annotations

from typing import Any

from tchavi_render.api.base import ClientCore, job_path
from tchavi_render.api.flow.steps import Flow, get, sleep
from tchavi_render.api.models import Job, JobList
from tchavi_render.errors import JobFailed, WaitTimeout

__all__ = ["DEFAULT_POLL_INTERVAL", "LIST_PAGE", "list_jobs", "retrieve", "wait"]

DEFAULT_POLL_INTERVAL = 5.0
POLL_GROWTH = 1.25  # each poll waits this much longer than the last ...
POLL_CAP = 30.0  # ... up to this (or the caller's interval, if longer)
LIST_PAGE = 50  # the most the API lists at once


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
    job = yield from get(core, job_path(job_id), _job)
    core.note([job])
    return job


def list_jobs(core: ClientCore, status: str | None, limit: int, offset: int) -> Flow[JobList]:
    """GET /jobs: the account's jobs, newest first."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status
    page = yield from get(core, "jobs", _job_list, params)
    core.note(page.data)
    return page


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
        yield from sleep(delay)
        interval = min(cap, interval * POLL_GROWTH)
        job = None
