"""Apply a plan: the only module that spends credits (submit, poll, download, cache, lock).

Order of writes for one render, so a crash at any point never pays twice:
journal intent -> POST -> journal job id -> polls -> download to the cache's temp dir ->
verify -> cache object + record -> output file -> lock -> journal finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tchavi_render.api.models import Job
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.journal import InFlight, Journal
from tchavi_render.engine.lock import FailedAttempt, LockEntry, Lockfile, OutputRecord, write_lock
from tchavi_render.engine.plan import Action, Plan, PlannedShot
from tchavi_render.engine.pricing import estimate_credits
from tchavi_render.errors import (
    AmbiguousSubmit,
    ApiError,
    BudgetExceeded,
    DownloadError,
    FrozenWouldSpend,
    InsufficientCredits,
    InvalidApiKey,
    JobNotFound,
    MediaExpired,
    TchaviRenderError,
)
from tchavi_render.spec.shot import LoadedSpec, LocalMedia, Media, Shot, UrlMedia

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = ["ApplyEvent", "ApplyOptions", "ApplyResult", "Backend", "ShotOutcome", "apply_plan"]

T = TypeVar("T")


@dataclass(frozen=True)
class Backend:
    """Where jobs go: a name, a stable identity for the journal, a client factory, and how
    local media become URLs the service can fetch."""

    name: str
    identity: str  # stable across runs (the local backend's port changes, its data dir not)
    make_client: Callable[[], AsyncTchaviClient]
    media_url: Callable[[LocalMedia], str]


@dataclass(frozen=True)
class ApplyOptions:
    concurrency: int = 8
    max_credits: int | None = None
    frozen: bool = False
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    lock_write_interval: float = 1.0


@dataclass(frozen=True)
class ApplyEvent:
    """Something that happened, for progress output (text, rich or JSON lines)."""

    kind: str  # plan | reuse | delete | submit | resume | status | rendered | failed | done
    shot: str | None = None
    job_id: str | None = None
    status: str | None = None
    message: str = ""
    credits: int = 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for name in ("shot", "job_id", "status"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.message:
            out["message"] = self.message
        if self.credits:
            out["credits"] = self.credits
        return out


class EventSink(Protocol):
    def __call__(self, event: ApplyEvent) -> None: ...


@dataclass(frozen=True)
class ShotOutcome:
    id: str
    status: str  # unchanged | reused | rendered | deleted | failed | skipped
    job_id: str | None = None
    message: str = ""


@dataclass
class ApplyResult:
    outcomes: list[ShotOutcome] = field(default_factory=list)
    credits_used: int = 0
    credits_refunded: int = 0
    lock: Lockfile = field(default_factory=Lockfile)

    @property
    def failed(self) -> list[ShotOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _media_value(backend: Backend) -> Callable[[Media], str]:
    def value(media: Media) -> str:
        if isinstance(media, UrlMedia):
            return media.url
        if isinstance(media, LocalMedia):
            return backend.media_url(media)
        raise TypeError(f"unknown media {media!r}")

    return value


class _Run:
    """The state of one apply: lock in memory, jobs in flight, credits."""

    def __init__(
        self,
        spec: LoadedSpec,
        plan: Plan,
        lock: Lockfile,
        lock_path: Path,
        cache: RenderCache,
        journal: Journal,
        backend: Backend,
        options: ApplyOptions,
        emit: EventSink,
    ) -> None:
        self.spec = spec
        self.plan = plan
        self.lock = lock
        self.lock_path = lock_path
        self.cache = cache
        self.journal = journal
        self.backend = backend
        self.options = options
        self.emit = emit
        self.result = ApplyResult(lock=lock)
        self._lock_dirty = False
        self._last_lock_write = 0.0
        # key -> every planned shot that takes that key's render
        self.by_key: dict[str, list[PlannedShot]] = {}
        for planned in plan.shots:
            if planned.shot is not None:
                self.by_key.setdefault(planned.key, []).append(planned)
        self.committed = 0  # credits spent or in flight in this run, net of refunds
        self.stop_submitting = False
        self.submit_turn = asyncio.Lock()
        self.fatal: TchaviRenderError | None = None
        self.blocked: set[str] = set()  # keys that failed in a way that forbids a submit
        self.rerender: dict[str, PlannedShot] = {}  # remote reuses that must render after all

    # -- lock ---------------------------------------------------------------------------------

    def save_lock(self, *, force: bool = False) -> None:
        """Rewrite the lock if it changed; debounced while renders finish in quick
        succession (a finished render is already in the cache, so nothing is lost)."""
        if not self._lock_dirty:
            return
        now = time.monotonic()
        if not force and now - self._last_lock_write < self.options.lock_write_interval:
            return
        write_lock(self.lock_path, self.lock)
        self._last_lock_write = now
        self._lock_dirty = False
        self.result.lock = self.lock

    def set_entry(self, shot_id: str, entry: LockEntry | None) -> None:
        self.lock = (
            self.lock.without(shot_id) if entry is None else self.lock.with_entry(shot_id, entry)
        )
        self._lock_dirty = True

    # -- placing outputs ----------------------------------------------------------------------

    def output_path(self, shot_id: str) -> Path:
        return self.spec.output_dir / f"{shot_id}.mp4"

    def relpath(self, path: Path) -> str:
        try:
            return path.relative_to(self.spec.project_dir).as_posix()
        except ValueError:
            return path.as_posix()

    def place(self, planned: PlannedShot, record: CacheRecord) -> None:
        """Copy a cached render to the shot's output path (verified) and lock it."""
        assert planned.shot is not None
        target = self.output_path(planned.id)
        from tchavi_render.atomic import atomic_copy

        atomic_copy(self.cache.object_path(record.sha256), target, expect_sha256=record.sha256)
        self.set_entry(planned.id, self.entry_for(planned.shot, planned.key, record, target))

    def entry_for(self, shot: Shot, key: str, record: CacheRecord, target: Path) -> LockEntry:
        from tchavi_render.engine.keys import key_request

        return LockEntry(
            key=key,
            model=shot.model,
            request=key_request(shot),
            job_id=record.job_id,
            output=OutputRecord(
                path=self.relpath(target),
                sha256=record.sha256,
                bytes=record.bytes,
                duration=record.duration,
                resolution=record.resolution,
            ),
            credits_used=record.credits_used,
            credits_refunded=record.credits_refunded,
        )

    def outcome(self, shot_id: str, status: str, job_id: str | None = None, msg: str = "") -> None:
        self.result.outcomes.append(ShotOutcome(shot_id, status, job_id, msg))


