"""Apply a plan: the only package path that spends credits (submit, poll, download, cache,
lock). This module runs the phases; `engine.run` holds the state of one apply,
`engine.placing` puts renders at the output paths, `engine.jobs` deals with the service.

Order of writes for one render, so a crash at any point never pays twice:
journal intent -> POST -> journal job id -> polls -> download to the cache's temp dir ->
verify -> cache object + record -> output file -> lock -> journal finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tchavi_render.api.pricing import estimate_credits
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.jobs import JobRunner
from tchavi_render.engine.journal import InFlight, Journal
from tchavi_render.engine.lock import Lockfile
from tchavi_render.engine.outputs import Outputs
from tchavi_render.engine.placing import place, remove_output, stage
from tchavi_render.engine.plan import Action, Plan, PlannedShot, storyboard_order
from tchavi_render.engine.run import (
    ApplyContext,
    ApplyEvent,
    ApplyOptions,
    ApplyResult,
    Backend,
    EventSink,
    Failure,
    Run,
    ShotOutcome,
    record_blocked,
    record_failure,
)
from tchavi_render.errors import AmbiguousSubmit, ApiError, BudgetExceeded, FrozenWouldSpend
from tchavi_render.spec.shot import LoadedSpec

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = [
    "ApplyEvent",
    "ApplyOptions",
    "ApplyResult",
    "Backend",
    "EventSink",
    "ShotOutcome",
    "apply_plan",
]


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
    ctx = ApplyContext(spec, plan, lock, lock_path, cache, files, journal, backend, options, emit)
    run = Run(ctx)
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
        if any(_needs_render(p) for p in run.shots()) or resumable:
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
    if planned.spends or planned.action in (Action.COLLECT, Action.WAIT):
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


def _apply_local(run: Run) -> None:
    """Everything that needs no job: unchanged, reuse from cache or lock, delete, and the
    shots apply must leave alone. Locked outputs that reuses copy are saved to the cache
    first (`_stage`); then shots go upstream first, so a lock entry can name the output its
    frames come from."""
    stage(run)
    by_id = {p.id: p for p in run.shots()}
    order = [s.id for s in storyboard_order([p.shot for p in run.shots() if p.shot])]
    order += [p.id for p in run.shots() if p.shot is None]
    for planned in (by_id[i] for i in order):
        if planned.blocked is not None:
            _leave_alone(run, planned)
        elif planned.action is Action.UNCHANGED:
            locked = planned.locked
            run.outcome(planned.id, "unchanged", locked.job_id if locked else None)
            take = planned.shot.take if planned.shot is not None else None
            if locked is not None and locked.take != take:
                # The same request (so the same seed) is now another take, or no take at
                # all (takes back to 1): the lock says so; nothing is rendered or moved.
                run.set_entry(planned.id, replace(locked, take=take))
            if locked is not None and locked.output is not None:
                path = run.ctx.spec.project_dir / locked.output.path
                run.final(planned.id, path, locked.output.sha256)
        elif planned.action is Action.DELETE:
            _delete(run, planned)
        elif planned.action is Action.REUSE and planned.source is not None:
            if planned.source.kind == "run":
                continue  # placed when the shot it shares a render with finishes
            record = _reuse(run, planned)
            if record is None and planned.id in run.replanned:
                continue  # rendered with the jobs after all
            sha = None if record is None else record.sha256
            run.final(planned.id, run.output_path(planned.id) if sha else None, sha)
    run.save_lock(force=True)


def _leave_alone(run: Run, planned: PlannedShot) -> None:
    """A shot whose output apply may not write, or whose key renders under another API key.
    Shots continuing it still get its frames when its render is in the cache."""
    assert planned.blocked is not None
    record_blocked(run, planned, planned.blocked)
    record = run.ctx.cache.get(planned.key) if planned.key else None
    if record is not None:
        run.final(planned.id, run.ctx.cache.object_path(record.sha256), record.sha256)
    else:
        run.final(planned.id, None, None)


def _delete(run: Run, planned: PlannedShot) -> None:
    """Drop the shot from the lock; remove its file only when this lock placed it."""
    entry = planned.locked
    kept = remove_output(run, planned.id, entry)
    run.set_entry(planned.id, None)
    run.outcome(planned.id, "deleted", entry.job_id if entry else None, kept or "")
    message = (
        "removed from the lock and the outputs"
        if kept is None
        else f"removed from the lock; {kept}"
    )
    run.ctx.emit(ApplyEvent("delete", planned.id, message=message))


def _reuse(run: Run, planned: PlannedShot) -> CacheRecord | None:
    assert planned.shot is not None and planned.source is not None
    record = run.ctx.cache.fetch(planned.key)
    if record is None and _render_instead(run, planned):
        return None
    if record is None:
        # The cache entry vanished or was corrupt since planning: it must render after all.
        run.outcome(planned.id, "failed", None, "cached render missing or corrupt; run again")
        run.ctx.emit(ApplyEvent("failed", planned.id, message="cached render missing or corrupt"))
        return None
    problem = place(run, planned, record)
    if problem is not None:
        record_failure(run, planned, problem)
        return None
    run.set_entry(
        planned.id, run.entry_for(planned.shot, planned.key, record, run.output_path(planned.id))
    )
    run.outcome(planned.id, "reused", record.job_id)
    run.ctx.emit(ApplyEvent("reuse", planned.id, job_id=record.job_id, message=planned.reasons[0]))
    return record


def _render_instead(run: Run, planned: PlannedShot) -> bool:
    """A render the remote cache offered at plan time but could not deliver (gone, or its
    bytes not those its record names) is rendered after all, as a job: failing would fail
    every later apply the same way. Not with --frozen, nor when shots continue it (their
    keys were made from the remote render's frames)."""
    shot = planned.shot
    if shot is None or planned.source is None or planned.source.kind != "remote":
        return False
    continued = any(p.shot is not None and planned.id in p.shot.upstream for p in run.shots())
    if run.ctx.options.frozen or continued:
        return False
    locked = planned.locked is not None and planned.locked.rendered
    replanned = replace(
        planned,
        action=Action.REPLACE if locked else Action.CREATE,
        source=None,
        estimated_credits=estimate_credits(shot.resolution, shot.duration),
        reasons=("the remote cache could not deliver its render",),
    )
    run.replanned[planned.id] = replanned
    return True


# -- rendering ---------------------------------------------------------------------------------


# -- the render phase ----------------------------------------------------------------------


async def _render(run: Run, resumable: dict[str, InFlight]) -> None:
    client = run.ctx.backend.make_client()
    known_ids = {e.job_id for e in run.lock.shots.values() if e.job_id}
    known_ids |= {e.failed.job_id for e in run.lock.shots.values() if e.failed}
    known_ids |= run.ctx.journal.known_job_ids
    async with client:
        renderer = JobRunner(run, client, known_ids)
        if renderer.claims is not None and any(_needs_render(p) for p in run.shots()):
            # `cache: {claims: required}` refuses a store without conditional writes, here,
            # before anything is submitted; otherwise the probe runs at the first claim.
            await asyncio.to_thread(renderer.claims.require)
        blocked = await _recover_submits(run, client, resumable, known_ids)
        poller = asyncio.create_task(renderer.poll_forever())
        try:
            for item in resumable.values():
                renderer.resume(item)
            shots = []
            for planned in run.shots():
                if not _needs_render(planned):
                    continue
                if planned.key in blocked:
                    record_failure(run, planned, blocked[planned.key])
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


def _report_orphans(run: Run) -> None:
    """Say what became of jobs an earlier apply paid for that no shot of the plan wants."""
    wanted = {p.key for p in run.shots() if p.key}
    for key in sorted(run.resumed - wanted):
        task = run.renders.get(key)
        if task is None or task.cancelled():
            continue
        outcome = task.result()
        shot = run.render_owner.get(key)
        if isinstance(outcome, CacheRecord):
            message = "job of an earlier apply, already paid: its render is in the cache"
            run.ctx.emit(ApplyEvent("collected", shot, job_id=outcome.job_id, message=message))
        elif outcome.job is None:  # a failed job's refund was reported as it came
            run.ctx.emit(ApplyEvent("status", shot, job_id=outcome.job_id, message=outcome.message))


async def _recover_submits(
    run: Run, client: AsyncTchaviClient, resumable: dict[str, InFlight], known_ids: set[str]
) -> dict[str, Failure]:
    """Settle submits an earlier apply was interrupted in before their job id was journaled,
    one by one and before anything new is submitted (a new job could be mistaken for a lost
    one). Returns the keys that must not be submitted, with why."""
    blocked: dict[str, Failure] = {}
    for key, item in list(resumable.items()):
        if item.job_id is not None:
            continue
        try:
            job = await client.jobs.find_unknown(
                since=item.started, model=item.model, credits=item.credits, known_ids=known_ids
            )
        except AmbiguousSubmit as exc:
            resumable.pop(key)
            blocked[key] = Failure(
                exc.code,
                f"an earlier apply was interrupted while submitting {item.shot!r}, and the "
                f"account has several jobs that could be it ({', '.join(exc.candidate_ids)}). "
                "Nothing was submitted again. If none of them is this shot's, delete "
                f"{run.ctx.journal.path} and apply again",
            )
            continue
        except ApiError as exc:
            resumable.pop(key)
            blocked[key] = Failure(exc.code, f"could not look for an interrupted submit: {exc}")
            continue
        if job is None:
            # The interrupted submit created nothing: the key is submitted afresh if planned.
            run.ctx.journal.abandoned(key)
            resumable.pop(key)
            continue
        known_ids.add(job.id)
        run.ctx.journal.submitted(key, job.id)
        resumable[key] = replace(item, job_id=job.id)
    return blocked
