"""Fixtures for the reliability suite: generated storyboards, CLI runs in child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import yaml

from tests.engine.conftest import Project, project_factory
from tests.support.specs import storyboard

__all__ = ["Project", "project_factory", "read_lock", "run_cli", "storyboard"]


def run_cli(
    project: Project, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process in the project directory and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "tchavi_render", *args],
        cwd=project.root,
        env={**os.environ, **project.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read_lock(project: Project) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(project.lock.read_text())
    return doc
