"""The plan's frozen values: each shot's action, with why and what it costs; the takes of a
shot of several takes as one story; the whole plan, its summary and its JSON form.

`engine.plan.make_plan` builds them (and re-exports them: import them from there).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tchavi_render.engine.lock import LockEntry, OutputRecord
from tchavi_render.engine.reasons import FieldChange
from tchavi_render.engine.takes import base_id, split_take_id
from tchavi_render.spec.shot import Shot

__all__ = [
    "SPENDING",
    "Action",
    "InFlightJob",
    "Plan",
    "PlannedShot",
    "ReuseSource",
    "ShotTakes",
    "Summary",
]


class Action(StrEnum):
    UNCHANGED = "unchanged"
    REUSE = "reuse"
    CREATE = "create"
    REPLACE = "replace"
    DELETE = "delete"
    COLLECT = "collect"  # a job an earlier apply paid for is still rendering: collect it
    WAIT = "wait"  # another machine holds a live claim on the key: follow it, pay nothing


SPENDING = frozenset({Action.CREATE, Action.REPLACE})


@dataclass(frozen=True)
class ReuseSource:
    """Where a reused render comes from: the cache, a locked output, a shot of this run, or
    the remote cache."""

    kind: str  # "cache" | "lock" | "run" | "remote"
    key: str
    from_shot: str | None = None  # the shot whose locked output or new render is reused
    output: OutputRecord | None = None


@dataclass(frozen=True)
class InFlightJob:
    """A job the journal says an earlier apply submitted and did not finish."""

    shot: str  # the shot it was submitted for
    job_id: str | None  # None: the submit was interrupted before its job id was known
    ours: bool  # submitted on this service with this API key: apply collects it


@dataclass(frozen=True)
class PlannedShot:
    id: str
    action: Action
    key: str
    estimated_credits: int
    reasons: tuple[str, ...]
    changes: tuple[FieldChange, ...] = ()
    shot: Shot | None = None  # None for delete
    source: ReuseSource | None = None
    locked: LockEntry | None = None  # what the lock had for this id
    forced: bool = False  # --replace: render anew even if a render is cached
    # why apply must leave this shot alone (its output file is not ours to write, or its
    # key is in flight under another API key); None when it goes ahead
    blocked: str | None = None

    @property
    def spends(self) -> bool:
        return self.action in SPENDING and self.blocked is None

    @property
    def shot_id(self) -> str:
        """The spec's shot this row renders (itself, or the shot a take belongs to)."""
        return base_id(self.id)

    @property
    def take(self) -> int | None:
        """Which take this row is, for a shot of several takes (or a take leaving it)."""
        if self.shot is not None:
            return self.shot.take
        number = split_take_id(self.id)[1]
        if number is not None:
            return number
        return self.locked.take if self.locked is not None else None

    @property
    def pending(self) -> bool:
        """Its key depends on a shot that renders in this run (continuity)."""
        return not self.key and self.action is not Action.DELETE

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "action": self.action.value,
            "key": self.key or None,
            "estimated_credits": self.estimated_credits,
            "reasons": list(self.reasons),
        }
        if self.blocked is not None:
            out["blocked"] = self.blocked
        return out

    def take_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"take": self.take, "seed": None, **self.as_json()}
        if self.shot is not None:
            out["seed"] = self.shot.seed
        elif self.locked is not None:
            out["seed"] = self.locked.seed
        return out


@dataclass(frozen=True)
class ShotTakes:
    """The rows of one shot of several takes, as a reader of the plan sees them: the pick
    it had and has, and which takes render, come back, stay or go."""

    shot_id: str
    rows: tuple[PlannedShot, ...]  # take order
    takes: int  # asked for now (0: the shot leaves the spec)
    pick: int | None  # now
    locked_pick: int | None  # in the lock
    continued_by: tuple[str, ...]  # shots (ids) re-rendering from the frames of the new pick

    @property
    def pick_changed(self) -> bool:
        return (
            self.pick is not None and self.locked_pick is not None and self.pick != self.locked_pick
        )


