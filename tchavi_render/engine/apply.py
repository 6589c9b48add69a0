"""Apply a plan: the only module that spends credits (submit, poll, download, cache, lock).

Order of writes for one render, so a crash at any point never pays twice:
journal intent -> POST -> journal job id -> polls -> download to the cache's temp dir ->
verify -> cache object + record -> output file -> lock -> journal finished.

Placing outputs is a transaction: before any output file is written, every locked output
that a reuse copies is read into the cache, so no write removes bytes a later step needs;
and every write or delete of an output obeys `engine.outputs` (only files this lock placed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, assert_never

from tchavi_render.api.models import Job
from tchavi_render.atomic import atomic_copy
from tchavi_render.background import background_pool
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.journal import InFlight, Journal
from tchavi_render.engine.keys import key_request, shot_key
from tchavi_render.engine.lock import FailedAttempt, LockEntry, Lockfile, OutputRecord, write_lock
from tchavi_render.engine.outputs import Outputs, delete_problem, write_problem
from tchavi_render.engine.plan import ABANDON_FLAG, Action, Plan, PlannedShot, storyboard_order
from tchavi_render.engine.pricing import estimate_credits
from tchavi_render.errors import (
    AmbiguousSubmit,
    ApiConnectionError,
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
from tchavi_render.failpoints import failpoint
from tchavi_render.spec.shot import LoadedSpec, LocalMedia, Media, Shot, ShotFrame, UrlMedia

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
    account: str  # the API key's fingerprint (never the key): whose jobs these are
    make_client: Callable[[], AsyncTchaviClient]
    media_url: Callable[[LocalMedia], str]


@dataclass(frozen=True)
class ApplyOptions:
    concurrency: int = 8
    max_credits: int | None = None
    frozen: bool = False
    poll_interval: float = 1.0  # the first look at a job, this long after its submit
    max_poll_interval: float = 10.0  # the longest wait between looks
    lock_write_interval: float = 1.0
    restore_modified: bool = False  # overwrite outputs modified by hand (never another spec's)
    abandon_in_flight: bool = False  # forget jobs of another key, or gone, and render anew


@dataclass(frozen=True)
class ApplyEvent:
    """Something that happened, for progress output (text, rich or JSON lines)."""

    # plan | reuse | delete | submit | resume | status | rendered | failed | blocked | done
    kind: str
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
    # unchanged | reused | rendered | collected | deleted | failed | blocked | not submitted
    status: str
    job_id: str | None = None
    message: str = ""


@dataclass
class ApplyResult:
    outcomes: list[ShotOutcome] = field(default_factory=list)
    credits_used: int = 0  # charged for jobs this apply submitted
    credits_refunded: int = 0  # refunded for jobs this apply submitted
    # refunds of jobs an earlier apply paid for (collected in this one): not this run's money
    earlier_refunded: int = 0
    lock: Lockfile = field(default_factory=Lockfile)

    @property
    def failed(self) -> list[ShotOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def blocked(self) -> list[ShotOutcome]:
        return [o for o in self.outcomes if o.status in ("blocked", "not submitted")]

    @property
    def spent(self) -> int:
        """Net credits of this apply's own jobs (never negative: a refund follows a charge)."""
        return max(0, self.credits_used - self.credits_refunded)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.blocked else 0


