"""The frozen values the spec layer hands to the engine: resolved shots and their media."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, assert_never

from tchavi_render.api.models import GENERATION_FIELDS, MEDIA_SLOTS, GenerationParams, MediaKind
from tchavi_render.errors import Problem
from tchavi_render.spec.model import CacheSpec

__all__ = [
    "ID_PATTERN",
    "LoadedSpec",
    "LocalMedia",
    "Location",
    "Media",
    "MediaKind",
    "SequenceItem",
    "Shot",
    "ShotFrame",
    "UrlMedia",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    """Where a node of the spec was written (1-based line and column)."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class LocalMedia:
    """A file inside the project directory, known by the sha256 of its bytes."""

    path: Path  # absolute and resolved
    relpath: str  # POSIX path relative to the project directory
    sha256: str
    size: int
    kind: MediaKind
    duration: float | None = None  # seconds, for video and audio
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class UrlMedia:
    """An http(s) URL, passed to the service as it is."""

    url: str


@dataclass(frozen=True)
class ShotFrame:
    """A frame of another shot's rendered output: "first", "last", or a time in seconds.

    The engine extracts it from the upstream video and serves it like a local image; the
    downstream key includes the upstream output's sha256, so re-rendering the upstream shot
    re-renders the shots that continue it.
    """

    shot: str
    frame: str | float  # "first" | "last" | seconds from the start

    @property
    def selector(self) -> str:
        return self.frame if isinstance(self.frame, str) else f"{self.frame:g}s"


Media = LocalMedia | UrlMedia | ShotFrame

MEDIA_LIST_FIELDS: tuple[str, ...] = tuple(n for n, s in MEDIA_SLOTS.items() if s.many)
MEDIA_ONE_FIELDS: tuple[str, ...] = tuple(n for n, s in MEDIA_SLOTS.items() if not s.many)
# model, prompt, duration...: the fields a Shot carries as they are sent
SCALAR_FIELDS: tuple[str, ...] = tuple(n for n in GENERATION_FIELDS if n not in MEDIA_SLOTS)
# A shot id once rendered; the lock file's keys are checked against it too.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Shot:
    """One generation request after templating, with defaults applied and media resolved."""

    id: str
    index: int  # position in storyboard order
    location: Location  # where the shot's mapping starts
    model: str
    prompt: str
    duration: int = 5
    resolution: str = "480p"
    aspect_ratio: str = "16:9"
    generate_audio: bool = True
    seed: int | None = None
    image_url: Media | None = None
    last_frame_image_url: Media | None = None
    reference_images: tuple[Media, ...] = ()
    reference_videos: tuple[Media, ...] = ()
    reference_audios: tuple[Media, ...] = ()
    # "ratio='16:9'" for a for_each instance, "" otherwise; named in messages.
    instance: str = ""
    # `takes: N` renders N versions, `pick: i` is the one that is the shot; neither is sent.
    # The engine turns a shot of several takes into one Shot per take (engine/takes.py):
    # `take` is then its number and `seed` the take's own.
    takes: int = 1
    pick: int = 1
    take: int | None = None

    def media(self) -> Iterator[tuple[str, Media]]:
        """Every (field, media) pair of the shot, in request order."""
        for name in MEDIA_ONE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                yield name, value
        for name in MEDIA_LIST_FIELDS:
            for item in getattr(self, name):
                yield name, item

    @property
    def upstream(self) -> tuple[str, ...]:
        """The shots whose output frames this shot uses, in first-use order."""
        seen: dict[str, None] = {}
        for _, media in self.media():
            match media:
                case ShotFrame(shot=upstream):
                    seen.setdefault(upstream)
                case LocalMedia() | UrlMedia():
                    pass
                case _:
                    assert_never(media)
        return tuple(seen)

    def local_media(self) -> Iterator[LocalMedia]:
        """Every local file the shot references, in request order."""
        for _, media in self.media():
            match media:
                case LocalMedia():
                    yield media
                case UrlMedia() | ShotFrame():
                    pass
                case _:
                    assert_never(media)

    def request(
        self, media_value: Callable[[Media], T]
    ) -> dict[str, str | int | bool | T | list[T]]:
        """The request body with every default written out; each media item is replaced by
        `media_value(item)` (a URL for the wire, a digest for the key, a dict for display)."""
        body: dict[str, str | int | bool | T | list[T]] = {}
        for name in SCALAR_FIELDS:
            value = getattr(self, name)
            if value is not None:  # only `seed` is ever unset: the service then picks one
                body[name] = value
        for name in MEDIA_ONE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                body[name] = media_value(value)
        for name in MEDIA_LIST_FIELDS:
            items = getattr(self, name)
            if items:
                body[name] = [media_value(m) for m in items]
        return body

    def params(self, url_for: Callable[[Media], str]) -> GenerationParams:
        """The validated wire request, local media replaced by the URLs `url_for` gives."""
        return GenerationParams.model_validate(self.request(url_for))


@dataclass(frozen=True)
class SequenceItem:
    """One clip of the final cut: a shot, whole or trimmed to [start, end) seconds."""

    shot_id: str
    trim: tuple[float, float] | None
    location: Location  # the `sequence:` item, or the shot when there is no sequence


@dataclass(frozen=True)
class LoadedSpec:
    """A whole valid spec: its shots in storyboard order and what it was read from."""

    path: Path  # the spec file, absolute
    project_dir: Path  # the directory holding the spec; media and includes stay inside it
    backend: str  # "tchavi" or "local"
    output_dir: Path  # absolute
    shots: tuple[Shot, ...]
    warnings: tuple[Problem, ...] = ()
    # every file the shots depend on besides media: the spec, var files, templates (each
    # as resolved and as named, so that re-pointing a symlink shows in its stat)
    sources: tuple[Path, ...] = field(default=())
    # every local media file the spec names, as named (the shots' and the assets', used or
    # not); a shot's LocalMedia.path is where it resolves to
    media_files: tuple[Path, ...] = field(default=())
    # the final cut: `sequence:` as written, else every shot whole in storyboard order
    sequence: tuple[SequenceItem, ...] = field(default=())
    cache: CacheSpec | None = None  # the `cache:` section: a remote cache (see engine/remote.py)

    def shot(self, shot_id: str) -> Shot:
        for shot in self.shots:
            if shot.id == shot_id:
                return shot
        raise KeyError(shot_id)
