"""A truncated or corrupted download is detected and fetched again, never paid for again."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from tchavi_render.engine.lockread import read_lock
from tests.reliability.conftest import Project, storyboard
from tests.reliability.proxy import Spoil, spoiling_proxy

SHOTS = 3


@pytest.mark.parametrize("spoil", ["cut", "short", "corrupt"])
def test_a_spoiled_download_is_fetched_again_and_the_output_is_the_rendered_file(
    project_factory: Callable[..., Project], tmp_path: Path, spoil: Spoil
) -> None:
    project = project_factory()
    project.write(storyboard(SHOTS))
    with spoiling_proxy(project.emulator.root_url, spoil) as proxy:
        env = {"TCHAVI_BASE_URL": f"{proxy.root_url}/api/v1"}
        project.env = lambda: {**Project.env(project), **env}  # type: ignore[method-assign]
        result = project.apply()
    assert "3 rendered" in result.output
    assert len(project.jobs()) == SHOTS
    assert len(proxy.spoiled) == SHOTS
    assert len(proxy.downloads) == 2 * SHOTS  # each video fetched exactly twice
    videos = project.emulator.config.data_dir / "videos"
    for shot_id, entry in read_lock(project.lock).shots.items():
        assert entry.output is not None and entry.job_id is not None, shot_id
        rendered = (videos / f"{entry.job_id}.mp4").read_bytes()
        placed = (project.root / entry.output.path).read_bytes()
        assert placed == rendered
        assert hashlib.sha256(placed).hexdigest() == entry.output.sha256
        with av.open(str(project.root / entry.output.path)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 24


def test_videos_that_cannot_be_downloaded_are_fetched_by_the_next_apply_without_a_new_job(
    project_factory: Callable[..., Project],
) -> None:
    project = project_factory()
    project.write(storyboard(SHOTS))
    with spoiling_proxy(project.emulator.root_url, "missing") as proxy:
        env = {"TCHAVI_BASE_URL": f"{proxy.root_url}/api/v1"}
        project.env = lambda: {**Project.env(project), **env}  # type: ignore[method-assign]
        first = project.apply(ok=False)
        assert first.exit_code == 1
        assert first.output.count("the next apply downloads it again (no new job)") >= SHOTS
        proxy.spoil = "cut"
        second = project.apply()
    assert "3 collected" in second.output  # paid by the first apply, downloaded now
    assert len(project.jobs()) == SHOTS
    lock = read_lock(project.lock)
    assert {e.job_id for e in lock.shots.values()} == {j["id"] for j in project.jobs()}