class _Run:
    """The state of one apply: lock in memory, jobs in flight, credits."""

    def __init__(
        self,
        spec: LoadedSpec,
        plan: Plan,
        lock: Lockfile,
        lock_path: Path,
        cache: RenderCache,
        files: Outputs,
        journal: Journal,
        backend: Backend,
        options: ApplyOptions,
        emit: EventSink,
    ) -> None:
        self.spec = spec
        self.files = files
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
        self._lock_write_cost = 0.0
        # key -> the one render of that key in this run (a job submitted or resumed)
        self.renders: dict[str, asyncio.Task[CacheRecord | _Failure]] = {}
        self.render_owner: dict[str, str] = {}  # key -> the shot that asked for it first
        # shot id -> its verified output file, once final (continuity reads frames from it)
        self.outputs: dict[str, Path] = {}
        self.output_sha: dict[str, str] = {}
        self.settled: dict[str, asyncio.Event] = {}
        self.committed = 0  # credits spent or in flight in this run, net of refunds
        self.stop_submitting = False
        self.submit_turn = asyncio.Lock()
        self.fatal: TchaviRenderError | None = None
        self.blocked: set[str] = set()  # keys that failed in a way that forbids a submit
        self.rerender: set[str] = set()  # remote reuses that render after all (shot ids)
        self.found_elsewhere: set[str] = set()  # keys another machine rendered meanwhile
        # outputs whose bytes a reuse of this apply copies, and that could not be saved to
        # the cache first: never written over (relpath -> the shot that needs them)
        self.unsaved: dict[str, str] = {}
        self.resumed: set[str] = set()  # keys whose job an earlier apply paid for

    # -- lock ---------------------------------------------------------------------------------

    def save_lock(self, *, force: bool = False) -> None:
        """Rewrite the lock if it changed; debounced while renders finish in quick
        succession (a finished render is already in the cache, so nothing is lost)."""
        if not self._lock_dirty:
            return
        now = time.monotonic()
        # A big lock takes a while to write: space the writes so they stay a tenth of the time.
        interval = max(self.options.lock_write_interval, 10 * self._lock_write_cost)
        if not force and now - self._last_lock_write < interval:
            return
        write_lock(self.lock_path, self.lock)
        failpoint("after-lock")
        self._lock_write_cost = time.monotonic() - now
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

    def place(self, planned: PlannedShot, record: CacheRecord) -> _Failure | None:
        """Copy a cached render to the shot's output file, verified, if that file may be
        written (engine.outputs); the reason it was not, otherwise. Thread-safe."""
        relpath = self.files.relpath_for(planned.id)
        needed_by = self.unsaved.get(relpath)
        if needed_by is not None:
            return _Failure(
                "blocked",
                f"{relpath} holds the render that {needed_by!r} reuses, which could not be "
                "saved to the cache first; it stays as it is. Free space in the cache "
                "directory and apply again",
            )
        problem = write_problem(
            self.files,
            planned.id,
            planned.locked,
            record.sha256,
            restore=self.options.restore_modified,
        )
        if problem is not None:
            return _Failure("blocked", problem)
        source = self.cache.object_path(record.sha256)
        try:
            atomic_copy(source, self.output_path(planned.id), expect_sha256=record.sha256)
        except ValueError:
            self.cache.drop(record.key)
            source.unlink(missing_ok=True)
            return _Failure("cache_corrupt", "the cached render was corrupt; apply again")
        except OSError as exc:
            return _Failure("write_failed", f"could not write {relpath}: {exc.strerror or exc}")
        return None

    def lock_output(self, planned: PlannedShot, record: CacheRecord) -> None:
        """Record the shot's copied output in the lock."""
        assert planned.shot is not None
        target = self.output_path(planned.id)
        self.set_entry(planned.id, self.entry_for(planned.shot, planned.key, record, target))

    def final(self, shot_id: str, path: Path | None, sha256: str | None) -> None:
        """The shot's output is final (or it failed: no path): shots continuing it may go."""
        if path is not None and sha256 is not None:
            self.outputs[shot_id] = path
            self.output_sha[shot_id] = sha256
        self.settled.setdefault(shot_id, asyncio.Event()).set()

    def entry_for(self, shot: Shot, key: str, record: CacheRecord, target: Path) -> LockEntry:
        return LockEntry(
            key=key,
            model=shot.model,
            request=key_request(shot, self.output_sha),
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
    files: Outputs,
    journal: Journal,
    backend: Backend,
    options: ApplyOptions,
    emit: EventSink,
) -> ApplyResult:
    """Carry out `plan`. The caller holds the spec's apply lock."""
    run = _Run(spec, plan, lock, lock_path, cache, files, journal, backend, options, emit)
    resumable: dict[str, InFlight] = {}
    for key, item in journal.in_flight.items():
        if item.belongs_to(backend.identity, backend.account):
            resumable[key] = item
        elif options.abandon_in_flight and any(p.key == key for p in plan.shots):
            # The user gave up on the other key's job for this shot: it renders anew.
            journal.abandoned(key)
    _check_spending(plan, resumable, options)
    try:
        _apply_local(run)
        if any(_needs_render(p) for p in run.plan.shots) or resumable:
            await _render(run, resumable)
    finally:
        run.save_lock(force=True)
        if not journal.in_flight:
            journal.compact()
    failed = len(run.result.failed) + len(run.result.blocked)
    emit(
        ApplyEvent(
            "done", message=f"{failed} not done" if failed else "ok", credits=run.result.spent
        )
    )
    return run.result


def _needs_render(planned: PlannedShot) -> bool:
    """Shots whose output comes from a render of this run (a new job or a resumed one)."""
    if planned.blocked is not None:
        return False
    if planned.spends or planned.action is Action.COLLECT:
        return True
    return (
        planned.action is Action.REUSE
        and planned.source is not None
        and planned.source.kind == "run"
    )


