"""Fixtures for reviewing a storyboard change: a real git repository in a temp dir."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tchavi_render.cli.main import cli
from tchavi_render.engine.lock import LockEntry, Lockfile, OutputRecord
from tests.engine.conftest import Project, project, project_factory
from tests.storyboard.conftest import chromium

__all__ = [
    "Project",
    "Repo",
    "chromium",
    "git_env",
    "git_init",
    "lock_text",
    "project",
    "project_factory",
    "repo",
]

HEAD = """\
version: 1
backend: local
defaults:
  model: seedance-2
  duration: 2
  generate_audio: false
shots:
"""


def lock_text(renders: Mapping[str, str]) -> str:
    """A lock recording a render for each shot id: id -> one hex digit its sha256 repeats."""
    shots = {
        shot_id: LockEntry(
            key="sha256:" + digit * 64,
            model="seedance-2",
            request={"prompt": shot_id},
            job_id=f"job_{shot_id}",
            output=OutputRecord(f"renders/{shot_id}.mp4", digit * 64, 1000, 2, "480p"),
            credits_used=520,
        )
        for shot_id, digit in renders.items()
    }
    return Lockfile(shots=shots).dumps()


@dataclass
class Repo:
    root: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def write(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def commit(self, files: Mapping[str, str], message: str = "change") -> str:
        """Write `files`, commit everything, return the commit's id."""
        self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def run(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits need no user config; the system's git config is not read."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Reviewer")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "reviewer@example.com")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git_init(root: Path) -> Repo:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    return Repo(root)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git_env: None) -> Repo:
    """An empty repository on `main`, the current directory."""
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    return git_init(root)


def spec(*shots: str) -> str:
    """A spec of the given shot blocks (`  - id: ...` lines)."""
    return HEAD + "".join(shots)


def shot(shot_id: str, prompt: str, *extra: str) -> str:
    lines = [f"  - id: {shot_id}\n", f'    prompt: "{prompt}"\n']
    lines += [f"    {line}\n" for line in extra]
    return "".join(lines)
