"""The plan: for each shot, what apply must do (and why, and what it costs) — a pure function.

Cheapest checks first: the key against the lock, then the output file against the lock's
digest (through the stat memo, so unchanged files are not re-read), then the cache.
The values it returns live in `planvalues` and are exported from here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tchavi_render.api.pricing import estimate_credits
from tchavi_render.engine.keys import UpstreamUnknown, key_request, shot_key
from tchavi_render.engine.lock import Lockfile
from tchavi_render.engine.outputs import Outputs, delete_problem, write_problem
from tchavi_render.engine.planvalues import (
    SPENDING,
    Action,
    InFlightJob,
    Plan,
    PlannedShot,
    ReuseSource,
    ShotTakes,
    Summary,
)
from tchavi_render.engine.reasons import FieldChange, field_changes, local_files
from tchavi_render.engine.takes import base_id, split_take_id, take_shots
from tchavi_render.errors import NoSuchShot
from tchavi_render.spec.shot import LoadedSpec, Shot
from tchavi_render.text import did_you_mean

__all__ = [
    "ABANDON_FLAG",
    "Action",
    "FieldChange",
    "InFlightJob",
    "Plan",
    "PlannedShot",
    "ReuseSource",
    "ShotTakes",
    "Summary",
    "make_plan",
]


# the option that renders again a key in flight under another API key (messages name it)
ABANDON_FLAG = "--abandon-in-flight"


def matches(shot_id: str, patterns: Sequence[str]) -> bool:
    """A glob naming a shot names all its takes; `ID.takes/2` names one take."""
    shot = base_id(shot_id)
    return any(fnmatch.fnmatchcase(shot_id, p) or fnmatch.fnmatchcase(shot, p) for p in patterns)


def storyboard_order(shots: Sequence[Shot]) -> list[Shot]:
    """The shots with every upstream shot before the shots that continue it, otherwise in
    storyboard order. Depth first: a shot declared later than one it feeds moves up to just
    before it (graphlib's ready-set order would differ, and apply reports in this order).
    The spec loader has already refused cycles (an edge that would close one is ignored
    here). Iterative: a chain of thousands of shots is fine."""
    by_id = {s.id: s for s in shots}
    placed: dict[str, Shot] = {}
    for root in shots:
        stack: list[tuple[Shot, int]] = [(root, 0)]
        active = {root.id}
        while stack:
            shot, i = stack[-1]
            if shot.id in placed:
                stack.pop()
                active.discard(shot.id)
                continue
            ups = [u for u in shot.upstream if u in by_id]
            if i < len(ups):
                stack[-1] = (shot, i + 1)
                up = by_id[ups[i]]
                if up.id not in placed and up.id not in active:
                    stack.append((up, 0))
                    active.add(up.id)
                continue
            placed[shot.id] = shot
            stack.pop()
            active.discard(shot.id)
    return list(placed.values())


def upstream_closure(shots: Sequence[Shot], chosen: set[str]) -> set[str]:
    """`chosen` plus every shot they continue, directly or not."""
    by_id = {s.id: s for s in shots}
    out: set[str] = set()
    todo = list(chosen)
    while todo:
        shot_id = todo.pop()
        if shot_id in out:
            continue
        out.add(shot_id)
        if shot_id in by_id:
            todo.extend(by_id[shot_id].upstream)
    return out


def make_plan(
    spec: LoadedSpec,
    lock: Lockfile,
    *,
    cached: Callable[[str], str | None],
    files: Outputs,
    targets: Sequence[str] = (),
    force_replace: Sequence[str] = (),
    emulated: bool = False,
    remote: Callable[[str], str | None] | None = None,
    in_flight: Mapping[str, InFlightJob] | None = None,
    restore_modified: bool = False,
    abandon_in_flight: bool = False,
    claimed: Callable[[str], str | None] | None = None,
) -> Plan:
    """Compare the spec with the lock, the output files, the cache and the journal.

    `cached(key)` gives the sha256 of the cached render of that key, or None; `files`
    tells what is at the output paths (and whose it is). Neither may touch the network.
    `remote(key)` gives the sha256 of the remote cache's trusted render of that key, or
    None: it is asked only for shots that would otherwise need a job, and only reads.
    `in_flight` maps keys to the jobs an earlier apply submitted and did not finish.
    `claimed(key)` says where the key is in flight on another machine (a live render claim
    in the bucket), or None: asked only for shots that would otherwise pay; they wait.
    `targets` (globs) limit the plan to matching shots and the shots they continue;
    `force_replace` (globs) forces a new render of matching shots; a glob that matches no
    shot is an error (NoSuchShot). `emulated`: the plan is for the local backend, whose
    renders are keyed apart. `restore_modified`: outputs modified by hand (or placed by no
    lock) may be overwritten. `abandon_in_flight`: keys in flight under another API key
    are rendered again with this one.
    A shot that continues a shot rendered in this run has no key until that render exists:
    it is planned as a render (`pending`), and apply decides once the frame is known.
    """
    shots = take_shots(spec.shots)
    known = [s.id for s in shots] + list(lock.shots)
    for flag, patterns in (("--target", targets), ("--replace", force_replace)):
        for pattern in patterns:
            if not any(matches(i, [pattern]) for i in known):
                raise NoSuchShot(
                    f"{flag} {pattern!r} matches no shot of {spec.path.name} or its lock."
                    f"{did_you_mean(pattern, known)} Check the id, or quote a glob"
                )
    selected = {s.id for s in shots if not targets or matches(s.id, targets)}
    selected = upstream_closure(shots, selected)
    flights = dict(in_flight or {})

    context = _Context(
        lock=lock,
        cached=cached,
        files=files,
        remote=remote,
        flights=flights,
        restore=restore_modified,
        abandon=abandon_in_flight,
        claimed=claimed,
    )
    decided: dict[str, PlannedShot] = {}
    for shot in storyboard_order(shots):
        if shot.id not in selected:
            continue
        forced = matches(shot.id, force_replace)
        try:
            key = shot_key(shot, context.outputs, emulated=emulated)
        except UpstreamUnknown as unknown:
            decided[shot.id] = _pending(shot, context, str(unknown), forced)
            continue
        planned = _plan_shot(shot, key, context, forced=forced)
        decided[shot.id] = planned
        known_output = _known_output(planned, cached, remote)
        if known_output is not None:
            context.outputs[shot.id] = known_output
    planned_shots = [decided[s.id] for s in shots if s.id in decided]

    spec_ids = {s.id for s in shots}
    for shot_id in sorted(set(lock.shots) - spec_ids):
        if targets and not matches(shot_id, targets):
            continue
        entry = lock.shots[shot_id]
        kept = delete_problem(files, shot_id, entry)
        owner, take = split_take_id(shot_id)
        gone = "no longer in the spec"
        if take is not None and owner in spec_ids:
            shot = spec.shot(owner)
            gone = (
                f"take {take} is now the pick: it becomes {owner!r} itself"
                if take == shot.pick and shot.takes > 1
                else f"take {take} is no longer asked for (takes: {shot.takes})"
            )
        why = f"{gone}; its file goes, the cache keeps the render"
        if kept is not None:
            why = f"{gone}; {kept}"
        planned_shots.append(
            PlannedShot(
                id=shot_id,
                action=Action.DELETE,
                key=entry.key,
                estimated_credits=0,
                reasons=(why,),
                locked=entry,
            )
        )
    wanted = {p.key for p in planned_shots if p.key}
    return Plan(
        shots=tuple(planned_shots),
        targets=tuple(targets),
        forced=tuple(force_replace),
        orphans=tuple(j for k, j in flights.items() if j.ours and k not in wanted),
        foreign=tuple(j for j in flights.values() if not j.ours),
    )


@dataclass
class _Context:
    """What planning one shot reads, and what the shots planned so far decided."""

    lock: Lockfile
    cached: Callable[[str], str | None]
    files: Outputs
    remote: Callable[[str], str | None] | None
    flights: Mapping[str, InFlightJob]
    restore: bool
    abandon: bool
    claimed: Callable[[str], str | None] | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # shot id -> output sha256 known
    submitting: dict[str, str] = field(default_factory=dict)  # key -> first shot rendering it


def _known_output(
    planned: PlannedShot,
    cached: Callable[[str], str | None],
    remote: Callable[[str], str | None] | None = None,
) -> str | None:
    """The sha256 this shot's render will have after apply, when it is known now (a shot
    whose file apply may not write still has it: in the cache, where frames are cut from)."""
    if planned.action is Action.UNCHANGED and planned.locked and planned.locked.output:
        return planned.locked.output.sha256
    if planned.action is Action.REUSE and planned.source is not None:
        if planned.source.kind == "cache":
            return cached(planned.key)
        if planned.source.kind == "remote" and remote is not None:
            return remote(planned.key)
        if planned.source.output is not None:
            return planned.source.output.sha256
    return None


def _pending(shot: Shot, ctx: _Context, upstream: str, forced: bool) -> PlannedShot:
    """A shot continuing `upstream`, which renders in this run: its key waits for it."""
    entry = ctx.lock.shots.get(shot.id)
    action = Action.REPLACE if entry is not None and entry.rendered else Action.CREATE
    blocked = write_problem(ctx.files, shot.id, entry, None, restore=ctx.restore)
    return PlannedShot(
        id=shot.id,
        action=action,
        key="",
        estimated_credits=0 if blocked else estimate_credits(shot.resolution, shot.duration),
        reasons=(f"upstream {upstream!r} renders in this run; this shot renders after it",),
        shot=shot,
        locked=entry,
        forced=forced,
        blocked=blocked,
    )


def _plan_shot(shot: Shot, key: str, ctx: _Context, *, forced: bool) -> PlannedShot:
    lock, files = ctx.lock, ctx.files
    entry = lock.shots.get(shot.id)
    cost = estimate_credits(shot.resolution, shot.duration)
    target = files.relpath_for(shot.id)

    def planned(
        action: Action,
        reasons: Iterable[str],
        changes: tuple[FieldChange, ...] = (),
        source: ReuseSource | None = None,
        placing: str | None = None,
        blocked: str | None = None,
    ) -> PlannedShot:
        if blocked is None and action is not Action.UNCHANGED:
            blocked = write_problem(files, shot.id, entry, placing, restore=ctx.restore)
        spends = action in SPENDING and blocked is None
        if (spends or action in (Action.COLLECT, Action.WAIT)) and blocked is None:
            ctx.submitting.setdefault(key, shot.id)
        return PlannedShot(
            id=shot.id,
            action=action,
            key=key,
            estimated_credits=cost if spends else 0,
            reasons=tuple(reasons),
            changes=changes,
            shot=shot,
            source=source,
            locked=entry,
            forced=forced,
            blocked=blocked,
        )

    same_key = entry is not None and entry.key == key and entry.output is not None
    locked_output = entry.output if entry is not None else None
    if forced:
        action = Action.CREATE if entry is None else Action.REPLACE
        return planned(action, ["forced by --replace; the earlier take stays cached"])
    in_place = same_key and locked_output is not None and locked_output.path == target
    if in_place and locked_output is not None and files.sha256(target) == locked_output.sha256:
        return planned(Action.UNCHANGED, ["up to date"])
    changes: tuple[FieldChange, ...] = ()
    if entry is not None and not same_key and entry.request:
        changes = field_changes(entry.request, key_request(shot, ctx.outputs), local_files(shot))
    if not same_key:
        why_here: list[str] = []
    elif not in_place and locked_output is not None:
        why_here = [f"output_dir changed: its render moves from {locked_output.path}"]
    elif files.exists(target):
        why_here = [f"{target} was modified by hand"]
    else:
        why_here = [f"{target} is missing"]

    # Another shot of this run already renders this key: share its render.
    if key in ctx.submitting:
        first = ctx.submitting[key]
        return planned(
            Action.REUSE,
            [f"same request as {first!r}, rendered once in this run", *_describe(changes)],
            changes,
            ReuseSource("run", key, from_shot=first),
        )
    cached_sha = ctx.cached(key)
    if cached_sha is not None:
        why = (
            f"{why_here[0]}; restored from the cache"
            if why_here
            else ("rendered before; restored from the cache")
        )
        return planned(
            Action.REUSE,
            [why, *_describe(changes)],
            changes,
            ReuseSource("cache", key),
            placing=cached_sha,
        )
    for other_id, other in lock.entries_with_key(key):
        if other.output is not None and files.sha256(other.output.path) == other.output.sha256:
            why = (
                f"same request as locked shot {other_id!r}; its output is copied"
                if other_id != shot.id
                else f"{why_here[0]}; copied from its locked output"
                if why_here
                else "restored from its locked output"
            )
            return planned(
                Action.REUSE,
                [why, *_describe(changes)],
                changes,
                ReuseSource("lock", key, from_shot=other_id, output=other.output),
                placing=other.output.sha256,
            )
    flight = ctx.flights.get(key)
    if flight is not None and flight.ours:
        job = f"job {flight.job_id}" if flight.job_id else "a job whose submit was interrupted"
        return planned(
            Action.COLLECT,
            [f"already paid: {job} of an earlier apply is still rendering; apply collects it"],
            changes,
        )
    remote_sha = ctx.remote(key) if ctx.remote is not None else None
    if remote_sha is not None:
        return planned(
            Action.REUSE,
            ["in the remote cache", *_describe(changes)],
            changes,
            ReuseSource("remote", key),
            placing=remote_sha,
        )
    elsewhere = ctx.claimed(key) if ctx.claimed is not None else None
    if elsewhere is not None:
        return planned(Action.WAIT, [elsewhere, *_describe(changes)], changes)
    blocked = None
    if flight is not None and not ctx.abandon:
        job = f"job {flight.job_id}" if flight.job_id else "a job whose submit was interrupted"
        blocked = (
            f"{job} renders it under another API key or service; apply with that key collects "
            f"it (pass {ABANDON_FLAG} to render it again with this key)"
        )
    if entry is None:
        return planned(Action.CREATE, ["new shot"], blocked=blocked)
    if not entry.rendered and entry.failed is not None:
        return planned(
            Action.CREATE,
            [f"the last attempt failed (job {entry.failed.job_id}: {entry.failed.code})"],
            changes,
            blocked=blocked,
        )
    if same_key:
        return planned(Action.REPLACE, [f"{why_here[0]}, and not in the cache"], blocked=blocked)
    return planned(
        Action.REPLACE, _describe(changes) or ["request changed"], changes, blocked=blocked
    )


def _describe(changes: tuple[FieldChange, ...]) -> list[str]:
    return [c.describe() for c in changes]
