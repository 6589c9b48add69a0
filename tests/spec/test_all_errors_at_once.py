"""Every independent problem in one run: an error never hides another, nor blames a shot
that exists (issue 11, item 9)."""

from __future__ import annotations

from tchavi_render.errors import Problem

from .conftest import SpecDir


def _lines(problems: list[Problem]) -> list[str]:
    """Each problem as printed, without the spec's (temporary) path: ':LINE:COL: message'."""
    return [str(p).removeprefix(str(p.file)) for p in problems]


def test_a_wrong_type_in_a_shot_does_not_hide_its_other_errors(spec_dir: SpecDir) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: opening
            prompt: hi
            seed: 1.5
            duration: 16
            resolution: 1080p
            aspect_ratio: "5:4"
    """)
    assert _lines(problems) == [
        ":6:11: seed: must be an integer, got 1.5",
        ":7:15: duration: must be 1..15 seconds, or -1 for auto; got 16",
        ":8:17: resolution: must be one of '480p', '720p', got '1080p'. Did you mean '480p'?",
        ":9:19: aspect_ratio: must be one of '16:9', '9:16', '1:1', '4:3', '3:4', "
        "'adaptive', got '5:4'. Did you mean '3:4'?",
    ]


def test_a_shot_with_an_error_can_still_be_continued_from(spec_dir: SpecDir) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: opening
            prompt: hi
            seed: 1.5
          - id: next
            prompt: there
            image_url: {shot: opening, frame: last}
          - id: late
            prompt: there
            image_url: {shot: opening, frame: 9}
    """)
    assert _lines(problems) == [
        ":6:11: seed: must be an integer, got 1.5",
        ":12:16: frame 9 s is past the end of shot 'opening' (5 s)",
    ]


def test_a_frame_of_a_missing_shot_is_reported_even_from_a_shot_with_errors(
    spec_dir: SpecDir,
) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: opening
            prompt: hi
          - id: next
            prompt: there
            seed: 1.5
            image_url: {shot: openning}
    """)
    assert _lines(problems) == [
        ":8:11: seed: must be an integer, got 1.5",
        ":9:16: no shot has id 'openning' to take a frame from. Did you mean 'opening'?",
    ]


def test_every_problem_of_the_sequence_is_reported_together(spec_dir: SpecDir) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: opening
          - id: next
        sequence:
          - {id: opening, trim: [3, 1]}
          - nope
          - {id: next, trim: [0, 9]}
    """)
    assert _lines(problems) == [
        ":7:25: trim: ends at 1 s, not after its start (3 s)",
        ":8:5: sequence: no shot has the id 'nope'. The shots are 'opening', 'next'.",
        ":9:26: trim: ends at 9 s, past the end of shot 'next' (5 s); end it at 5 at most",
    ]


def test_a_shot_with_an_error_still_exists_for_the_sequence(spec_dir: SpecDir) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: opening
            seed: 1.5
          - id: next
        sequence:
          - opening
          - {id: opening, trim: [0, 7]}
          - next
    """)
    assert _lines(problems) == [
        ":5:11: seed: must be an integer, got 1.5",
        ":9:29: trim: ends at 7 s, past the end of shot 'opening' (5 s); end it at 5 at most",
    ]


def test_a_shot_whose_id_has_the_wrong_type_still_has_its_fields_checked(
    spec_dir: SpecDir,
) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: 7
            duration: 16
    """)
    assert _lines(problems) == [
        ":4:9: id: must be a string, got 7; quote it",
        ":5:15: duration: must be 1..15 seconds, or -1 for auto; got 16",
    ]


def test_a_misspelt_field_is_not_reported_again_as_missing(spec_dir: SpecDir) -> None:
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: opening
            promt: hi
            duration: 16
    """)
    assert _lines(problems) == [
        ":5:5: unknown key 'promt'. Did you mean 'prompt'?",
        ":6:15: duration: must be 1..15 seconds, or -1 for auto; got 16",
    ]


def test_a_wrong_type_in_a_shot_does_not_fall_back_to_the_default(spec_dir: SpecDir) -> None:
    # The default's 9 s would make the trim fit: the shot's own duration is unknown, so
    # nothing is said about the trim at all.
    problems = spec_dir.errors("""\
        version: 1
        defaults: {model: seedance-2, prompt: hi, duration: 9}
        shots:
          - id: opening
            duration: 8.5
        sequence:
          - {id: opening, trim: [0, 8]}
    """)
    assert _lines(problems) == [
        ":5:15: duration: must be an integer, got 8.5",
    ]


def test_the_spec_takes_exactly_the_fields_the_api_model_has() -> None:
    """One source for the generation fields: the spec's model may not drift from the API's."""
    from tchavi_render.api.models import GENERATION_FIELDS as API_FIELDS
    from tchavi_render.spec.model import GENERATION_FIELDS as SPEC_FIELDS

    assert SPEC_FIELDS == API_FIELDS
