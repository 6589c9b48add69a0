"""The CI and git recipes: the example workflow, the pre-commit hook, shell completion."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tchavi_render.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "ci" / "tchavi-render.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
EXECUTABLE = Path(sys.executable).parent / "tchavi-render"
SHELL_OPERATORS = {"||", "&&", "|", ">", ">>", ";", "\\"}


def workflow() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def commands(doc: dict[Any, Any]) -> list[list[str]]:
    """Every `tchavi-render ...` command line of every step, as argv lists."""
    found = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                words = shlex.split(line, comments=True)
                for i, word in enumerate(words):
                    at_command = i == 0 or words[i - 1] in SHELL_OPERATORS
                    if word == "tchavi-render" and at_command:
                        argv = []
                        for arg in words[i + 1 :]:
                            if arg in SHELL_OPERATORS:
                                break
                            argv.append(arg)
                        found.append(argv)
    return found


def test_the_workflow_parses_and_plans_on_pull_requests_and_applies_on_main() -> None:
    doc = workflow()
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"]["branches"] == ["main"]
    assert doc["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    assert doc["jobs"]["apply"]["if"] == "github.event_name == 'push'"
    argvs = commands(doc)
    assert ["plan", "$SPEC", "--format", "markdown"] in argvs
    assert any(a[:1] == ["apply"] and "--frozen" in a for a in argvs)
    assert any(a[:1] == ["apply"] and "--max-credits" in a for a in argvs)
    assert "pull-requests" in doc["jobs"]["plan"]["permissions"]


def test_a_pull_request_gets_one_review_comment_updated_in_place() -> None:
    doc = workflow()
    plan_job = doc["jobs"]["plan"]
    argvs = commands(doc)
    assert ["diff", "$BASE", "HEAD", "--spec", "$SPEC", "--format", "markdown"] in argvs
    assert ["report", "$SPEC", "--compare", "$BASE", "-o", "review/index.html"] in argvs
    assert ["validate", "$SPEC", "--format", "github"] in argvs
    assert plan_job["steps"][0]["with"]["fetch-depth"] == 0  # the base branch is in git
    upload = next(s for s in plan_job["steps"] if s.get("uses", "").startswith("actions/upload"))
    comment = plan_job["steps"][-1]
    assert comment["env"]["REPORT"] == f"${{{{ steps.{upload['id']}.outputs.artifact-url }}}}"
    # The comment carrying the marker (which diff's markdown starts with) is patched.
    assert "<!-- tchavi-render-diff -->" in comment["run"]
    assert "--method PATCH" in comment["run"] and "issues/comments/$id" in comment["run"]


def test_the_workflow_uses_only_real_verbs_and_flags() -> None:
    runner = CliRunner()
    argvs = commands(workflow())
    assert len(argvs) >= 6
    for argv in argvs:
        verb, args = argv[0], argv[1:]
        result = runner.invoke(cli, [verb, "--help"])
        assert result.exit_code == 0, f"tchavi-render {verb}: not a verb"
        for flag in (a.split("=")[0] for a in args if a.startswith("-")):
            assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", result.output), (
                f"tchavi-render {verb} has no {flag} flag"
            )


def hook() -> dict[str, Any]:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert [h["id"] for h in hooks] == ["tchavi-render-validate"]
    found: dict[str, Any] = hooks[0]
    return found


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("tchavi.yaml", True),
        ("storyboard/tchavi.yaml", True),
        ("examples/quickstart/tchavi.yml", True),
        ("docker-compose.yaml", False),
        ("tchavi.yaml.bak", False),
        ("my-tchavi.yaml", False),
    ],
)
def test_the_hook_runs_on_spec_files_only(path: str, matches: bool) -> None:
    assert bool(re.search(hook()["files"], path)) is matches


def run_hook(*files: Path) -> subprocess.CompletedProcess[str]:
    entry = shlex.split(hook()["entry"])
    assert entry[0] == "tchavi-render"
    return subprocess.run(
        [str(EXECUTABLE), *entry[1:], *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_the_hook_entry_validates_every_file_it_is_given(tmp_path: Path) -> None:
    examples = [REPO / "examples" / "quickstart" / "tchavi.yaml"]
    examples.append(REPO / "examples" / "music-video" / "tchavi.yaml")
    ok = run_hook(*examples)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        f"{examples[0]}: valid, 3 shots",
        f"{examples[1]}: valid, 5 shots",
    ]
    broken = tmp_path / "tchavi.yaml"
    broken.write_text("version: 1\nshots:\n  - id: one\n    prompt: hi\n    modle: x\n")
    failed = run_hook(examples[0], broken)
    assert failed.returncode == 1
    assert f"{broken}:5:5: unknown key 'modle'. Did you mean 'model'?" in failed.stderr


def test_shell_completion_is_click_s() -> None:
    env = {**os.environ, "_TCHAVI_RENDER_COMPLETE": "bash_source"}
    done = subprocess.run(
        [str(EXECUTABLE)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "_tchavi_render_completion" in done.stdout
    assert "complete -o nosort -F _tchavi_render_completion tchavi-render" in done.stdout


def test_help_of_report_export_and_diff_imports_no_video_library() -> None:
    code = (
        "import sys\n"
        "from tchavi_render.cli.main import cli\n"
        "for verb in ('report', 'export', 'diff'):\n"
        "    try:\n"
        "        cli.main([verb, '--help'], prog_name='tchavi-render')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('av', 'PIL', 'rich', 'starlette') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert "--output" in done.stdout
    assert done.stdout.strip().endswith("[]"), done.stdout