def _check_spending(plan: Plan, resumable: dict[str, InFlight], options: ApplyOptions) -> None:
    """--frozen and --max-credits refuse before anything is submitted."""
    new: dict[str, PlannedShot] = {}
    for planned in plan.spending:
        if planned.pending or planned.key not in resumable:
            new.setdefault(planned.key or f"pending:{planned.id}", planned)
    if options.frozen and new:
        names = ", ".join(sorted(p.id for p in new.values()))
        raise FrozenWouldSpend(
            f"--frozen: {len(new)} shot(s) would need a new job: {names}. "
            "Render them outside frozen mode (or restore the cache), then commit the lock"
        )
    if options.max_credits is not None:
        estimate = sum(p.estimated_credits for p in new.values())
        if estimate > options.max_credits:
            raise BudgetExceeded(
                f"the plan needs an estimated {estimate} credits, over --max-credits "
                f"{options.max_credits}; nothing was submitted. Raise the budget or use "
                "--target to render fewer shots"
            )


def _apply_local(run: _Run) -> None:
    """Everything that needs no job: unchanged, reuse from cache or lock, delete, and the
    shots apply must leave alone. Locked outputs that reuses copy are saved to the cache
    first (`_stage`); then shots go upstream first, so a lock entry can name the output its
    frames come from."""
    _stage(run)
    by_id = {p.id: p for p in run.plan.shots}
    order = [s.id for s in storyboard_order([p.shot for p in run.plan.shots if p.shot])]
    order += [p.id for p in run.plan.shots if p.shot is None]
    for planned in (by_id[i] for i in order):
        if planned.blocked is not None:
            _leave_alone(run, planned)
        elif planned.action is Action.UNCHANGED:
            locked = planned.locked
            run.outcome(planned.id, "unchanged", locked.job_id if locked else None)
            if locked is not None and locked.output is not None:
                path = run.spec.project_dir / locked.output.path
                run.final(planned.id, path, locked.output.sha256)
        elif planned.action is Action.DELETE:
            _delete(run, planned)
        elif planned.action is Action.REUSE and planned.source is not None:
            if planned.source.kind == "run":
                continue  # placed when the shot it shares a render with finishes
            record = _reuse(run, planned)
            if record is None and planned.id in run.rerender:
                continue  # rendered with the jobs after all
            sha = None if record is None else record.sha256
            run.final(planned.id, run.output_path(planned.id) if sha else None, sha)
    run.save_lock(force=True)


def _stage(run: _Run) -> None:
    """Read every locked output a reuse copies into the cache, before any output is written:
    ids swapped, rotated or renumbered copy each other's files, and a copy must never land
    on bytes a later copy still needs. A file that cannot be saved is never written over."""
    for planned in run.plan.shots:
        source = planned.source
        if planned.action is not Action.REUSE or source is None or source.output is None:
            continue
        if source.kind != "lock" or run.cache.get(planned.key) is not None:
            continue
        if _adopt(run, planned, source.output, source.from_shot) is None:
            run.unsaved.setdefault(source.output.path, planned.id)


def _adopt(
    run: _Run, planned: PlannedShot, output: OutputRecord, from_shot: str | None
) -> CacheRecord | None:
    """Make a locked output (verified against its digest) the cache's render of the key."""
    source_entry = run.lock.shots.get(from_shot or "") or planned.locked
    source = run.spec.project_dir / output.path
    tmp = run.cache.tmp_dir / f"adopt-{uuid.uuid4().hex}.mp4"
    try:
        atomic_copy(source, tmp, expect_sha256=output.sha256)
        run.cache.add_object(tmp, output.sha256)
    except (OSError, ValueError):
        tmp.unlink(missing_ok=True)
        return None
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
    return record


def _leave_alone(run: _Run, planned: PlannedShot) -> None:
    """A shot whose output apply may not write, or whose key renders under another API key.
    Shots continuing it still get its frames when its render is in the cache."""
    assert planned.blocked is not None
    _blocked(run, planned, planned.blocked)
    record = run.cache.get(planned.key) if planned.key else None
    if record is not None:
        run.final(planned.id, run.cache.object_path(record.sha256), record.sha256)
    else:
        run.final(planned.id, None, None)


def _blocked(run: _Run, planned: PlannedShot, why: str) -> None:
    run.outcome(planned.id, "blocked", None, why)
    run.emit(ApplyEvent("blocked", planned.id, message=why))


def _delete(run: _Run, planned: PlannedShot) -> None:
    """Drop the shot from the lock; remove its file only when this lock placed it."""
    entry = planned.locked
    kept = None
    if entry is not None and entry.output is not None:
        kept = delete_problem(run.files, planned.id, entry)
        path = run.spec.project_dir / entry.output.path
        if kept is None and entry.output.path not in run.unsaved:
            path.unlink(missing_ok=True)
    run.set_entry(planned.id, None)
    run.outcome(planned.id, "deleted", entry.job_id if entry else None, kept or "")
    message = (
        "removed from the lock and the outputs"
        if kept is None
        else (f"removed from the lock; {kept}")
    )
    run.emit(ApplyEvent("delete", planned.id, message=message))


