"""Two applies of one spec at once: the second is refused, or waits, and nothing is paid twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from tests.reliability.conftest import Project, storyboard
from tests.support.waiting import wait_until

SHOTS = 5


def start_apply(project: Project, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tchavi_render", "apply", "--yes", *args],
        cwd=project.root,
        env={**os.environ, **project.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_applies_started_together_render_each_shot_once(
    project_factory: Callable[..., Project],
) -> None:
    project = project_factory(latency=1.0)
    project.write(storyboard(SHOTS))
    first, second = start_apply(project), start_apply(project)
    outputs = [p.communicate(timeout=60)[0] for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 1], outputs
    refused = outputs[0] if first.returncode else outputs[1]
    assert "tchavi.yaml is being applied by " in refused
    assert "Traceback" not in refused
    assert len(project.jobs()) == SHOTS


def test_a_second_apply_that_waits_for_the_lock_finds_nothing_left_to_pay_for(
    project_factory: Callable[..., Project],
) -> None:
    project = project_factory(latency=1.0)
    project.write(storyboard(SHOTS))
    first = start_apply(project)
    holder = project.root / ".tchavi" / "tchavi.apply.holder"
    wait_until(holder.exists, 30, "the first apply to take the apply lock")
    second = start_apply(project, "--lock-timeout", "60")
    outputs = [p.communicate(timeout=90)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert len(project.jobs()) == SHOTS
    assert "5 rendered" in outputs[0] and "No changes" in outputs[1], outputs