async def apply_plan(
    spec: LoadedSpec,
    plan: Plan,
    lock: Lockfile,
    *,
    lock_path: Path,
    cache: RenderCache,
    journal: Journal,
    backend: Backend,
    options: ApplyOptions,
    emit: EventSink,
) -> ApplyResult:
    """Carry out `plan`. The caller holds the spec's apply lock."""
    run = _Run(spec, plan, lock, lock_path, cache, journal, backend, options, emit)
    resumable = {
        key: item for key, item in journal.in_flight.items() if item.endpoint == backend.identity
    }
    to_render = _keys_to_render(plan)
    _check_spending(plan, {k: p for k, p in to_render.items() if k not in resumable}, options)

    try:
        _apply_local(run)
        to_render.update(run.rerender)
        if to_render or resumable:
            await _render(run, to_render, resumable)
    finally:
        run.save_lock(force=True)
        if not journal.in_flight:
            journal.compact()
    emit(
        ApplyEvent(
            "done",
            message=f"{len(run.result.failed)} failed" if run.result.failed else "ok",
            credits=run.result.credits_used - run.result.credits_refunded,
        )
    )
    return run.result


def _keys_to_render(plan: Plan) -> dict[str, PlannedShot]:
    """The first planned shot of each key that needs a job, in storyboard order."""
    out: dict[str, PlannedShot] = {}
    for planned in plan.spending:
        out.setdefault(planned.key, planned)
    return out


def _check_spending(plan: Plan, to_render: dict[str, PlannedShot], options: ApplyOptions) -> None:
    if options.frozen and to_render:
        names = ", ".join(sorted(p.id for p in plan.spending if p.key in to_render))
        raise FrozenWouldSpend(
            f"--frozen: {len(to_render)} shot(s) would need a new job: {names}. "
            "Render them outside frozen mode (or restore the cache), then commit the lock"
        )
    if options.max_credits is not None:
        estimate = sum(p.estimated_credits for p in to_render.values())
        if estimate > options.max_credits:
            raise BudgetExceeded(
                f"the plan needs an estimated {estimate} credits, over --max-credits "
                f"{options.max_credits}; nothing was submitted. Raise the budget or use "
                "--target to render fewer shots"
            )


