"""The spec's `sequence:`: its default, ids and trims resolved, every mistake located."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tchavi_render.errors import Problem, SpecError
from tchavi_render.spec import load_spec

SHOTS = """\
version: 1
defaults:
  model: seedance-2
  duration: 3
shots:
  - id: opening
    prompt: Aerial view of Cotonou
  - id: "hero-{{ n }}"
    for_each: {n: [1, 2]}
    prompt: Hero take {{ n }}
"""


def write(tmp_path: Path, sequence: str) -> Path:
    path = tmp_path / "tchavi.yaml"
    path.write_text(SHOTS + textwrap.dedent(sequence))
    return path


def problems(tmp_path: Path, sequence: str) -> list[tuple[int, int, str]]:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, sequence))
    return [(p.line or 0, p.column or 0, p.message) for p in caught.value.problems]


def test_without_a_sequence_the_cut_is_every_shot_whole_in_storyboard_order(
    tmp_path: Path,
) -> None:
    spec = load_spec(write(tmp_path, ""))
    assert [(i.shot_id, i.trim) for i in spec.sequence] == [
        ("opening", None),
        ("hero-1", None),
        ("hero-2", None),
    ]
    assert spec.sequence[1].location.line == 8


def test_a_sequence_orders_repeats_and_trims_clips(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """\
            sequence:
              - hero-2
              - {id: opening, trim: [0.5, 2]}
              - id: hero-2
                trim: [0, 3]
            """,
        )
    )
    assert [(i.shot_id, i.trim) for i in spec.sequence] == [
        ("hero-2", None),
        ("opening", (0.5, 2.0)),
        ("hero-2", (0.0, 3.0)),
    ]
    assert [i.location.line for i in spec.sequence] == [12, 13, 14]


def test_an_unknown_id_is_located_with_the_closest_id(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """\
        sequence:
          - hero-3
          - {id: openin}
          - something-else-entirely
        """,
    ) == [
        (12, 5, "sequence: no shot has the id 'hero-3'. Did you mean 'hero-2'?"),
        (13, 10, "sequence: no shot has the id 'openin'. Did you mean 'opening'?"),
        (
            14,
            5,
            "sequence: no shot has the id 'something-else-entirely'. "
            "The shots are 'opening', 'hero-1', 'hero-2'.",
        ),
    ]


def test_a_trim_past_the_end_of_its_shot_is_located_at_its_end(tmp_path: Path) -> None:
    assert problems(tmp_path, "sequence:\n  - {id: opening, trim: [1, 4.5]}\n") == [
        (12, 29, "trim: ends at 4.5 s, past the end of shot 'opening' (3 s); end it at 3 at most")
    ]


@pytest.mark.parametrize(
    ("item", "column", "message"),
    [
        ("{id: opening, trim: [2, 1]}", 25, "trim: ends at 1 s, not after its start (2 s)"),
        ("{id: opening, trim: [-1, 1]}", 25, "trim: starts at -1 s; the start cannot be negative"),
        (
            "{id: opening, trim: [0, x]}",
            25,
            "trim: must be [start, end] in seconds; 'x' is not a number",
        ),
        ("{id: opening, trim: [1]}", 25, "trim: must be [start, end] in seconds, got a list"),
        ("{id: opening, trim: 2}", 25, "trim: must be [start, end] in seconds, got 2"),
        ("{id: opening, cut: 2}", 19, "unknown key 'cut'. Known keys: id, trim."),
        ("{trim: [0, 1]}", 5, "'id' is required; name the shot: {id: ..., trim: [start, end]}"),
        ("3", 5, "sequence: must be a shot id or {id: ..., trim: [start, end]}, got 3"),
    ],
)
def test_a_malformed_clip_is_located(tmp_path: Path, item: str, column: int, message: str) -> None:
    assert problems(tmp_path, f"sequence:\n  - {item}\n") == [(12, column, message)]


def test_an_empty_sequence_says_how_to_use_every_shot(tmp_path: Path) -> None:
    assert problems(tmp_path, "sequence: []\n") == [
        (
            11,
            11,
            "sequence: must list at least one shot; remove it to export every shot in order",
        )
    ]


def test_validate_reports_sequence_errors_as_file_line_column(tmp_path: Path) -> None:
    path = write(tmp_path, "sequence: [hero-1, openin]\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"{path}:11:20: sequence: no shot has the id 'openin'. Did you mean 'opening'?\n"
    )
    assert result.stdout == ""


def test_sequence_problems_are_problems_like_any_other(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, "sequence: [nope]\n"))
    (problem,) = caught.value.problems
    assert isinstance(problem, Problem) and problem.file == tmp_path / "tchavi.yaml"
