"""Retries that understand the API: GETs ride out 5xx and transport errors, 429 waits, limits."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tchavi_render.api import AsyncTchaviClient
from tchavi_render.api.errors import RateLimitInfo
from tchavi_render.api.limiter import RateLimiter
from tchavi_render.errors import ApiConnectionError, RateLimited, ServerError
from tests.api.conftest import MakeClient
from tests.api.fakes import API_KEY, BASE_URL, PARAMS, FakeTchavi, FakeTime, error


def rate_limited(
    retry_after: str | None = "7", code: str = "rate_limit_exceeded"
) -> httpx.Response:
    answer = error(429, code, "Too many requests")
    if retry_after is not None:
        answer.headers["Retry-After"] = retry_after
    return answer


def test_a_get_is_retried_after_a_502_and_then_succeeds(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    job_id = server.add_job()
    server.script("GET", f"/jobs/{job_id}", error(502, "upstream_error", "Bad gateway"))
    assert client.jobs.retrieve(job_id).id == job_id
    assert server.count("GET") == 2
    # One jittered backoff before the retry: half to all of the 0.5 s base.
    assert len(fake_time.sleeps) == 1
    assert 0.25 <= fake_time.sleeps[0] <= 0.5


def test_get_backoff_grows_and_gives_up_after_max_retries(
    make_client: MakeClient, server: FakeTchavi, fake_time: FakeTime
) -> None:
    client = make_client(max_retries=3)
    server.script("GET", "/jobs", *[error(500, "internal_error", "Boom")] * 10)
    with pytest.raises(ServerError) as caught:
        client.jobs.list()
    assert caught.value.status == 500
    assert server.count("GET") == 4
    ceilings = [0.5, 1.0, 2.0]
    assert len(fake_time.sleeps) == 3
    for slept, ceiling in zip(fake_time.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ConnectError("connection refused"),
    ],
    ids=["read-timeout", "dropped", "refused"],
)
def test_a_get_is_retried_after_a_transport_error(
    client: Any, server: FakeTchavi, failure: Exception
) -> None:
    server.script("GET", "/jobs", failure)
    assert client.jobs.list().data == ()
    assert server.count("GET") == 2


def test_a_get_that_never_connects_says_to_check_the_network(
    make_client: MakeClient, server: FakeTchavi
) -> None:
    client = make_client(max_retries=1)
    server.script("GET", "/jobs", *[httpx.ConnectError("connection refused")] * 2)
    with pytest.raises(ApiConnectionError) as caught:
        client.jobs.list()
    assert str(caught.value) == (
        "ConnectError: connection refused (on GET /jobs). "
        "Check the network and the base URL (--base-url or TCHAVI_BASE_URL)"
    )


@pytest.mark.parametrize(
    "code", ["rate_limit_exceeded", "user_rate_limit_exceeded", "tpm_rate_limit_exceeded"]
)
def test_a_429_on_a_get_waits_retry_after_through_the_injected_sleep(
    client: Any, server: FakeTchavi, fake_time: FakeTime, code: str
) -> None:
    server.script("GET", "/jobs", rate_limited("7", code))
    client.jobs.list()
    assert fake_time.sleeps == [7.0]
    assert server.count("GET") == 2


def test_a_429_on_a_post_is_retried_because_it_created_nothing(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    server.script("POST", "/videos/generations", rate_limited("3"), rate_limited("2"))
    job = client.videos.generations.create(**PARAMS)
    assert fake_time.sleeps == [3.0, 2.0]
    assert server.count("POST") == 3
    assert server.count("GET") == 0  # nothing to reconcile: a 429 is certain
    assert list(server.jobs) == [job.id]


def test_retry_after_as_an_http_date_is_honoured(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    when = datetime.fromtimestamp(fake_time.now + 12, UTC)
    server.script("GET", "/jobs", rate_limited(format_datetime(when, usegmt=True)))
    client.jobs.list()
    assert fake_time.sleeps == [12.0]


@pytest.mark.parametrize("header", [None, "soon"], ids=["missing", "unreadable"])
def test_a_429_without_a_usable_retry_after_backs_off(
    client: Any, server: FakeTchavi, fake_time: FakeTime, header: str | None
) -> None:
    server.script("GET", "/jobs", rate_limited(header))
    client.jobs.list()
    assert len(fake_time.sleeps) == 1
    assert 0.25 <= fake_time.sleeps[0] <= 0.5


def test_a_retry_after_of_hours_is_reported_not_slept_through(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    server.script("GET", "/jobs", rate_limited("7200"))
    with pytest.raises(RateLimited) as caught:
        client.jobs.list()
    assert caught.value.retry_after == 7200.0
    assert fake_time.sleeps == []


def test_max_rpm_keeps_a_client_under_its_budget(
    make_client: MakeClient, server: FakeTchavi, fake_time: FakeTime
) -> None:
    client = make_client(max_rpm=2)
    for _ in range(5):
        client.jobs.list()
    # Two requests go at once, then each further pair waits for the window to roll.
    assert fake_time.sleeps == [60.0, 60.0]
    assert server.count("GET") == 5


def test_when_no_request_remains_the_client_waits_before_sending_again(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    last = httpx.Response(200, json={"object": "list", "data": []})
    last.headers.update({"X-RateLimit-RPM-Limit": "10", "X-RateLimit-RPM-Remaining": "0"})
    server.script("GET", "/jobs", last, rate_limited("42"))
    client.jobs.list()
    assert fake_time.sleeps == []
    client.jobs.list()
    # One average slot (a minute / 10) before trying, not the minute after our own oldest
    # request: the window may be full of older requests (an earlier apply's) that leave
    # sooner. Still full: the 429's Retry-After says how long, and the client waits that.
    assert fake_time.sleeps == [6.0, 42.0]
    assert server.count("GET") == 3


def test_a_window_full_of_our_own_requests_frees_when_the_oldest_is_a_minute_old(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    last = httpx.Response(200, json={"object": "list", "data": []})
    last.headers.update({"X-RateLimit-RPM-Limit": "2", "X-RateLimit-RPM-Remaining": "0"})
    server.script("GET", "/jobs", httpx.Response(200, json={"object": "list", "data": []}))
    client.jobs.list()
    fake_time.now += 50.0
    server.script("GET", "/jobs", last)
    client.jobs.list()
    client.jobs.list()
    # An average slot is 30 s, but our first request leaves the window in 10 s.
    assert fake_time.sleeps == [10.0]


def test_last_rate_limit_shows_the_rate_and_credit_headers(client: Any, server: FakeTchavi) -> None:
    assert client.last_rate_limit is None
    answer = httpx.Response(200, json={"object": "list", "data": []})
    answer.headers.update(
        {
            "X-RateLimit-RPM-Limit": "30",
            "X-RateLimit-RPM-Remaining": "29",
            "X-Credits-Used": "1300",
            "X-Credits-Remaining": "8700",
            "X-Request-Id": "req_1",
        }
    )
    server.script("GET", "/jobs", answer)
    client.jobs.list()
    assert client.last_rate_limit == RateLimitInfo(
        rpm_limit=30,
        rpm_remaining=29,
        credits_used=1300,
        credits_remaining=8700,
        request_id="req_1",
    )


@pytest.mark.parametrize(("service", "budget"), [(None, 20), ("10", 10), ("300", 20)])
def test_the_request_budget_is_the_lower_of_max_rpm_and_the_services_limit(
    make_client: MakeClient, server: FakeTchavi, service: str | None, budget: int
) -> None:
    """apply spaces its polls by this budget, so that submits keep most of it."""
    assert make_client().request_budget is None
    client = make_client(max_rpm=20)
    answer = httpx.Response(200, json={"object": "list", "data": []})
    if service is not None:
        answer.headers["X-RateLimit-RPM-Limit"] = service
    server.script("GET", "/jobs", answer)
    client.jobs.list()
    assert client.request_budget == budget


def test_concurrent_tasks_of_an_async_client_share_its_budget(
    server: FakeTchavi, fake_time: FakeTime
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the clock stands still: every task books at once
        slept.append(seconds)
        await asyncio.sleep(0)

    async def main() -> None:
        async with AsyncTchaviClient(
            api_key=API_KEY,
            base_url=BASE_URL,
            max_rpm=2,
            transport=httpx.MockTransport(server.handler),
            sleep=sleep,
            clock=fake_time.clock,
        ) as client:
            await asyncio.gather(*(client.jobs.list() for _ in range(6)))

    asyncio.run(main())
    assert sorted(slept) == [60.0, 60.0, 120.0, 120.0]
    assert server.count("GET") == 6


def test_one_limiter_keeps_every_window_under_budget_across_threads() -> None:
    limiter = RateLimiter(max_rpm=7)
    booked: list[float] = []
    lock = threading.Lock()

    def book() -> None:
        for _ in range(20):
            delay = limiter.reserve(1000.0)
            with lock:
                booked.append(1000.0 + delay)

    threads = [threading.Thread(target=book) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    booked.sort()
    assert len(booked) == 100
    for i, at in enumerate(booked):
        in_window = [t for t in booked[: i + 1] if t > at - 60.0]
        assert len(in_window) <= 7
    assert booked[-1] == 1000.0 + 60.0 * (100 // 7)


def test_a_hold_delays_every_later_request() -> None:
    limiter = RateLimiter()
    limiter.hold(1010.0)
    assert limiter.reserve(1000.0) == 10.0
    assert limiter.reserve(1004.0) == 6.0
    assert limiter.reserve(1011.0) == 0.0