def _apply_local(run: _Run) -> None:
    """Everything that needs no job: unchanged, reuse from cache or lock, delete."""
    for planned in run.plan.shots:
        if planned.action is Action.UNCHANGED:
            run.outcome(planned.id, "unchanged", planned.locked.job_id if planned.locked else None)
        elif planned.action is Action.DELETE:
            _delete(run, planned)
        elif planned.action is Action.REUSE and planned.source is not None:
            if planned.source.kind == "run":
                continue  # placed when the shot it shares a render with finishes
            _reuse(run, planned)
    run.save_lock(force=True)


def _delete(run: _Run, planned: PlannedShot) -> None:
    entry = planned.locked
    if entry is not None and entry.output is not None:
        path = run.spec.project_dir / entry.output.path
        if path.is_file() and path.resolve().is_relative_to(run.spec.project_dir):
            path.unlink()
    run.set_entry(planned.id, None)
    run.outcome(planned.id, "deleted", entry.job_id if entry else None)
    run.emit(ApplyEvent("delete", planned.id, message="removed from the lock and the outputs"))


def _reuse(run: _Run, planned: PlannedShot) -> None:
    assert planned.shot is not None and planned.source is not None
    record = run.cache.restore(planned.key, run.output_path(planned.id))
    if record is None and planned.source.output is not None:
        # The cache lacks it, but a locked output has those bytes: adopt it into the cache.
        record = _record_from_locked(run, planned)
    if record is None and _render_instead(run, planned):
        return
    if record is None:
        # The cache entry vanished or was corrupt since planning: it must render after all.
        run.outcome(planned.id, "failed", None, "cached render missing or corrupt; run again")
        run.emit(ApplyEvent("failed", planned.id, message="cached render missing or corrupt"))
        return
    run.set_entry(
        planned.id, run.entry_for(planned.shot, planned.key, record, run.output_path(planned.id))
    )
    run.outcome(planned.id, "reused", record.job_id)
    run.emit(ApplyEvent("reuse", planned.id, job_id=record.job_id, message=planned.reasons[0]))


def _render_instead(run: _Run, planned: PlannedShot) -> bool:
    """A render the remote cache offered at plan time but could not deliver (gone, or its
    bytes not those its record names) is rendered after all, as a job, unless --frozen."""
    shot = planned.shot
    if shot is None or planned.source is None or planned.source.kind != "remote":
        return False
    if run.options.frozen:
        return False
    locked = planned.locked is not None and planned.locked.rendered
    replanned = replace(
        planned,
        action=Action.REPLACE if locked else Action.CREATE,
        source=None,
        estimated_credits=estimate_credits(shot.resolution, shot.duration),
        reasons=("the remote cache could not deliver its render",),
    )
    run.by_key[planned.key] = [replanned if p is planned else p for p in run.by_key[planned.key]]
    run.rerender[planned.key] = replanned
    return True


def _record_from_locked(run: _Run, planned: PlannedShot) -> CacheRecord | None:
    assert planned.source is not None and planned.source.output is not None
    output = planned.source.output
    source_entry = run.lock.shots.get(planned.source.from_shot or "") or planned.locked
    source = run.spec.project_dir / output.path
    tmp = run.cache.tmp_dir / f"adopt-{uuid.uuid4().hex}.mp4"
    from tchavi_render.atomic import atomic_copy

    try:
        atomic_copy(source, tmp, expect_sha256=output.sha256)
    except (OSError, ValueError):
        tmp.unlink(missing_ok=True)
        return None
    run.cache.add_object(tmp, output.sha256)
    record = CacheRecord(
        key=planned.key,
        sha256=output.sha256,
        bytes=output.bytes,
        job_id=(source_entry.job_id if source_entry else None) or "",
        model=planned.shot.model if planned.shot else "",
        credits_used=source_entry.credits_used if source_entry else 0,
        credits_refunded=source_entry.credits_refunded if source_entry else 0,
        duration=output.duration,
        resolution=output.resolution,
        created=time.time(),
    )
    run.cache.put(record)
    return run.cache.restore(planned.key, run.output_path(planned.id))


# -- rendering ---------------------------------------------------------------------------------


