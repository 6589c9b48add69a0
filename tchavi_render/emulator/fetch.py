"""The media a request references: fetched at submission, kept by sha256, checked like the service.

A URL that cannot be fetched is not the caller's fault as far as the request goes: the job
is created and then fails (refunded). Media that arrives but is not what the field needs
(not an image, reference videos longer than 15 s in total) is a 400.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
from PIL import Image

from tchavi_render.api.models import MAX_REFERENCE_VIDEO_SECONDS, GenerationParams
from tchavi_render.atomic import atomic_write_bytes

__all__ = [
    "FETCH_TIMEOUT",
    "MAX_MEDIA_BYTES",
    "Fetched",
    "MediaCheck",
    "check_media",
    "fetch_all",
    "media_urls",
    "store_media",
]

FETCH_TIMEOUT = 5.0
MAX_MEDIA_BYTES = 64 * 1024 * 1024

IMAGE_FIELDS = ("image_url", "last_frame_image_url", "reference_images")


@dataclass(frozen=True)
class Fetched:
    """One URL's fetch: the stored file (by sha256), or why it could not be fetched."""

    url: str
    sha256: str | None = None
    path: Path | None = None
    error: str | None = None
    too_large: bool = False


@dataclass(frozen=True)
class MediaCheck:
    """The verdict on a request's media."""

    problems: list[tuple[str, str]]  # (param, message): answer 400
    unreachable: list[str]  # what could not be fetched: the job fails (upstream_error)
    frames: dict[str, str]  # image_url / last_frame_image_url -> sha256 of the stored image


def media_urls(params: GenerationParams) -> list[tuple[str, str]]:
    """Every (field, url) the request references, in field order."""
    out: list[tuple[str, str]] = []
    for field in ("image_url", "last_frame_image_url"):
        url = getattr(params, field)
        if url is not None:
            out.append((field, url))
    for field in ("reference_images", "reference_videos", "reference_audios"):
        out.extend((field, url) for url in getattr(params, field) or ())
    return out


def store_media(data: bytes, media_dir: Path) -> tuple[str, Path]:
    """Keep bytes under their sha256 (temp file, fsync, rename); returns (sha256, path)."""
    digest = hashlib.sha256(data).hexdigest()
    path = media_dir / digest
    if not path.exists():
        atomic_write_bytes(path, data)
    return digest, path


async def _fetch(client: httpx.AsyncClient, url: str, media_dir: Path) -> Fetched:
    try:
        async with client.stream("GET", url) as response:
            if response.status_code >= 400:
                return Fetched(url, error=f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_MEDIA_BYTES:
                    return Fetched(url, too_large=True)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        detail = str(exc)
        return Fetched(
            url, error=f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        )
    digest, path = await asyncio.to_thread(store_media, b"".join(chunks), media_dir)
    return Fetched(url, sha256=digest, path=path)


async def fetch_all(urls: list[str], media_dir: Path) -> dict[str, Fetched]:
    """Fetch every distinct URL concurrently, each with a short timeout."""
    distinct = list(dict.fromkeys(urls))
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True) as client:
        results = await asyncio.gather(*(_fetch(client, url, media_dir) for url in distinct))
    return dict(zip(distinct, results, strict=True))


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
    except Exception:
        return False
    return True


def _media_seconds(path: Path, kind: str) -> float | None:
    """Length in seconds of the first `kind` ("video"/"audio") stream, or None if there is none."""
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == kind]
            if not streams:
                return None
            stream = streams[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return float(container.duration / av.time_base)
            return 0.0
    except Exception:
        return None


def check_media(params: GenerationParams, fetched: dict[str, Fetched]) -> MediaCheck:
    """Check fetched media against what each field needs. Blocking: run it in a thread."""
    problems: list[tuple[str, str]] = []
    unreachable: list[str] = []
    frames: dict[str, str] = {}
    video_seconds = 0.0  # of the reference videos that could be fetched
    for field, url in media_urls(params):
        got = fetched[url]
        if got.too_large:
            problems.append((field, f"{url} is larger than {MAX_MEDIA_BYTES // 2**20} MB"))
            continue
        if got.path is None or got.sha256 is None:
            unreachable.append(f"{field} {url} could not be fetched ({got.error})")
            continue
        if field in IMAGE_FIELDS:
            if not _is_image(got.path):
                problems.append((field, f"{url} is not an image this service can read"))
            elif field != "reference_images":
                frames[field] = got.sha256
        elif field == "reference_videos":
            seconds = _media_seconds(got.path, "video")
            if seconds is None:
                problems.append((field, f"{url} is not a video this service can read"))
            else:
                video_seconds += seconds
        elif _media_seconds(got.path, "audio") is None:
            problems.append((field, f"{url} is not audio this service can read"))
    if video_seconds > MAX_REFERENCE_VIDEO_SECONDS:
        problems.append(
            (
                "reference_videos",
                f"total length {video_seconds:.1f} s exceeds"
                f" {MAX_REFERENCE_VIDEO_SECONDS:g} s; use shorter or fewer reference videos",
            )
        )
    return MediaCheck(problems, unreachable, frames)
