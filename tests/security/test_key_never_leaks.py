"""The API key is in no file, no output stream, no JSON event: even with failures and --debug."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.reliability.conftest import Project, run_cli, storyboard

CANARY = "sk-tch_CANARY-5e1f2a3b4c5d-must-never-show"
WRONG = "sk-tch_WRONGCANARY-9a8b7c-must-never-show"


def files_holding(root: Path, secret: bytes) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret in path.read_bytes()
    ]


def test_the_key_is_in_no_file_and_no_output_after_an_apply_with_failures(
    project_factory: Callable[..., Project],
) -> None:
    project = project_factory(api_key=CANARY, fail_rate=0.3, error_rate=0.2, fault_seed=3)
    key = {"TCHAVI_API_KEY": CANARY}
    project.write(storyboard(8))
    outputs = []
    runs = [
        ("--debug", "apply", "--yes", "--json"),
        ("--debug", "apply", "--yes"),
        ("--debug", "plan", "--json"),
        ("--debug", "show", "--json"),
        ("--debug", "validate", "--json"),
    ]
    for args in runs:
        done = run_cli(project, *args, env=key)
        outputs.append(done.stdout + done.stderr)
    project.write(storyboard(8) + '  - id: extra\n    prompt: "one more"\n')
    refused = run_cli(project, "--debug", "apply", "--yes", env={"TCHAVI_API_KEY": WRONG})
    outputs.append(refused.stdout + refused.stderr)

    assert refused.returncode == 1 and "invalid_api_key" in outputs[-1]
    assert any('"event": "failed"' in out for out in outputs), "the faults should fail a job"
    assert any("ambiguously" in out or "retry" in out for out in outputs), "and log retries"
    for out in outputs:
        assert "Traceback" not in out and "Internal error" not in out, out
        assert CANARY not in out and WRONG not in out
        assert "CANARY" not in out  # not even a part of it
    for root in (project.root, project.cache_dir, project.emulator.config.data_dir):
        assert files_holding(root, b"CANARY") == []
