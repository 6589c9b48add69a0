"""Credits, refunds, rate limits, response headers and injected faults."""

from __future__ import annotations

import httpx
import pytest

from tchavi_render.emulator import RunningEmulator
from tests.emulator.conftest import StartEmulator, api_client, body, submit, wait_for

RATE_HEADERS = (
    "X-RateLimit-RPM-Limit",
    "X-RateLimit-RPM-Remaining",
    "X-Credits-Used",
    "X-Credits-Remaining",
    "X-Request-Id",
)


@pytest.mark.parametrize(
    ("resolution", "duration", "credits"),
    [("480p", 5, 1300), ("720p", 2, 1160), ("480p", -1, 2600)],
)
def test_jobs_are_charged_at_submission(
    shared_emulator: RunningEmulator,
    client: httpx.Client,
    api_key: str,
    resolution: str,
    duration: int,
    credits: int,
) -> None:
    job = submit(client, resolution=resolution, duration=duration, seed=1)
    assert job["status"] == "pending"
    assert job["tchavi"] == {"credits_used": credits}
    account = shared_emulator.account(api_key)
    assert account["credits_used"] == credits
    assert account["credits_remaining"] == 100_000 - credits


def test_auto_duration_is_billed_as_ten_seconds_but_picks_its_own_length(
    client: httpx.Client,
) -> None:
    job = wait_for(client, submit(client, duration=-1, seed=7)["id"])
    assert job["tchavi"]["credits_used"] == 2600
    assert 4 <= job["output"]["duration"] <= 10


def test_failed_job_is_refunded(start_emulator: StartEmulator) -> None:
    with (
        start_emulator(fail_rate=1.0, credits=1000, latency=0.5) as emu,
        api_client(emu, "sk-tch_f") as http,
    ):
        job = submit(http, duration=2)
        assert emu.account("sk-tch_f")["credits_remaining"] == 480
        done = wait_for(http, job["id"])
        assert done["status"] == "failed"
        assert done["error"]["code"] in {"upstream_error", "timeout", "content_policy_violation"}
        assert done["error"]["message"]
        assert done["tchavi"] == {"credits_used": 520, "credits_refunded": 520}
        assert "output" not in done
        assert emu.account("sk-tch_f") == {
            "credits_remaining": 1000,
            "credits_used": 0,
            "requests": emu.account("sk-tch_f")["requests"],
        }


def test_a_fraction_of_jobs_fail(start_emulator: StartEmulator) -> None:
    with start_emulator(fail_rate=0.5, fault_seed=3) as emu, api_client(emu, "sk-tch_f") as http:
        jobs = [submit(http, prompt=f"shot {n}") for n in range(12)]
        statuses = [wait_for(http, job["id"])["status"] for job in jobs]
    assert 0 < statuses.count("failed") < 12


def test_completed_job_keeps_its_charge(shared_emulator: RunningEmulator, api_key: str) -> None:
    with api_client(shared_emulator, api_key) as http:
        done = wait_for(http, submit(http)["id"])
    assert done["status"] == "completed"
    assert done["tchavi"] == {"credits_used": 260}
    assert shared_emulator.account(api_key)["credits_used"] == 260


def test_every_response_carries_the_rate_and_credit_headers(client: httpx.Client) -> None:
    responses = [
        client.post("/videos/generations", json=body()),
        client.post("/videos/generations", json=body(duration=0)),
        client.get("/jobs/job_nope"),
        client.get("/jobs"),
        client.get("/jobs", headers={"Authorization": ""}),
    ]
    for response in responses:
        for header in RATE_HEADERS:
            assert response.headers.get(header), (response.status_code, header)
    assert responses[0].headers["X-Credits-Used"] == "260"
    assert responses[-2].headers["X-Credits-Remaining"] == str(100_000 - 260)
    ids = {response.headers["X-Request-Id"] for response in responses}
    assert len(ids) == len(responses)


