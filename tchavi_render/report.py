"""The review page: one self-contained HTML file showing the storyboard, shot by shot.

Frames are inlined as JPEG data URIs (drawn by `report_frames`; `report_compare` adds the
earlier renders of `--compare`); videos are linked by a path relative to the page, so
the page works from a checkout. This module gathers the page's values as plain text; the
HTML is the autoescaping template `templates/report.html.j2`, which escapes every value it
prints, and the page allows no scripts at all (Content-Security-Policy), so a prompt cannot
inject markup.
"""

from __future__ import annotations

import colorsys
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import assert_never
from urllib.parse import quote

import jinja2

from tchavi_render.api.models import MEDIA_SLOTS
from tchavi_render.engine.lock import LockEntry
from tchavi_render.engine.plan import Plan, ShotTakes
from tchavi_render.engine.status import ShotState, State, shot_states
from tchavi_render.report_compare import Before, Comparison, before_of
from tchavi_render.report_frames import Frames, frame_row, image_thumb, key_frames
from tchavi_render.spec.shot import LoadedSpec, LocalMedia, Media, Shot, ShotFrame, UrlMedia
from tchavi_render.text import credits

__all__ = ["marker_colour", "render_report"]

_BADGE = {
    State.UP_TO_DATE: "ok",
    State.OUT_OF_DATE: "stale",
    State.MISSING: "missing",
    State.NOT_RENDERED: "new",
}


def marker_colour(index: int) -> str:
    """The colour of shot `index`'s marker band: hues a golden angle apart, so neighbours
    differ at a glance (and tests can find each shot in a screenshot)."""
    hue = (index * 137.508) % 360 / 360
    r, g, b = colorsys.hls_to_rgb(hue, 0.52, 0.62)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def render_report(
    spec: LoadedSpec, plan: Plan, out: Path, compare: Comparison | None = None
) -> str:
    """The page for `spec` as planned, to be written at `out` (links are relative to it);
    with `compare`, the shots whose render changed show the earlier render's frames too."""
    states = shot_states(plan)
    videos = {shot.id: _video_path(spec, states[shot.id].entry) for shot in spec.shots}
    if compare is not None:
        for shot_id, found in compare.head.items():
            videos[shot_id] = videos.get(shot_id) or found
    frames = {i: key_frames(v) if v is not None else None for i, v in videos.items()}
    groups = plan.takes()
    cards = [
        _card(number, shot, states[shot.id], videos[shot.id], frames, spec, out, compare)
        for number, shot in enumerate(spec.shots, start=1)
    ]
    cards = [
        replace(card, takes=_takes(shot, groups[shot.id], spec, out))
        if shot.takes > 1 and shot.id in groups
        else card
        for card, shot in zip(cards, spec.shots, strict=True)
    ]
    return _page(spec, plan, states, cards, compare)


def _takes(shot: Shot, group: ShotTakes, spec: LoadedSpec, out: Path) -> tuple[_Take, ...]:
    """Every take the spec asks for, side by side: its frames, seed and credits, the pick
    marked, and the command that picks another. A take's render is found by its key (which
    a pick does not change), wherever the lock has it."""
    rendered = {
        entry.key: entry
        for row in group.rows
        if (entry := row.locked) is not None and entry.output is not None
    }
    command = "tchavi-render pick"
    spec_arg = "" if spec.path.name == "tchavi.yaml" else f" {_relative_name(spec, spec.path)}"
    out_takes = []
    for row in group.rows:
        if row.shot is None or row.take is None:
            continue  # a take no longer asked for, or the old id of the new pick
        entry = rendered.get(row.key) if row.key else None
        video = _video_path(spec, entry)
        drawn = key_frames(video) if video is not None else None
        if entry is None:
            note = "not rendered yet"
        elif video is None:
            note = "file missing"
        else:
            note = ""
        out_takes.append(
            _Take(
                number=row.take,
                picked=row.take == shot.pick,
                frames=frame_row(drawn),
                note=note,
                seed=str(row.shot.seed),
                credits=credits(entry.credits_used - entry.credits_refunded) if entry else "—",
                href=_relative_url(video, out) if video is not None else None,
                command=f"{command} {shot.id} {row.take}{spec_arg}",
            )
        )
    return tuple(sorted(out_takes, key=lambda t: t.number))


