"""Jobs at the service: submitted, resumed, watched by one poller, fetched; every key is
rendered at most once per apply, and each shot placed from its key's render."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, assert_never

from tchavi_render.api.models import Job
from tchavi_render.api.pricing import estimate_credits
from tchavi_render.background import background_pool
from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.claiming import Coordinator, Holding, claimed_elsewhere
from tchavi_render.engine.download import download_render
from tchavi_render.engine.journal import InFlight
from tchavi_render.engine.keys import shot_key
from tchavi_render.engine.placing import place
from tchavi_render.engine.plan import ABANDON_FLAG, Action, PlannedShot
from tchavi_render.engine.remote.claims import Claim
from tchavi_render.engine.run import ApplyEvent, Failure, Run, record_failure
from tchavi_render.engine.schedule import PollSchedule, poll_floor
from tchavi_render.engine.watch import JobWatch, poll_once
from tchavi_render.errors import (
    AmbiguousSubmit,
    ApiConnectionError,
    ApiError,
    DownloadError,
    InsufficientCredits,
    InvalidApiKey,
    JobNotFound,
    MediaExpired,
    TchaviRenderError,
)
from tchavi_render.failpoints import failpoint
from tchavi_render.spec.shot import LocalMedia, Media, ShotFrame, UrlMedia

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = ["POLL_UNREACHABLE_LIMIT", "JobRunner"]

T = TypeVar("T")

# Polls in a row (each already retried by the client) that found the service unreachable
# before apply stops waiting and leaves the jobs to the next apply.
POLL_UNREACHABLE_LIMIT = 3

_FATAL = (InvalidApiKey, InsufficientCredits, ApiConnectionError)


def _unreachable(base_url: str, exc: ApiConnectionError) -> ApiConnectionError:
    """One message for a service that cannot be reached at all: where, and what to check."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ApiConnectionError(
        f"cannot reach the Tchavi API at {parts.hostname}:{port} ({exc.detail}), base URL "
        f"{base_url}; nothing more was submitted, and the next apply collects the jobs already "
        "submitted without paying again"
    )


