"""The emulator stops and starts again (same port, same data) in the middle of an apply."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from click.testing import CliRunner

from tchavi_render.emulator import EmulatorConfig, running_emulator
from tchavi_render.engine.lockread import read_lock
from tests.reliability.conftest import Project, storyboard
from tests.support.clock import MovableClock
from tests.support.waiting import wait_until

SHOTS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_apply_survives_a_restart_of_the_service_with_jobs_in_flight(tmp_path: Path) -> None:
    # The jobs stay in flight across the restart whatever the runner's speed: their latency
    # is over only when the test moves the emulator's clock past it.
    latency = 600.0
    clock = MovableClock()
    config = EmulatorConfig(
        data_dir=tmp_path / "emulator", port=free_port(), latency=latency, credits=10**7
    )
    root = tmp_path / "project"
    root.mkdir()
    with running_emulator(config, clock=clock) as emu:
        project = Project(root, tmp_path / "cache", emu, CliRunner())
        project.write(storyboard(SHOTS))
        apply = project.subprocess("apply", "--yes")
        journal = root / ".tchavi" / "tchavi.journal"
        wait_until(
            lambda: journal.exists() and journal.read_text().count('"submitted"') >= SHOTS,
            30,
            f"{SHOTS} submits in the journal",
        )
        assert all(job["status"] in ("pending", "processing") for job in emu.jobs())
    time.sleep(2.0)  # down: polls fail and are retried
    assert apply.poll() is None, "the apply gave up while the service was down"
    with running_emulator(config, clock=clock) as emu:
        project.emulator = emu
        clock.advance(latency)
        assert apply.wait(timeout=60) == 0, (tmp_path / "subprocess.log").read_text()
        jobs = emu.jobs()
    assert len(jobs) == SHOTS
    lock = read_lock(project.lock)
    assert {e.job_id for e in lock.shots.values()} == {j["id"] for j in jobs}
    assert all(e.output is not None for e in lock.shots.values())