def _video_path(spec: LoadedSpec, entry: LockEntry | None) -> Path | None:
    if entry is None or entry.output is None:
        return None
    path = spec.project_dir / entry.output.path
    return path if path.is_file() else None


# -- the page's values ---------------------------------------------------------------------
# Plain text only: the template (templates/report.html.j2) escapes every value it prints.


@dataclass(frozen=True)
class _Reference:
    kind: str  # what the slot is called on the page
    name: str
    thumb: str | None  # data: URI


@dataclass(frozen=True)
class _Render:
    """The locked render of a shot."""

    path: str
    href: str | None  # relative to the page; None when the file is gone
    facts: tuple[tuple[str, str], ...]
    job: str


@dataclass(frozen=True)
class _Status:
    title: str
    action: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Take:
    """One take of a shot of several takes, as its card shows it."""

    number: int
    picked: bool
    frames: tuple[tuple[str, str], ...]  # (which, data: URI); empty when none are drawn
    note: str  # why there are no frames
    seed: str
    credits: str
    href: str | None  # the take's video, relative to the page
    command: str  # what picks it


@dataclass(frozen=True)
class _Card:
    number: int
    id: str
    colour: str
    instance: str
    where: str
    state: str
    badge: str
    frames: tuple[tuple[str, str], ...]  # (which, data: URI); empty when none are drawn
    no_frames: str  # why, when there are none
    status: _Status | None  # None when the shot is ready
    prompt: str
    references: tuple[_Reference, ...]
    settings: tuple[tuple[str, str], ...]
    render: _Render | None
    before: Before | None = None
    takes: tuple[_Take, ...] = ()  # a shot of several takes: each of them, side by side


@dataclass(frozen=True)
class _Tile:
    label: str
    value: str
    tone: str


@dataclass(frozen=True)
class _Page:
    title: str
    name: str
    folder: str
    backend: str
    tiles: tuple[_Tile, ...]
    cards: tuple[_Card, ...]


def _relative_url(target: Path, page: Path) -> str:
    rel = os.path.relpath(target.resolve(), page.resolve().parent)
    return quote(Path(rel).as_posix())


