"""Fixtures for the storyboard verbs: the engine's Project (emulator + CLI) and a browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.engine.conftest import Project, project, project_factory

__all__ = ["Project", "chromium", "project", "project_factory"]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Debian chromium binary; `make browser` (run by `make test`) installs it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    return Path(found)
