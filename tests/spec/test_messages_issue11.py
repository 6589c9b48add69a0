"""Messages that said something untrue or unhelpful (issue 11, item 12): each one names the
place and says what to do."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tchavi_render.errors import Problem

from .conftest import SpecDir


def _lines(problems: list[Problem] | tuple[Problem, ...]) -> list[str]:
    """Each problem as printed, without the spec's (temporary) path: ':LINE:COL: message'."""
    return [str(p).removeprefix(str(p.file)) for p in problems]


SHOT = """\
    version: 1
    defaults: {model: seedance-2, prompt: hi}
    shots:
      - id: one
        %s
"""


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            "generate_audio: yes",
            ":5:21: generate_audio: must be true or false or a template, got 'yes'; "
            "write true (YAML reads yes, no, on and off as text)",
        ),
        (
            "generate_audio: off",
            ":5:21: generate_audio: must be true or false or a template, got 'off'; "
            "write false (YAML reads yes, no, on and off as text)",
        ),
        (
            "seed: twelve",
            ":5:11: seed: must be an integer or a template, got 'twelve'; "
            "write a whole number, or compute it with {{ ... }}",
        ),
        (
            "seed: 1e400",
            ":5:11: seed: must be an integer, got 1e400, which is out of range",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_told_what_to_write_instead(
    spec_dir: SpecDir, written: str, expected: str
) -> None:
    assert _lines([spec_dir.one_error(SHOT % written)]) == [expected]


def test_a_quoted_number_is_still_told_to_drop_its_quotes(spec_dir: SpecDir) -> None:
    assert _lines([spec_dir.one_error(SHOT % 'duration: "6"')]) == [
        ":5:15: duration: must be an integer or a template, got '6'; "
        "write it without quotes, or compute it with {{ ... }}"
    ]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("version: 1\nshots:\n\t- id: one\n", 3, 1),
        ("version: 1\nshots:\n  - id: one\n\tprompt: hi\n", 4, 1),
        ("version: 1\nshots:\n  - id: one\n  \tprompt: hi\n", 4, 3),
    ],
)
def test_tab_indentation_says_tabs_are_not_allowed(
    spec_dir: SpecDir, text: str, line: int, column: int
) -> None:
    problem = spec_dir.one_error(text)
    assert (problem.line, problem.column) == (line, column)
    assert problem.message == "tabs are not allowed for indentation; use spaces"


def test_a_shot_that_is_not_a_mapping_is_named_by_its_item(spec_dir: SpecDir) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: one
          - null
          - [two]
    """)
    assert _lines(problems) == [
        ":5:5: shots: item 2 must be a mapping like {id: ..., prompt: ...}, got null",
        ":6:5: shots: item 3 must be a mapping like {id: ..., prompt: ...}, got a list",
    ]


@pytest.mark.parametrize(
    ("run_from", "args", "expected"),
    [
        (
            ".",
            [],
            "tchavi.yaml:5:13: prompt: cannot include '../outside.j2': it is outside the project "
            "directory project/ (the current directory); keep templates next to the spec\n",
        ),
        (
            "..",
            ["project/tchavi.yaml"],
            "project/tchavi.yaml:5:13: prompt: cannot include '../outside.j2': it is outside "
            "the project directory project/; keep templates next to the spec\n",
        ),
    ],
    ids=["names_the_current_directory", "names_the_directory_as_given"],
)
def test_an_include_outside_the_project_names_the_project_directory(
    spec_dir: SpecDir,
    monkeypatch: pytest.MonkeyPatch,
    run_from: str,
    args: list[str],
    expected: str,
) -> None:
    spec_dir.write(
        """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            prompt: "{% include '../outside.j2' %}"
        """,
        {"../outside.j2": "hi"},
    )
    monkeypatch.chdir(spec_dir.root / run_from)
    result = CliRunner().invoke(cli, ["validate", *args])
    assert result.exit_code == 1
    assert result.output == expected


VARS = """\
    version: 1
    defaults: {model: seedance-2}
    vars: {city: Cotonou, time: dawn}
    shots:
      - id: one
        prompt: "{{ city }} at {% include 'time.j2' %}"
"""


def test_a_var_no_template_uses_is_a_warning_with_a_suggestion(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        VARS,
        {"time.j2": "{{ time }}", "fr.yaml": "city: Ouidah\nmood: calm\ntiem: noon\n"},
        variables={"cty": "Porto-Novo", "time": "dusk"},
        var_files=[spec_dir.root / "fr.yaml"],
    )
    assert _lines(loaded.warnings) == [
        "--var cty: no template uses the variable 'cty'; check its name. Did you mean 'city'?",
        ":2:1: variable 'mood' is not used by any template; remove it or use it",
        ":3:1: variable 'tiem' is not used by any template; remove it or use it. "
        "Did you mean 'time'?",
    ]
    assert [(p.file, p.line) for p in loaded.warnings] == [
        (None, None),
        (spec_dir.root / "fr.yaml", 2),
        (spec_dir.root / "fr.yaml", 3),
    ]


def test_validate_prints_the_unused_var_warning_and_succeeds(
    spec_dir: SpecDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_dir.write(VARS, {"time.j2": "{{ time }}"})
    monkeypatch.chdir(spec_dir.root)
    result = CliRunner().invoke(cli, ["validate", "--var", "cty=Porto-Novo"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: --var cty: no template uses the variable 'cty'; check its name. "
        "Did you mean 'city'?\n"
    )


def test_vars_every_template_uses_give_no_warning(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        VARS,
        {"time.j2": "{{ time }}", "fr.yaml": "city: Ouidah\n"},
        variables={"time": "dusk"},
        var_files=[spec_dir.root / "fr.yaml"],
    )
    assert loaded.warnings == ()


def test_an_asset_listed_twice_is_reported_once_where_it_is_repeated(
    spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2}
        assets: {logo: logo.png}
        shots:
          - id: one
            reference_images: [logo, logo]
            prompt: "{{ ref('logo') }} spins"
          - id: two
            reference_images: [logo, logo.png]
            prompt: "[Image2] spins"
        """,
        {"logo.png": media["png"]},
    )
    assert _lines(loaded.warnings) == [
        ":6:30: reference_images: 'logo' is listed twice (items 1 and 2); keep one",
        ":9:30: reference_images: 'logo' is listed twice (items 1 and 2, written 'logo' "
        "and 'logo.png'); keep one",
    ]