class _Tracker:
    """Jobs in flight and the one poller that watches them all."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[Job]] = {}
        self.wakeup = asyncio.Event()

    def watch(self, job_id: str) -> asyncio.Future[Job]:
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self.waiting[job_id] = future
        self.wakeup.set()
        return future

    def settle(self, job: Job) -> None:
        future = self.waiting.pop(job.id, None)
        if future is not None and not future.done():
            future.set_result(job)

    def fail(self, job_id: str, exc: BaseException) -> None:
        future = self.waiting.pop(job_id, None)
        if future is not None and not future.done():
            future.set_exception(exc)


async def _render(
    run: _Run, to_render: dict[str, PlannedShot], resumable: dict[str, InFlight]
) -> None:
    client = run.backend.make_client()
    tracker = _Tracker()
    semaphore = asyncio.Semaphore(max(1, run.options.concurrency))
    known_ids = {e.job_id for e in run.lock.shots.values() if e.job_id}
    known_ids |= {i.job_id for i in run.journal.in_flight.values() if i.job_id}
    async with client:
        # Submits interrupted before their job id was journaled are settled first, one by
        # one, before anything new is submitted: otherwise a new job could be mistaken for
        # the lost one.
        for key, item in list(resumable.items()):
            if item.job_id is None:
                resolved = await _guarded(run, key, _recover_submit(run, client, item, known_ids))
                if resolved is None:
                    resumable.pop(key)
                else:
                    resumable[key] = resolved
        poller = asyncio.create_task(_poll_forever(run, client, tracker))
        try:
            tasks = []
            for key, item in resumable.items():
                planned = to_render.get(key)
                tasks.append(
                    _guarded(run, key, _resume(run, client, tracker, semaphore, item, planned))
                )
            for key, planned in to_render.items():
                if key not in resumable and key not in run.blocked:
                    tasks.append(
                        _guarded(
                            run,
                            key,
                            _submit_and_finish(run, client, tracker, semaphore, planned, known_ids),
                        )
                    )
            await asyncio.gather(*tasks)
            if run.fatal is not None:
                raise run.fatal
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller


_FATAL = (InvalidApiKey, InsufficientCredits)


async def _guarded(run: _Run, key: str, work: Awaitable[T]) -> T | None:
    """Run one key's work; an API error fails that key's shots (no later step of this run
    submits that key), not the whole apply. A bad key or an empty account stops every
    further submit; the jobs in flight still finish, then the error is raised."""
    try:
        return await work
    except TchaviRenderError as exc:
        if isinstance(exc, _FATAL):
            run.stop_submitting = True
            run.fatal = run.fatal or exc
        run.blocked.add(key)
        code = exc.code if isinstance(exc, ApiError) else type(exc).__name__
        _fail_key(run, key, None, code, str(exc))
        return None


async def _recover_submit(
    run: _Run, client: AsyncTchaviClient, item: InFlight, known_ids: set[str]
) -> InFlight | None:
    """Find the job of a submit that was interrupted before its id was journaled.

    Returns the in-flight item with its job id, or None when the submit created nothing
    (the key is then planned afresh like any other)."""
    try:
        job = await client.jobs.find_unknown(
            since=item.started, model=item.model, credits=item.credits, known_ids=known_ids
        )
    except AmbiguousSubmit as exc:
        raise AmbiguousSubmit(
            f"an earlier apply was interrupted while submitting {item.shot!r}, and the "
            f"account has several jobs that could be it ({', '.join(exc.candidate_ids)}). "
            "Nothing was submitted again. If none of them is this shot's, delete "
            f"{run.journal.path} and apply again",
            candidate_ids=exc.candidate_ids,
        ) from None
    if job is None:
        run.journal.abandoned(item.key)
        return None
    known_ids.add(job.id)
    run.journal.submitted(item.key, job.id)
    return replace(item, job_id=job.id)


async def _resume(
    run: _Run,
    client: AsyncTchaviClient,
    tracker: _Tracker,
    semaphore: asyncio.Semaphore,
    item: InFlight,
    planned: PlannedShot | None,
) -> None:
    """Finish a job an earlier apply started (it is paid: never submit it again)."""
    assert item.job_id is not None
    async with semaphore:
        run.emit(
            ApplyEvent(
                "resume", item.shot, job_id=item.job_id, message="resuming a job of an earlier run"
            )
        )
        await _finish(run, client, tracker, item.key, item.job_id, item.shot, planned)


async def _submit_and_finish(
    run: _Run,
    client: AsyncTchaviClient,
    tracker: _Tracker,
    semaphore: asyncio.Semaphore,
    planned: PlannedShot,
    known_ids: set[str],
) -> None:
    async with semaphore:
        if await _rendered_elsewhere(run, planned):
            return
        await _submit_locked(run, client, tracker, planned, known_ids)


async def _rendered_elsewhere(run: _Run, planned: PlannedShot) -> bool:
    """Another machine may have rendered this key since planning: the cache is asked once
    more just before paying (only a remote layer can say yes; see RenderCache.pull)."""
    record = await asyncio.to_thread(run.cache.pull, planned.key)
    if record is None:
        return False
    for sharer in run.by_key.get(planned.key, []):
        if sharer.action in (Action.CREATE, Action.REPLACE, Action.REUSE):
            run.place(sharer, record)
            run.outcome(sharer.id, "reused", record.job_id)
            run.emit(
                ApplyEvent(
                    "reuse",
                    sharer.id,
                    job_id=record.job_id,
                    message="rendered meanwhile on another machine; from the remote cache",
                )
            )
    run.save_lock()
    return True


async def _submit_locked(
    run: _Run,
    client: AsyncTchaviClient,
    tracker: _Tracker,
    planned: PlannedShot,
    known_ids: set[str],
) -> None:
    shot = planned.shot
    assert shot is not None
    if run.stop_submitting:
        run.outcome(planned.id, "skipped", None, "not submitted: an earlier error stopped submits")
        return
    cost = estimate_credits(shot.resolution, shot.duration)
    if run.options.max_credits is not None and run.committed + cost > run.options.max_credits:
        run.outcome(
            planned.id,
            "failed",
            None,
            f"not submitted: --max-credits {run.options.max_credits} reached",
        )
        run.emit(ApplyEvent("failed", planned.id, message="--max-credits reached; not submitted"))
        return
    # Local media may be uploaded to a bucket first: off the event loop, so polls go on.
    params = await asyncio.to_thread(shot.params, _media_value(run.backend))
    # One submit at a time, from intent to journaled job id: after a crash at most one
    # intent lacks its id, so the job found for it cannot be another shot's.
    async with run.submit_turn:
        if run.stop_submitting:
            run.outcome(planned.id, "skipped", None, "not submitted: an earlier error stopped it")
            return
        run.journal.intent(planned.key, planned.id, run.backend.identity, shot.model, cost)
        run.committed += cost
        try:
            job = await client.videos.generations.create(params, known_job_ids=known_ids)
        except AmbiguousSubmit:
            # A job may exist: the intent stays, and the next apply looks for it.
            raise
        except ApiError:
            run.committed -= cost
            run.journal.abandoned(planned.key)
            raise
        known_ids.add(job.id)
        run.journal.submitted(planned.key, job.id)
    run.result.credits_used += job.credits_used or cost
    run.emit(
        ApplyEvent(
            "submit", planned.id, job_id=job.id, status=job.status, credits=job.credits_used or cost
        )
    )
    await _finish(run, client, tracker, planned.key, job.id, planned.id, planned)


async def _finish(
    run: _Run,
    client: AsyncTchaviClient,
    tracker: _Tracker,
    key: str,
    job_id: str,
    shot_id: str,
    planned: PlannedShot | None,
) -> None:
    """Wait for the job, then download, verify, cache and place it (or record its failure)."""
    try:
        job = await tracker.watch(job_id)
    except JobNotFound as exc:
        run.journal.finished(key, job_id)
        _fail_key(run, key, job_id, "job_not_found", str(exc))
        return
    if job.status == "failed":
        error = job.error
        code = error.code if error else "upstream_error"
        message = error.message if error else "the job failed"
        run.result.credits_refunded += job.credits_refunded
        run.committed -= job.credits_refunded
        run.journal.finished(key, job_id)
        _fail_key(run, key, job_id, code, message, job)
        return
    try:
        record = await _download(run, client, key, job)
    except (DownloadError, MediaExpired, ApiError) as exc:
        run.journal.finished(key, job_id)
        _fail_key(run, key, job_id, "download_failed", str(exc), job)
        return
    run.journal.finished(key, job_id)
    for sharer in run.by_key.get(key, []):
        if sharer.action in (Action.CREATE, Action.REPLACE, Action.REUSE):
            run.place(sharer, record)
            run.outcome(sharer.id, "rendered" if sharer.spends else "reused", job_id)
            run.emit(ApplyEvent("rendered", sharer.id, job_id=job_id, credits=record.credits_used))
    if not run.by_key.get(key):
        run.emit(
            ApplyEvent("rendered", shot_id, job_id=job_id, message="cached (no longer in the spec)")
        )
    run.save_lock()


async def _download(run: _Run, client: AsyncTchaviClient, key: str, job: Job) -> CacheRecord:
    """Download into the cache's temp dir, verify it decodes, then store it by digest.
    A truncated or corrupt download is fetched again (the bytes are paid for)."""
    last: Exception | None = None
    for _attempt in range(3):
        tmp = run.cache.tmp_dir / f"dl-{uuid.uuid4().hex}.mp4"
        try:
            sha256, size = await client.download(job, tmp)
            _check_video(tmp)
        except MediaExpired:
            tmp.unlink(missing_ok=True)
            raise
        except (DownloadError, ApiError) as exc:
            tmp.unlink(missing_ok=True)
            last = exc
            continue
        run.cache.add_object(tmp, sha256)
        output = job.output
        record = CacheRecord(
            key=key,
            sha256=sha256,
            bytes=size,
            job_id=job.id,
            model=job.model or "",
            credits_used=job.credits_used,
            credits_refunded=job.credits_refunded,
            duration=output.duration if output else None,
            resolution=output.resolution if output else None,
            created=time.time(),
        )
        run.cache.put(record)
        return record
    assert last is not None
    raise last


def _check_video(path: Path) -> None:
    """The file must open as a video container with a video stream."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DownloadError(f"{path.name}: the download has no video stream")
    except av.error.FFmpegError as exc:
        raise DownloadError(f"the download is not a readable video ({exc})") from None