def test_over_the_rate_limit_answers_429_with_retry_after(start_emulator: StartEmulator) -> None:
    with start_emulator(rpm=3) as emu, api_client(emu, "sk-tch_busy") as http:
        allowed = [http.get("/jobs") for _ in range(3)]
        refused = http.get("/jobs")
        with api_client(emu, "sk-tch_other") as other:
            unaffected = other.get("/jobs")
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["X-RateLimit-RPM-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert allowed[0].headers["X-RateLimit-RPM-Limit"] == "3"
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and 59 <= int(retry_after) <= 60
    for header in RATE_HEADERS:
        assert refused.headers.get(header)
    assert unaffected.status_code == 200


def test_one_address_has_its_own_limit_whatever_the_keys(start_emulator: StartEmulator) -> None:
    """The service's 500 requests a minute per IP, here 4: keys with room of their own are
    refused together once their address has spent it."""
    with start_emulator(rpm=3, ip_rpm=4) as emu:
        with api_client(emu, "sk-tch_first") as first, api_client(emu, "sk-tch_second") as second:
            allowed = [first.get("/jobs"), first.get("/jobs"), second.get("/jobs")]
            allowed.append(second.get("/jobs"))
            refused = [first.get("/jobs"), second.get("/jobs")]
            with api_client(emu, "sk-tch_third") as third:
                refused.append(third.get("/jobs"))
        requests = emu.account("sk-tch_third")["requests"]
    assert [r.status_code for r in allowed] == [200] * 4
    assert [r.status_code for r in refused] == [429] * 3
    for answer in refused:
        assert answer.json()["error"]["code"] == "rate_limit_exceeded"
        assert "per IP address" in answer.json()["error"]["message"]
        assert 59 <= int(answer.headers["Retry-After"]) <= 60
    assert requests == 1  # counted for its key like any other 429


def test_the_limits_must_allow_a_request(start_emulator: StartEmulator) -> None:
    for name in ("rpm", "ip_rpm"):
        with (
            pytest.raises(ValueError, match=f"{name} must be at least 1"),
            start_emulator(**{name: 0}),
        ):
            pass


def test_injected_errors_answer_500_or_502_with_an_error_body(
    start_emulator: StartEmulator,
) -> None:
    with start_emulator(error_rate=1.0, fault_seed=1) as emu, api_client(emu, "sk-tch_e") as http:
        responses = [http.get("/jobs") for _ in range(8)]
    assert {r.status_code for r in responses} == {500, 502}
    for response in responses:
        error = response.json()["error"]
        assert error["code"] == {500: "internal_error", 502: "upstream_error"}[error["status"]]
        assert response.headers["X-Request-Id"]


def test_an_injected_submit_error_sometimes_comes_after_the_job_was_created_and_billed(
    start_emulator: StartEmulator,
) -> None:
    with start_emulator(error_rate=1.0, fault_seed=5) as emu, api_client(emu, "sk-tch_e") as http:
        answers = [http.post("/videos/generations", json=body()) for _ in range(10)]
        created = emu.jobs()
        account = emu.account("sk-tch_e")
    assert all(a.status_code in (500, 502) for a in answers)
    # Some errors came before creation, some after: only a GET /jobs can tell them apart.
    assert 0 < len(created) < 10
    assert account["credits_used"] == 260 * len(created)


def test_an_ambiguous_submit_can_be_reconciled_by_listing_jobs(
    start_emulator: StartEmulator,
) -> None:
    with start_emulator(error_rate=0.5, fault_seed=11) as emu, api_client(emu, "sk-tch_e") as http:
        for attempt in range(40):
            before = len(emu.jobs())
            answer = http.post("/videos/generations", json=body(prompt=f"try {attempt}"))
            if answer.status_code >= 500 and len(emu.jobs()) == before + 1:
                break
        else:
            pytest.fail("no submit error came after creation")
        while (listing := http.get("/jobs", params={"limit": 1})).status_code != 200:
            pass
        newest = emu.jobs()[-1]["id"]
    assert listing.json()["data"][0]["id"] == newest
