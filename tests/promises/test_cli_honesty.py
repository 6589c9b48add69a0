"""Messages that tell the truth: about an unreachable service, targets that match nothing, a
missing key, answering no, and what `show` and `cache info` say (issue 11, items 7, 8, 11, 12)."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tests.engine.conftest import Project
from tests.support.specs import head

SPEC = (
    head()
    + """\
  - {id: opening, prompt: "Aerial view of Cotonou", seed: 1}
  - {id: market, prompt: "Busy Dantokpa market", seed: 2}
"""
)


def sixteen_shots() -> str:
    return head() + "".join(f"  - {{id: s{i:02}, prompt: 'shot {i}'}}\n" for i in range(16))


def test_an_unreachable_service_is_said_once_and_nothing_more_is_submitted(
    tmp_path: Path,
) -> None:
    (tmp_path / "tchavi.yaml").write_text(sixteen_shots())
    env = {
        "TCHAVI_API_KEY": "sk-tch_unreachable",
        "TCHAVI_BASE_URL": "http://127.0.0.1:9",  # the discard port: connection refused
        "TCHAVI_RENDER_CACHE_DIR": str(tmp_path / "cache"),
    }
    result = CliRunner().invoke(cli, ["apply", "--yes", str(tmp_path / "tchavi.yaml")], env=env)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "cannot reach" in line]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("Error: cannot reach the Tchavi API at 127.0.0.1:9 (")
    assert "base URL http://127.0.0.1:9" in errors[0]
    assert "--base-url or TCHAVI_BASE_URL" in errors[0]
    assert "connection_error" not in result.output.split("Error:")[0]  # no line per shot


@pytest.mark.parametrize("verb", ["plan", "apply"])
def test_a_target_that_matches_nothing_is_an_error(project: Project, verb: str) -> None:
    project.write(SPEC)
    args = [verb, "--target", "openning"] + (["--yes"] if verb == "apply" else [])
    result = project.run(*args, "--detailed-exitcode" if verb == "plan" else "-y", ok=False)
    assert result.exit_code == 1
    assert (
        "Error: --target 'openning' matches no shot of tchavi.yaml or its lock. Did you mean "
        "'opening'? Check the id, or quote a glob" in result.output
    )
    assert project.jobs() == []


def test_a_missing_key_is_reported_before_the_plan(project: Project, tmp_path: Path) -> None:
    project.write(SPEC)
    env = {**project.env(), "TCHAVI_API_KEY": ""}
    old = os.getcwd()
    os.chdir(project.root)
    try:
        result = CliRunner().invoke(cli, ["apply", "--yes"], env=env)
    finally:
        os.chdir(old)
    assert result.exit_code == 1
    assert result.output == (
        "Error: TCHAVI_API_KEY is not set: the tchavi backend needs an API key. Set one "
        "(export TCHAVI_API_KEY=sk-tch_...), or render on the embedded emulator with "
        "--backend local\n"
    )


def test_answering_no_applies_nothing_and_is_not_an_error(project: Project) -> None:
    project.write(SPEC)
    primary, secondary = pty.openpty()  # apply asks only when a terminal can answer
    try:
        child = subprocess.run(
            [sys.executable, "-m", "tchavi_render", "apply"],
            cwd=project.root,
            env={**os.environ, **project.env()},
            stdin=secondary,
            capture_output=True,
            text=True,
            input=None,
            timeout=60,
            check=False,
            preexec_fn=lambda: os.write(primary, b"n\n") and None,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert child.returncode == 0, child.stdout + child.stderr
    assert "Apply this plan?" in child.stdout
    assert child.stdout.rstrip().endswith("Nothing applied.")
    assert project.jobs() == []


def test_plan_shows_spec_warnings_with_the_warning_prefix(project: Project) -> None:
    project.write(
        "version: 1\nbackend: tchavi\ndefaults:\n  model: seedance-2\n  duration: 1\n"
        "shots:\n  - id: market\n    prompt: 'Busy market'\n    reference_images: [logo.png]\n"
    )
    (project.root / "logo.png").write_bytes(_png())
    result = project.run("plan", "--backend", "local")
    warnings = [line for line in result.output.splitlines() if "logo.png" in line]
    assert warnings and all(": warning: " in line for line in warnings), result.output


def test_progress_lines_show_each_jobs_credits_and_spent_is_never_negative(
    project: Project,
) -> None:
    project.write(SPEC)
    result = project.apply()
    submits = [line for line in result.output.splitlines() if line.startswith("submit ")]
    assert len(submits) == 2
    assert submits[0].endswith("credits=260 (total 260)")
    assert submits[1].endswith("credits=260 (total 520)")
    assert "Credits spent: 520." in result.output


def test_show_lists_shots_in_storyboard_order_with_aligned_columns_and_takes_vars(
    project: Project,
) -> None:
    project.write(
        "version: 1\nbackend: tchavi\ndefaults:\n  model: seedance-2\n  duration: 1\n"
        "shots:\n"
        "  - {id: zulu, prompt: 'first {{ city }}', seed: 1}\n"
        "  - {id: alpha-long-id, prompt: 'second', seed: 2}\n"
    )
    project.apply("--var", "city=Cotonou")
    missing = project.run("show", ok=False)
    assert missing.exit_code == 1 and "city" in missing.output

    text = project.run("show", "--var", "city=Cotonou").output
    lines = text.splitlines()
    assert lines[0].split()[0] == "zulu" and lines[1].split()[0] == "alpha-long-id"
    assert lines[0].index("renders/") == lines[1].index("renders/")
    assert lines[0].index("job ") == lines[1].index("job ")


def test_cache_info_does_not_create_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "never-made"
    result = CliRunner().invoke(cli, ["cache", "info", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert "0 renders, 0 files" in result.output
    assert not cache.exists()


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_live_table_shows_finished_shots_as_finished() -> None:
    from rich.console import Console

    from tchavi_render.cli.output import RichEvents
    from tchavi_render.engine.apply import ApplyEvent

    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    sink = RichEvents(console=console)
    with sink:
        sink(ApplyEvent("submit", "a", job_id="job_1", status="pending", credits=260))
        sink(ApplyEvent("submit", "b", job_id="job_2", status="pending", credits=260))
        sink(ApplyEvent("status", "a", job_id="job_1", status="completed"))
        sink(ApplyEvent("collected", "c", job_id="job_0", message="already paid"))
        sink(ApplyEvent("rendered", "a", job_id="job_1", credits=260))
        sink(ApplyEvent("refund", "c", job_id="job_0", credits=260, message="refunded"))
        assert set(sink.rows) == {"b"}  # only the shot still rendering
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "✔ rendered a (job job_1)" in printed
    assert "✔ collected c (job job_0)" in printed


@pytest.mark.parametrize("verb", [("plan",), ("apply", "--yes")])
def test_a_file_where_the_state_folder_belongs_is_named_not_a_crash(
    project: Project, verb: tuple[str, ...]
) -> None:
    project.write(SPEC)
    (project.root / ".tchavi").write_text("not a folder")
    result = project.run(*verb, ok=False)
    assert result.exit_code == 1, result.output
    assert f"cannot use {project.root / '.tchavi'}" in result.output
    assert "move it aside" in result.output
    assert "Internal error" not in result.output and "Traceback" not in result.output
    assert project.jobs() == []
