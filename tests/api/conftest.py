"""Client edge cases: the fake Tchavi behind httpx.MockTransport, a fake clock, both twins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tchavi_render.api import AsyncTchaviClient, TchaviClient
from tests.api.fakes import API_KEY, BASE_URL, Blocking, FakeTchavi, FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def server(fake_time: FakeTime) -> FakeTchavi:
    return FakeTchavi(fake_time)


MakeClient = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(twin: str, server: FakeTchavi, fake_time: FakeTime) -> Iterator[MakeClient]:
    """make_client(**kwargs): the sync client, or the async one behind `Blocking`."""
    made: list[Callable[[], None]] = []
    runner = asyncio.Runner()

    def make(**kwargs: Any) -> Any:
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": BASE_URL,
            "transport": httpx.MockTransport(server.handler),
            "clock": fake_time.clock,
        }
        options.update(kwargs)
        if twin == "sync":
            options.setdefault("sleep", fake_time.sleep)
            client = TchaviClient(**options)
            made.append(client.close)
            return client
        options.setdefault("sleep", fake_time.async_sleep)
        async_client = runner.run(_construct(options))
        made.append(lambda: runner.run(async_client.close()))
        return Blocking(async_client, runner)

    yield make
    for close in made:
        close()
    runner.close()


async def _construct(options: dict[str, Any]) -> AsyncTchaviClient:
    return AsyncTchaviClient(**options)


@pytest.fixture
def client(make_client: MakeClient) -> Any:
    return make_client()
