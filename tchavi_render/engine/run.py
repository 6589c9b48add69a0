"""The state of one apply: what it was given (a frozen context), what it changes as it goes
(`Run`), and what it reports (events, outcomes, the result)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tchavi_render.api.models import Job
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.journal import Journal
from tchavi_render.engine.keys import key_request
from tchavi_render.engine.lock import FailedAttempt, LockEntry, Lockfile, OutputRecord, write_lock
from tchavi_render.engine.outputs import Outputs
from tchavi_render.engine.plan import Plan, PlannedShot
from tchavi_render.errors import TchaviRenderError
from tchavi_render.failpoints import failpoint
from tchavi_render.spec.shot import LoadedSpec, LocalMedia, Shot

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = [
    "ApplyContext",
    "ApplyEvent",
    "ApplyOptions",
    "ApplyResult",
    "Backend",
    "EventSink",
    "Failure",
    "Run",
    "ShotOutcome",
    "record_blocked",
    "record_failure",
]


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


@dataclass(frozen=True)
class Failure:
    """Why a key's render produced no video (the job, when there was one, for its credits)."""

    code: str
    message: str
    job_id: str | None = None
    job: Job | None = None


@dataclass(frozen=True)
class ApplyContext:
    """What one apply is given, fixed for its whole run."""

    spec: LoadedSpec
    plan: Plan
    lock: Lockfile  # as read before the apply
    lock_path: Path
    cache: RenderCache
    files: Outputs
    journal: Journal
    backend: Backend
    options: ApplyOptions
    emit: EventSink


class Run:
    """The mutable state of one apply: the lock in memory, renders and jobs, credits."""

    def __init__(self, ctx: ApplyContext) -> None:
        self.ctx = ctx
        self.lock = ctx.lock
        self.result = ApplyResult(lock=ctx.lock)
        self._lock_dirty = False
        self._last_lock_write = 0.0
        self._lock_write_cost = 0.0
        # shots the plan reused from the remote cache that render after all: shot -> new plan
        self.replanned: dict[str, PlannedShot] = {}
        # key -> the one render of that key in this run (a job submitted or resumed)
        self.renders: dict[str, asyncio.Task[CacheRecord | Failure]] = {}
        self.render_owner: dict[str, str] = {}  # key -> the shot that asked for it first
        self.resumed: set[str] = set()  # keys whose job an earlier apply paid for
        self.found_elsewhere: set[str] = set()  # keys another machine rendered meanwhile
        # shot id -> its verified output file, once final (continuity reads frames from it)
        self.outputs: dict[str, Path] = {}
        self.output_sha: dict[str, str] = {}
        self.settled: dict[str, asyncio.Event] = {}
        self.committed = 0  # credits spent or in flight in this run, net of refunds
        self.stop_submitting = False
        self.submit_turn = asyncio.Lock()
        self.fatal: TchaviRenderError | None = None
        # outputs whose bytes a reuse of this apply copies, and that could not be saved to
        # the cache first: never written over (relpath -> the shot that needs them)
        self.unsaved: dict[str, str] = {}

    def shots(self) -> tuple[PlannedShot, ...]:
        """The plan's shots, as replanned during this apply."""
        return tuple(self.replanned.get(p.id, p) for p in self.ctx.plan.shots)

    # -- lock ---------------------------------------------------------------------------------

    def save_lock(self, *, force: bool = False) -> None:
        """Rewrite the lock if it changed; debounced while renders finish in quick
        succession (a finished render is already in the cache, so nothing is lost)."""
        if not self._lock_dirty:
            return
        now = time.monotonic()
        # A big lock takes a while to write: space the writes so they stay a tenth of the time.
        interval = max(self.ctx.options.lock_write_interval, 10 * self._lock_write_cost)
        if not force and now - self._last_lock_write < interval:
            return
        write_lock(self.ctx.lock_path, self.lock)
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
        return self.ctx.spec.output_dir / f"{shot_id}.mp4"

    def relpath(self, path: Path) -> str:
        try:
            return path.relative_to(self.ctx.spec.project_dir).as_posix()
        except ValueError:
            return path.as_posix()

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
            take=shot.take,
        )

    def outcome(self, shot_id: str, status: str, job_id: str | None = None, msg: str = "") -> None:
        self.result.outcomes.append(ShotOutcome(shot_id, status, job_id, msg))


def record_blocked(run: Run, planned: PlannedShot, why: str) -> None:
    """A shot apply may not write or pay for: reported by name, nothing done."""
    run.outcome(planned.id, "blocked", None, why)
    run.ctx.emit(ApplyEvent("blocked", planned.id, message=why))


def record_failure(run: Run, planned: PlannedShot, failure: Failure) -> None:
    """Report a shot that got no video; a failed job (refunded) is kept in its lock entry,
    beside the earlier render when there is one."""
    if failure.code == "blocked":
        record_blocked(run, planned, failure.message)
        return
    if failure.code == "not_submitted":
        # One cause stopped every submit; it is said once, not once per shot.
        run.outcome(planned.id, "not submitted", None, failure.message)
        return
    message = f"{failure.code}: {failure.message}"
    run.outcome(planned.id, "failed", failure.job_id, message)
    run.ctx.emit(ApplyEvent("failed", planned.id, job_id=failure.job_id, message=message))
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
            take=planned.shot.take,
        )
    run.set_entry(planned.id, entry)
