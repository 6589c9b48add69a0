"""`validate` and `plan` with `--format github`: problems on the lines of the pull request."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tchavi_render.cli.annotations import annotation
from tchavi_render.cli.main import cli

from .conftest import shot, spec

BROKEN = spec(
    shot("dawn", "Dawn over the cape"),
    "  - id: market\n    prompt: '100% {{ nope }}'\n    se%ed: 3\n",
)


def run(*args: str, code: int) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_documented_escapes_in_messages_and_properties() -> None:
    line = annotation("error", "50% done\r\nnext: a, b", Path("dir/a,b:c.yaml"), 3, 5, "x:1,2")
    assert line == (
        "::error file=dir/a%2Cb%3Ac.yaml,line=3,col=5,title=x%3A1%2C2::50%25 done%0D%0Anext: a, b"
    )
    assert annotation("warning", "no place") == "::warning::no place"


def test_validate_puts_each_error_on_its_line(folder: Path) -> None:
    (folder / "story,v2.yaml").write_text(BROKEN)
    result = run("validate", "story,v2.yaml", "--format", "github", code=1)
    assert result.stdout.splitlines() == [
        "::error file=story%2Cv2.yaml,line=11,col=13::prompt: undefined variable 'nope'. "
        "Define it under vars:, in a --var-file, or with --var nope=...",
        "::error file=story%2Cv2.yaml,line=12,col=5::unknown key 'se%25ed'. Did you mean 'seed'?",
    ]


def test_validate_warnings_are_warning_annotations(folder: Path) -> None:
    (folder / "tchavi.yaml").write_text(spec(shot("dawn", "Dawn")))
    (folder / "vars.yaml").write_text("plase: cape\n")
    result = run("validate", "--var-file", "vars.yaml", "--format", "github", code=0)
    assert result.stdout.splitlines() == [
        "::warning file=vars.yaml,line=1,col=1::variable 'plase' is not used by any template; "
        "remove it or use it",
        "tchavi.yaml: valid, 1 shot (1 warning)",
    ]


def test_plan_puts_each_error_on_its_line_and_exits_1(folder: Path) -> None:
    (folder / "tchavi.yaml").write_text(BROKEN)
    result = run("plan", "--format", "github", code=1)
    assert result.stdout.splitlines() == [
        "::error file=tchavi.yaml,line=11,col=13::prompt: undefined variable 'nope'. "
        "Define it under vars:, in a --var-file, or with --var nope=...",
        "::error file=tchavi.yaml,line=12,col=5::unknown key 'se%25ed'. Did you mean 'seed'?",
    ]
    assert result.stderr == ""


def test_plan_notes_each_shot_to_render_on_its_line(folder: Path) -> None:
    (folder / "tchavi.yaml").write_text(
        spec(shot("dawn", "Dawn"), shot("market", "100% market, at noon"))
    )
    result = run("plan", "--format", "github", code=0)
    assert result.stdout.splitlines() == [
        "::notice file=tchavi.yaml,line=8,col=5,title=tchavi-render plan::"
        "dawn: create, 520 credits%0Anew shot",
        "::notice file=tchavi.yaml,line=10,col=5,title=tchavi-render plan::"
        "market: create, 520 credits%0Anew shot",
        "Plan: 2 to create, 0 to replace, 0 to reuse, 0 unchanged, 0 to delete. "
        "Estimated cost: 1,040 credits.",
    ]
