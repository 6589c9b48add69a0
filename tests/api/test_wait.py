"""Waiting for jobs: gently growing polls; failures and timeouts never cancel or resubmit."""

from __future__ import annotations

from typing import Any

import pytest

from tchavi_render.errors import JobFailed, JobNotFound, WaitTimeout
from tests.api.fakes import PARAMS, FakeTchavi, FakeTime, error


def test_create_and_wait_polls_with_gently_growing_intervals(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    server.progress = ["pending", "processing", "processing", "completed"]
    job = client.videos.generations.create_and_wait(**PARAMS)
    assert job.status == "completed"
    assert job.output is not None and job.output.video_url.endswith(f"/media/{job.id}.mp4")
    assert fake_time.sleeps == [5.0, 6.25, 7.8125, 9.765625]
    assert server.count("POST") == 1
    assert server.count("GET") == 4


def test_the_poll_interval_is_the_callers_and_growth_stops_at_a_cap(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    server.progress = ["processing"] * 12 + ["completed"]
    client.videos.generations.create_and_wait(**PARAMS, poll_interval=20.0)
    assert fake_time.sleeps[:3] == [20.0, 25.0, 30.0]
    assert set(fake_time.sleeps[3:]) == {30.0}


def test_polls_ride_out_server_errors(client: Any, server: FakeTchavi) -> None:
    server.progress = ["processing", "completed"]
    job = client.videos.generations.create(**PARAMS)
    server.script("GET", f"/jobs/{job.id}", error(500, "internal_error", "Oops"))
    server.script("GET", f"/jobs/{job.id}", error(502, "upstream_error", "Oops"))
    assert client.jobs.wait(job.id).status == "completed"


def test_a_failed_job_raises_job_failed_with_its_refund(client: Any, server: FakeTchavi) -> None:
    server.progress = ["processing", "failed"]
    with pytest.raises(JobFailed) as caught:
        client.videos.generations.create_and_wait(**PARAMS)
    assert str(caught.value) == (
        "job job_1 failed (upstream_error): the renderer crashed; 1300 credits refunded"
    )
    assert (caught.value.job_id, caught.value.refunded) == ("job_1", 1300)


def test_a_wait_timeout_names_the_job_and_leaves_it_running(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    server.progress = ["processing"]
    with pytest.raises(WaitTimeout) as caught:
        client.videos.generations.create_and_wait(**PARAMS, timeout=12.0)
    assert str(caught.value) == (
        "job job_1 is still processing after waiting 12 s. It keeps running on the service "
        "(not cancelled, not submitted again): wait for it later with client.jobs.wait('job_1')"
    )
    assert fake_time.sleeps == [5.0, 6.25, 0.75]  # the last wait is cut to the deadline
    assert server.count("POST") == 1
    assert {r.method for r in server.requests} == {"POST", "GET"}


def test_a_job_that_vanishes_while_polled_is_not_polled_again(
    client: Any, server: FakeTchavi
) -> None:
    server.progress = ["processing"]
    job = client.videos.generations.create(**PARAMS)
    del server.jobs[job.id]
    with pytest.raises(JobNotFound):
        client.jobs.wait(job.id)
    assert server.count("GET") == 1


def test_waiting_for_a_finished_job_returns_at_once(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    job = client.videos.generations.create(**PARAMS)
    assert client.jobs.wait(job.id).status == "completed"
    assert fake_time.sleeps == []