@dataclass(frozen=True)
class Summary:
    create: int
    replace: int
    reuse: int
    unchanged: int
    delete: int
    estimated_credits: int
    collect: int = 0  # jobs already paid for, still rendering (shots and orphans)
    blocked: int = 0  # shots apply leaves alone (counted in no action above)
    wait: int = 0  # shots another machine is paying for right now (render claims)

    def as_json(self) -> dict[str, int]:
        return {
            "create": self.create,
            "replace": self.replace,
            "reuse": self.reuse,
            "unchanged": self.unchanged,
            "delete": self.delete,
            "collect": self.collect,
            "blocked": self.blocked,
            "wait": self.wait,
            "estimated_credits": self.estimated_credits,
        }


@dataclass(frozen=True)
class Plan:
    shots: tuple[PlannedShot, ...]  # storyboard order, deletes last (sorted by id)
    targets: tuple[str, ...] = ()
    forced: tuple[str, ...] = ()
    # paid jobs still rendering that no shot of the spec asks for any more: apply collects
    # them into the cache all the same
    orphans: tuple[InFlightJob, ...] = ()
    # jobs in flight under another API key or service: apply leaves them for that key
    foreign: tuple[InFlightJob, ...] = ()

    @property
    def summary(self) -> Summary:
        counts = {a: 0 for a in Action}
        blocked = 0
        for planned in self.shots:
            if planned.blocked is not None:
                blocked += 1
            else:
                counts[planned.action] += 1
        return Summary(
            create=counts[Action.CREATE],
            replace=counts[Action.REPLACE],
            reuse=counts[Action.REUSE],
            unchanged=counts[Action.UNCHANGED],
            delete=counts[Action.DELETE],
            estimated_credits=sum(p.estimated_credits for p in self.shots),
            collect=counts[Action.COLLECT] + len(self.orphans),
            blocked=blocked,
            wait=counts[Action.WAIT],
        )

    @property
    def has_changes(self) -> bool:
        return bool(self.orphans) or any(p.action is not Action.UNCHANGED for p in self.shots)

    @property
    def spending(self) -> tuple[PlannedShot, ...]:
        return tuple(p for p in self.shots if p.spends)

    def takes(self) -> dict[str, ShotTakes]:
        """Shot id -> its takes, for every shot of several takes in the plan (or whose
        takes the lock holds), in plan order."""
        rows: dict[str, list[PlannedShot]] = {}
        continuing: dict[str, list[str]] = {}  # shot id -> the shots re-rendering from it
        for planned in self.shots:
            rows.setdefault(planned.shot_id, []).append(planned)
            if planned.shot is not None and (
                planned.spends or planned.pending or planned.action is Action.REUSE
            ):
                for upstream in planned.shot.upstream:
                    continuing.setdefault(upstream, []).append(planned.shot_id)
        out: dict[str, ShotTakes] = {}
        for shot_id, group in rows.items():
            if all(p.take is None for p in group):
                continue  # a shot of one take, as before takes existed
            own = next((p for p in group if p.id == shot_id), None)
            shot = own.shot if own is not None else None
            asked = [p for p in group if p.shot is not None]
            continued = tuple(dict.fromkeys(continuing.get(shot_id, ())))
            out[shot_id] = ShotTakes(
                shot_id=shot_id,
                rows=tuple(sorted(group, key=lambda p: p.take or 0)),
                takes=asked[0].shot.takes if asked and asked[0].shot else 0,
                pick=shot.pick if shot is not None and shot.takes > 1 else None,
                locked_pick=own.locked.take if own is not None and own.locked else None,
                continued_by=continued,
            )
        return out

    def as_json(self) -> dict[str, Any]:
        """One item per shot; a shot of several takes lists them under `takes`, with its
        `pick` (its own fields are those of the picked take)."""
        groups = self.takes()
        items: list[dict[str, Any]] = []
        for planned in self.shots:
            group = groups.get(planned.shot_id)
            if group is None:
                items.append(planned.as_json())
                continue
            if planned.id != planned.shot_id and any(r.id == group.shot_id for r in group.rows):
                continue  # listed under its shot
            item = planned.as_json()
            if planned.id == planned.shot_id:
                item["pick"] = group.pick
                item["locked_pick"] = group.locked_pick
                # a take that became the pick leaves its old id: not a take of its own
                item["takes"] = [
                    r.take_json()
                    for r in group.rows
                    if r.take is not None
                    and not (r.action is Action.DELETE and r.take == group.pick)
                ]
            items.append(item)
        return {"shots": items, "summary": self.summary.as_json()}
