"""The `validate` and `schema` verbs, through the real command group."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tchavi_render.cli.schema import schema_text

from .conftest import SpecDir

REPO = Path(__file__).resolve().parents[2]

VALID = """\
    version: 1
    defaults: {model: seedance-2}
    assets: {still: still.png, unused: https://cdn.example.com/u.png}
    shots:
      - id: "{{ name }}"
        image_url: still
        prompt: "{{ subject }} at dawn"
        seed: 3
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_prints_warnings_and_succeeds(
    runner: CliRunner, spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    path = spec_dir.write(VALID, {"still.png": media["png"], "vars.yaml": "subject: boats\n"})
    result = runner.invoke(
        cli,
        [
            "validate",
            str(path),
            "--var",
            "name=opening",
            "--var-file",
            str(spec_dir.root / "vars.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: valid, 1 shot (1 warning)\n"
    assert result.stderr == (
        f"{path}:3:28: warning: asset 'unused' is never used; remove it or reference it in a shot\n"
    )


def test_validate_prints_every_error_and_fails(runner: CliRunner, spec_dir: SpecDir) -> None:
    path = spec_dir.write(
        """\
        version: 1
        shots:
          - id: one
            model: seedance-3
            prompt: hi
            duration: 99
        """
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:4:12: model: must be one of 'seedance-2', 'kling-v3', got 'seedance-3'. "
        "Did you mean 'seedance-2'?",
        f"{path}:6:15: duration: must be 1..15 seconds, or -1 for auto; got 99",
        f"{path}: 2 errors, 0 warnings",
    ]
    assert "Traceback" not in result.output


def test_validate_json_shows_the_exact_requests(
    runner: CliRunner, spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    path = spec_dir.write(VALID, {"still.png": media["png"]})
    result = runner.invoke(
        cli, ["validate", str(path), "--json", "--var", "name=opening", "--var", "subject=boats"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["errors"] == []
    assert [w["line"] for w in report["warnings"]] == [3]
    assert report["shots"] == [
        {
            "id": "opening",
            "request": {
                "model": "seedance-2",
                "prompt": "boats at dawn",
                "duration": 5,
                "resolution": "480p",
                "aspect_ratio": "16:9",
                "generate_audio": True,
                "seed": 3,
                "image_url": {
                    "path": "still.png",
                    "sha256": __import__("hashlib").sha256(media["png"]).hexdigest(),
                },
            },
        }
    ]


def test_validate_json_lists_errors_with_their_places(runner: CliRunner, spec_dir: SpecDir) -> None:
    path = spec_dir.write("version: 1\nshots:\n  - id: one\n    prompt: '{{ x }}'\n")
    result = runner.invoke(cli, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["shots"] == []
    assert [(e["file"], e["line"], e["column"]) for e in report["errors"]] == [
        (str(path), 3, 5),
        (str(path), 4, 13),
    ]
    assert report["errors"][0]["message"].startswith("model: is required")
    assert report["errors"][1]["message"].startswith("prompt: undefined variable 'x'")


def test_validate_defaults_to_tchavi_yaml_here(
    runner: CliRunner, spec_dir: SpecDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_dir.write("version: 1\ndefaults: {model: seedance-2, prompt: hi}\nshots: [{id: a}]\n")
    monkeypatch.chdir(spec_dir.root)
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "tchavi.yaml: valid, 1 shot\n"


def test_a_missing_spec_is_one_clear_message(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 1
    assert result.stderr == "tchavi.yaml: spec file not found; create it, or pass the spec's path\n"


def test_schema_prints_the_committed_schema(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    committed = (REPO / "schemas" / "tchavi-render.schema.json").read_text()
    assert result.stdout == committed == schema_text(), (
        "schemas/tchavi-render.schema.json is stale: "
        "run `tchavi-render schema > schemas/tchavi-render.schema.json`"
    )
    schema = json.loads(committed)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["version", "shots"]
    assert schema["additionalProperties"] is False


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from tchavi_render.cli.main import main\n"
        "sys.argv = ['tchavi-render', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "heavy = ['av', 'PIL', 'starlette', 'rich', 'jinja2', 'pydantic', 'yaml', 'boto3']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert "validate" in out and "schema" in out
    assert out.splitlines()[-1] == "[]"


CONTINUITY = """\
    version: 1
    defaults: {model: seedance-2}
    shots:
      - id: a
        prompt: the harbour at dawn
        duration: 4
      - id: b
        prompt: the same harbour, later
        image_url: {shot: a, frame: last}
      - id: c
        prompt: "boats like [Image1] and [Image2]"
        reference_images: [{shot: a, frame: first}, {shot: b, frame: 1.5}]
"""


def test_validate_accepts_frames_of_other_shots(runner: CliRunner, spec_dir: SpecDir) -> None:
    path = spec_dir.write(CONTINUITY)
    result = runner.invoke(cli, ["validate", str(path)])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"{path}: valid, 3 shots\n"


def test_validate_json_shows_frames_of_other_shots_as_written(
    runner: CliRunner, spec_dir: SpecDir
) -> None:
    path = spec_dir.write(CONTINUITY)
    result = runner.invoke(cli, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    requests = {shot["id"]: shot["request"] for shot in json.loads(result.stdout)["shots"]}
    assert requests["b"]["image_url"] == {"shot": "a", "frame": "last"}
    assert requests["c"]["reference_images"] == [
        {"shot": "a", "frame": "first"},
        {"shot": "b", "frame": 1.5},
    ]
