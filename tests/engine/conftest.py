"""Fixtures for end-to-end engine tests: an emulator on loopback and a CLI runner for a spec."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tchavi_render.emulator import EmulatorConfig, running_emulator
from tests.support.checkouts import API_KEY, Project

__all__ = ["API_KEY", "Disk", "Project", "project", "project_factory"]


@dataclass
class Disk:
    """The output files as the plan sees them: relpath -> sha256 of the file there."""

    files: dict[str, str]
    objects: frozenset[str] = frozenset()  # digests the cache holds

    def relpath_for(self, shot_id: str) -> str:
        return f"renders/{shot_id}.mp4"

    def exists(self, relpath: str) -> bool:
        return relpath in self.files

    def sha256(self, relpath: str) -> str | None:
        return self.files.get(relpath)

    def owner(self, relpath: str) -> str | None:
        return None

    def recoverable(self, sha256: str) -> bool:
        return sha256 in self.objects


@pytest.fixture
def project_factory(
    tmp_path: Path,
) -> Iterator[Callable[..., Project]]:
    stack: list[Any] = []

    def make(clock: Callable[[], float] = time.time, **config: Any) -> Project:
        settings = {"credits": 10_000_000, "fault_seed": 7, **config}
        data_dir = tmp_path / f"emulator-{len(stack)}"
        manager = running_emulator(EmulatorConfig(data_dir=data_dir, **settings), clock=clock)
        emu = manager.__enter__()
        stack.append(manager)
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        return Project(root, tmp_path / "cache", emu, CliRunner())

    yield make
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def project(project_factory: Callable[..., Project]) -> Project:
    return project_factory()
