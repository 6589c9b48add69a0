"""How answers become exceptions: both error shapes, odd bodies, unknown codes, job shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tchavi_render.api import TchaviClient
from tchavi_render.errors import (
    ApiError,
    InsufficientCredits,
    InvalidApiKey,
    InvalidParams,
    InvalidRequest,
    JobNotFound,
    MissingApiKey,
    ModelNotAllowed,
    ServerError,
)
from tests.api.conftest import MakeClient
from tests.api.fakes import PARAMS, FakeTchavi, error


def test_a_402_in_the_nested_shape_says_what_the_request_needs(
    client: Any, server: FakeTchavi
) -> None:
    answer = error(402, "insufficient_credits", "Not enough credits")
    answer.headers["X-Credits-Remaining"] = "500"
    server.script("POST", "/videos/generations", answer)
    with pytest.raises(InsufficientCredits) as caught:
        client.videos.generations.create(**PARAMS)
    assert str(caught.value) == (
        "Tchavi API 402 insufficient_credits: Not enough credits (on POST /videos/generations); "
        "this request needs 1300 credits; the account has 500. "
        "Top up the account's credits, or render fewer or shorter shots"
    )
    assert server.count("POST") == 1


def test_the_flat_error_shape_is_understood_too(client: Any, server: FakeTchavi) -> None:
    flat = {"error": "insufficient_credits", "message": "Balance too low", "statusCode": 402}
    server.script("POST", "/videos/generations", httpx.Response(402, json=flat))
    with pytest.raises(InsufficientCredits, match="Balance too low"):
        client.videos.generations.create(**PARAMS)


def test_a_flat_error_with_a_reason_phrase_maps_by_status(client: Any, server: FakeTchavi) -> None:
    flat = {
        "error": "Bad Request",
        "message": ["duration too long", "bad ratio"],
        "statusCode": 400,
    }
    server.script("POST", "/videos/generations", httpx.Response(400, json=flat))
    with pytest.raises(InvalidRequest) as caught:
        client.videos.generations.create(**PARAMS)
    assert "duration too long; bad ratio" in str(caught.value)


def test_a_400_names_the_field_and_is_not_retried(client: Any, server: FakeTchavi) -> None:
    answer = error(400, "invalid_request", "must be at most 15", param="duration")
    server.script("POST", "/videos/generations", answer)
    with pytest.raises(InvalidRequest) as caught:
        client.videos.generations.create(**PARAMS)
    assert caught.value.param == "duration"
    assert str(caught.value) == (
        "Tchavi API 400 invalid_request: duration: must be at most 15 "
        "(on POST /videos/generations). Fix the named field; retrying the same request "
        "will not help"
    )
    assert server.count("POST") == 1
    assert server.count("GET") == 0


def test_a_401_says_how_to_set_the_key(make_client: MakeClient) -> None:
    client = make_client(api_key="sk-tch_wrong")
    with pytest.raises(InvalidApiKey) as caught:
        client.jobs.retrieve("job_1")
    assert str(caught.value) == (
        "Tchavi API 401 invalid_api_key: Invalid API key (on GET /jobs/job_1). "
        "Set a valid key: export TCHAVI_API_KEY=sk-tch_..."
    )


def test_a_missing_key_is_refused_when_the_client_is_made(make_client: MakeClient) -> None:
    with pytest.raises(MissingApiKey) as caught:
        make_client(api_key=None)
    assert isinstance(caught.value, InvalidApiKey)
    assert str(caught.value) == (
        "no Tchavi API key was given. Set one: export TCHAVI_API_KEY=sk-tch_... (or pass api_key=)"
    )


def test_the_key_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeTchavi
) -> None:
    from tests.api.fakes import API_KEY, BASE_URL

    monkeypatch.setenv("TCHAVI_API_KEY", API_KEY)
    monkeypatch.setenv("TCHAVI_BASE_URL", BASE_URL)
    with TchaviClient(transport=httpx.MockTransport(server.handler)) as client:
        assert client.base_url == BASE_URL
        client.jobs.list()
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_the_base_url_defaults_to_the_real_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TCHAVI_BASE_URL")
    with TchaviClient(api_key="k") as client:
        assert client.base_url == "https://tchavi.com/api/v1"


def test_a_403_model_not_allowed_is_its_own_error(client: Any, server: FakeTchavi) -> None:
    server.script("POST", "/videos/generations", error(403, "model_not_allowed", "No kling"))
    with pytest.raises(ModelNotAllowed, match="No kling"):
        client.videos.generations.create(**PARAMS)


def test_an_unknown_job_raises_job_not_found_without_retrying(
    client: Any, server: FakeTchavi
) -> None:
    with pytest.raises(JobNotFound, match="job_404 not found"):
        client.jobs.retrieve("job_404")
    assert server.count("GET") == 1


def test_an_unknown_code_is_mapped_by_http_status(client: Any, server: FakeTchavi) -> None:
    server.script("POST", "/videos/generations", error(400, "prompt_too_spicy", "Nope"))
    with pytest.raises(InvalidRequest) as caught:
        client.videos.generations.create(**PARAMS)
    assert caught.value.code == "prompt_too_spicy"


def test_an_unknown_status_stays_a_plain_api_error(client: Any, server: FakeTchavi) -> None:
    server.script("GET", "/jobs/job_1", error(418, "teapot", "I am a teapot"))
    with pytest.raises(ApiError) as caught:
        client.jobs.retrieve("job_1")
    assert type(caught.value) is ApiError
    assert (caught.value.status, caught.value.code) == (418, "teapot")


def test_a_non_json_404_is_quoted_and_points_at_the_base_url(
    client: Any, server: FakeTchavi
) -> None:
    page = httpx.Response(404, text="<html><body><h1>Not   Found</h1></body></html>")
    server.script("GET", "/jobs", page)
    with pytest.raises(ApiError) as caught:
        client.jobs.list()
    assert str(caught.value) == (
        "Tchavi API 404 api_error: Not Found (body: '<html><body><h1>Not Found</h1></body></html>')"
        " (on GET /jobs); is the base URL right (--base-url or TCHAVI_BASE_URL)?"
    )


def test_malformed_json_on_a_get_is_retried_then_reported(client: Any, server: FakeTchavi) -> None:
    broken = httpx.Response(200, text='{"id": "job_1", "stat')
    server.script("GET", "/jobs/job_1", *[broken] * 5)
    with pytest.raises(ServerError) as caught:
        client.jobs.retrieve("job_1")
    assert caught.value.code == "malformed_response"
    assert server.count("GET") == 5  # the first try and max_retries (4) more


def test_a_job_of_the_wrong_shape_is_malformed_but_one_good_answer_is_enough(
    client: Any, server: FakeTchavi
) -> None:
    server.jobs["job_1"] = {"id": "job_1", "status": "pending", "model": "seedance-2"}
    server.script("GET", "/jobs/job_1", httpx.Response(200, json={"status": "pending"}))
    assert client.jobs.retrieve("job_1").id == "job_1"
    assert server.count("GET") == 2


@pytest.mark.parametrize("wrap", [False, True], ids=["bare", "wrapped"])
def test_both_job_shapes_are_accepted(client: Any, server: FakeTchavi, wrap: bool) -> None:
    record = {"id": "job_9", "object": "job", "status": "pending", "model": "kling-v3"}
    body = {"job": record} if wrap else record
    server.script("POST", "/videos/generations", httpx.Response(202, json=body))
    server.script("GET", "/jobs/job_9", httpx.Response(200, json=body))
    assert client.videos.generations.create(**PARAMS).id == "job_9"
    assert client.jobs.retrieve("job_9").model == "kling-v3"


def test_invalid_params_are_refused_before_anything_is_sent(
    client: Any, server: FakeTchavi
) -> None:
    with pytest.raises(InvalidParams) as caught:
        client.videos.generations.create(model="seedance-3", prompt="x", duration=20)
    assert str(caught.value) == (
        "invalid generation parameters:\n"
        "model: must be one of 'seedance-2', 'kling-v3', got 'seedance-3'. "
        "Did you mean 'seedance-2'?\n"
        "duration: must be 1..15 seconds, or -1 for auto; got 20"
    )
    assert server.requests == []


def test_a_ready_generation_params_is_accepted(client: Any, server: FakeTchavi) -> None:
    from tchavi_render.api import GenerationParams

    params = GenerationParams(model="kling-v3", prompt="p", resolution="720p", duration=-1)
    job = client.videos.generations.create(params)
    assert job.credits_used == 5800  # auto is billed as 10 s at 720p
    sent = server.requests[0].content
    assert b'"duration":-1' in sent.replace(b" ", b"")


def test_list_arguments_are_checked_before_sending(client: Any, server: FakeTchavi) -> None:
    with pytest.raises(InvalidParams) as caught:
        client.jobs.list(status="done", limit=99, offset=-1)
    assert [p.message for p in caught.value.problems] == [
        "status: must be one of pending, processing, completed, failed, got 'done'",
        "limit: must be 1..50, got 99",
        "offset: must be 0 or more, got -1",
    ]
    assert server.requests == []
