"""What `report --compare REV` adds to the review page: the renders at REV of the shots
whose rendered bytes differ, and each card's earlier frames beside its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tchavi_render.engine.diff import Render, SpecDiff
from tchavi_render.report_frames import frame_row, key_frames

__all__ = ["BaseRender", "Before", "Comparison", "before_of", "comparison"]


@dataclass(frozen=True)
class BaseRender:
    """A shot's render at the revision compared with: its video, when a cache has it."""

    shot_id: str  # the id at that revision (a renamed shot had another)
    video: Path | None
    missing: str  # why there is no video, when there is none


@dataclass(frozen=True)
class Comparison:
    """What `report --compare REV` adds: the renders at REV of the shots whose bytes differ,
    and the videos of this side found in a cache when the output file is not theirs."""

    label: str  # the revision, as people read it: "main (1a2b3c4d5e6f)"
    base: Mapping[str, BaseRender]  # by the shot's id in the spec
    head: Mapping[str, Path | None] = dataclasses.field(default_factory=dict)


def comparison(
    diff: SpecDiff, label: str, find: Callable[[str, str], Path | None], where: str
) -> Comparison:
    """What the page compares with the revision `label`: every shot of both sides whose
    rendered bytes differ (or that only this side rendered). `find(key, sha256)` is the
    cached file of a render, or None; `where` names the caches it looked in."""
    base: dict[str, BaseRender] = {}
    head: dict[str, Path | None] = {}
    for item in diff.shots:
        if item.base is None or item.head is None:
            continue
        if item.render is Render.DIFFERENT and item.base.key and item.base.sha256:
            video = find(item.base.key, item.base.sha256)
            missing = f"Not in {where}: nothing to show of this render"
            base[item.id] = BaseRender(item.base.id, video, missing)
        elif item.render is Render.BASE_NOT_RENDERED:
            base[item.id] = BaseRender(item.base.id, None, f"Not rendered at {label}")
        else:
            continue
        if item.head.key and item.head.sha256:
            head[item.id] = find(item.head.key, item.head.sha256)
    return Comparison(label, base, head)


@dataclass(frozen=True)
class Before:
    """The earlier render of a card's shot, beside its frames."""

    label: str
    shot_id: str
    frames: tuple[tuple[str, str], ...]
    no_frames: str


def before_of(shot_id: str, compare: Comparison | None) -> Before | None:
    """The earlier render of `shot_id` to show on its card, or None when not compared."""
    if compare is None or shot_id not in compare.base:
        return None
    base = compare.base[shot_id]
    frames = key_frames(base.video) if base.video is not None else None
    missing = base.missing if base.video is None else "The video does not decode"
    return Before(compare.label, base.shot_id, frame_row(frames), missing)
