"""YAML reading: positions, duplicate keys, YAML 1.2 scalars, and bounded inputs."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pytest

from tchavi_render.errors import SpecError
from tchavi_render.spec import load_spec
from tchavi_render.spec.yamlpos import MAX_BYTES, parse_yaml

from .conftest import SpecDir, line_of


@dataclass
class Work:
    """What a piece of code did, counted rather than timed: the same on any machine."""

    calls: int = 0  # Python and C function calls, in this thread
    modules: set[str] = field(default_factory=set)  # the modules those calls ran in

    @property
    def parsed_yaml(self) -> bool:
        return any(m == "yaml" or m.startswith("yaml.") for m in self.modules)


@contextmanager
def counting() -> Iterator[Work]:
    """Count the calls the block makes, with a profiler (the block's exception propagates)."""
    work = Work()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            work.calls += 1
            work.modules.add(frame.f_globals.get("__name__", "?"))
        elif event == "c_call":
            work.calls += 1
            owner = getattr(arg, "__self__", None)
            work.modules.add(getattr(arg, "__module__", None) or type(owner).__module__)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield work
    finally:
        sys.setprofile(previous)


SPEC = """\
    version: 1
    defaults:
      model: seedance-2
    shots:
      - id: one
        prompt: hello
"""


def test_a_duplicate_key_is_an_error_at_the_second_key(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        shots:
          - id: one
            prompt: first
            model: seedance-2
            prompt: second
    """
    problem = spec_dir.one_error(text)
    assert "duplicate key 'prompt' (first written at line 4)" in problem.message
    assert (problem.line, problem.column) == (line_of(text, "prompt: second"), 5)
    assert problem.file is not None and problem.file.name == "tchavi.yaml"


def test_duplicate_keys_are_all_reported_with_the_other_errors(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        version: 1
        defaults:
          model: seedance-2
        shots:
          - id: one
            id: two
            prompt: x
            duration: 99
    """
    messages = [(p.line, p.message) for p in spec_dir.errors(text)]
    assert (2, "duplicate key 'version' (first written at line 1); keep one of them") in messages
    assert any(line == 7 and "duplicate key 'id'" in m for line, m in messages)
    assert any(line == 9 and "duration: must be 1..15" in m for line, m in messages)


def test_a_syntax_error_names_its_line_and_column(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        shots:
          - id: one
            prompt: [unclosed
          - id: two
    """
    problem = spec_dir.one_error(text)
    assert problem.message.startswith("YAML syntax error:")
    assert problem.line == 5


def test_yes_and_no_stay_strings_as_in_yaml_1_2(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults:
          model: seedance-2
        vars:
          answer: no
        shots:
          - id: one
            prompt: "the answer is {{ answer }}"
            aspect_ratio: 16:9
            generate_audio: yes
    """
    problem = spec_dir.one_error(text)
    assert problem.line == line_of(text, "generate_audio")
    assert "generate_audio: must be true or false or a template, got 'yes'" in problem.message
    fixed = spec_dir.load(text.replace("yes", "true"))
    assert fixed.shots[0].prompt == "the answer is no"
    assert fixed.shots[0].aspect_ratio == "16:9"


def test_a_non_string_key_is_an_error(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        vars:
          12: twelve
        shots: []
    """
    problem = spec_dir.one_error(text)
    assert (problem.line, problem.column) == (3, 3)
    assert "mapping key 12 must be a string; quote it" in problem.message


def test_an_unsupported_tag_is_refused(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error("version: 1\nshots: !!python/object:os.system []\n")
    assert problem.line == 2
    assert "unsupported YAML tag" in problem.message


def test_two_documents_in_one_file_are_refused(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error(SPEC + "---\nversion: 1\n")
    assert problem.line == 7
    assert "more than one YAML document" in problem.message


def test_an_empty_spec_says_what_a_spec_needs(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error("# nothing yet\n")
    assert "a spec must be a mapping with 'version: 1' and 'shots:', got an empty file" in (
        problem.message
    )


def test_invalid_utf8_is_located(spec_dir: SpecDir) -> None:
    path = spec_dir.write(SPEC)
    path.write_bytes(b"version: 1\nshots:\n  - id: caf\xe9\n")
    doc, problems = parse_yaml(path.read_bytes(), path)
    assert doc is None
    assert (problems[0].line, problems[0].column) == (3, 12)
    assert "is not valid UTF-8" in problems[0].message


def test_an_alias_bomb_is_refused_at_once(spec_dir: SpecDir) -> None:
    lines = ["version: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("shots: []")
    bomb = "\n".join(lines) + "\n"
    problem = spec_dir.one_error(bomb)
    assert "expands to more than 1000000 nodes" in problem.message
    assert problem.line is not None and 3 <= problem.line <= 13
    # Work, not time: refusing it costs no more calls than reading the text with each alias
    # written as a plain scalar (expanding it, even only up to the limit, costs a million).
    as_written = re.sub(r"\*a\d+", "lol", bomb)
    with counting() as refusing:
        parse_yaml(bomb, spec_dir.root / "bomb.yaml")
    with counting() as reading:
        parse_yaml(as_written, spec_dir.root / "plain.yaml")
    assert refusing.calls <= reading.calls, (refusing.calls, reading.calls)


def test_a_self_referencing_alias_is_an_error(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error("version: 1\nshots: &s [*s]\n")
    assert problem.line == 2
    assert "alias *s refers to no anchor defined before it" in problem.message


def test_deep_nesting_is_refused(spec_dir: SpecDir) -> None:
    deep = "version: 1\nvars:\n  x: " + "[" * 200 + "]" * 200 + "\nshots: []\n"
    problem = spec_dir.one_error(deep)
    assert problem.line == 3
    assert "nests deeper than 64 levels" in problem.message


def test_deep_block_nesting_is_refused(spec_dir: SpecDir) -> None:
    lines = ["version: 1", "vars:"]
    lines += [" " * (2 * i + 2) + f"k{i}:" for i in range(80)]
    problem = spec_dir.one_error("\n".join(lines) + " 1\nshots: []\n")
    assert "nests deeper than 64 levels" in problem.message


def test_a_huge_spec_is_refused_without_parsing(spec_dir: SpecDir) -> None:
    path = spec_dir.write(SPEC)
    with path.open("a") as handle:
        handle.write("# " + "x" * MAX_BYTES + "\n")
    with counting() as work, pytest.raises(SpecError) as caught:
        load_spec(path)
    assert not work.parsed_yaml, sorted(work.modules)
    assert [p.message for p in caught.value.problems] == [
        "is larger than 8 MiB; split it or generate shots with for_each"
    ]


def test_merge_keys_merge_and_errors_point_at_the_anchor(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        vars:
          base: &base
            model: seedance-2
            duration: 40
        shots:
          - <<: *base
            id: one
            prompt: hello
          - <<: *base
            id: two
            prompt: there
            duration: 3
    """
    problem = spec_dir.one_error(text)
    assert problem.line == line_of(text, "duration: 40")
    assert "duration: must be 1..15 seconds" in problem.message


def test_positions_inside_an_alias_are_where_the_anchor_wrote_them() -> None:
    text = "a: &x\n  k: [1, 2]\nb: *x\n"
    doc, problems = parse_yaml(text, Path("t.yaml"))
    assert doc is not None and not problems
    assert doc.value["b"] == {"k": (1, 2)}
    assert str(doc.locate(("b", "k", 1))) == "t.yaml:2:10"
    assert str(doc.locate(("b",))) == "t.yaml:3:4"