def _reuse(run: _Run, planned: PlannedShot) -> CacheRecord | None:
    assert planned.shot is not None and planned.source is not None
    record = run.cache.fetch(planned.key)
    if record is None and _render_instead(run, planned):
        return None
    if record is None:
        # The cache entry vanished or was corrupt since planning: it must render after all.
        run.outcome(planned.id, "failed", None, "cached render missing or corrupt; run again")
        run.emit(ApplyEvent("failed", planned.id, message="cached render missing or corrupt"))
        return None
    problem = run.place(planned, record)
    if problem is not None:
        _record_failure(run, planned, problem)
        return None
    run.set_entry(
        planned.id, run.entry_for(planned.shot, planned.key, record, run.output_path(planned.id))
    )
    run.outcome(planned.id, "reused", record.job_id)
    run.emit(ApplyEvent("reuse", planned.id, job_id=record.job_id, message=planned.reasons[0]))
    return record


def _render_instead(run: _Run, planned: PlannedShot) -> bool:
    """A render the remote cache offered at plan time but could not deliver (gone, or its
    bytes not those its record names) is rendered after all, as a job: failing would fail
    every later apply the same way. Not with --frozen, nor when shots continue it (their
    keys were made from the remote render's frames)."""
    shot = planned.shot
    if shot is None or planned.source is None or planned.source.kind != "remote":
        return False
    continued = any(p.shot is not None and planned.id in p.shot.upstream for p in run.plan.shots)
    if run.options.frozen or continued:
        return False
    locked = planned.locked is not None and planned.locked.rendered
    replanned = replace(
        planned,
        action=Action.REPLACE if locked else Action.CREATE,
        source=None,
        estimated_credits=estimate_credits(shot.resolution, shot.duration),
        reasons=("the remote cache could not deliver its render",),
    )
    shots = tuple(replanned if p is planned else p for p in run.plan.shots)
    run.plan = replace(run.plan, shots=shots)
    run.rerender.add(planned.id)
    return True


# -- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    """Why a key's render produced no video (the job, when there was one, for its credits)."""

    code: str
    message: str
    job_id: str | None = None
    job: Job | None = None


class _Tracker:
    """Jobs in flight, and when the one poller that watches them all should look next.

    Renders of one apply take about as long as each other, so the shortest time a job took
    from submit to done (`quickest`) says when each job in flight should be done: the poller
    wakes at the first such moment after its last look, and one list call settles every job
    due by then. A job not known to be due yet (before any job finished) or past its moment
    is looked at again after a tenth of its age, at least `first_interval` after its submit
    and at most `max_interval` after the last look: it is seen done within about a tenth of
    its render time, however long renders take. Polls are never closer than `floor`.
    """

    def __init__(
        self, on_status: Callable[[str, str], None], first_interval: float, max_interval: float
    ) -> None:
        self.waiting: dict[str, asyncio.Future[Job]] = {}
        self.wakeup = asyncio.Event()
        self.on_status = on_status  # (job id, new status) while a job is not done
        self.status: dict[str, str] = {}
        self.since: dict[str, float] = {}  # job id -> when it began to be watched
        self.quickest: float | None = None  # the shortest watch that ended in a settle
        self.first_interval = first_interval
        self.max_interval = max_interval
        self.floor = MIN_POLL_INTERVAL
        self.last_poll = time.monotonic()

    def watch(self, job_id: str) -> asyncio.Future[Job]:
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self.waiting[job_id] = future
        self.since[job_id] = time.monotonic()
        self.wakeup.set()
        return future

    def observe(self, job: Job) -> None:
        """A polled job record: settle it when done, report a change of status otherwise."""
        if job.done:
            if job.id in self.waiting and self.status.get(job.id) != job.status:
                self.status[job.id] = job.status
                self.on_status(job.id, job.status)  # e.g. completed: downloading next
            future = self.waiting.pop(job.id, None)
            if future is not None and not future.done():
                future.set_result(job)
            started = self.since.pop(job.id, None)
            if started is not None:
                took = time.monotonic() - started
                self.quickest = took if self.quickest is None else min(self.quickest, took)
        elif job.id in self.waiting and self.status.get(job.id) != job.status:
            self.status[job.id] = job.status
            self.on_status(job.id, job.status)

    def fail(self, job_id: str, exc: BaseException) -> None:
        self.since.pop(job_id, None)
        future = self.waiting.pop(job_id, None)
        if future is not None and not future.done():
            future.set_exception(exc)

    def polled(self, at: float) -> None:
        """Every job in flight was looked at `at` (or jobs to watch came after none)."""
        self.last_poll = at

    def delay(self, now: float) -> float:
        """Seconds until the next poll."""
        last = self.last_poll
        wakes: list[float] = []
        unknown = list(self.since.values())  # jobs not known to be due at a given moment
        if self.quickest is not None:
            due = [t + self.quickest for t in unknown]
            wakes += [d for d in due if d > last]
            unknown = [t for t, d in zip(unknown, due, strict=True) if d <= last]
        if unknown:
            oldest = min(unknown)
            wait = min(self.max_interval, (last - oldest) / 10)
            wakes.append(max(oldest + self.first_interval, last + wait))
        wake = min(wakes, default=last + self.first_interval)
        return max(0.0, max(wake, last + self.floor) - now)


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


