"""Shared fixtures: an isolated user environment, a real emulator on loopback, temp trees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Nothing here may reach the real service or the user's real cache.
UNREACHABLE_BASE_URL = "http://127.0.0.1:9/api/v1"


@pytest.fixture(autouse=True)
def isolated_user_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("TCHAVI_RENDER_CACHE_DIR", str(home / "tchavi-cache"))
    monkeypatch.setenv("TCHAVI_BASE_URL", UNREACHABLE_BASE_URL)
    monkeypatch.delenv("TCHAVI_API_KEY", raising=False)
    monkeypatch.delenv("TCHAVI_RENDER_DEBUG", raising=False)
    # Nor a team's remote cache: tests that want one (tests/remote) set up their own bucket.
    for name in ("", "_MODE", "_ENDPOINT_URL"):
        monkeypatch.delenv(f"TCHAVI_RENDER_REMOTE_CACHE{name}", raising=False)
    monkeypatch.delenv("TCHAVI_RENDER_CACHE_SECRET", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Build a tree of files in one call: {"a.yaml": "text", "dir": {"b.bin": b"bytes"}}."""

    def gen(tree: dict[str, Any], root: Path = tmp_path) -> Path:
        for name, content in tree.items():
            path = root / name
            if isinstance(content, dict):
                path.mkdir(parents=True, exist_ok=True)
                gen(content, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(content)
        return root

    return gen
