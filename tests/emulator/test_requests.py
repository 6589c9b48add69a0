"""What the emulator accepts and refuses: validation, auth, unknown jobs, listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tchavi_render.emulator import RunningEmulator
from tchavi_render.emulator.video import RenderSpec, render_video
from tests.emulator.conftest import StartEmulator, api_client, body, png, submit, wait_for

URL = "https://media.example/a.png"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "sora"}, "model"),
        ({"model": None}, "model"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"duration": 0}, "duration"),
        ({"duration": 16}, "duration"),
        ({"duration": 5.5}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"resolution": "1080p"}, "resolution"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"generate_audio": "yes"}, "generate_audio"),
        ({"seed": "42"}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"image_url": "file:///etc/passwd"}, "image_url"),
        ({"last_frame_image_url": URL}, "last_frame_image_url"),
        ({"image_url": URL, "reference_images": [URL]}, "reference_images"),
        ({"reference_images": [URL] * 10}, "reference_images"),
        ({"reference_images": ["ftp://media.example/a.png"]}, "reference_images"),
        ({"reference_videos": [URL] * 4}, "reference_videos"),
        ({"image_url": URL, "reference_audios": [URL] * 4}, "reference_audios"),
        ({"reference_audios": [URL]}, "reference_audios"),
        ({"prompt": "like [Image2]", "reference_images": [URL]}, "prompt"),
        ({"prompt": "like [Video1]"}, "prompt"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_request_is_refused_naming_the_field(
    client: httpx.Client, fields: dict[str, Any], param: str
) -> None:
    response = client.post("/videos/generations", json=body(**fields))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["status"] == 400
    assert error["param"] == param
    assert error["message"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_refused(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/videos/generations", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_refused_requests_create_and_charge_nothing(
    shared_emulator: RunningEmulator, client: httpx.Client, api_key: str
) -> None:
    before = len(shared_emulator.jobs())
    client.post("/videos/generations", json=body(duration=99))
    assert len(shared_emulator.jobs()) == before
    assert shared_emulator.account(api_key)["credits_used"] == 0


def test_an_image_url_that_is_not_an_image_is_refused(
    shared_emulator: RunningEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    response = client.post(
        "/videos/generations", json=body(image_url=shared_emulator.host_file(text))
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image_url"


def test_reference_videos_longer_than_15_seconds_in_total_are_refused(
    shared_emulator: RunningEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    urls = []
    for name in ("a.mp4", "b.mp4"):
        render_video(RenderSpec("clip", 1, 8, 320, 240, audio=False), tmp_path / name)
        urls.append(shared_emulator.host_file(tmp_path / name))
    response = client.post(
        "/videos/generations", json=body(prompt="like [Video1]", reference_videos=urls)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "reference_videos"
    assert "16.0 s exceeds 15 s" in error["message"]

    accepted = submit(client, prompt="like [Video1]", reference_videos=urls[:1])
    assert wait_for(client, accepted["id"])["status"] == "completed"


def test_reference_media_are_accepted_when_they_can_be_read(
    shared_emulator: RunningEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    render_video(RenderSpec("voice", 2, 1, 320, 240, audio=True), tmp_path / "voice.mp4")
    images = [shared_emulator.host_file(png(tmp_path, (64, 64), (9, 9, 9))) for _ in range(2)]
    job = submit(
        client,
        prompt="[Image1] meets [Image2] to [Audio1]",
        reference_images=images,
        reference_audios=[shared_emulator.host_file(tmp_path / "voice.mp4")],
    )
    assert wait_for(client, job["id"])["status"] == "completed"


def test_an_unreachable_media_url_fails_the_job_and_refunds_it(
    shared_emulator: RunningEmulator, client: httpx.Client, api_key: str
) -> None:
    job = submit(client, image_url="http://127.0.0.1:9/missing.png")
    assert job["tchavi"]["credits_used"] == 260
    done = wait_for(client, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "upstream_error"
    assert (
        "image_url http://127.0.0.1:9/missing.png could not be fetched" in done["error"]["message"]
    )
    assert done["tchavi"]["credits_refunded"] == 260
    assert shared_emulator.account(api_key)["credits_used"] == 0


@pytest.mark.parametrize("header", [None, "", "Bearer", "Token sk-tch_x", "Basic c2stdGNo"])
def test_a_missing_key_is_refused(shared_emulator: RunningEmulator, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    with api_client(shared_emulator, None) as http:
        response = http.get("/jobs", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["X-Request-Id"]


def test_only_the_configured_key_is_accepted(start_emulator: StartEmulator) -> None:
    with start_emulator(api_key="sk-tch_right") as emu:
        with api_client(emu, "sk-tch_wrong") as http:
            wrong = http.get("/jobs")
        with api_client(emu, "sk-tch_right") as http:
            right = http.get("/jobs")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert right.status_code == 200


def test_each_key_is_its_own_account(start_emulator: StartEmulator, tmp_path: Path) -> None:
    with (
        start_emulator(credits=500) as emu,
        api_client(emu, "sk-tch_alice") as alice,
        api_client(emu, "sk-tch_bob") as bob,
    ):
        submit(alice)
        assert emu.account("sk-tch_alice")["credits_remaining"] == 240
        assert emu.account("sk-tch_bob")["credits_remaining"] == 500
        assert bob.get("/jobs").json()["data"] == []
    stored = b"".join(p.read_bytes() for p in (tmp_path / "emulator").glob("emulator.sqlite3*"))
    assert b"sk-tch_alice" not in stored


def test_insufficient_credits_is_refused_saying_what_is_needed(
    start_emulator: StartEmulator,
) -> None:
    with start_emulator(credits=500) as emu, api_client(emu, "sk-tch_poor") as http:
        response = http.post("/videos/generations", json=body(resolution="720p"))
        assert response.status_code == 402
        error = response.json()["error"]
        assert error["code"] == "insufficient_credits"
        assert "needs 580 credits" in error["message"]
        assert "has 500 available" in error["message"]
        assert emu.jobs() == []
        assert emu.account("sk-tch_poor")["credits_remaining"] == 500


def test_an_unknown_job_is_not_found(client: httpx.Client) -> None:
    response = client.get("/jobs/job_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_another_accounts_job_is_not_found(
    shared_emulator: RunningEmulator, client: httpx.Client
) -> None:
    job = submit(client)
    with api_client(shared_emulator, "sk-tch_someone_else") as other:
        response = other.get(f"/jobs/{job['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_an_unknown_endpoint_answers_404_with_an_error_body(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404


def test_jobs_are_listed_newest_first_page_by_page(client: httpx.Client) -> None:
    ids = [submit(client, prompt=f"shot {n}")["id"] for n in range(5)]
    first = client.get("/jobs", params={"limit": 2}).json()
    assert first["object"] == "list"
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]
    assert (first["limit"], first["offset"], first["has_more"]) == (2, 0, True)
    last = client.get("/jobs", params={"limit": 2, "offset": 4}).json()
    assert [j["id"] for j in last["data"]] == [ids[0]]
    assert last["has_more"] is False
    assert client.get("/jobs").json()["limit"] == 20


def test_jobs_can_be_listed_by_status(client: httpx.Client) -> None:
    done = submit(client)
    wait_for(client, done["id"])
    unreachable = submit(client, image_url="http://127.0.0.1:9/x.png")
    wait_for(client, unreachable["id"])
    completed = client.get("/jobs", params={"status": "completed"}).json()["data"]
    failed = client.get("/jobs", params={"status": "failed"}).json()["data"]
    assert [j["id"] for j in completed] == [done["id"]]
    assert [j["id"] for j in failed] == [unreachable["id"]]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
    ],
)
def test_list_parameters_out_of_range_are_refused(
    client: httpx.Client, query: dict[str, Any], param: str
) -> None:
    response = client.get("/jobs", params=query)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_list_accepts_the_largest_limit(client: httpx.Client) -> None:
    assert client.get("/jobs", params={"limit": 50}).json()["limit"] == 50
