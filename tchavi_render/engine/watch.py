"""Jobs in flight as futures: one list call settles every job it reports (`poll_once`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from tchavi_render.api.models import Job
from tchavi_render.engine.schedule import PollSchedule
from tchavi_render.errors import JobNotFound

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = ["JobWatch", "poll_once"]


class JobWatch:
    """The jobs being waited for: a future per job, its last status, and the schedule."""

    def __init__(self, on_status: Callable[[str, str], None], schedule: PollSchedule) -> None:
        self.waiting: dict[str, asyncio.Future[Job]] = {}
        self.wakeup = asyncio.Event()
        self.on_status = on_status  # (job id, new status): e.g. processing, completed
        self.status: dict[str, str] = {}
        self.schedule = schedule

    def watch(self, job_id: str) -> asyncio.Future[Job]:
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self.waiting[job_id] = future
        self.schedule.start(job_id)
        self.wakeup.set()
        return future

    def observe(self, job: Job) -> None:
        """A polled job record: settle it when done; report a change of status."""
        if job.id in self.waiting and self.status.get(job.id) != job.status:
            self.status[job.id] = job.status
            self.on_status(job.id, job.status)  # completed: downloading next
        if job.done:
            future = self.waiting.pop(job.id, None)
            if future is not None and not future.done():
                future.set_result(job)
            self.schedule.settle(job.id)

    def fail(self, job_id: str, exc: BaseException) -> None:
        self.schedule.drop(job_id)
        future = self.waiting.pop(job_id, None)
        if future is not None and not future.done():
            future.set_exception(exc)


async def poll_once(client: AsyncTchaviClient, watch: JobWatch) -> None:
    """Look at every job waited for: one GET for a single job, else list pages (a job the
    list does not show is asked for by id)."""
    waiting = set(watch.waiting)
    if len(waiting) == 1:
        await _look_up(client, watch, *waiting)
        return
    offset = 0
    seen: set[str] = set()
    while waiting - seen:
        page = await client.jobs.list(limit=50, offset=offset)
        for job in page.data:
            if job.id in waiting:
                seen.add(job.id)
                watch.observe(job)
        if not page.has_more or not page.data:
            break
        # Our jobs are recent; do not walk an account's whole history for a stray one.
        if offset >= 200:
            break
        offset += len(page.data)
    for job_id in waiting - seen:
        await _look_up(client, watch, job_id)


async def _look_up(client: AsyncTchaviClient, watch: JobWatch, job_id: str) -> None:
    """One job by id: observed, or failed when the service does not know it."""
    try:
        job = await client.jobs.retrieve(job_id)
    except JobNotFound as exc:
        watch.fail(job_id, exc)
        return
    watch.observe(job)
