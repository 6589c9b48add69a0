"""Fixtures for end-to-end engine tests: an emulator on loopback and a CLI runner for a spec."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tchavi_render.cli.main import cli
from tchavi_render.emulator import EmulatorConfig, running_emulator

API_KEY = "sk-tch_engine-tests"


@dataclass
class Project:
    """A spec directory, a cache and an emulator: run the CLI on it, count jobs."""

    root: Path
    cache_dir: Path
    emulator: Any
    runner: CliRunner

    @property
    def spec(self) -> Path:
        return self.root / "tchavi.yaml"

    @property
    def lock(self) -> Path:
        return self.root / "tchavi.lock"

    def write(self, text: str, name: str = "tchavi.yaml") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    api_key: str = API_KEY

    def env(self) -> dict[str, str]:
        return {
            "TCHAVI_API_KEY": self.api_key,
            "TCHAVI_BASE_URL": self.emulator.base_url,
            "TCHAVI_RENDER_CACHE_DIR": str(self.cache_dir),
        }

    def run(self, *args: str, ok: bool = True) -> Result:
        old = os.getcwd()
        os.chdir(self.root)
        try:
            result = self.runner.invoke(cli, list(args), env=self.env(), catch_exceptions=False)
        finally:
            os.chdir(old)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def apply(self, *args: str, ok: bool = True) -> Result:
        return self.run("apply", "--yes", *args, ok=ok)

    def subprocess(self, *args: str, log: str = "subprocess.log") -> subprocess.Popen[bytes]:
        """Run the CLI in a child process (output to `log` in the project's parent)."""
        env = {**os.environ, **self.env()}
        with (self.root.parent / log).open("ab") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "tchavi_render", *args],
                cwd=self.root,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.emulator.jobs())


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

    def make(**config: Any) -> Project:
        settings = {"credits": 10_000_000, "fault_seed": 7, **config}
        data_dir = tmp_path / f"emulator-{len(stack)}"
        manager = running_emulator(EmulatorConfig(data_dir=data_dir, **settings))
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
