"""The shape of a spec: unknown keys, enums, types, names, required keys, all reported at once."""

from __future__ import annotations

import pytest

from .conftest import SpecDir, line_of


def test_an_unknown_shot_key_suggests_the_right_one(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        shots:
          - id: one
            model: seedance-2
            prompt: hi
            aspect_ration: "9:16"
    """
    problem = spec_dir.one_error(text)
    assert problem.message == "unknown key 'aspect_ration'. Did you mean 'aspect_ratio'?"
    assert (problem.line, problem.column) == (line_of(text, "aspect_ration"), 5)


def test_an_unknown_top_level_key_suggests_the_right_one(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        shot:
          - id: one
        shots: []
    """
    problem = spec_dir.one_error(text)
    assert problem.message == "unknown key 'shot'. Did you mean 'shots'?"
    assert problem.line == 2


def test_a_generation_field_at_the_top_says_where_it_belongs(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error("version: 1\nduration: 5\nshots: []\n")
    assert problem.line == 2
    assert problem.message == (
        "unknown key 'duration'. Generation fields go under 'defaults:' or in a shot."
    )


def test_an_unknown_default_suggests_the_right_one(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error("version: 1\ndefaults:\n  resolutoin: 720p\nshots: []\n")
    assert (problem.line, problem.column) == (3, 3)
    assert problem.message == "unknown key 'resolutoin'. Did you mean 'resolution'?"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "model",
            "seedance",
            "model: must be one of 'seedance-2', 'kling-v3', got 'seedance'. "
            "Did you mean 'seedance-2'?",
        ),
        (
            "resolution",
            "720P",
            "resolution: must be one of '480p', '720p', got '720P'. Did you mean '720p'?",
        ),
        (
            "aspect_ratio",
            '"16-9"',
            "aspect_ratio: must be one of '16:9', '9:16', '1:1', "
            "'4:3', '3:4', 'adaptive', got '16-9'. Did you mean '16:9'?",
        ),
        ("duration", "0", "duration: must be 1..15 seconds, or -1 for auto; got 0"),
    ],
)
def test_api_rules_apply_with_suggestions(
    spec_dir: SpecDir, field: str, value: str, expected: str
) -> None:
    model = "" if field == "model" else "model: kling-v3, "
    text = f"""\
        version: 1
        defaults: {{{model}prompt: hi}}
        shots:
          - id: one
            {field}: {value}
    """
    problem = spec_dir.one_error(text)
    assert problem.message == expected
    assert problem.line == line_of(text, f"{field}: {value}")


def test_a_wrong_backend_suggests_the_right_one(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error("version: 1\nbackend: locale\nshots: []\n")
    assert problem.line == 2
    assert problem.message == (
        "backend: must be one of 'tchavi', 'local', got 'locale'. Did you mean 'local'?"
    )


def test_version_is_required_and_must_be_1(spec_dir: SpecDir) -> None:
    missing = spec_dir.one_error("shots: []\n")
    assert missing.message == "'version' is required; add 'version: 1' at the top of the spec"
    assert missing.line == 1
    wrong = spec_dir.one_error("version: 2\nshots: []\n")
    assert wrong.line == 1
    assert wrong.message.startswith("version: must be 1, got 2")


def test_a_shot_without_an_id_is_an_error_at_the_shot(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        shots:
          - model: seedance-2
            prompt: hi
    """
    problem = spec_dir.one_error(text)
    assert problem.message == "'id' is required; give every shot an 'id:'"
    assert (problem.line, problem.column) == (3, 5)


def test_model_and_prompt_are_required_after_defaults(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        shots:
          - id: one
            duration: 5
    """
    messages = {p.message for p in spec_dir.errors(text)}
    assert messages == {
        "model: is required; set it in the shot or under 'defaults:'",
        "prompt: is required; set it in the shot or under 'defaults:'",
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("duration: five", "duration: must be an integer or a template, got 'five'"),
        ("duration: 2.5", "duration: must be an integer, got 2.5"),
        ("seed: true", "seed: must be an integer, got true"),
        ("prompt: 42", "prompt: must be a string, got 42; quote it"),
        ("reference_images: statue.png", "reference_images: must be a list, got 'statue.png'"),
        ("reference_images: [1]", "reference_images: item 1 must be an asset name, path or URL"),
    ],
)
def test_wrong_types_are_reported_at_the_value(spec_dir: SpecDir, line: str, expected: str) -> None:
    text = f"""\
        version: 1
        defaults:
          model: seedance-2
          prompt: hello
        shots:
          - id: one
            {line}
    """
    problem = spec_dir.one_error(text)
    assert problem.message.startswith(expected), problem.message
    assert problem.line == line_of(text, line)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("vars:\n  2fast: x", "'2fast' is not a valid variable name"),
        ("vars:\n  ref: x", "'ref' is a reserved name in templates"),
        ("assets:\n  logo.png: logo.png", "'logo.png' is not a valid asset name"),
    ],
)
def test_bad_names_are_reported_at_the_key(spec_dir: SpecDir, where: str, expected: str) -> None:
    problem = spec_dir.one_error(f"version: 1\n{where}\nshots: []\n")
    assert (problem.line, problem.column) == (3, 3)
    assert expected in problem.message


def test_an_empty_for_each_list_is_an_error(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: "one-{{ r }}"
            for_each:
              r: []
    """
    problem = spec_dir.one_error(text)
    assert problem.line == line_of(text, "r: []")
    assert problem.message == "for_each r: must list at least one value"


def test_one_run_reports_shape_and_shot_errors_together(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        backend: cloud
        defaults:
          model: seedance-2
          seeed: 3
        shots:
          - id: one
            prompt: hi
            duration: 40
          - id: two
            promt: hi
          - id: three
            prompt: "{{ nope }}"
    """
    problems = spec_dir.errors(text)
    assert [p.line for p in problems] == [2, 5, 9, 11, 13]
    assert "backend: must be one of" in problems[0].message
    assert problems[1].message == "unknown key 'seeed'. Did you mean 'seed'?"
    assert problems[2].message.startswith("duration: must be 1..15")
    assert problems[3].message == "unknown key 'promt'. Did you mean 'prompt'?"
    assert "undefined variable 'nope'" in problems[4].message


def test_null_unsets_a_default(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2, seed: 7}
        shots:
          - id: one
            prompt: hi
            seed: null
          - id: two
            prompt: hi
        """
    )
    assert [s.seed for s in loaded.shots] == [None, 7]


def test_defaults_apply_and_the_api_defaults_fill_the_rest(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: kling-v3, resolution: 720p}
        shots:
          - id: one
            prompt: hi
            resolution: 480p
        """
    )
    shot = loaded.shots[0]
    assert shot.request(str) == {
        "model": "kling-v3",
        "prompt": "hi",
        "duration": 5,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "generate_audio": True,
    }
    assert loaded.backend == "tchavi"
    assert loaded.output_dir == spec_dir.root.resolve() / "renders"
