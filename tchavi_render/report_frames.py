"""The review page's pictures: a video's first, middle and last frames and an image's
thumbnail, as JPEG data URIs (PyAV and Pillow are imported only when a picture is drawn)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tchavi_render.spec.shot import LocalMedia

__all__ = ["THUMB_WIDTH", "Frames", "frame_row", "image_thumb", "key_frames"]

THUMB_WIDTH = 480  # px: sharp at the ~350 px a frame is shown at, on a 2x screen too
REF_THUMB = 112
_JPEG_QUALITY = 82


@dataclass(frozen=True)
class Frames:
    """A video's key frames, as data: URIs."""

    first: str
    middle: str
    last: str


def key_frames(path: Path) -> Frames | None:
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
            return Frames(first, middle or end, end)
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


def image_thumb(media: LocalMedia) -> str | None:
    """A small picture of an image file, or None when Pillow cannot read it."""
    from PIL import Image, ImageOps

    try:
        with Image.open(media.path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((REF_THUMB * 2, REF_THUMB * 2))
            return _jpeg(image, REF_THUMB * 2)
    except Exception:
        # Pillow raises many types for what it cannot read; the name is shown either way.
        return None


def frame_row(frames: Frames | None) -> tuple[tuple[str, str], ...]:
    """(which, data: URI) of each key frame, as a card lists them; empty when none."""
    if frames is None:
        return ()
    return (("first", frames.first), ("middle", frames.middle), ("last", frames.last))
