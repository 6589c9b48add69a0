"""The client end to end against the real emulator over loopback HTTP, both twins."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tchavi_render.api import AsyncTchaviClient, TchaviClient
from tchavi_render.emulator import EmulatorConfig, RunningEmulator, running_emulator
from tchavi_render.errors import InsufficientCredits, InvalidApiKey, MediaExpired
from tests.api.fakes import Blocking
from tests.support.clock import MovableClock

KEY = "sk-tch_e2e_c11ent_key"
DEFAULTS: dict[str, Any] = {
    "latency": 0.0,
    "fail_rate": 0.0,
    "error_rate": 0.0,
    "rpm": None,
    "credits": 1_000_000,
    "api_key": None,
    "url_ttl": 3600.0,
    "fault_seed": 1,
}


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The real HTTP transport, noting each answer as (method, path, status)."""

    def __init__(self, asynchronous: bool) -> None:
        self.answers: list[tuple[str, str, int]] = []
        self._sync = None if asynchronous else httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport() if asynchronous else None

    def _note(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        self.answers.append((request.method, path, response.status_code))
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self._sync is not None
        return self._note(request, self._sync.handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self._async is not None
        return self._note(request, await self._async.handle_async_request(request))

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()

    def statuses(self, method: str, prefix: str = "") -> list[int]:
        return [s for m, p, s in self.answers if m == method and p.startswith(prefix)]


class Stop(Exception):
    """Raised by a sleep seam to end a test at the moment the client decides to wait."""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Callable[..., RunningEmulator]]:
    with contextlib.ExitStack() as stack:

        def start(clock: Callable[[], float] = time.time, **overrides: Any) -> RunningEmulator:
            config = EmulatorConfig(data_dir=tmp_path / "emulator", **{**DEFAULTS, **overrides})
            return stack.enter_context(running_emulator(config, clock=clock))

        yield start


Connect = Callable[..., tuple[Any, Recorder]]


@pytest.fixture
def connect(twin: str) -> Iterator[Connect]:
    """connect(emu, sleep=None, **kwargs): a client of that twin on a recording transport.

    `sleep` is a plain function of seconds for both twins (the async one awaits nothing).
    """
    closers: list[Callable[[], None]] = []
    runner = asyncio.Runner()

    def make(
        emu: RunningEmulator, sleep: Callable[[float], None] | None = None, **kwargs: Any
    ) -> tuple[Any, Recorder]:
        recorder = Recorder(asynchronous=twin == "async")
        options: dict[str, Any] = {"api_key": KEY, "base_url": emu.base_url, **kwargs}
        if twin == "sync":
            client = TchaviClient(transport=recorder, sleep=sleep, **options)
            closers.append(client.close)
            return client, recorder

        async def async_sleep(seconds: float) -> None:
            if sleep is None:
                await asyncio.sleep(seconds)
            else:
                sleep(seconds)
                await asyncio.sleep(0)

        async def construct() -> AsyncTchaviClient:
            return AsyncTchaviClient(transport=recorder, sleep=async_sleep, **options)

        async_client = runner.run(construct())
        closers.append(lambda: runner.run(async_client.close()))
        return Blocking(async_client, runner), recorder

    yield make
    for close in closers:
        close()
    runner.close()


def fast(seconds: float) -> None:
    """Backoffs cut short: the emulator's injected faults do not depend on time."""
    time.sleep(min(seconds, 0.01))


def stop_on_sleep(slept: list[float]) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise Stop

    return sleep


def test_a_rendered_job_downloads_as_a_decodable_mp4(
    emulator: Callable[..., RunningEmulator], connect: Connect, tmp_path: Path
) -> None:
    emu = emulator()
    client, _ = connect(emu)
    job = client.videos.generations.create_and_wait(
        model="kling-v3",
        prompt="a paper boat on a rainy street",
        duration=2,
        aspect_ratio="1:1",
        generate_audio=True,
        poll_interval=0.05,
    )
    assert job.status == "completed"
    target = tmp_path / "renders" / "boat.mp4"
    sha256, size = client.download(job, target)
    data = target.read_bytes()
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    with av.open(str(target)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (480, 480)
        assert len(container.streams.audio) == 1
        assert container.duration / av.time_base == pytest.approx(2.0, abs=0.1)
        assert sum(1 for _ in container.decode(video=0)) == 48  # 24 fps
    assert [j["id"] for j in emu.jobs()] == [job.id]
    assert client.last_rate_limit.credits_used == 520  # 2 s at 480p


def test_a_429_makes_the_client_wait_retry_after(
    emulator: Callable[..., RunningEmulator], connect: Connect
) -> None:
    emu = emulator(rpm=2)
    other, _ = connect(emu)
    other.jobs.list()
    other.jobs.list()  # the account's budget for this minute is spent
    slept: list[float] = []
    client, recorder = connect(emu, sleep=stop_on_sleep(slept))
    with pytest.raises(Stop):
        client.jobs.list()
    assert recorder.statuses("GET") == [429]
    assert slept == [pytest.approx(60, abs=2)]  # Retry-After, not a blind retry


def test_when_none_remain_the_client_waits_an_average_slot_before_sending(
    emulator: Callable[..., RunningEmulator], connect: Connect
) -> None:
    emu = emulator(rpm=2)
    slept: list[float] = []
    client, recorder = connect(emu, sleep=stop_on_sleep(slept))
    client.jobs.list()
    client.jobs.list()
    with pytest.raises(Stop):
        client.jobs.list()
    # The answer said none remain: the third request is not sent into a sure 429, it waits
    # a minute / 2 first (then a 429's Retry-After would say the rest).
    assert recorder.statuses("GET") == [200, 200]
    assert slept == [pytest.approx(30, abs=1)]
    assert client.last_rate_limit.rpm_remaining == 0


def test_polls_ride_out_the_emulators_5xx(
    emulator: Callable[..., RunningEmulator], connect: Connect
) -> None:
    emu = emulator(error_rate=0.5, fault_seed=2)
    client, recorder = connect(emu, sleep=fast)
    job = client.videos.generations.create_and_wait(
        model="seedance-2", prompt="tide pools", duration=1
    )
    assert job.status == "completed"
    polls = recorder.statuses("GET", "/jobs/")
    assert [s for s in polls if s >= 500], "the seed should inject 5xx into the polls"
    assert [j["id"] for j in emu.jobs()] == [job.id]


def test_ambiguous_submit_failures_never_create_a_duplicate_job(
    emulator: Callable[..., RunningEmulator], connect: Connect
) -> None:
    emu = emulator(error_rate=0.5, fault_seed=2)
    client, recorder = connect(emu, sleep=fast)
    ids = [
        client.videos.generations.create(model="seedance-2", prompt=f"shot {i}", duration=1).id
        for i in range(6)
    ]
    posts = recorder.statuses("POST")
    assert len(set(ids)) == 6
    assert sorted(j["id"] for j in emu.jobs()) == sorted(ids)
    # Some submits failed with a 5xx after creating their job, and were adopted, not redone.
    assert posts.count(202) < 6
    assert [s for s in posts if s >= 500]


def test_a_402_says_what_the_job_needs(
    emulator: Callable[..., RunningEmulator], connect: Connect
) -> None:
    emu = emulator(credits=1000)
    client, _ = connect(emu)
    with pytest.raises(InsufficientCredits) as caught:
        client.videos.generations.create(model="seedance-2", prompt="x", resolution="720p")
    message = str(caught.value)
    assert message.startswith(
        "Tchavi API 402 insufficient_credits: This job needs 2900 credits (5 s at 720p, "
        "580 credits/s); the account has 1000 available (on POST /videos/generations). "
        "Top up the account's credits, or render fewer or shorter shots (request req_"
    )
    assert emu.jobs() == []


def test_a_401_says_how_to_set_the_key(
    emulator: Callable[..., RunningEmulator], connect: Connect
) -> None:
    emu = emulator(api_key="sk-tch_the_right_one")
    client, _ = connect(emu)
    with pytest.raises(InvalidApiKey) as caught:
        client.jobs.list()
    message = str(caught.value)
    assert message.startswith(
        "Tchavi API 401 invalid_api_key: The API key is not valid (on GET /jobs). "
        "Set a valid key: export TCHAVI_API_KEY=sk-tch_... (request req_"
    )
    assert KEY not in message


def test_an_expired_video_url_says_so(
    emulator: Callable[..., RunningEmulator], connect: Connect, tmp_path: Path
) -> None:
    clock = MovableClock()
    emu = emulator(url_ttl=60.0, clock=clock)
    client, _ = connect(emu)
    job = client.videos.generations.create_and_wait(
        model="seedance-2", prompt="x", duration=1, poll_interval=0.05
    )
    clock.advance(60.0)
    with pytest.raises(MediaExpired, match=r"the video URL of job \w+ expired at"):
        client.download(job, tmp_path / "late.mp4")
    assert list(tmp_path.glob("*.mp4")) == []
