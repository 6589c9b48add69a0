"""Local media: kind decoded by Pillow or PyAV (never guessed from a name), sha256, stat memo."""

from __future__ import annotations

import json
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tchavi_render.atomic import atomic_open, atomic_write_bytes
from tchavi_render.digest import sha256_file

if TYPE_CHECKING:
    # Only for annotations: importing the spec package here would be circular at runtime.
    from tchavi_render.spec.shot import MediaKind

__all__ = ["MediaIndex", "MediaInfo", "extract_frame", "probe_media"]

STORE_VERSION = 1
# Entries kept in the store at most; those seen by this process are kept first.
MAX_STORE_ENTRIES = 100_000
# FFmpeg demuxers that accept almost anything (plain text) and so prove nothing.
_CATCH_ALL_FORMATS = frozenset({"tty"})
_STILL_FORMATS_SUFFIX = "_pipe"


@dataclass(frozen=True)
class MediaInfo:
    """What a local file holds. `kind` is None when it decodes as no image, video or audio."""

    sha256: str
    size: int
    kind: MediaKind | None
    duration: float | None = None  # seconds, for video and audio
    width: int | None = None
    height: int | None = None


def probe_media(path: Path) -> tuple[MediaKind | None, float | None, int | None, int | None]:
    """(kind, duration, width, height) by decoding: Pillow for images, then PyAV."""
    image = _probe_image(path)
    if image is not None:
        return image
    return _probe_av(path)


def _probe_image(path: Path) -> tuple[MediaKind, None, int, int] | None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.load()
                width, height = image.size
    except Exception:
        # Pillow raises many types (OSError, SyntaxError, ValueError, DecompressionBombError)
        # for what it cannot read; all of them mean "not an image Pillow decodes".
        return None
    return "image", None, width, height


def _probe_av(path: Path) -> tuple[MediaKind | None, float | None, int | None, int | None]:
    import av

    try:
        with av.open(str(path), mode="r") as container:
            if container.format.name in _CATCH_ALL_FORMATS:
                return None, None, None, None
            videos = list(container.streams.video)
            audios = list(container.streams.audio)
            if videos:
                stream = videos[0]
                frame = next(container.decode(stream), None)
                if frame is None:
                    return None, None, None, None
                width, height = frame.width, frame.height
                still = container.format.name.endswith(_STILL_FORMATS_SUFFIX) or (
                    container.format.name == "image2"
                )
                if still:
                    return "image", None, width, height
                return "video", _duration(container, stream), width, height
            if audios:
                sound = audios[0]
                if next(container.decode(sound), None) is None:
                    return None, None, None, None
                return "audio", _duration(container, sound), None, None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError, StopIteration):
        return None, None, None, None
    return None, None, None, None


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    # No header says it: the end of the last packet does.
    end = 0.0
    container.seek(0)
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end or None


