"""Submits never pay twice: a POST is retried only when it certainly did not arrive, and after an
ambiguous failure the client looks for its job before submitting again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tchavi_render.errors import AmbiguousSubmit, ApiConnectionError, ServerError
from tests.api.conftest import MakeClient
from tests.api.fakes import PARAMS, FakeTchavi, FakeTime, error

BAD_GATEWAY = error(502, "upstream_error", "Bad gateway")


def test_a_post_is_not_retried_after_a_502_that_created_its_job(
    client: Any, server: FakeTchavi
) -> None:
    server.script("POST", "/videos/generations", server.create_then(BAD_GATEWAY))
    job = client.videos.generations.create(**PARAMS)
    assert server.count("POST") == 1
    assert list(server.jobs) == [job.id]
    assert server.calls() == ["POST /videos/generations", "GET /jobs"]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out waiting for the answer"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.ReadError("connection reset by peer"),
    ],
    ids=["read-timeout", "dropped", "reset"],
)
def test_a_post_whose_answer_was_lost_adopts_the_job_it_created(
    client: Any, server: FakeTchavi, failure: Exception
) -> None:
    server.script("POST", "/videos/generations", server.create_then(failure))
    job = client.videos.generations.create(**PARAMS)
    assert server.count("POST") == 1
    assert list(server.jobs) == [job.id]


def test_a_post_whose_accepted_answer_is_unreadable_adopts_its_job(
    client: Any, server: FakeTchavi
) -> None:
    server.script("POST", "/videos/generations", server.create_then(httpx.Response(202, text="{")))
    job = client.videos.generations.create(**PARAMS)
    assert server.count("POST") == 1
    assert list(server.jobs) == [job.id]


def test_a_post_that_created_nothing_is_submitted_again_after_looking(
    client: Any, server: FakeTchavi
) -> None:
    server.script("POST", "/videos/generations", BAD_GATEWAY)
    job = client.videos.generations.create(**PARAMS)
    assert server.calls() == [
        "POST /videos/generations",
        "GET /jobs",
        "POST /videos/generations",
    ]
    assert list(server.jobs) == [job.id]


def test_resubmits_are_bounded(make_client: MakeClient, server: FakeTchavi) -> None:
    client = make_client(max_retries=2)
    server.script("POST", "/videos/generations", *[BAD_GATEWAY] * 5)
    with pytest.raises(ServerError):
        client.videos.generations.create(**PARAMS)
    assert server.count("POST") == 3
    assert server.jobs == {}


def test_a_refused_connection_is_retried_without_looking(client: Any, server: FakeTchavi) -> None:
    server.script("POST", "/videos/generations", httpx.ConnectError("connection refused"))
    server.script("POST", "/videos/generations", httpx.ConnectTimeout("connect timed out"))
    job = client.videos.generations.create(**PARAMS)
    assert server.count("POST") == 3
    assert server.count("GET") == 0
    assert list(server.jobs) == [job.id]


def test_two_candidates_are_refused_rather_than_guessed(client: Any, server: FakeTchavi) -> None:
    def another_process_submits_too(request: httpx.Request) -> httpx.Response:
        server.add_job()
        return server.create_then(BAD_GATEWAY)(request)

    server.script("POST", "/videos/generations", another_process_submits_too)
    with pytest.raises(AmbiguousSubmit) as caught:
        client.videos.generations.create(**PARAMS)
    assert caught.value.candidate_ids == ("job_2", "job_other_1")
    assert str(caught.value) == (
        "a submit of a seedance-2 job failed (HTTP 502 upstream_error) and "
        "2 jobs of that model costing 1300 credits appeared since it started; any of them may "
        "be the one it created: job_2, job_other_1. Nothing was submitted again, to avoid "
        "paying twice. Check the account's recent jobs (the candidates, if named); if none of "
        "them is this one, submit it again"
    )
    assert server.count("POST") == 1


def test_jobs_this_client_created_earlier_are_not_candidates(
    client: Any, server: FakeTchavi
) -> None:
    first = client.videos.generations.create(**PARAMS)
    server.script("POST", "/videos/generations", server.create_then(BAD_GATEWAY))
    second = client.videos.generations.create(**PARAMS)
    assert second.id != first.id
    assert list(server.jobs) == [first.id, second.id]


def test_jobs_listed_before_the_submit_are_not_candidates(client: Any, server: FakeTchavi) -> None:
    earlier = server.add_job()
    assert [job.id for job in client.jobs.list().data] == [earlier]
    server.script("POST", "/videos/generations", server.create_then(BAD_GATEWAY))
    assert client.videos.generations.create(**PARAMS).id == "job_2"


def test_known_job_ids_are_not_candidates(client: Any, server: FakeTchavi) -> None:
    journaled = server.add_job()
    server.script("POST", "/videos/generations", server.create_then(BAD_GATEWAY))
    job = client.videos.generations.create(**PARAMS, known_job_ids=[journaled])
    assert job.id == "job_2"
    assert server.count("POST") == 1


def test_jobs_of_another_model_or_cost_or_time_are_not_candidates(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    server.add_job(model="kling-v3")
    server.add_job(credits=2600)
    server.add_job(created_at=fake_time.now - 600)  # long before the submit
    server.script("POST", "/videos/generations", server.create_then(BAD_GATEWAY))
    assert client.videos.generations.create(**PARAMS).id == "job_4"


def test_a_job_listed_without_its_cost_is_still_a_candidate(
    client: Any, server: FakeTchavi
) -> None:
    def created_and_listed_without_credits(request: httpx.Request) -> httpx.Response:
        answer = server.create_then(BAD_GATEWAY)(request)
        del server.jobs["job_1"]["tchavi"]
        return answer

    server.script("POST", "/videos/generations", created_and_listed_without_credits)
    assert client.videos.generations.create(**PARAMS).id == "job_1"


def test_reconciliation_pages_back_until_jobs_older_than_the_submit(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    for _ in range(120):
        server.add_job(model="kling-v3", created_at=fake_time.now - 3600)

    def created_then_buried(request: httpx.Request) -> httpx.Response:
        answer = server.create_then(BAD_GATEWAY)(request)
        for _ in range(60):  # other processes' newer jobs push ours to page two
            server.add_job(model="kling-v3")
        return answer

    server.script("POST", "/videos/generations", created_then_buried)
    job = client.videos.generations.create(**PARAMS)
    assert job.id == "job_121"
    lists = [r.url.params["offset"] for r in server.requests if r.url.path.endswith("/jobs")]
    assert lists == ["0", "50"]  # page two holds older jobs: no need to look further


def test_when_the_jobs_list_cannot_be_read_nothing_is_resubmitted(
    make_client: MakeClient, server: FakeTchavi
) -> None:
    client = make_client(max_retries=1)
    server.script("POST", "/videos/generations", BAD_GATEWAY)
    server.script("GET", "/jobs", *[error(500, "internal_error", "Down")] * 5)
    with pytest.raises(AmbiguousSubmit) as caught:
        client.videos.generations.create(**PARAMS)
    assert caught.value.candidate_ids == ()
    assert "the job may exist" in str(caught.value)
    assert server.count("POST") == 1


def test_a_list_answer_that_holds_no_list_is_not_taken_for_an_empty_one(
    make_client: MakeClient, server: FakeTchavi
) -> None:
    client = make_client(max_retries=1)
    server.script("POST", "/videos/generations", server.create_then(BAD_GATEWAY))
    server.script("GET", "/jobs", *[httpx.Response(200, json={"status": "ok"})] * 2)
    with pytest.raises(AmbiguousSubmit, match="no list of jobs"):
        client.videos.generations.create(**PARAMS)
    assert server.count("POST") == 1


def test_an_unsupported_base_url_scheme_is_not_retried(make_client: MakeClient) -> None:
    with pytest.raises(ApiConnectionError, match="must be an http"):
        make_client(base_url="ftp://tchavi.test/api/v1")


def test_find_unknown_recovers_a_submit_that_crashed_before_journaling(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    started = fake_time.now
    server.add_job(created_at=started - 3600)  # an old job
    orphan = server.add_job()  # what the crashed submit created
    client.jobs.list()  # listing it first must not hide it
    found = client.jobs.find_unknown(since=started, model="seedance-2", credits=1300)
    assert found is not None and found.id == orphan


def test_find_unknown_says_none_when_the_submit_created_nothing(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    own = client.videos.generations.create(**PARAMS)
    journaled = server.add_job()
    assert (
        client.jobs.find_unknown(
            since=fake_time.now, model="seedance-2", credits=1300, known_ids=[journaled]
        )
        is None
    )
    assert own.id in server.jobs


def test_find_unknown_refuses_to_pick_between_candidates(
    client: Any, server: FakeTchavi, fake_time: FakeTime
) -> None:
    a, b = server.add_job(), server.add_job()
    with pytest.raises(AmbiguousSubmit) as caught:
        client.jobs.find_unknown(since=fake_time.now, model="seedance-2")
    assert set(caught.value.candidate_ids) == {a, b}
