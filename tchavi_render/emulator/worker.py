"""The render pool: turns submitted jobs into files and outcomes, in a few threads.

PyAV releases the GIL while encoding, so threads render in parallel. A job's outcome is
recorded only after its file is fully written (and renamed into place); it becomes
visible no earlier than `latency` seconds after submission, without holding a worker
while it waits (see `Store.settle`). On shutdown, renders in flight are abandoned
cleanly and resume when an emulator starts on the same data dir.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tchavi_render.background import background_pool
from tchavi_render.emulator.faults import FAILURE_MESSAGES
from tchavi_render.emulator.store import JobRow, Store
from tchavi_render.emulator.video import (
    RenderCancelled,
    RenderSpec,
    frame_size_for,
    render_video,
)

__all__ = ["RENDER_WORKERS", "RenderPool"]

RENDER_WORKERS = 2
log = logging.getLogger("tchavi_render.emulator")


class RenderPool:
    """Renders jobs from the store, at most RENDER_WORKERS at a time."""

    def __init__(
        self,
        store: Store,
        *,
        latency: float,
        url_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._latency = latency
        self._url_ttl = url_ttl
        self._clock = clock
        self._stopping = threading.Event()
        # At lower priority: a render has until its latency is over, requests are answered now.
        self._executor = background_pool(RENDER_WORKERS, "tchavi-render")

    def submit(self, job_id: str) -> None:
        self._executor.submit(self._run, job_id)

    def resume(self) -> int:
        """Queue every job left unfinished by an earlier run; returns how many."""
        unfinished = self._store.unfinished_jobs()
        for job_id in unfinished:
            self.submit(job_id)
        return len(unfinished)

    def close(self) -> None:
        """Stop: renders in flight are abandoned (their jobs resume on the next start)."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        if self._stopping.is_set():
            return
        job = self._store.job(job_id)
        if job is None or job.outcome is not None:
            return
        self._store.mark_processing(job_id)
        try:
            self._finish(job)
        except RenderCancelled:
            return
        except Exception as exc:
            # A render that breaks is the service's failure, billed back like any other.
            log.exception("render of %s failed", job_id)
            self._store.record_outcome(
                job_id,
                "failed",
                self._visible_at(job),
                fail_code="upstream_error",
                fail_message=f"Rendering failed ({type(exc).__name__}). The credits were refunded.",
            )
        self._store.settle(self._clock())

    def _visible_at(self, job: JobRow) -> float:
        return max(self._clock(), job.created_at + self._latency)

    def _finish(self, job: JobRow) -> None:
        if job.fail_code is not None:
            message = job.fail_message or FAILURE_MESSAGES.get(job.fail_code, "The job failed.")
            self._store.record_outcome(
                job.id, "failed", self._visible_at(job), fail_message=message
            )
            return
        first = job.media.get("image_url")
        last = job.media.get("last_frame_image_url")
        first_path = None if first is None else self._store.media_dir / first
        last_path = None if last is None else self._store.media_dir / last
        width, height = frame_size_for(
            job.resolution, str(job.params.get("aspect_ratio", "16:9")), first_path
        )
        spec = RenderSpec(
            prompt=str(job.params["prompt"]),
            seed=job.seed,
            duration=job.duration,
            width=width,
            height=height,
            audio=bool(job.params.get("generate_audio", True)),
            first_frame=first_path,
            last_frame=last_path,
        )
        name = f"{job.id}.mp4"
        size = render_video(spec, self._store.videos_dir / name, self._stopping.is_set)
        visible_at = self._visible_at(job)
        self._store.record_outcome(
            job.id,
            "completed",
            visible_at,
            file_name=name,
            file_size=size,
            url_expires_at=visible_at + self._url_ttl,
        )
