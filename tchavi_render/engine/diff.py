"""What a storyboard change does, shot by shot, between two revisions: a pure function.

Shots are matched by id; a shot whose id left and whose request came back under a new id
is a rename (the key has no id in it, so a rename renders nothing). The field changes are
the plan's own (`engine.reasons`); whether the rendered bytes differ is read from the two
locks' sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tchavi_render.api.pricing import estimate_credits
from tchavi_render.engine.keys import UpstreamUnknown, canonical_json, key_request, media_value
from tchavi_render.engine.lock import Lockfile
from tchavi_render.engine.reasons import FieldChange, field_changes, local_files
from tchavi_render.spec.shot import LoadedSpec, Media, Shot

__all__ = ["Change", "Render", "ShotDiff", "ShotSide", "SpecDiff", "diff_specs"]


class Change(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    RENAMED = "renamed"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class Render(StrEnum):
    """Whether the rendered bytes differ, from the two locks."""

    SAME = "same"
    DIFFERENT = "different"
    BASE_NOT_RENDERED = "not rendered at base"
    HEAD_NOT_RENDERED = "not rendered at head"
    NOT_RENDERED = "not rendered"
    RENDERED = "rendered"  # one side only has the shot, and its lock has a render


@dataclass(frozen=True)
class ShotSide:
    """A shot as one revision has it."""

    id: str
    credits: int  # the estimate of rendering this request
    sha256: str | None  # of the render that revision's lock records for the id
    key: str | None  # the key that revision's lock records for the id
    shot: Shot


@dataclass(frozen=True)
class ShotDiff:
    change: Change
    base: ShotSide | None
    head: ShotSide | None
    fields: tuple[FieldChange, ...] = ()

    @property
    def id(self) -> str:
        side = self.head or self.base
        assert side is not None
        return side.id

    @property
    def render(self) -> Render:
        base = self.base.sha256 if self.base is not None else None
        head = self.head.sha256 if self.head is not None else None
        if self.base is None or self.head is None:
            return Render.RENDERED if (base or head) else Render.NOT_RENDERED
        if base is None and head is None:
            return Render.NOT_RENDERED
        if base is None:
            return Render.BASE_NOT_RENDERED
        if head is None:
            return Render.HEAD_NOT_RENDERED
        return Render.SAME if base == head else Render.DIFFERENT

    @property
    def shown(self) -> bool:
        """Worth a line: anything but a shot that neither changed nor was rendered again."""
        return self.change is not Change.UNCHANGED or self.render not in (
            Render.SAME,
            Render.NOT_RENDERED,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "change": self.change.value,
            "base": _side_json(self.base),
            "head": _side_json(self.head),
            "fields": [
                {"field": c.field, "old": c.old, "new": c.new, "description": c.describe()}
                for c in self.fields
            ],
            "render": self.render.value,
        }


@dataclass(frozen=True)
class SpecDiff:
    """Every shot of either side: head's storyboard order, then the removed shots."""

    shots: tuple[ShotDiff, ...]
    # (base, head) `backend:` of the spec; renders of the local backend are keyed apart, so
    # a change of backend renders every shot again though no request changed
    backends: tuple[str, str] = ("tchavi", "tchavi")

    def count(self, change: Change) -> int:
        return sum(1 for s in self.shots if s.change is change)

    @property
    def base_credits(self) -> int:
        return sum(s.base.credits for s in self.shots if s.base is not None)

    @property
    def head_credits(self) -> int:
        return sum(s.head.credits for s in self.shots if s.head is not None)

    @property
    def renders_differ(self) -> tuple[ShotDiff, ...]:
        """The shots whose rendered bytes differ between the locks (both sides rendered)."""
        return tuple(s for s in self.shots if s.render is Render.DIFFERENT)

    @property
    def has_changes(self) -> bool:
        return any(s.shown for s in self.shots)

    def summary_json(self) -> dict[str, int]:
        out = {change.value: self.count(change) for change in Change}
        out["renders_differ"] = len(self.renders_differ)
        out["base_credits"] = self.base_credits
        out["head_credits"] = self.head_credits
        return out


def diff_specs(
    base: LoadedSpec, base_lock: Lockfile, head: LoadedSpec, head_lock: Lockfile
) -> SpecDiff:
    """Compare two revisions of a spec, each with its lock."""
    base_requests = _requests(base, base_lock)
    head_requests = _requests(head, head_lock)
    base_shots = {s.id: s for s in base.shots}
    head_ids = {s.id for s in head.shots}
    gone = [s for s in base.shots if s.id not in head_ids]
    out: list[ShotDiff] = []
    for shot in head.shots:
        new = _side(shot, head_lock)
        old_shot = base_shots.get(shot.id)
        if old_shot is None:
            text = canonical_json(head_requests[shot.id])
            twin = next((g for g in gone if canonical_json(base_requests[g.id]) == text), None)
            if twin is None:
                out.append(ShotDiff(Change.ADDED, None, new))
            else:
                gone.remove(twin)
                out.append(ShotDiff(Change.RENAMED, _side(twin, base_lock), new))
            continue
        fields = field_changes(base_requests[shot.id], head_requests[shot.id], local_files(shot))
        change = Change.CHANGED if fields else Change.UNCHANGED
        out.append(ShotDiff(change, _side(old_shot, base_lock), new, fields))
    out += [ShotDiff(Change.REMOVED, _side(s, base_lock), None) for s in gone]
    return SpecDiff(tuple(out), (base.backend, head.backend))


def _side(shot: Shot, lock: Lockfile) -> ShotSide:
    entry = lock.shots.get(shot.id)
    output = entry.output if entry is not None else None
    return ShotSide(
        id=shot.id,
        credits=estimate_credits(shot.resolution, shot.duration),
        sha256=output.sha256 if output is not None else None,
        key=entry.key if entry is not None and output is not None else None,
        shot=shot,
    )


def _requests(spec: LoadedSpec, lock: Lockfile) -> dict[str, dict[str, Any]]:
    """Each shot's request as keyed: a frame of another shot by that shot's output in this
    revision's lock, or (not rendered there) by the shot's id and the frame."""
    outputs = {i: e.output.sha256 for i, e in lock.shots.items() if e.output is not None}
    out = {}
    for shot in spec.shots:
        try:
            out[shot.id] = key_request(shot, outputs)
        except UpstreamUnknown:
            out[shot.id] = shot.request(_unrendered_value)
    return out


def _unrendered_value(media: Media) -> dict[str, str]:
    """A frame of a shot not rendered on this side is named by its shot."""
    return media_value(media, lambda frame: {"frame": frame.selector, "shot": frame.shot})


def _side_json(side: ShotSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {"id": side.id, "credits": side.credits, "sha256": side.sha256, "key": side.key}
