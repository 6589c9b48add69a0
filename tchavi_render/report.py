"""The review page: one self-contained HTML file showing the storyboard, shot by shot.

Frames are inlined as JPEG data URIs; videos are linked by a path relative to the page, so
the page works from a checkout. Every text that comes from the spec is escaped, and the
page allows no scripts at all (Content-Security-Policy), so a prompt cannot inject markup.
"""

from __future__ import annotations

import base64
import colorsys
import html
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never
from urllib.parse import quote

from tchavi_render.api.models import MEDIA_SLOTS
from tchavi_render.engine.lock import LockEntry
from tchavi_render.engine.plan import Plan
from tchavi_render.engine.status import ShotState, State, shot_states
from tchavi_render.spec.shot import LoadedSpec, LocalMedia, Media, Shot, ShotFrame, UrlMedia

__all__ = ["THUMB_WIDTH", "marker_colour", "render_report"]

THUMB_WIDTH = 480  # px: sharp at the ~350 px a frame is shown at, on a 2x screen too
REF_THUMB = 112
_JPEG_QUALITY = 82
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


@dataclass(frozen=True)
class _Frames:
    first: str  # data: URIs
    middle: str
    last: str


def render_report(spec: LoadedSpec, plan: Plan, out: Path) -> str:
    """The page for `spec` as planned, to be written at `out` (links are relative to it)."""
    states = shot_states(plan)
    videos = {shot.id: _video_path(spec, states[shot.id].entry) for shot in spec.shots}
    frames = {i: _key_frames(v) if v is not None else None for i, v in videos.items()}
    cards = [
        _card(number, shot, states[shot.id], videos[shot.id], frames, spec, out)
        for number, shot in enumerate(spec.shots, start=1)
    ]
    return _page(spec, plan, states, "\n".join(cards))


def _video_path(spec: LoadedSpec, entry: LockEntry | None) -> Path | None:
    if entry is None or entry.output is None:
        return None
    path = spec.project_dir / entry.output.path
    return path if path.is_file() else None


# -- frames ------------------------------------------------------------------------------


def _key_frames(path: Path) -> _Frames | None:
    """The first, middle and last frames, decoded in one pass; None when it does not decode."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = stream.frames or _estimated_frames(stream)
            middle_at = total // 2
            first = middle = last = None
            for index, frame in enumerate(container.decode(stream)):
                if index == 0:
                    first = _frame_jpeg(frame)
                if index == middle_at and total:
                    middle = _frame_jpeg(frame)
                last = frame
            if first is None or last is None:
                return None
            end = _frame_jpeg(last)
            return _Frames(first, middle or end, end)
    except (av.FFmpegError, OSError, IndexError):
        return None


def _estimated_frames(stream: Any) -> int:
    """Frames by duration x rate, for containers whose header does not count them."""
    if stream.duration is None or stream.time_base is None or not stream.average_rate:
        return 0
    return int(stream.duration * stream.time_base * stream.average_rate)


def _frame_jpeg(frame: Any) -> str:
    return _jpeg(frame.to_image())


def _jpeg(image: Any, width: int = THUMB_WIDTH) -> str:
    from PIL import Image

    image = image.convert("RGB")
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=_JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_thumb(media: LocalMedia) -> str | None:
    from PIL import Image, ImageOps

    try:
        with Image.open(media.path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((REF_THUMB * 2, REF_THUMB * 2))
            return _jpeg(image, REF_THUMB * 2)
    except Exception:
        # Pillow raises many types for what it cannot read; the name is shown either way.
        return None


# -- HTML ----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _relative_url(target: Path, page: Path) -> str:
    rel = os.path.relpath(target.resolve(), page.resolve().parent)
    return quote(Path(rel).as_posix())


def _credits(n: int) -> str:
    return f"{n:,}"


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


def _reference_thumb(media: Media, frames: Mapping[str, _Frames | None]) -> str | None:
    """A small picture of an image reference: the file, or the other shot's frame."""
    match media:
        case LocalMedia():
            return _image_thumb(media) if media.kind == "image" else None
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


def _references(shot: Shot, frames: Mapping[str, _Frames | None]) -> str:
    items = []
    for field, media in shot.media():
        label = _FRAME_LABELS.get(field) or MEDIA_SLOTS[field].kind
        uri = _reference_thumb(media, frames)
        thumb = f'<img class="ref-thumb" src="{_e(uri)}" alt="">' if uri else ""
        items.append(
            f'<li class="ref">{thumb}<span class="ref-kind">{_e(label)}</span>'
            f'<span class="ref-name">{_e(_media_name(media))}</span></li>'
        )
    if not items:
        return '<p class="muted none">No references.</p>'
    return '<ul class="refs">' + "".join(items) + "</ul>"


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows)