@dataclass(frozen=True)
class _Entry:
    size: int
    mtime_ns: int
    inode: int
    info: MediaInfo
    probed: bool = True  # False: only the digest is known (kind and duration were not read)

    def fresh(self, stat: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (
            stat.st_size,
            stat.st_mtime_ns,
            stat.st_ino,
        )

    def as_json(self) -> list[Any]:
        i = self.info
        out: list[Any] = [
            self.size,
            self.mtime_ns,
            self.inode,
            i.sha256,
            i.kind,
            i.duration,
            i.width,
            i.height,
        ]
        return out if self.probed else [*out, False]

    @staticmethod
    def from_json(raw: Any) -> _Entry:
        probed = True
        if isinstance(raw, list) and len(raw) == 9:
            *raw, probed = raw
            if not isinstance(probed, bool):
                raise ValueError("bad flag")
        size, mtime_ns, inode, sha, kind, duration, width, height = raw
        if not (isinstance(size, int) and isinstance(mtime_ns, int) and isinstance(inode, int)):
            raise ValueError("bad stat")
        if (
            not isinstance(sha, str)
            or len(sha) != 64
            or kind not in ("image", "video", "audio", None)
        ):
            raise ValueError("bad entry")
        if duration is not None and not isinstance(duration, int | float):
            raise ValueError("bad duration")
        if not all(v is None or isinstance(v, int) for v in (width, height)):
            raise ValueError("bad size")
        info = MediaInfo(sha, size, kind, duration, width, height)
        return _Entry(size, mtime_ns, inode, info, probed)


class MediaIndex:
    """Media facts remembered by (absolute path, size, mtime_ns, inode).

    With a `store` path, the memo persists across runs in one small JSON file, written
    atomically by `save()`; a missing or corrupt store starts empty.
    """

    def __init__(self, store: Path | None = None) -> None:
        self.store = store
        self._entries: dict[str, _Entry] | None = None
        self._seen: set[str] = set()
        self._dirty = False
        self._lock = threading.Lock()

    def info(self, path: Path) -> MediaInfo:
        """Facts about the file at `path`; raises OSError when it cannot be read."""
        absolute = os.path.abspath(path)
        stat = os.stat(absolute)
        with self._lock:
            entry = self._load().get(absolute)
            self._seen.add(absolute)
            known = entry is not None and entry.fresh(stat)
            if known and entry is not None and entry.probed:
                return entry.info
        sha = entry.info.sha256 if known and entry is not None else sha256_file(Path(absolute))
        kind, duration, width, height = probe_media(Path(absolute))
        info = MediaInfo(sha, stat.st_size, kind, duration, width, height)
        with self._lock:
            self._load()[absolute] = _Entry(stat.st_size, stat.st_mtime_ns, stat.st_ino, info)
            self._dirty = True
        return info

    def sha256(self, path: Path) -> str:
        """The digest of the file at `path`, without decoding it (outputs are checked this
        way: a probe costs a hundred times a hash); raises OSError when it cannot be read."""
        absolute = os.path.abspath(path)
        stat = os.stat(absolute)
        with self._lock:
            entry = self._load().get(absolute)
            self._seen.add(absolute)
            if entry is not None and entry.fresh(stat):
                return entry.info.sha256
        sha = sha256_file(Path(absolute))
        info = MediaInfo(sha, stat.st_size, None, None, None, None)
        with self._lock:
            self._load()[absolute] = _Entry(
                stat.st_size, stat.st_mtime_ns, stat.st_ino, info, probed=False
            )
            self._dirty = True
        return sha

    def save(self) -> None:
        """Persist the memo (one atomic write) when a store is set and something changed."""
        if self.store is None:
            return
        with self._lock:
            if not self._dirty or self._entries is None:
                return
            entries = self._entries
            if len(entries) > MAX_STORE_ENTRIES:
                keep = [k for k in entries if k in self._seen]
                keep += [k for k in entries if k not in self._seen]
                entries = {k: entries[k] for k in keep[:MAX_STORE_ENTRIES]}
            payload = {
                "version": STORE_VERSION,
                "entries": {k: e.as_json() for k, e in sorted(entries.items())},
            }
            atomic_write_bytes(self.store, json.dumps(payload, separators=(",", ":")).encode())
            self._dirty = False

    def _load(self) -> dict[str, _Entry]:
        if self._entries is None:
            self._entries = _read_store(self.store) if self.store is not None else {}
        return self._entries


def _read_store(store: Path) -> dict[str, _Entry]:
    try:
        raw = json.loads(store.read_bytes())
        if not isinstance(raw, dict) or raw.get("version") != STORE_VERSION:
            return {}
        entries = raw.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {str(k): _Entry.from_json(v) for k, v in entries.items()}
    except (OSError, ValueError, TypeError):
        # Missing, unreadable or corrupt: a memo is only a shortcut, so start afresh.
        return {}


def extract_frame(video: Path, which: str | float, target: Path) -> None:
    """Write one frame of `video` to `target` as PNG (atomically): "first", "last", or the
    frame shown at `which` seconds (the last one when the video is shorter)."""
    import av

    chosen: Any = None
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            chosen = frame
            if which == "first":
                break
            if isinstance(which, float) and frame.time is not None and frame.time >= which:
                break
    if chosen is None:
        raise ValueError(f"{video.name} has no video frame")
    image = chosen.to_image()
    with atomic_open(target) as handle:
        image.save(handle, format="PNG")
