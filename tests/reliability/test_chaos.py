"""Chaos: server errors, failed jobs and rate limits at once; nothing is paid twice or lost.

60 shots with error rate 0.2, fail rate 0.1 and 30 requests a minute, as the issue asks.
Those shots need about 100 requests (a fifth of the answers are 5xx, and every ambiguous
submit costs a lookup in GET /jobs), so this case spends about three minutes waiting for
the rate limit, most of the reliability suite's 5-minute budget. The same rates without
the limit run too: they stress more jobs in flight at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.engine.conftest import API_KEY
from tests.reliability.conftest import Project, read_lock, storyboard


@pytest.mark.parametrize(
    ("shots", "rpm"), [(60, None), (60, 30)], ids=["60-shots", "60-shots-30-rpm"]
)
def test_under_chaos_every_shot_renders_once_and_the_lock_matches_the_account(
    project_factory: Callable[..., Project], shots: int, rpm: int | None
) -> None:
    project = project_factory(error_rate=0.2, fail_rate=0.1, rpm=rpm, latency=0.5, fault_seed=2024)
    project.write(storyboard(shots))
    ids = [f"shot-{i:03d}" for i in range(shots)]
    failed_jobs: set[str] = set()
    for attempt in range(8):
        # The user applies, sees failures, and applies again (a retry of the failed shots).
        result = project.apply(ok=False)
        assert "Traceback" not in result.output
        lock = read_lock(project)
        reported = set(re.findall(r"failed: (shot-\d+)", result.output))
        for shot_id in ids:
            entry = lock["shots"].get(shot_id, {})
            # Every shot ends rendered, or reported failed (its refund in the lock when a
            # job was made).
            assert "output" in entry or shot_id in reported, (attempt, shot_id, result.output)
            failure = entry.get("failed")
            if failure is not None and "output" not in entry:
                assert failure["credits_refunded"] == failure["credits_used"] > 0
                failed_jobs.add(failure["job_id"])
        if result.exit_code == 0:
            break
    else:
        raise AssertionError(f"still failing after 8 applies:\n{result.output}")

    lock = read_lock(project)
    rendered = {entry["job_id"] for entry in lock["shots"].values()}
    assert len(rendered) == shots
    jobs = {job["id"]: job for job in project.jobs()}
    # One job per shot key, plus one per failed attempt that the user retried: no other.
    assert set(jobs) == rendered | failed_jobs
    assert len(jobs) == shots + len(failed_jobs)
    assert all(jobs[j]["status"] == "completed" for j in rendered)
    assert all(jobs[j]["status"] == "failed" for j in failed_jobs)
    assert failed_jobs, "fail rate 0.1 should fail some jobs"
    assert lock["credits_total"] == project.emulator.account(API_KEY)["credits_used"]