def _fail_key(
    run: _Run, key: str, job_id: str | None, code: str, message: str, job: Job | None = None
) -> None:
    for planned in run.by_key.get(key, []):
        if planned.action not in (Action.CREATE, Action.REPLACE, Action.REUSE):
            continue
        if planned.source is not None and planned.source.kind != "run" and not planned.spends:
            continue
        run.outcome(planned.id, "failed", job_id, f"{code}: {message}")
        run.emit(ApplyEvent("failed", planned.id, job_id=job_id, message=f"{code}: {message}"))
        if job is not None and job_id is not None and planned.shot is not None:
            attempt = FailedAttempt(
                job_id=job_id,
                code=code,
                message=message,
                credits_used=job.credits_used,
                credits_refunded=job.credits_refunded,
            )
            previous = run.lock.shots.get(planned.id)
            if previous is not None and previous.rendered:
                entry = LockEntry(**{**previous.__dict__, "failed": attempt})
            else:
                from tchavi_render.engine.keys import key_request

                entry = LockEntry(
                    key=key,
                    model=planned.shot.model,
                    request=key_request(planned.shot),
                    failed=attempt,
                )
            run.set_entry(planned.id, entry)


async def _poll_forever(run: _Run, client: AsyncTchaviClient, tracker: _Tracker) -> None:
    """One poller for every job: a list call reports up to 50 jobs, so requests per shot stay
    near two however many jobs are in flight."""
    interval = run.options.poll_interval
    while True:
        if not tracker.waiting:
            tracker.wakeup.clear()
            await tracker.wakeup.wait()
            interval = run.options.poll_interval
        await asyncio.sleep(interval)
        before = len(tracker.waiting)
        try:
            await _poll_once(client, tracker)
        except InvalidApiKey as exc:
            for job_id in list(tracker.waiting):
                tracker.fail(job_id, exc)
            continue
        except ApiError as exc:
            run.emit(ApplyEvent("status", message=f"poll failed, will retry: {exc}"))
        settled = before - len(tracker.waiting)
        if settled:
            interval = run.options.poll_interval
        else:
            interval = min(interval * 1.5, run.options.max_poll_interval)


async def _poll_once(client: AsyncTchaviClient, tracker: _Tracker) -> None:
    waiting = set(tracker.waiting)
    if len(waiting) == 1:
        (job_id,) = waiting
        try:
            job = await client.jobs.retrieve(job_id)
        except JobNotFound as exc:
            tracker.fail(job_id, exc)
            return
        if job.done:
            tracker.settle(job)
        return
    offset = 0
    seen: set[str] = set()
    while waiting - seen:
        page = await client.jobs.list(limit=50, offset=offset)
        for job in page.data:
            if job.id in waiting:
                seen.add(job.id)
                if job.done:
                    tracker.settle(job)
        if not page.has_more or not page.data:
            break
        # Our jobs are recent; do not walk an account's whole history for a stray one.
        if offset >= 200:
            break
        offset += len(page.data)
    for job_id in waiting - seen:
        try:
            job = await client.jobs.retrieve(job_id)
        except JobNotFound as exc:
            tracker.fail(job_id, exc)
            continue
        if job.done:
            tracker.settle(job)
