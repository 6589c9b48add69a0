"""Emulator fixtures: real emulators on loopback, a client per test, media files, video probing."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image, ImageStat

from tchavi_render.emulator import EmulatorConfig, RunningEmulator, running_emulator
from tests.support.waiting import wait_until

_keys = itertools.count()
StartEmulator = Callable[..., AbstractContextManager[RunningEmulator]]


@pytest.fixture
def start_emulator(tmp_path: Path) -> StartEmulator:
    """start_emulator(clock=time.time, **config) -> a context manager serving an emulator on
    loopback.

    The data dir defaults to one per test, so two calls in a test share jobs and files.
    """

    @contextmanager
    def start(
        clock: Callable[[], float] = time.time, **overrides: Any
    ) -> Iterator[RunningEmulator]:
        options: dict[str, Any] = {"data_dir": tmp_path / "emulator", "credits": 100_000}
        options.update(overrides)
        with running_emulator(EmulatorConfig(**options), clock=clock) as emu:
            yield emu

    return start


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One plain emulator for a module's tests; each test uses its own key (own account).
    All of them come from one address, so the service's limit per address is off here (the
    tests of that limit start their own emulator): a slow machine polls more per minute."""
    config = EmulatorConfig(
        data_dir=tmp_path_factory.mktemp("shared"), credits=100_000, ip_rpm=None
    )
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture
def api_key() -> str:
    return f"sk-tch_test{next(_keys):04d}"


def api_client(emu: RunningEmulator, key: str | None) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=emu.base_url, headers=headers, timeout=30)


@pytest.fixture
def client(shared_emulator: RunningEmulator, api_key: str) -> Iterator[httpx.Client]:
    with api_client(shared_emulator, api_key) as http:
        yield http


def body(**fields: Any) -> dict[str, Any]:
    """A valid request (1 s, 480p) with `fields` changed; a None value drops the field."""
    request: dict[str, Any] = {
        "model": "seedance-2",
        "prompt": "a lighthouse at dusk",
        "duration": 1,
    }
    request.update(fields)
    return {k: v for k, v in request.items() if v is not None}


def submit(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = http.post("/videos/generations", json=body(**fields))
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_for(http: httpx.Client, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll a job until it completes or fails."""

    def finished() -> dict[str, Any] | None:
        response = http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job if job["status"] in ("completed", "failed") else None

    # Every key shares the per-address limit (500 a minute): a module's renders polled at
    # 50 a second ran into it when a loaded runner made the renders slow.
    job = wait_until(finished, timeout, f"job {job_id} to complete or fail", interval=0.1)
    assert job is not None
    return job


def rendered(emu: RunningEmulator) -> list[Path]:
    """The video files the emulator has written (a job's file exists before its outcome is
    visible)."""
    return list(emu.config.data_dir.glob("videos/*.mp4"))


def render(http: httpx.Client, **fields: Any) -> tuple[dict[str, Any], bytes]:
    """Submit, wait for completion, download: (job, video bytes)."""
    job = wait_for(http, submit(http, **fields)["id"])
    assert job["status"] == "completed", job
    video = httpx.get(job["output"]["video_url"], timeout=30)
    assert video.status_code == 200
    return job, video.content


@dataclass(frozen=True)
class Probe:
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool
    codecs: tuple[str, ...]  # video codec, pixel format, then the audio codec if any
    first: Image.Image
    last: Image.Image


def probe(data: bytes, tmp_path: Path) -> Probe:
    """Decode a video with PyAV: size, rate, duration, audio, first and last frames."""
    path = tmp_path / f"probe-{next(_keys)}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        has_audio = bool(container.streams.audio)
        duration = float(container.duration or 0) / av.time_base
        rate = float(video.average_rate or 0)
        codecs = (video.codec_context.name, str(video.codec_context.pix_fmt))
        codecs += tuple(stream.codec_context.name for stream in container.streams.audio)
        first = last = None
        for frame in container.decode(video=0):
            first = first or frame.to_image()
            last = frame
        assert first is not None and last is not None
    return Probe(
        first.width, first.height, rate, duration, has_audio, codecs, first, last.to_image()
    )


def mean_rgb(image: Image.Image) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(image.convert("RGB")).mean)


def png(tmp_path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    path = tmp_path / f"image-{next(_keys)}.png"
    Image.new("RGB", size, colour).save(path)
    return path
