"""Checkouts the CLI runs on: a `Project` (one emulator, the CLI in this process or a child)
and a `Machine` (one of several sharing a bucket and an emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from tchavi_render.cli.main import cli

__all__ = ["API_KEY", "Checkout", "Machine", "Project"]

API_KEY = "sk-tch_engine-tests"  # a Project's key unless a test switches accounts


@dataclass
class Checkout:
    """A spec directory and the cache dir of the user who runs the CLI on it."""

    root: Path
    cache_dir: Path

    @property
    def spec(self) -> Path:
        return self.root / "tchavi.yaml"

    @property
    def lock(self) -> Path:
        return self.root / "tchavi.lock"

    def output(self, shot: str) -> Path:
        return self.root / "renders" / f"{shot}.mp4"

    def write(self, text: str, name: str = "tchavi.yaml") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@dataclass
class Project(Checkout):
    """A spec directory, a cache and an emulator: run the CLI on it, count jobs."""

    emulator: Any
    runner: CliRunner
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
class Machine(Checkout):
    """One checkout on one machine: a project dir and a cache dir of its own; the bucket and
    the Tchavi account (an emulator) are shared."""

    name: str
    base_env: dict[str, str]

    def env(self, **overrides: str | None) -> dict[str, str | None]:
        return {**self.base_env, "TCHAVI_RENDER_CACHE_DIR": str(self.cache_dir), **overrides}

    def run(self, *args: str, ok: bool = True, **env: str | None) -> Result:
        """The CLI in this process, on this machine's spec."""
        result = CliRunner().invoke(
            cli, [*args, str(self.spec)], env=self.env(**env), catch_exceptions=False
        )
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def apply(self, *args: str, ok: bool = True, **env: str | None) -> Result:
        return self.run("apply", "--yes", *args, ok=ok, **env)

    def spawn(self, *args: str, **env: str | None) -> subprocess.Popen[bytes]:
        """The CLI in a child process (another machine), output to its log file."""
        merged = {**os.environ, **self.env(**env)}
        full = {k: v for k, v in merged.items() if v is not None}
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "tchavi_render", *args],
                cwd=self.root,
                env=full,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def log(self) -> Path:
        return self.root.parent / f"{self.name}.log"

    def finish(self, process: subprocess.Popen[bytes], timeout: float = 60) -> str:
        """Wait for a child; its whole log. Fails the test when it failed."""
        code = process.wait(timeout=timeout)
        text = self.log.read_text()
        assert code == 0, text
        return text
