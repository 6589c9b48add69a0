"""Headless Chromium for tests: a screenshot of a page, and its DOM after parsing."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

# No network, no first-run work, no GPU, a throwaway profile: a page and nothing else.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
)
TIMEOUT = 60


def _run(chromium: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(chromium: Path, page: Path, png: Path, width: int, height: int) -> Path:
    _run(
        chromium,
        f"--screenshot={png}",
        f"--window-size={width},{height}",
        page.resolve().as_uri(),
    )
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return png


def dump_dom(chromium: Path, page: Path) -> str:
    return _run(chromium, "--dump-dom", page.resolve().as_uri())
