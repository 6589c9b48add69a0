"""Chaos: server errors, failed jobs and rate limits at once; nothing is paid twice or lost."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from tests.engine.conftest import API_KEY
from tests.reliability.conftest import Project, read_lock, storyboard

SHOTS = 60


def test_under_chaos_every_shot_renders_once_and_the_lock_matches_the_account(
    project_factory: Callable[..., Project],
) -> None:
    project = project_factory(error_rate=0.2, fail_rate=0.1, rpm=30, latency=0.5, fault_seed=2024)
    project.write(storyboard(SHOTS))
    failed_jobs: set[str] = set()
    started = time.monotonic()
    for attempt in range(6):
        result = project.apply(ok=False)
        assert "Traceback" not in result.output
        lock = read_lock(project)
        reported = set(re.findall(r"failed: (shot-\d+)", result.output))
        for shot_id in (f"shot-{i:03d}" for i in range(SHOTS)):
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
        raise AssertionError(f"still failing after 6 applies:\n{result.output}")
    elapsed = time.monotonic() - started

    lock = read_lock(project)
    rendered = {entry["job_id"] for entry in lock["shots"].values()}
    assert len(rendered) == SHOTS
    jobs = {job["id"]: job for job in project.jobs()}
    # One job per shot key, plus one per failed attempt that the user retried: no other.
    assert set(jobs) == rendered | failed_jobs, elapsed
    assert len(jobs) == SHOTS + len(failed_jobs)
    assert all(jobs[j]["status"] == "completed" for j in rendered)
    assert all(jobs[j]["status"] == "failed" for j in failed_jobs)
    assert lock["credits_total"] == project.emulator.account(API_KEY)["credits_used"]
