"""Fixtures for the hostile-input suite: the bad specs, copied into a project with its traps."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tchavi_render.emulator import EmulatorConfig, RunningEmulator, running_emulator
from tests.engine.conftest import project_factory

__all__ = ["BAD", "bad_project", "emulator", "project_factory"]

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"


@pytest.fixture(scope="module")
def bad_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/bad copied to a project dir, plus the symlinks that lead out of it."""
    base = tmp_path_factory.mktemp("bad")
    outside = base / "outside"
    outside.mkdir()
    Image.new("RGB", (8, 8), (0, 90, 200)).save(outside / "real.png")
    (outside / "secret.j2").write_text("the secret\n")
    project = base / "project"
    shutil.copytree(BAD, project)
    (project / "assets" / "escape.png").symlink_to(outside / "real.png")
    (project / "linked-out").symlink_to(outside, target_is_directory=True)
    return project


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(data_dir=tmp_path_factory.mktemp("emulator"), credits=10**7)
    with running_emulator(config) as emu:
        yield emu