class JobRunner:
    """Submits, resumes and finishes jobs; every key is rendered at most once per run."""

    def __init__(self, run: Run, client: AsyncTchaviClient, known_ids: set[str]) -> None:
        self.run = run
        self.client = client
        self.known_ids = known_ids
        options = run.ctx.options
        schedule = PollSchedule(options.poll_interval, options.max_poll_interval)
        self.watch = JobWatch(self._status, schedule)
        self.job_shot: dict[str, str] = {}  # job id -> the shot it renders, for progress
        # A slot is a job in flight at the service: taken before the submit, given back as
        # soon as the job is done, so the next shot is submitted while this one downloads.
        self.slots = asyncio.Semaphore(max(1, options.concurrency))
        self.downloads = asyncio.Semaphore(max(1, options.concurrency))
        self.pool = background_pool(min(4, os.cpu_count() or 2), "tchavi-apply")
        self.submitting = 0  # shots holding a slot whose submit is not answered yet
        # With a bucket, a key is claimed there before it is paid for (engine/claiming).
        self.coordinator = Coordinator(run, client)
        self.claims = self.coordinator.claims

    async def background(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the background pool (lower priority), awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- one key ------------------------------------------------------------------------------

    def render(self, planned: PlannedShot) -> asyncio.Task[CacheRecord | Failure]:
        """The render of `planned.key` in this run, started by the first shot that asks."""
        task = self.run.renders.get(planned.key)
        if task is None:
            task = asyncio.create_task(self._submit_and_finish(planned))
            self.run.renders[planned.key] = task
            self.run.render_owner[planned.key] = planned.id
        return task

    def resume(self, item: InFlight) -> None:
        """A job an earlier apply submitted (and paid for) becomes this run's render of its key."""
        assert item.job_id is not None
        self.run.renders[item.key] = asyncio.create_task(self._resume(item))
        self.run.render_owner[item.key] = item.shot
        self.run.resumed.add(item.key)

    async def _resume(self, item: InFlight) -> CacheRecord | Failure:
        assert item.job_id is not None
        self.job_shot[item.job_id] = item.shot
        async with self.slots:
            self.run.ctx.emit(
                ApplyEvent("resume", item.shot, job_id=item.job_id, message="job of an earlier run")
            )
            job = await self._wait(item.key, item.job_id)
        return await self._fetch(item.key, job)

    async def _submit_and_finish(self, planned: PlannedShot) -> CacheRecord | Failure:
        """Render `planned.key` once across machines: rendered elsewhere meanwhile, claimed
        by another machine (follow its job, or wait for its record), or claimed and paid
        here. A slot is held from the claim to the job's end, so claims are never hoarded."""
        while True:
            async with contextlib.AsyncExitStack() as stack:
                async with self.slots:
                    coordinator = self.coordinator
                    elsewhere = await coordinator.rendered_elsewhere(planned)
                    if elsewhere is not None:
                        return elsewhere
                    async with coordinator.turn() as claimed:
                        taken = await coordinator.claim(planned)
                        if isinstance(taken, CacheRecord):
                            return taken
                        if not isinstance(taken, Claim):
                            holding = await stack.enter_async_context(coordinator.holding(taken))
                            job = await self._pay(planned, holding, claimed)
                if not isinstance(taken, Claim):
                    holding.outcome = await self._fetch(planned.key, job)
                    return holding.outcome
            outcome = await self._defer(planned, taken)
            if outcome is not None:
                return outcome

    async def _pay(
        self, planned: PlannedShot, holding: Holding, claimed: Callable[[], None]
    ) -> Job | Failure:
        """Submit the job of a key this machine holds (or needs no claim for), and wait for
        it; a job of an abandoned claim this account can see is followed instead. `claimed`
        gives the claim turn back, once nothing more is submitted for this claim."""
        inherited = holding.inherited
        claims = self.claims
        if inherited is not None and inherited.job_id and claims and claims.mine(inherited):
            claimed()
            message = f"taking over the lapsed claim of host {inherited.host}"
            job = await self._follow(planned, inherited.job_id, message)
            if job is not None:
                return job
        self.submitting += 1
        try:
            job_id = await self._submit(planned)
        except TchaviRenderError as exc:
            if isinstance(exc, ApiConnectionError):
                exc = _unreachable(self.client.base_url, exc)
            if isinstance(exc, _FATAL):
                # Every later submit would fail the same way: stop, and say it once.
                self.run.stop_submitting = True
                self.run.fatal = self.run.fatal or exc
                return Failure("not_submitted", "an earlier error stopped every submit")
            code = exc.code if isinstance(exc, ApiError) else type(exc).__name__
            return Failure(code, str(exc))
        finally:
            claimed()
            self.submitting -= 1
            self.watch.wakeup.set()  # the poller's floor may change
        if isinstance(job_id, Failure):
            return job_id
        await holding.attach(job_id)
        return await self._wait(planned.key, job_id)

    # -- claims -------------------------------------------------------------------------------

    async def _defer(self, planned: PlannedShot, claim: Claim) -> CacheRecord | Failure | None:
        """Another machine pays for the key: follow its job (same account) and fetch the
        video, or wait a moment for its record; None: look again (claim gone or lapsed)."""
        assert self.claims is not None
        if self.run.stop_submitting:
            return Failure("not_submitted", "an earlier error stopped every submit")
        if claim.job_id is not None and self.claims.mine(claim):
            job = await self._follow(
                planned, claim.job_id, claimed_elsewhere(claim, following=True)
            )
            if job is None:
                # The job failed (refunded) or cannot be seen: its holder releases the claim
                # and someone claims the key anew; do not ask again at once.
                await asyncio.sleep(self.claims.wait_interval)
                return None
            outcome = await self._fetch(planned.key, job, share=False)  # its holder shares it
            self.run.found_elsewhere.add(planned.key)
            return outcome
        self.coordinator.tell(planned, claim)
        await asyncio.sleep(self.claims.wait_interval)
        return None

    async def _follow(self, planned: PlannedShot, job_id: str, message: str) -> Job | None:
        """Wait for a job another run paid for; None when it failed or cannot be seen."""
        self.job_shot[job_id] = planned.id
        self.run.ctx.emit(ApplyEvent("status", planned.id, job_id=job_id, message=message))
        try:
            job = await self.watch.watch(job_id)
        except (JobNotFound, ApiConnectionError, InvalidApiKey):
            return None
        if job.status == "failed":
            return None
        self.run.found_elsewhere.add(planned.key)
        return job

    async def _submit(self, planned: PlannedShot) -> str | Failure:
        run = self.run
        shot = planned.shot
        assert shot is not None
        cost = estimate_credits(shot.resolution, shot.duration)
        if run.stop_submitting:
            return Failure("not_submitted", "an earlier error stopped every submit")
        if (
            run.ctx.options.max_credits is not None
            and run.committed + cost > run.ctx.options.max_credits
        ):
            return Failure("not_submitted", f"--max-credits {run.ctx.options.max_credits} reached")
        if run.ctx.options.frozen:
            # The plan had a job to collect for this key, and it turned out never created.
            return Failure("not_submitted", "--frozen forbids new jobs")
        # Local media may be uploaded to a bucket first: off the event loop, so polls go on.
        params = await asyncio.to_thread(shot.params, self._media_url)
        # One submit at a time, from intent to journaled job id: after a crash at most one
        # intent lacks its id, so the job found for it cannot be another shot's.
        async with run.submit_turn:
            if run.stop_submitting:
                return Failure("not_submitted", "an earlier error stopped every submit")
            failpoint("before-intent")
            run.ctx.journal.intent(
                planned.key,
                planned.id,
                run.ctx.backend.identity,
                run.ctx.backend.account,
                shot.model,
                cost,
            )
            failpoint("before-submit")
            run.committed += cost
            try:
                job = await self.client.videos.generations.create(
                    params, known_job_ids=self.known_ids
                )
            except AmbiguousSubmit:
                # A job may exist: the intent stays, and the next apply looks for it.
                raise
            except ApiError:
                run.committed -= cost
                run.ctx.journal.abandoned(planned.key)
                raise
            failpoint("after-submit")
            self.known_ids.add(job.id)
            run.ctx.journal.submitted(planned.key, job.id)
            failpoint("after-journal")
        self.job_shot[job.id] = planned.id
        run.result.credits_used += job.credits_used or cost
        run.ctx.emit(
            ApplyEvent(
                "submit",
                planned.id,
                job_id=job.id,
                status=job.status,
                credits=job.credits_used or cost,
            )
        )
        return job.id

    async def _wait(self, key: str, job_id: str) -> Job | Failure:
        """Wait until the job is done; a failed (refunded) or vanished job is a failure."""
        run = self.run
        try:
            job = await self.watch.watch(job_id)
        except ApiConnectionError:
            message = (
                f"job {job_id} is paid and still in the journal, but the service could not be "
                "reached to follow it; the next apply collects it (no new job)"
            )
            return Failure("unreachable", message, job_id)
        except JobNotFound:
            # Another API key cannot see the job, or the service lost it: either way it was
            # paid for, so it is never forgotten unless the user says so.
            if run.ctx.options.abandon_in_flight:
                run.ctx.journal.abandoned(key)
                message = (
                    f"job {job_id} is not found under this API key; forgotten ({ABANDON_FLAG}), "
                    "so the next apply renders the shot again"
                )
            else:
                message = (
                    f"job {job_id} is not found under this API key. It stays in the journal: "
                    "if another key submitted it, apply with that key to collect it; if it is "
                    f"gone, pass {ABANDON_FLAG} to forget it and render the shot again"
                )
            return Failure("job_not_found", message, job_id)
        if job.status == "failed":
            error = job.error
            if key in run.resumed:
                run.result.earlier_refunded += job.credits_refunded
                run.ctx.emit(
                    ApplyEvent(
                        "refund",
                        self.job_shot.get(job_id),
                        job_id=job_id,
                        message=f"job of an earlier apply failed; {job.credits_refunded} "
                        "credits refunded",
                        credits=job.credits_refunded,
                    )
                )
            else:
                run.result.credits_refunded += job.credits_refunded
                run.committed -= job.credits_refunded
            run.ctx.journal.finished(key, job_id)
            return Failure(
                error.code if error else "upstream_error",
                error.message if error else "the job failed",
                job_id,
                job,
            )
        return job

    async def _fetch(
        self, key: str, job: Job | Failure, *, share: bool = True
    ) -> CacheRecord | Failure:
        """Download, verify and cache a completed job's video (shared unless `share` is
        False)."""
        if isinstance(job, Failure):
            return job
        run, job_id = self.run, job.id
        try:
            async with self.downloads:
                record = await download_render(
                    self.client, run.ctx.cache, key, job, self.background, share=share
                )
        except MediaExpired as exc:
            run.ctx.journal.finished(key, job_id)
            return Failure("download_failed", str(exc), job_id, job)
        except (DownloadError, ApiError) as exc:
            # The job is paid for and its video may download later: it stays in the journal,
            # so the next apply fetches it again instead of paying for a new job.
            message = f"{exc}; the next apply downloads it again (no new job)"
            return Failure("download_failed", message, job_id)
        run.ctx.journal.finished(key, job_id)
        return record

    def _status(self, job_id: str, status: str) -> None:
        self.run.ctx.emit(ApplyEvent("status", self.job_shot.get(job_id), job_id, status))

    # -- media --------------------------------------------------------------------------------

    def _media_url(self, media: Media) -> str:
        """The URL the service fetches a media item from; frames of other shots are cut
        from their verified outputs and served like local images."""
        match media:
            case UrlMedia():
                return media.url
            case LocalMedia():
                return self.run.ctx.backend.media_url(media)
            case ShotFrame():
                return self.run.ctx.backend.media_url(self._frame(media))
            case _:
                assert_never(media)

    def _frame(self, frame: ShotFrame) -> LocalMedia:
        from tchavi_render.digest import sha256_file
        from tchavi_render.media import extract_frame

        video = self.run.outputs[frame.shot]
        sha = self.run.output_sha[frame.shot]
        frames = self.run.ctx.cache.directory / "frames"
        frames.mkdir(parents=True, exist_ok=True)
        target = frames / f"{sha}-{frame.selector}.png"
        if not target.is_file():
            extract_frame(video, frame.frame, target)
        return LocalMedia(
            path=target,
            relpath=f"frames/{target.name}",
            sha256=sha256_file(target),
            size=target.stat().st_size,
            kind="image",
        )

    # -- one shot -----------------------------------------------------------------------------

    async def shot(self, planned: PlannedShot) -> None:
        """Bring one shot's output into place from this run's render of its key."""
        run = self.run
        try:
            resolved = await self._resolve(planned)
            if resolved is None:
                return
            if isinstance(resolved, CacheRecord):
                outcome: CacheRecord | Failure = resolved
            else:
                planned = resolved
                outcome = await self.render(planned)
            if isinstance(outcome, Failure):
                record_failure(run, planned, outcome)
                return
            problem = await self.background(place, run, planned, outcome)
            if problem is not None:
                record_failure(run, planned, problem)
                return
            run.lock_output(planned, outcome)
            mine = run.render_owner.get(planned.key) == planned.id
            mine = mine and planned.key not in run.found_elsewhere
            status = "reused"
            if mine and planned.key in run.resumed:
                status = "collected"  # paid by an earlier apply
            elif mine and (planned.spends or planned.action is Action.WAIT):
                status = "rendered"
            run.outcome(planned.id, status, outcome.job_id)
            run.ctx.emit(
                ApplyEvent(
                    {"rendered": "rendered", "collected": "collected"}.get(status, "reuse"),
                    planned.id,
                    job_id=outcome.job_id,
                    message="job of an earlier apply, already paid"
                    if status == "collected"
                    else "",
                    credits=outcome.credits_used if status == "rendered" else 0,
                )
            )
            run.final(planned.id, run.output_path(planned.id), outcome.sha256)
            run.save_lock()
        finally:
            run.settled.setdefault(planned.id, asyncio.Event()).set()

    async def _resolve(self, planned: PlannedShot) -> PlannedShot | CacheRecord | None:
        """For a shot continuing shots of this run: wait for them, then find its key. A
        render already cached is restored here; None means the shot cannot render."""
        if not planned.pending:
            return planned
        run = self.run
        shot = planned.shot
        assert shot is not None
        for upstream in shot.upstream:
            await run.settled.setdefault(upstream, asyncio.Event()).wait()
        missing = [u for u in shot.upstream if u not in run.output_sha]
        if missing:
            why = f"upstream shot {missing[0]!r} has no render to take a frame from (see its line)"
            record_failure(run, planned, Failure("upstream_failed", why))
            return None
        key = shot_key(shot, run.output_sha, emulated=run.ctx.backend.name == "local")
        planned = replace(planned, key=key)
        if not planned.forced:
            record = await asyncio.to_thread(run.ctx.cache.fetch, key)
            if record is not None:
                return record
        return planned

    # -- the poller ---------------------------------------------------------------------------

    async def poll_forever(self) -> None:
        """One poller for every job: a list call reports up to 50 jobs, so requests per shot
        stay well under two however many jobs are in flight (schedule: `_Tracker`)."""
        run, watch = self.run, self.watch
        unreachable = 0  # polls in a row that could not reach the service
        while True:
            if not watch.waiting:
                watch.wakeup.clear()
                await watch.wakeup.wait()
                watch.schedule.polled(time.monotonic())
            watch.wakeup.clear()
            watch.schedule.floor = poll_floor(self.client.request_budget, self.submitting > 0)
            delay = watch.schedule.delay()
            if delay > 0:
                # A new job or the end of the submits may move the next poll: think again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.wakeup.wait(), delay)
                    continue
            started = time.monotonic()  # what the answer says is true as of about then
            try:
                await poll_once(self.client, watch)
                failpoint("after-poll")
            except InvalidApiKey as exc:
                for job_id in list(watch.waiting):
                    watch.fail(job_id, exc)
                continue
            except ApiConnectionError as exc:
                # The client already retried with backoff: the service is gone for now. The
                # jobs stay in the journal; the next apply collects them.
                unreachable += 1
                if unreachable >= POLL_UNREACHABLE_LIMIT:
                    gone = _unreachable(self.client.base_url, exc)
                    run.stop_submitting = True
                    run.fatal = run.fatal or gone
                    for job_id in list(watch.waiting):
                        watch.fail(job_id, gone)
                    unreachable = 0
                    continue
                run.ctx.emit(ApplyEvent("status", message=f"poll failed, will retry: {exc}"))
            except ApiError as exc:
                run.ctx.emit(ApplyEvent("status", message=f"poll failed, will retry: {exc}"))
            else:
                unreachable = 0
            watch.schedule.polled(started)
