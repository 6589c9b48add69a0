"""A completed job's video: downloaded, checked frame by frame, stored in the cache."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tchavi_render.api.models import Job
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.errors import ApiError, DownloadError, MediaExpired
from tchavi_render.failpoints import failpoint

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = ["Background", "check_video", "download_render", "store_render"]

# Runs a blocking function in apply's background pool and awaits it.
Background = Callable[..., Awaitable[Any]]


async def download_render(
    client: AsyncTchaviClient,
    cache: RenderCache,
    key: str,
    job: Job,
    background: Background,
    *,
    share: bool = True,
) -> CacheRecord:
    """Download into the cache's temp dir, verify it decodes, then store it by digest (and
    share it, unless `share` is False). A truncated or corrupt download is fetched again
    (the bytes are paid for)."""
    last: Exception | None = None
    for _attempt in range(3):
        tmp = cache.tmp_dir / f"dl-{uuid.uuid4().hex}.mp4"
        try:
            sha256, size = await client.download(job, tmp)
            # Decoding every frame and storing (perhaps uploading) take a while: in the
            # background, so that polls and submits go on meanwhile.
            record: CacheRecord = await background(
                store_render, cache, key, job, tmp, sha256, size, share
            )
            return record
        except MediaExpired:
            tmp.unlink(missing_ok=True)
            raise
        except (DownloadError, ApiError) as exc:
            tmp.unlink(missing_ok=True)
            last = exc
    assert last is not None
    raise last


def store_render(
    cache: RenderCache, key: str, job: Job, tmp: Path, sha256: str, size: int, share: bool = True
) -> CacheRecord:
    """Check a downloaded video, then make it the cache's render of `key`."""
    check_video(tmp)
    failpoint("after-download")
    cache.add_object(tmp, sha256)
    output = job.output
    record = CacheRecord(
        key=key,
        sha256=sha256,
        bytes=size,
        job_id=job.id,
        model=job.model or "",
        credits_used=job.credits_used,
        credits_refunded=job.credits_refunded,
        duration=output.duration if output else None,
        resolution=output.resolution if output else None,
        created=time.time(),
    )
    cache.put(record, share=share)
    failpoint("after-cache")
    return record


def check_video(path: Path) -> None:
    """The file must be a video whose every frame decodes without error: the API gives no
    checksum, and a body with the right length but damaged bytes opens fine as a container
    (FFmpeg conceals decoding errors unless told to fail on them)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DownloadError(f"{path.name}: the download has no video stream")
            stream = container.streams.video[0]
            stream.codec_context.options = {"err_detect": "explode"}
            if sum(1 for _ in container.decode(stream)) == 0:
                raise DownloadError(f"{path.name}: the download has no video frames")
    except av.error.FFmpegError as exc:
        raise DownloadError(f"the download is not a readable video ({exc})") from None
