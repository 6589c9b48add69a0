"""One emulator per data dir, in one process or several, the local backend's included."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tchavi_render.emulator import DataDirInUse, EmulatorConfig, running_emulator
from tchavi_render.engine.backends import local_data_dir

SPEC = """\
version: 1
backend: local
defaults: {model: seedance-2, duration: 1, seed: 5}
shots:
  - id: only
    prompt: "A kite over the dunes"
"""


def test_a_second_emulator_in_the_same_process_is_refused_until_the_first_stops(
    tmp_path: Path,
) -> None:
    config = EmulatorConfig(data_dir=tmp_path / "data")
    with running_emulator(config) as emu:
        with (
            pytest.raises(DataDirInUse) as refused,
            running_emulator(config, in_use_hint="wait for it to finish"),
        ):
            pass
        answer = httpx.get(f"{emu.base_url}/jobs", headers={"Authorization": "Bearer k"})
    assert str(refused.value) == (
        f"data dir {config.data_dir} is in use by the emulator at {emu.root_url}"
        f" (pid {os.getpid()}); wait for it to finish"
    )
    assert answer.is_success
    with running_emulator(config) as again:
        assert again.jobs() == []


def test_apply_on_the_local_backend_is_refused_while_another_emulator_serves_its_data_dir(
    tmp_path: Path,
) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    project.mkdir()
    (project / "tchavi.yaml").write_text(SPEC)
    config = EmulatorConfig(data_dir=local_data_dir(project / "tchavi.yaml", cache))
    with running_emulator(config) as emu:
        result = CliRunner().invoke(
            cli,
            ["apply", "--yes", str(project / "tchavi.yaml")],
            env={"TCHAVI_RENDER_CACHE_DIR": str(cache)},
        )
        jobs = emu.jobs()
    assert result.exit_code == 1, result.output
    assert f"is in use by the emulator at {emu.root_url}" in result.output
    assert "wait for that apply to finish, or give this one another --cache-dir" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert jobs == []
    assert not (project / "renders").exists()