MIN_POLL_INTERVAL = 0.1
# Polls in a row (each already retried by the client) that found the service unreachable
# before apply stops waiting and leaves the jobs to the next apply.
POLL_UNREACHABLE_LIMIT = 3
# While submits wait for the request budget, polls take at most this share of it: each
# poll settles every job done by then, so rarer polls cost little time and leave the
# budget to submits. With no submit waiting, polls may use all of it.
POLL_SHARE_WHILE_SUBMITTING = 0.25


def _poll_floor(budget: int | None, submitting: bool) -> float:
    """The shortest time between polls for a client allowed `budget` requests a minute."""
    if budget is None:
        return MIN_POLL_INTERVAL
    share = POLL_SHARE_WHILE_SUBMITTING if submitting else 1.0
    return max(MIN_POLL_INTERVAL, 60.0 / (budget * share))


class _Renderer:
    """Submits, resumes and finishes jobs; every key is rendered at most once per run."""

    def __init__(self, run: _Run, client: AsyncTchaviClient, known_ids: set[str]) -> None:
        self.run = run
        self.client = client
        self.known_ids = known_ids
        options = run.options
        self.tracker = _Tracker(self._status, options.poll_interval, options.max_poll_interval)
        self.job_shot: dict[str, str] = {}  # job id -> the shot it renders, for progress
        # A slot is a job in flight at the service: taken before the submit, given back as
        # soon as the job is done, so the next shot is submitted while this one downloads.
        self.slots = asyncio.Semaphore(max(1, options.concurrency))
        self.downloads = asyncio.Semaphore(max(1, options.concurrency))
        self.pool = background_pool(min(4, os.cpu_count() or 2), "tchavi-apply")
        self.submitting = 0  # shots holding a slot whose submit is not answered yet

    async def background(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the background pool (lower priority), awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- one key ------------------------------------------------------------------------------

    def render(self, planned: PlannedShot) -> asyncio.Task[CacheRecord | _Failure]:
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

    async def _resume(self, item: InFlight) -> CacheRecord | _Failure:
        assert item.job_id is not None
        self.job_shot[item.job_id] = item.shot
        async with self.slots:
            self.run.emit(
                ApplyEvent("resume", item.shot, job_id=item.job_id, message="job of an earlier run")
            )
            job = await self._wait(item.key, item.job_id)
        return await self._fetch(item.key, job)

    async def _submit_and_finish(self, planned: PlannedShot) -> CacheRecord | _Failure:
        async with self.slots:
            elsewhere = await self._rendered_elsewhere(planned)
            if elsewhere is not None:
                return elsewhere
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
                    return _Failure("not_submitted", "an earlier error stopped every submit")
                code = exc.code if isinstance(exc, ApiError) else type(exc).__name__
                return _Failure(code, str(exc))
            finally:
                self.submitting -= 1
                self.tracker.wakeup.set()  # the poller's floor may change
            if isinstance(job_id, _Failure):
                return job_id
            job = await self._wait(planned.key, job_id)
        return await self._fetch(planned.key, job)

    async def _rendered_elsewhere(self, planned: PlannedShot) -> CacheRecord | None:
        """Another machine may have rendered this key since planning: the cache is asked
        once more just before paying (only a remote layer can say yes; RenderCache.pull)."""
        record = await asyncio.to_thread(self.run.cache.pull, planned.key)
        if record is not None:
            self.run.found_elsewhere.add(planned.key)
            message = "rendered meanwhile on another machine; from the remote cache"
            self.run.emit(ApplyEvent("status", planned.id, job_id=record.job_id, message=message))
        return record

    async def _submit(self, planned: PlannedShot) -> str | _Failure:
        run = self.run
        shot = planned.shot
        assert shot is not None
        cost = estimate_credits(shot.resolution, shot.duration)
        if run.stop_submitting:
            return _Failure("not_submitted", "an earlier error stopped every submit")
        if run.options.max_credits is not None and run.committed + cost > run.options.max_credits:
            return _Failure("not_submitted", f"--max-credits {run.options.max_credits} reached")
        if run.options.frozen:
            # The plan had a job to collect for this key, and it turned out never created.
            return _Failure("not_submitted", "--frozen forbids new jobs")
        # Local media may be uploaded to a bucket first: off the event loop, so polls go on.
        params = await asyncio.to_thread(shot.params, self._media_url)
        # One submit at a time, from intent to journaled job id: after a crash at most one
        # intent lacks its id, so the job found for it cannot be another shot's.
        async with run.submit_turn:
            if run.stop_submitting:
                return _Failure("not_submitted", "an earlier error stopped every submit")
            failpoint("before-intent")
            run.journal.intent(
                planned.key, planned.id, run.backend.identity, run.backend.account, shot.model, cost
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
                run.journal.abandoned(planned.key)
                raise
            failpoint("after-submit")
            self.known_ids.add(job.id)
            run.journal.submitted(planned.key, job.id)
            failpoint("after-journal")
        self.job_shot[job.id] = planned.id
        run.result.credits_used += job.credits_used or cost
        run.emit(
            ApplyEvent(
                "submit",
                planned.id,
                job_id=job.id,
                status=job.status,
                credits=job.credits_used or cost,
            )
        )
        return job.id

    async def _wait(self, key: str, job_id: str) -> Job | _Failure:
        """Wait until the job is done; a failed (refunded) or vanished job is a failure."""
        run = self.run
        try:
            job = await self.tracker.watch(job_id)
        except ApiConnectionError:
            message = (
                f"job {job_id} is paid and still in the journal, but the service could not be "
                "reached to follow it; the next apply collects it (no new job)"
            )
            return _Failure("unreachable", message, job_id)
        except JobNotFound:
            # Another API key cannot see the job, or the service lost it: either way it was
            # paid for, so it is never forgotten unless the user says so.
            if run.options.abandon_in_flight:
                run.journal.abandoned(key)
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
            return _Failure("job_not_found", message, job_id)
        if job.status == "failed":
            error = job.error
            if key in run.resumed:
                run.result.earlier_refunded += job.credits_refunded
                run.emit(
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
            run.journal.finished(key, job_id)
            return _Failure(
                error.code if error else "upstream_error",
                error.message if error else "the job failed",
                job_id,
                job,
            )
        return job

    async def _fetch(self, key: str, job: Job | _Failure) -> CacheRecord | _Failure:
        """Download, verify and cache a completed job's video."""
        if isinstance(job, _Failure):
            return job
        run, job_id = self.run, job.id
        try:
            async with self.downloads:
                record = await _download(run, self, key, job)
        except MediaExpired as exc:
            run.journal.finished(key, job_id)
            return _Failure("download_failed", str(exc), job_id, job)
        except (DownloadError, ApiError) as exc:
            # The job is paid for and its video may download later: it stays in the journal,
            # so the next apply fetches it again instead of paying for a new job.
            message = f"{exc}; the next apply downloads it again (no new job)"
            return _Failure("download_failed", message, job_id)
        run.journal.finished(key, job_id)
        return record

    def _status(self, job_id: str, status: str) -> None:
        self.run.emit(ApplyEvent("status", self.job_shot.get(job_id), job_id, status))

    # -- media --------------------------------------------------------------------------------

    def _media_url(self, media: Media) -> str:
        """The URL the service fetches a media item from; frames of other shots are cut
        from their verified outputs and served like local images."""
        match media:
            case UrlMedia():
                return media.url
            case LocalMedia():
                return self.run.backend.media_url(media)
            case ShotFrame():
                return self.run.backend.media_url(self._frame(media))
            case _:
                assert_never(media)

    def _frame(self, frame: ShotFrame) -> LocalMedia:
        from tchavi_render.digest import sha256_file
        from tchavi_render.media import extract_frame

        video = self.run.outputs[frame.shot]
        sha = self.run.output_sha[frame.shot]
        frames = self.run.cache.directory / "frames"
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
                outcome: CacheRecord | _Failure = resolved
            else:
                planned = resolved
                outcome = await self.render(planned)
            if isinstance(outcome, _Failure):
                _record_failure(run, planned, outcome)
                return
            problem = await self.background(run.place, planned, outcome)
            if problem is not None:
                _record_failure(run, planned, problem)
                return
            run.lock_output(planned, outcome)
            mine = run.render_owner.get(planned.key) == planned.id
            mine = mine and planned.key not in run.found_elsewhere
            status = "reused"
            if mine and planned.key in run.resumed:
                status = "collected"  # paid by an earlier apply
            elif mine and planned.spends:
                status = "rendered"
            run.outcome(planned.id, status, outcome.job_id)
            run.emit(
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
            _record_failure(run, planned, _Failure("upstream_failed", why))
            return None
        key = shot_key(shot, run.output_sha, emulated=run.backend.name == "local")
        planned = replace(planned, key=key)
        if not planned.forced:
            record = await asyncio.to_thread(run.cache.fetch, key)
            if record is not None:
                return record
        return planned

    # -- the poller ---------------------------------------------------------------------------

    async def poll_forever(self) -> None:
        """One poller for every job: a list call reports up to 50 jobs, so requests per shot
        stay well under two however many jobs are in flight (schedule: `_Tracker`)."""
        run, tracker = self.run, self.tracker
        unreachable = 0  # polls in a row that could not reach the service
        while True:
            if not tracker.waiting:
                tracker.wakeup.clear()
                await tracker.wakeup.wait()
                tracker.polled(time.monotonic())
            tracker.wakeup.clear()
            tracker.floor = _poll_floor(self.client.request_budget, self.submitting > 0)
            delay = tracker.delay(time.monotonic())
            if delay > 0:
                # A new job or the end of the submits may move the next poll: think again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tracker.wakeup.wait(), delay)
                    continue
            started = time.monotonic()  # what the answer says is true as of about then
            try:
                await _poll_once(self.client, tracker)
                failpoint("after-poll")
            except InvalidApiKey as exc:
                for job_id in list(tracker.waiting):
                    tracker.fail(job_id, exc)
                continue
            except ApiConnectionError as exc:
                # The client already retried with backoff: the service is gone for now. The
                # jobs stay in the journal; the next apply collects them.
                unreachable += 1
                if unreachable >= POLL_UNREACHABLE_LIMIT:
                    gone = _unreachable(self.client.base_url, exc)
                    run.stop_submitting = True
                    run.fatal = run.fatal or gone
                    for job_id in list(tracker.waiting):
                        tracker.fail(job_id, gone)
                    unreachable = 0
                    continue
                run.emit(ApplyEvent("status", message=f"poll failed, will retry: {exc}"))
            except ApiError as exc:
                run.emit(ApplyEvent("status", message=f"poll failed, will retry: {exc}"))
            else:
                unreachable = 0
            tracker.polled(started)


async def _render(run: _Run, resumable: dict[str, InFlight]) -> None:
    client = run.backend.make_client()
    known_ids = {e.job_id for e in run.lock.shots.values() if e.job_id}
    known_ids |= {e.failed.job_id for e in run.lock.shots.values() if e.failed}
    known_ids |= run.journal.known_job_ids
    async with client:
        renderer = _Renderer(run, client, known_ids)
        blocked = await _recover_submits(run, client, resumable, known_ids)
        poller = asyncio.create_task(renderer.poll_forever())
        try:
            for item in resumable.values():
                renderer.resume(item)
            shots = []
            for planned in run.plan.shots:
                if not _needs_render(planned):
                    continue
                if planned.key in blocked:
                    _record_failure(run, planned, blocked[planned.key])
                    run.final(planned.id, None, None)
                    continue
                shots.append(renderer.shot(planned))
            await asyncio.gather(*shots)
            # Resumed jobs no shot wants any more still finish: they are paid, and cached.
            await asyncio.gather(*run.renders.values())
            _report_orphans(run)
            if run.fatal is not None:
                raise run.fatal
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            renderer.pool.shutdown(wait=True)


def _report_orphans(run: _Run) -> None:
    """Say what became of jobs an earlier apply paid for that no shot of the plan wants."""
    wanted = {p.key for p in run.plan.shots if p.key}
    for key in sorted(run.resumed - wanted):
        task = run.renders.get(key)
        if task is None or task.cancelled():
            continue
        outcome = task.result()
        shot = run.render_owner.get(key)
        if isinstance(outcome, CacheRecord):
            message = "job of an earlier apply, already paid: its render is in the cache"
            run.emit(ApplyEvent("collected", shot, job_id=outcome.job_id, message=message))
        elif outcome.job is None:  # a failed job's refund was reported as it came
            run.emit(ApplyEvent("status", shot, job_id=outcome.job_id, message=outcome.message))


async def _recover_submits(
    run: _Run, client: AsyncTchaviClient, resumable: dict[str, InFlight], known_ids: set[str]
) -> dict[str, _Failure]:
    """Settle submits an earlier apply was interrupted in before their job id was journaled,
    one by one and before anything new is submitted (a new job could be mistaken for a lost
    one). Returns the keys that must not be submitted, with why."""
    blocked: dict[str, _Failure] = {}
    for key, item in list(resumable.items()):
        if item.job_id is not None:
            continue
        try:
            job = await client.jobs.find_unknown(
                since=item.started, model=item.model, credits=item.credits, known_ids=known_ids
            )
        except AmbiguousSubmit as exc:
            resumable.pop(key)
            blocked[key] = _Failure(
                exc.code,
                f"an earlier apply was interrupted while submitting {item.shot!r}, and the "
                f"account has several jobs that could be it ({', '.join(exc.candidate_ids)}). "
                "Nothing was submitted again. If none of them is this shot's, delete "
                f"{run.journal.path} and apply again",
            )
            continue
        except ApiError as exc:
            resumable.pop(key)
            blocked[key] = _Failure(exc.code, f"could not look for an interrupted submit: {exc}")
            continue
        if job is None:
            # The interrupted submit created nothing: the key is submitted afresh if planned.
            run.journal.abandoned(key)
            resumable.pop(key)
            continue
        known_ids.add(job.id)
        run.journal.submitted(key, job.id)
        resumable[key] = replace(item, job_id=job.id)
    return blocked


def _record_failure(run: _Run, planned: PlannedShot, failure: _Failure) -> None:
    """Report a shot that got no video; a failed job (refunded) is kept in its lock entry,
    beside the earlier render when there is one."""
    if failure.code == "blocked":
        _blocked(run, planned, failure.message)
        return
    if failure.code == "not_submitted":
        # One cause stopped every submit; it is said once, not once per shot.
        run.outcome(planned.id, "not submitted", None, failure.message)
        return
    message = f"{failure.code}: {failure.message}"
    run.outcome(planned.id, "failed", failure.job_id, message)
    run.emit(ApplyEvent("failed", planned.id, job_id=failure.job_id, message=message))
    job = failure.job
    if job is None or failure.job_id is None or planned.shot is None or not planned.key:
        return
    attempt = FailedAttempt(
        job_id=failure.job_id,
        code=failure.code,
        message=failure.message,
        credits_used=job.credits_used,
        credits_refunded=job.credits_refunded,
    )
    previous = run.lock.shots.get(planned.id)
    if previous is not None and previous.rendered:
        entry = replace(previous, failed=attempt)
    else:
        entry = LockEntry(
            key=planned.key,
            model=planned.shot.model,
            request=key_request(planned.shot, run.output_sha),
            failed=attempt,
        )
    run.set_entry(planned.id, entry)


async def _download(run: _Run, renderer: _Renderer, key: str, job: Job) -> CacheRecord:
    """Download into the cache's temp dir, verify it decodes, then store it by digest.
    A truncated or corrupt download is fetched again (the bytes are paid for)."""
    last: Exception | None = None
    for _attempt in range(3):
        tmp = run.cache.tmp_dir / f"dl-{uuid.uuid4().hex}.mp4"
        try:
            sha256, size = await renderer.client.download(job, tmp)
            # Decoding every frame and storing (perhaps uploading) take a while: in the
            # background, so that polls and submits go on meanwhile.
            return await renderer.background(_store, run.cache, key, job, tmp, sha256, size)
        except MediaExpired:
            tmp.unlink(missing_ok=True)
            raise
        except (DownloadError, ApiError) as exc:
            tmp.unlink(missing_ok=True)
            last = exc
    assert last is not None
    raise last


def _store(
    cache: RenderCache, key: str, job: Job, tmp: Path, sha256: str, size: int
) -> CacheRecord:
    """Check a downloaded video, then make it the cache's render of `key`."""
    _check_video(tmp)
    failpoint("after-download")
    cache.add_object(tmp, sha256)
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
    cache.put(record)
    failpoint("after-cache")
    return record


def _check_video(path: Path) -> None:
    """The file must be a video whose every frame decodes without error: the API gives no
    checksum, and a body with the right length but damaged bytes opens fine as a container
    (FFmpeg conceals decoding errors unless told to fail on them)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DownloadError(f"{path.name}: the download has no video stream")
            stream = container.streams.video[0]
            stream.codec_context.options = {"err_detect": "explode"}
            if sum(1 for _ in container.decode(stream)) == 0:
                raise DownloadError(f"{path.name}: the download has no video frames")
    except av.error.FFmpegError as exc:
        raise DownloadError(f"the download is not a readable video ({exc})") from None


async def _poll_once(client: AsyncTchaviClient, tracker: _Tracker) -> None:
    waiting = set(tracker.waiting)
    if len(waiting) == 1:
        (job_id,) = waiting
        try:
            job = await client.jobs.retrieve(job_id)
        except JobNotFound as exc:
            tracker.fail(job_id, exc)
            return
        tracker.observe(job)
        return
    offset = 0
    seen: set[str] = set()
    while waiting - seen:
        page = await client.jobs.list(limit=50, offset=offset)
        for job in page.data:
            if job.id in waiting:
                seen.add(job.id)
                tracker.observe(job)
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
        tracker.observe(job)