def _card(
    number: int,
    shot: Shot,
    state: ShotState,
    video: Path | None,
    all_frames: Mapping[str, _Frames | None],
    spec: LoadedSpec,
    out: Path,
) -> str:
    colour = marker_colour(number - 1)
    entry = state.entry
    badge = _BADGE[state.state]
    frames = all_frames[shot.id]
    if frames is not None:
        strip = "".join(
            f'<figure><img src="{_e(uri)}" alt="{_e(label)} frame of {_e(shot.id)}">'
            f"<figcaption>{_e(label)}</figcaption></figure>"
            for label, uri in (
                ("first", frames.first),
                ("middle", frames.middle),
                ("last", frames.last),
            )
        )
    else:
        if video is not None:
            why = "The video does not decode"
        elif entry is not None and entry.output is not None:
            why = "The video file is missing"
        else:
            why = "Not rendered yet"
        strip = f'<figure class="empty"><div>{why}</div></figure>' * 3
    settings = _rows(
        [
            ("model", _e(shot.model)),
            ("duration", "auto" if shot.duration == -1 else _e(f"{shot.duration} s")),
            ("resolution", _e(shot.resolution)),
            ("aspect ratio", _e(shot.aspect_ratio)),
            ("audio", "on" if shot.generate_audio else "off"),
            ("seed", _e(shot.seed) if shot.seed is not None else "random"),
        ]
    )
    render_rows: list[tuple[str, str]] = []
    if entry is not None and entry.output is not None:
        link = (
            f'<a href="{_e(_relative_url(video, out))}">{_e(entry.output.path)}</a>'
            if video is not None
            else f"{_e(entry.output.path)} <em>(missing)</em>"
        )
        render_rows += [
            ("video", link),
            ("length", _e(_seconds(entry.output.duration))),
            ("resolution", _e(entry.output.resolution or "—")),
            ("credits", _e(_credits(entry.credits_used - entry.credits_refunded))),
            ("job", f"<code>{_e(entry.job_id or '—')}</code>"),
        ]
    else:
        render_rows.append(("video", '<span class="muted">none yet</span>'))
    status = ""
    if not state.ready:
        reasons = "".join(f"<li>{_e(r)}</li>" for r in state.reasons)
        status = (
            f'<div class="status status-{badge}"><strong>{_e(str(state.state).capitalize())}'
            f"</strong> — apply would <strong>{_e(state.action.value)}</strong> it."
            f"<ul>{reasons}</ul></div>"
        )
    instance = f'<span class="instance">{_e(shot.instance)}</span>' if shot.instance else ""
    where = f"{_relative_name(spec, shot.location.file)}:{shot.location.line}"
    player = ""
    if video is not None:
        src = _e(_relative_url(video, out))
        player = (
            f'<details class="player"><summary>Play {_e(shot.id)}</summary>'
            f'<video controls preload="none" src="{src}"></video></details>'
        )
    return f"""
<article class="shot" id="shot-{_e(shot.id)}" data-shot-id="{_e(shot.id)}"
         style="--marker: {colour}">
  <header>
    <span class="number">{number}</span>
    <h2>{_e(shot.id)}</h2>{instance}
    <span class="where">{_e(where)}</span>
    <span class="badge badge-{badge}">{_e(state.state)}</span>
  </header>
  <div class="frames">{strip}</div>
  {status}
  <div class="details">
    <section class="prompt"><h3>Prompt</h3><p class="text">{_e(shot.prompt)}</p>
      <h3>References</h3>{_references(shot, all_frames)}</section>
    <section><h3>Settings</h3><dl>{settings}</dl></section>
    <section><h3>Render</h3><dl>{_rows(render_rows)}</dl>{player}</section>
  </div>
</article>"""


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


def _page(spec: LoadedSpec, plan: Plan, states: dict[str, ShotState], cards: str) -> str:
    shots = spec.shots
    ready = sum(1 for s in shots if states[s.id].ready)
    entries = [e for s in shots if (e := states[s.id].entry) is not None]
    running = sum(float(e.output.duration or 0) for e in entries if e.output is not None)
    pending = plan.summary.estimated_credits
    title = f"Storyboard review — {spec.path.name}"
    tiles = [
        ("shots", str(len(shots)), ""),
        ("up to date", f"{ready} / {len(shots)}", "ok" if ready == len(shots) else "warn"),
        ("credits spent", _credits(_net_credits(entries)), ""),
        ("running time", _seconds(round(running, 2)), ""),
        ("to render", f"{_credits(pending)} credits" if pending else "nothing", ""),
    ]
    tile_html = "".join(
        f'<div class="tile {cls}"><div class="value">{_e(value)}</div>'
        f'<div class="label">{_e(label)}</div></div>'
        for label, value, cls in tiles
    )
    empty = '<p class="muted">The storyboard has no shots.</p>' if not shots else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; media-src *; style-src 'unsafe-inline'">
