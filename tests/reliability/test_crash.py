"""Crash: apply is SIGKILLed at ten moments of a render; the next apply never pays twice."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable

import pytest

from tchavi_render.engine.lockread import read_lock
from tchavi_render.failpoints import ENV, POINTS
from tests.reliability.conftest import Project, run_cli, storyboard

SHOTS = 4
# The occurrence of each point to die at: past the first where that leaves earlier shots
# in other states (one finished, one in flight...).
NTH = {
    "before-intent": 2,
    "before-submit": 2,
    "after-submit": 2,
    "after-journal": 3,
    "after-poll": 1,
    "mid-download": 2,
    "after-download": 1,
    "after-cache": 2,
    "mid-lock-write": 1,
    "after-lock": 1,
}


def test_every_failpoint_is_covered() -> None:
    assert set(NTH) == set(POINTS)


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_moment_leaves_a_readable_lock_and_the_next_apply_pays_nothing_twice(
    project_factory: Callable[..., Project], point: str
) -> None:
    project = project_factory(latency=0.3)
    project.write(storyboard(SHOTS))
    killed = run_cli(project, "apply", "--yes", env={ENV: f"{point}:{NTH[point]}"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    read_lock(project.lock)  # parses (or is absent): never half-written
    paid_before = {job["id"] for job in project.jobs()}

    result = project.apply()
    assert "Traceback" not in result.output

    lock = read_lock(project.lock)
    jobs = project.jobs()
    assert len(jobs) == SHOTS, [j["id"] for j in jobs]  # one job per key, whatever happened
    assert paid_before <= {job["id"] for job in jobs}
    assert {entry.job_id for entry in lock.shots.values()} == {job["id"] for job in jobs}
    for entry in lock.shots.values():
        assert entry.output is not None
        data = (project.root / entry.output.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.output.sha256
    again = project.apply()
    assert "No changes" in again.output and len(project.jobs()) == SHOTS
