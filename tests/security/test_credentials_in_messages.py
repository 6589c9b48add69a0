"""No message quotes a credential: not from a spec or var file that is really a .env file,
not from a field, not from a command-line argument; and a spec or var file that is a
symlink leading out of the project is refused before it is read."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tchavi_render.cli.main import cli
from tchavi_render.redact import redact

KEY = "sk-tch_abcdef0123456789abcdef"
DOTENV = f"TCHAVI_API_KEY={KEY}\n"
SPEC = """\
    version: 1
    defaults: {model: seedance-2}
    shots:
      - id: opening
        prompt: the harbour at dawn
"""
OUTSIDE_SPEC = (
    "the spec file is a symlink that leads outside the project directory (the spec's "
    "folder); copy the file into the project, or pass its own path"
)
OUTSIDE_VAR_FILE = (
    "the var file is a symlink that leads outside the project directory (the spec's "
    "folder); copy the file into the project, or pass its own path"
)


@pytest.fixture
def project(make_tree: Callable[..., Path], tmp_path: Path) -> Path:
    """A project beside a home directory holding the user's .env file."""
    make_tree({"home": {".env": DOTENV}, "project": {"tchavi.yaml": textwrap.dedent(SPEC)}})
    return tmp_path / "project"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_no_key(result: Result) -> None:
    assert "Traceback" not in result.output and "Internal error" not in result.output
    assert KEY not in result.output
    assert "abcdef0123456789" not in result.output  # not even a part of it


def test_a_spec_symlinked_to_a_dotenv_outside_the_project_is_refused_unread(
    project: Path,
) -> None:
    link = project / "linked.yaml"
    link.symlink_to(project.parent / "home" / ".env")
    for verb in ("validate", "plan"):
        result = run(verb, link)
        assert result.exit_code == 1, result.output
        assert f"{link}: {OUTSIDE_SPEC}" in result.stderr
        assert "TCHAVI_API_KEY" not in result.output  # not read at all
        assert_no_key(result)


def test_a_spec_symlinked_to_a_dotenv_inside_the_project_is_read_but_the_key_is_masked(
    project: Path,
) -> None:
    (project / ".env").write_text(DOTENV)
    link = project / "linked.yaml"
    link.symlink_to(project / ".env")
    result = run("validate", link)
    assert result.exit_code == 1
    assert result.stderr == (
        f"{link}:1:1: a spec must be a mapping with 'version: 1' and 'shots:', "
        "got 'TCHAVI_API_KEY=***'\n"
    )
    assert_no_key(result)
    result = run("validate", link, "--json")
    assert "TCHAVI_API_KEY=***" in result.stdout
    assert_no_key(result)


def test_a_var_file_symlinked_to_a_dotenv_outside_the_project_is_refused(
    project: Path,
) -> None:
    link = project / "vars.yaml"
    link.symlink_to(project.parent / "home" / ".env")
    result = run("validate", project / "tchavi.yaml", "--var-file", link)
    assert result.exit_code == 1
    assert result.stderr == f"{link}: {OUTSIDE_VAR_FILE}\n"
    assert_no_key(result)


def test_a_dotenv_passed_as_a_var_file_is_reported_without_its_key(project: Path) -> None:
    dotenv = project.parent / "home" / ".env"
    result = run("plan", project / "tchavi.yaml", "--var-file", dotenv)
    assert result.exit_code == 1
    assert (
        f"{dotenv}:1:1: a var file must be a mapping of variable names to values, "
        "got 'TCHAVI_API_KEY=***'"
    ) in result.stderr
    assert_no_key(result)


def test_a_symlinked_spec_and_var_file_inside_the_project_still_work(project: Path) -> None:
    # the spec reads the variable: an unused one would add a warning to the output
    spec = textwrap.dedent(SPEC).replace(
        "the harbour at dawn", "the harbour at dawn, {{ subject }}"
    )
    (project / "tchavi.yaml").write_text(spec)
    (project / "shared").mkdir()
    (project / "shared" / "vars.yaml").write_text("subject: boats\n")
    (project / "vars.yaml").symlink_to(project / "shared" / "vars.yaml")
    (project / "main.yaml").symlink_to(project / "tchavi.yaml")
    result = run("validate", project / "main.yaml", "--var-file", project / "vars.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{project / 'main.yaml'}: valid, 1 shot\n"


@pytest.mark.parametrize("field", [f'seed: "{KEY}"', f"resolution: {KEY}", f"model: {KEY}"])
def test_a_key_pasted_into_a_field_is_not_echoed(project: Path, field: str) -> None:
    spec = project / "tchavi.yaml"
    spec.write_text(textwrap.dedent(SPEC) + f"    {field}\n")
    for args in (("validate",), ("validate", "--json"), ("plan",)):
        result = run(*args, spec)
        assert result.exit_code == 1
        assert f"{field.split(':')[0]}: " in result.output
        assert "'***'" in result.output
        assert_no_key(result)


def test_a_key_given_as_a_malformed_var_is_not_echoed(project: Path) -> None:
    result = run("validate", project / "tchavi.yaml", "--var", KEY)
    assert result.exit_code == 2
    assert "Invalid value for --var: '***' is not key=value" in result.stderr
    assert_no_key(result)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"got '{KEY}'", "got '***'"),
        (
            "got 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
            "got 'AWS_SECRET_ACCESS_KEY=***'",
        ),
        ('got "GITHUB_TOKEN=ghp_0123456789abcdefABCDEF0123"', 'got "GITHUB_TOKEN=***"'),
        ("got 'password: hunter2'", "got 'password: ***'"),
        ("sent Authorization: Bearer abcdefgh12345678", "sent Authorization: Bearer ***"),
        ("got 'a7Kq9ZxP2mN4bR8tY6wE3uI1oL5v'", "got '***'"),
        ("https://cdn.example/v.mp4?X-Amz-Signature=9f8e7d6c5b", "***"),
    ],
)
def test_credential_shaped_values_are_masked(text: str, shown: str) -> None:
    assert shown in redact(text)
    assert "hunter2" not in redact(text) and "9f8e7d6c5b" not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "Tchavi API 401 invalid_api_key: bad key. Set a valid key: export "
        "TCHAVI_API_KEY=sk-tch_...",
        "Set one: export TCHAVI_API_KEY=sk-tch_... (or pass api_key=)",
        "job job_0123456789abcdef01234567 failed (upstream_error); 40 credits refunded",
        "intro.mp4: sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "request 3f2a9b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c",
        "api_key.yaml:9:9: duplicate key 'prompt' (first written at line 8); keep one of them",
        "assets/a-rather-long-directory-name/file_name_2.png: no such file",
        "unknown key 'sead'. Did you mean 'seed'? Known keys: model, prompt",
        "TCHAVI_RENDER_CACHE_SECRET: is too short; use 32 characters or more",
    ],
)
def test_messages_without_credentials_are_left_as_they_are(text: str) -> None:
    assert redact(text) == text
