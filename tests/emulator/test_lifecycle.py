"""Jobs over time: latency, URL expiry, persistence and resumption across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.emulator.conftest import StartEmulator, api_client, probe, rendered, submit, wait_for
from tests.support.clock import MovableClock
from tests.support.waiting import wait_until

LATENCY = 600.0  # seconds of the emulator's clock, which the tests move past


def test_a_job_completes_no_earlier_than_the_latency(start_emulator: StartEmulator) -> None:
    clock = MovableClock()
    with (
        start_emulator(latency=LATENCY, clock=clock) as emu,
        api_client(emu, "sk-tch_slow") as http,
    ):
        job = submit(http)
        wait_until(lambda: rendered(emu), 30, "the job's video file")
        clock.advance(LATENCY - 1)  # rendered, and a second of its latency still to go
        assert http.get(f"/jobs/{job['id']}").json()["status"] in ("pending", "processing")
        clock.advance(1)
        done = wait_for(http, job["id"])
    assert done["status"] == "completed"


def test_a_video_url_expires_after_the_ttl(start_emulator: StartEmulator) -> None:
    clock = MovableClock()
    with (
        start_emulator(url_ttl=60.0, clock=clock) as emu,
        api_client(emu, "sk-tch_ttl") as http,
    ):
        job = wait_for(http, submit(http)["id"])
        url = job["output"]["video_url"]
        assert httpx.get(url).status_code == 200
        clock.advance(60.0)
        expired = httpx.get(url)
        assert http.get(f"/jobs/{job['id']}").json()["status"] == "completed"
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "url_expired"


def test_a_restarted_emulator_still_answers_for_old_jobs_and_files(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    with start_emulator() as emu, api_client(emu, "sk-tch_p") as http:
        job = wait_for(http, submit(http, seed=4)["id"])
        original = httpx.get(job["output"]["video_url"]).content
        balance = emu.account("sk-tch_p")
    with start_emulator() as emu, api_client(emu, "sk-tch_p") as http:
        again = http.get(f"/jobs/{job['id']}").json()
        listed = http.get("/jobs").json()["data"]
        video = httpx.get(again["output"]["video_url"])
        assert emu.account("sk-tch_p")["credits_remaining"] == balance["credits_remaining"]
    assert again["status"] == "completed"
    assert again["output"]["video_url"].startswith(emu.root_url)
    assert [j["id"] for j in listed] == [job["id"]]
    assert video.content == original


def test_jobs_unfinished_at_shutdown_complete_after_a_restart(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    with start_emulator() as emu, api_client(emu, "sk-tch_r") as http:
        # Long enough that none can finish before the emulator stops right after.
        ids = [submit(http, duration=10, prompt=f"long take {n}")["id"] for n in range(3)]
        unfinished = [j for j in emu.jobs() if j["status"] in ("pending", "processing")]
    assert unfinished
    assert not list((tmp_path / "emulator" / "videos").glob("*.tmp"))
    with start_emulator() as emu, api_client(emu, "sk-tch_r") as http:
        done = [wait_for(http, job_id) for job_id in ids]
        video = httpx.get(done[0]["output"]["video_url"]).content
    assert [j["status"] for j in done] == ["completed"] * 3
    assert abs(probe(video, tmp_path).duration - 10) <= 0.1


def test_a_rendered_job_waiting_out_its_latency_at_shutdown_completes_after_a_restart(
    start_emulator: StartEmulator,
) -> None:
    clock = MovableClock()
    with (
        start_emulator(latency=LATENCY, clock=clock) as emu,
        api_client(emu, "sk-tch_l") as http,
    ):
        job = submit(http)
        wait_until(lambda: rendered(emu), 10, "the job's video file")
        assert http.get(f"/jobs/{job['id']}").json()["status"] == "processing"
    with (
        start_emulator(latency=LATENCY, clock=clock) as emu,
        api_client(emu, "sk-tch_l") as http,
    ):
        assert http.get(f"/jobs/{job['id']}").json()["status"] == "processing"
        clock.advance(LATENCY)
        done = wait_for(http, job["id"])
    assert done["status"] == "completed"
