"""The API key never shows: not in a repr, not in a log line, not in any exception message."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tchavi_render.api import Job
from tchavi_render.errors import TchaviRenderError
from tests.api.conftest import MakeClient
from tests.api.fakes import API_KEY, PARAMS, FakeTchavi, error


def test_the_key_is_not_in_the_clients_repr(client: Any) -> None:
    assert repr(client).endswith("Client(base_url='http://tchavi.test/api/v1', api_key='***')")
    assert API_KEY not in repr(client)
    assert API_KEY not in str(vars(client))


def test_the_key_is_in_no_message_and_no_log_line(
    make_client: MakeClient,
    server: FakeTchavi,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(max_retries=1)
    echo = f"Key {API_KEY} has no credits left"
    server.script("POST", "/videos/generations", error(402, "insufficient_credits", echo))
    server.script("GET", "/jobs/job_x", httpx.Response(500, text=f"trace: Bearer {API_KEY}"))
    server.script("GET", "/jobs/job_x", httpx.ConnectError("connection refused"))
    server.script("GET", "/jobs", error(401, "invalid_api_key", f"{API_KEY} was revoked"))
    server.script("POST", "/videos/generations", error(502, "upstream_error", API_KEY))
    server.script("GET", "/jobs", error(500, "internal_error", API_KEY))
    server.script("GET", "/jobs", error(500, "internal_error", API_KEY))
    server.media["/media/v.mp4"] = httpx.Response(403, text=f"no access for {API_KEY}")
    video = Job.model_validate(
        {
            "id": "job_v",
            "status": "completed",
            "output": {"video_url": "http://tchavi.test/media/v.mp4"},
        }
    )

    attempts = [
        lambda: client.videos.generations.create(**PARAMS),
        lambda: client.jobs.retrieve("job_x"),
        lambda: client.jobs.list(),
        lambda: client.videos.generations.create(**PARAMS),
        lambda: client.download(video, tmp_path / "v.mp4"),
    ]
    messages = []
    for attempt in attempts:
        with pytest.raises(TchaviRenderError) as caught:
            attempt()
        messages += [str(caught.value), repr(caught.value), repr(caught.value.args)]
    assert [m for m in messages if API_KEY in m] == []
    assert "***" in messages[0]  # the echo was scrubbed, not dropped
    assert API_KEY not in caplog.text
    assert caplog.records  # the retries were logged


def test_a_quoted_presigned_url_loses_its_credentials(
    make_client: MakeClient, server: FakeTchavi
) -> None:
    client = make_client(max_retries=1)
    signed = (
        "https://bucket.s3.test/media/ab.png?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20261127&X-Amz-Security-Token=SESSIONTOKEN"
        "&X-Amz-Signature=0123abcd"
    )
    server.script(
        "POST", "/videos/generations", error(400, "invalid_request", f"cannot fetch {signed}")
    )
    with pytest.raises(TchaviRenderError) as caught:
        client.videos.generations.create(**PARAMS)
    message = str(caught.value)
    assert "https://bucket.s3.test/media/ab.png?X-Amz-Algorithm=AWS4-HMAC-SHA256" in message
    for secret in ("AKIDEXAMPLE", "SESSIONTOKEN", "0123abcd"):
        assert secret not in message