<meta name="generator" content="tchavi-render">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
  <header class="top">
    <p class="kicker">tchavi-render · storyboard review</p>
    <h1>{_e(spec.path.name)}</h1>
    <p class="muted">{_e(spec.path.parent.name)}/{_e(spec.path.name)} ·
      backend <code>{_e(spec.backend)}</code></p>
    <div class="tiles">{tile_html}</div>
  </header>
  {empty}{cards}
</main>
</body>
</html>
"""


_CSS = """
:root {
  --bg: #f4f5f7; --card: #ffffff; --ink: #1d2330; --muted: #667085; --line: #e4e7ec;
  --ok: #067647; --ok-bg: #dcfae6; --warn: #b54708; --warn-bg: #fef0c7;
  --bad: #b42318; --bad-bg: #fee4e2; --new: #175cd3; --new-bg: #d1e9ff;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
        sans-serif;
}
main { max-width: 1180px; margin: 0 auto; padding: 32px 24px 64px; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.top h1 { margin: 0 0 4px; font-size: 28px; letter-spacing: -0.01em; }
.kicker { margin: 0 0 6px; color: var(--muted); font-size: 12px; text-transform: uppercase;
          letter-spacing: 0.08em; font-weight: 600; }
.tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 20px 0 28px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
        padding: 14px 16px; }
.tile .value { font-size: 22px; font-weight: 650; }
.tile .label { color: var(--muted); font-size: 13px; }
.tile.ok .value { color: var(--ok); }
.tile.warn .value { color: var(--warn); }
.shot { position: relative; background: var(--card); border: 1px solid var(--line);
        border-radius: 14px; margin: 0 0 22px; padding: 18px 22px 20px 30px;
        box-shadow: 0 1px 2px rgba(16, 24, 40, 0.05); overflow: hidden; }
.shot::before { content: ""; position: absolute; left: 0; top: 0; bottom: 0; width: 10px;
                background: var(--marker); }
.shot > header { display: flex; align-items: center; gap: 12px; margin-bottom: 14px; }
.number { display: inline-flex; align-items: center; justify-content: center;
          min-width: 30px; height: 30px; border-radius: 15px; background: var(--ink);
          color: #fff; font-weight: 650; font-size: 14px; padding: 0 8px; }
.shot h2 { margin: 0; font-size: 19px; word-break: break-all; }
.instance { color: var(--muted); font-size: 13px; }
.where { color: var(--muted); font-size: 13px; margin-left: auto; }
.badge { border-radius: 999px; padding: 3px 12px; font-size: 13px; font-weight: 600;
         white-space: nowrap; }
.badge-ok { color: var(--ok); background: var(--ok-bg); }
.badge-stale { color: var(--warn); background: var(--warn-bg); }
.badge-missing { color: var(--bad); background: var(--bad-bg); }
.badge-new { color: var(--new); background: var(--new-bg); }
.frames { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; }
.frames figure { margin: 0; }
.frames img, .frames .empty div { display: block; width: 100%; aspect-ratio: 16 / 9;
  object-fit: contain; background: #0c0f14; border-radius: 8px; }
.frames .empty div { display: flex; align-items: center; justify-content: center;
  color: #98a2b3; font-size: 14px; background: repeating-linear-gradient(45deg, #eef0f3,
  #eef0f3 10px, #f7f8fa 10px, #f7f8fa 20px); border: 1px dashed #d0d5dd; }
.frames figcaption { color: var(--muted); font-size: 12px; margin-top: 4px;
  text-transform: uppercase; letter-spacing: 0.06em; }
.status { margin: 14px 0 0; border-radius: 10px; padding: 10px 14px; font-size: 14px; }
.status ul { margin: 6px 0 0; padding-left: 20px; }
.status-stale { background: var(--warn-bg); color: #7a2e0e; }
.status-missing { background: var(--bad-bg); color: #7a271a; }
.status-new { background: var(--new-bg); color: #194185; }
.details { display: grid; grid-template-columns: 1.6fr 1fr 1fr; gap: 24px; margin-top: 16px; }
.details h3 { margin: 0 0 6px; font-size: 12px; color: var(--muted);
  text-transform: uppercase; letter-spacing: 0.08em; }
.prompt .text { margin: 0 0 14px; white-space: pre-wrap; overflow-wrap: anywhere;
  background: #f9fafb; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 14px; margin: 0;
     font-size: 14px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.refs { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 8px; }
.ref { display: flex; align-items: center; gap: 8px; border: 1px solid var(--line);
       border-radius: 8px; padding: 4px 10px 4px 4px; font-size: 13px; }
.ref-thumb { width: 40px; height: 40px; object-fit: cover; border-radius: 6px; }
.ref-kind { color: var(--muted); }
.ref-name { overflow-wrap: anywhere; }
.player { margin-top: 10px; font-size: 14px; }
.player video { width: 100%; margin-top: 8px; border-radius: 8px; background: #000; }
a { color: var(--new); }
@media (max-width: 820px) {
  .tiles { grid-template-columns: repeat(2, 1fr); }
  .details { grid-template-columns: 1fr; }
}
"""