def _seconds(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{float(value):.2f} s".replace(".00 s", " s")


def _media_name(media: Media) -> str:
    match media:
        case LocalMedia():
            return media.relpath
        case UrlMedia():
            return media.url
        case ShotFrame(frame=str(which)):
            return f"{which} frame of shot {media.shot}"
        case ShotFrame():
            return f"frame at {media.selector} of shot {media.shot}"
        case _:
            assert_never(media)


def _reference_thumb(media: Media, frames: Mapping[str, Frames | None]) -> str | None:
    """A small picture of an image reference: the file, or the other shot's frame."""
    match media:
        case LocalMedia():
            return image_thumb(media) if media.kind == "image" else None
        case UrlMedia():
            return None
        case ShotFrame():
            upstream = frames.get(media.shot)
            if upstream is None or not isinstance(media.frame, str):
                return None  # a frame at a time in seconds is not among the drawn frames
            return upstream.first if media.frame == "first" else upstream.last
        case _:
            assert_never(media)


# What a reference is called on the page: the single frames by role, list items by kind.
_FRAME_LABELS = {"image_url": "first frame", "last_frame_image_url": "last frame"}


def _references(shot: Shot, frames: Mapping[str, Frames | None]) -> tuple[_Reference, ...]:
    return tuple(
        _Reference(
            kind=_FRAME_LABELS.get(field) or MEDIA_SLOTS[field].kind,
            name=_media_name(media),
            thumb=_reference_thumb(media, frames),
        )
        for field, media in shot.media()
    )


def _card(
    number: int,
    shot: Shot,
    state: ShotState,
    video: Path | None,
    all_frames: Mapping[str, Frames | None],
    spec: LoadedSpec,
    out: Path,
    compare: Comparison | None = None,
) -> _Card:
    entry = state.entry
    frames = all_frames[shot.id]
    if video is not None:
        no_frames = "The video does not decode"
    elif entry is not None and entry.output is not None:
        no_frames = "The video file is missing"
    else:
        no_frames = "Not rendered yet"
    render = None
    if entry is not None and entry.output is not None:
        render = _Render(
            path=entry.output.path,
            href=_relative_url(video, out) if video is not None else None,
            facts=(
                ("length", _seconds(entry.output.duration)),
                ("resolution", entry.output.resolution or "—"),
                ("credits", credits(entry.credits_used - entry.credits_refunded)),
            ),
            job=entry.job_id or "—",
        )
    status = None
    if not state.ready:
        status = _Status(
            title=str(state.state).capitalize(),
            action=state.action.value,
            reasons=tuple(state.reasons),
        )
    return _Card(
        number=number,
        id=shot.id,
        colour=marker_colour(number - 1),
        instance=shot.instance or "",
        where=f"{_relative_name(spec, shot.location.file)}:{shot.location.line}",
        state=str(state.state),
        badge=_BADGE[state.state],
        frames=frame_row(frames),
        no_frames=no_frames,
        status=status,
        prompt=shot.prompt,
        references=_references(shot, all_frames),
        settings=(
            ("model", shot.model),
            ("duration", "auto" if shot.duration == -1 else f"{shot.duration} s"),
            ("resolution", shot.resolution),
            ("aspect ratio", shot.aspect_ratio),
            ("audio", "on" if shot.generate_audio else "off"),
            ("seed", _seed(shot, state)),
        ),
        render=render,
        before=before_of(shot.id, compare),
    )


def _seed(shot: Shot, state: ShotState) -> str:
    """The seed the shot's render was asked with: the picked take's, for a shot of takes."""
    if shot.takes > 1:
        entry = state.entry
        seed = entry.seed if entry is not None and entry.take == shot.pick else None
        return f"take {shot.pick} of {shot.takes}" + (f", {seed}" if seed is not None else "")
    return str(shot.seed) if shot.seed is not None else "random"


def _relative_name(spec: LoadedSpec, file: Path) -> str:
    try:
        return file.resolve().relative_to(spec.project_dir).as_posix()
    except ValueError:
        return file.name


def _net_credits(entries: Sequence[LockEntry]) -> int:
    """Net credits of these shots' renders, each job counted once (shared renders too)."""
    jobs: dict[str, int] = {}
    for entry in entries:
        if entry.job_id is not None and entry.output is not None:
            jobs[entry.job_id] = entry.credits_used - entry.credits_refunded
    return sum(jobs.values())


def _page(
    spec: LoadedSpec,
    plan: Plan,
    states: dict[str, ShotState],
    cards: Sequence[_Card],
    compare: Comparison | None = None,
) -> str:
    shots = spec.shots
    ready = sum(1 for s in shots if states[s.id].ready)
    entries = [e for s in shots if (e := states[s.id].entry) is not None]
    running = sum(float(e.output.duration or 0) for e in entries if e.output is not None)
    pending = plan.summary.estimated_credits
    # every take the spec asks for was paid for, not only the picks
    paid = [e for p in plan.shots if p.shot is not None and (e := p.locked) is not None]
    tiles: tuple[_Tile, ...] = (
        _Tile("shots", str(len(shots)), ""),
        _Tile("up to date", f"{ready} / {len(shots)}", "ok" if ready == len(shots) else "warn"),
        _Tile("credits spent", credits(_net_credits(paid)), ""),
        _Tile("running time", _seconds(round(running, 2)), ""),
        _Tile("to render", f"{credits(pending)} credits" if pending else "nothing", ""),
    )
    if compare is not None:
        tiles += (_Tile(f"renders changed since {compare.label}", str(len(compare.base)), ""),)
    page = _Page(
        title=f"Storyboard review — {spec.path.name}",
        name=spec.path.name,
        folder=spec.path.parent.name,
        backend=spec.backend,
        tiles=tiles,
        cards=tuple(cards),
    )
    return _template().render(page=page)


@functools.cache
def _template() -> jinja2.Template:
    """The page template, loaded once; autoescaping makes every value it prints text."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tchavi_render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return environment.get_template("report.html.j2")
