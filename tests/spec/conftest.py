"""Fixtures for the spec tests: real media bytes, and a one-call spec directory builder."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tchavi_render.errors import Problem, SpecError
from tchavi_render.spec import LoadedSpec, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _make_media_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_media", EXAMPLES / "make_media.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def make_media() -> ModuleType:
    """examples/make_media.py, imported: the same generator the examples use."""
    return _make_media_module()


@pytest.fixture(scope="session")
def media(make_media: ModuleType) -> dict[str, bytes]:
    """Small real media files by role."""
    return {
        "png": make_media.png(32, 18, (10, 20, 30)),
        "png2": make_media.png(32, 18, (40, 20, 30), "square"),
        "wav": make_media.wav(0.5, 440.0),
        "mp4": make_media.mp4(2.0, (50, 50, 50)),
        "mp4_6s": make_media.mp4(6.0, (50, 60, 70), fps=2),
        "text": b"just some notes, not media\n",
    }


def line_of(text: str, fragment: str, nth: int = 1) -> int:
    """The 1-based line of the nth line of `text` that contains `fragment`."""
    seen = 0
    for number, line in enumerate(textwrap.dedent(text).splitlines(), start=1):
        if fragment in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{fragment!r} not in the spec")


class SpecDir:
    """A project directory with one spec in it; loads it and returns its problems."""

    def __init__(self, root: Path, make_tree: Callable[..., Path]) -> None:
        self.root = root
        self._make_tree = make_tree

    def write(
        self, spec: str, files: dict[str, Any] | None = None, name: str = "tchavi.yaml"
    ) -> Path:
        self._make_tree({name: textwrap.dedent(spec), **(files or {})}, self.root)
        return self.root / name

    def load(self, spec: str, files: dict[str, Any] | None = None, **kw: Any) -> LoadedSpec:
        return load_spec(self.write(spec, files), **kw)

    def fail(self, spec: str, files: dict[str, Any] | None = None, **kw: Any) -> SpecError:
        with pytest.raises(SpecError) as caught:
            load_spec(self.write(spec, files), **kw)
        return caught.value

    def errors(self, spec: str, files: dict[str, Any] | None = None, **kw: Any) -> list[Problem]:
        return self.fail(spec, files, **kw).problems

    def one_error(self, spec: str, files: dict[str, Any] | None = None, **kw: Any) -> Problem:
        problems = self.errors(spec, files, **kw)
        assert len(problems) == 1, "\n".join(map(str, problems))
        return problems[0]


@pytest.fixture
def spec_dir(tmp_path: Path, make_tree: Callable[..., Path]) -> SpecDir:
    project = tmp_path / "project"
    project.mkdir()
    return SpecDir(project, make_tree)
