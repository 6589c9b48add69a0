"""takes and pick: plain numbers on a shot or in defaults, the pick among the takes, every
mistake at its line."""

from __future__ import annotations

from .conftest import SpecDir, line_of


def test_takes_and_pick_come_from_the_shot_or_the_defaults(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2, takes: 3}
        shots:
          - id: one
            prompt: hi
          - id: two
            prompt: hi
            takes: 4
            pick: 2
          - id: three
            prompt: hi
            takes: null
        """
    )
    assert [(s.takes, s.pick) for s in loaded.shots] == [(3, 1), (4, 2), (1, 1)]


def test_a_pick_beyond_the_takes_is_located_at_the_pick(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, takes: 2}
        shots:
          - id: one
            prompt: hi
            pick: 3
    """
    problem = spec_dir.one_error(text)
    assert problem.message == (
        "pick: 3 is not one of the shot's 2 takes; pick a take from 1 to 2, or raise takes"
    )
    assert (problem.line, problem.column) == (line_of(text, "pick: 3"), 11)


def test_a_pick_without_takes_names_the_single_take(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error(
        "version: 1\nshots:\n  - {id: one, model: seedance-2, prompt: hi, pick: 2}\n"
    )
    assert problem.message == (
        "pick: 2 is not one of the shot's 1 take; pick a take from 1 to 1, or raise takes"
    )


def test_every_wrong_takes_value_is_reported_at_once(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - {id: a, prompt: hi, takes: 0}
          - {id: b, prompt: hi, takes: 21}
          - {id: c, prompt: hi, takes: "{{ n }}", vars: {n: many}}
          - {id: d, prompt: hi, pick: 0}
          - {id: e, prompt: hi, tkaes: 2}
    """
    messages = [(p.line, p.message) for p in spec_dir.errors(text)]
    assert messages == [
        (4, "takes: must be a number of takes from 1 to 20, got 0"),
        (5, "takes: must be a number of takes from 1 to 20, got 21"),
        (6, "takes: the template gave 'many', which is not a number of takes from 1 to 20"),
        (7, "pick: must be a take number from 1 to takes, got 0"),
        (8, "unknown key 'tkaes'. Did you mean 'takes'?"),
    ]


def test_takes_and_pick_may_be_templates(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        vars: {final: false}
        defaults:
          model: seedance-2
          takes: "{{ 1 if final else 3 }}"
          pick: "{{ 1 if final else approved }}"
        shots:
          - {id: one, prompt: hi, vars: {approved: 2}}
        """
    )
    assert (loaded.shots[0].takes, loaded.shots[0].pick) == (3, 2)
    final = spec_dir.load(
        """\
        version: 1
        vars: {final: true}
        defaults:
          model: seedance-2
          takes: "{{ 1 if final else 3 }}"
          pick: "{{ 1 if final else approved }}"
        shots:
          - {id: one, prompt: hi, vars: {approved: 2}}
        """
    )
    assert (final.shots[0].takes, final.shots[0].pick) == (1, 1)
