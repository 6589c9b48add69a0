"""Templates: variables and their precedence, for_each, typed fields, includes, ids, ref()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tchavi_render.spec.yamlpos import parse_yaml

from .conftest import SpecDir, line_of


def test_an_undefined_variable_points_at_the_field(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        vars:
          city: Cotonou
        shots:
          - id: one
            prompt: "Aerial view of {{ ctiy }}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == line_of(text, "prompt:")
    assert problem.message.startswith("prompt: undefined variable 'ctiy'. Did you mean 'city'?")


def test_an_error_in_a_block_prompt_points_at_its_own_line(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            prompt: |
              A calm opening line.
              Then {{ missing }} arrives.
    """
    problem = spec_dir.one_error(text)
    assert (problem.line, problem.column) == (line_of(text, "{{ missing }}"), 7)


def test_a_template_syntax_error_points_at_its_line(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            prompt: |
              fine
              {% if %}
    """
    problem = spec_dir.one_error(text)
    assert problem.line == line_of(text, "{% if %}")
    assert problem.message.startswith("prompt: template syntax error:")


def test_an_error_in_an_included_file_points_into_that_file(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            prompt: "{% include 'prompts/opening.j2' %}"
    """
    problem = spec_dir.one_error(
        text, {"prompts": {"opening.j2": "Golden hour over the bay,\nwith {{ boats }}.\n"}}
    )
    assert problem.file == spec_dir.root / "prompts" / "opening.j2"
    assert problem.line == 2
    assert problem.message.startswith("undefined variable 'boats'")
    assert f"(included from {spec_dir.root / 'tchavi.yaml'}:5:13, prompt)" in problem.message


def test_a_syntax_error_in_an_included_file_points_into_that_file(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            prompt: "{% include 'p.j2' %}"
    """
    problem = spec_dir.one_error(text, {"p.j2": "one\ntwo\n{{ oops(\n"})
    assert problem.file == spec_dir.root / "p.j2"
    assert problem.line == 3
    assert problem.message.startswith("template syntax error:")


def test_included_files_are_sources(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            prompt: "{% include 'prompts/a.j2' %}"
        """,
        {
            "prompts": {"a.j2": "{% import 'macros.j2' as m %}{{ m.hi() }}"},
            "macros.j2": ("{% macro hi() %}hello{% endmacro %}"),
        },
    )
    assert loaded.shots[0].prompt == "hello"
    root = spec_dir.root.resolve()
    assert loaded.sources == (root / "tchavi.yaml", root / "macros.j2", root / "prompts" / "a.j2")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../outside.j2", "it is outside the project directory"),
        ("/etc/hostname", "absolute paths are not allowed"),
        ("escape.j2", "it is outside the project directory"),
        ("missing.j2", "no such file in the project directory"),
    ],
)
def test_includes_stay_inside_the_project(spec_dir: SpecDir, name: str, expected: str) -> None:
    (spec_dir.root.parent / "outside.j2").write_text("secret")
    os.symlink(spec_dir.root.parent / "outside.j2", spec_dir.root / "escape.j2")
    text = f"""\
        version: 1
        defaults: {{model: seedance-2}}
        shots:
          - id: one
            prompt: "{{% include '{name}' %}}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 5
    assert problem.message.startswith(f"prompt: cannot include {name!r}: {expected}")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            "{{ city.__class__.__mro__ }}",
            "access to attribute '__class__' of 'str' object is unsafe",
        ),
        ("{{ self.__init__.__globals__ }}", "is unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "'__init__' of 'StrictUndefined' object is unsafe"),
        ("{{ range(10**9) | list }}", "undefined variable 'range'"),
        ("{{ lipsum(10**6) }}", "undefined variable 'lipsum'"),
        ("{{ joiner() }}", "undefined variable 'joiner'"),
        ("{{ 'ab' * 10**7 }}", "repeating this would make more than 100000 characters"),
        ("{{ 9 ** 999999 }}", "9 ** 999999 is too large"),
        ("{{ ('%' ~ '999999999d') % 1 }}", "format widths above 1000 are not allowed"),
        ("{{ '{:>999999999}'.format(1) }}", "format widths above 1000 are not allowed"),
        ("{% macro f(x) %}{{ f(x ~ x) }}{% endmacro %}{{ f('ab') }}", "more than 100000"),
        ("{{ meta.update({'a': 2}) }}", "attribute 'update' of 'dict' object is unsafe"),
        ("{{ city | random }}", "No filter named 'random'"),
    ],
)
def test_the_sandbox_refuses_escapes_and_runaway_growth(
    spec_dir: SpecDir, expression: str, expected: str
) -> None:
    text = f"""\
        version: 1
        defaults: {{model: seedance-2}}
        vars: {{city: Cotonou, meta: {{a: 1}}}}
        shots:
          - id: one
            prompt: "{expression}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 6
    assert expected in problem.message, problem.message


def test_variables_later_sources_win(spec_dir: SpecDir) -> None:
    spec_dir.write(
        "",
        {
            "one.yaml": "a: file1\nb: file1\nc: file1\nd: file1\ne: file1\n",
            "two.yaml": "b: file2\nc: file2\nd: file2\ne: file2\n",
        },
        name="x.txt",
    )
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2}
        vars: {a: spec, b: spec, c: spec, d: spec, e: spec, z: spec}
        shots:
          - id: "v-{{ e }}"
            vars: {d: shot, e: shot}
            for_each: {e: [each]}
            prompt: "{{ z }} {{ a }} {{ b }} {{ c }} {{ d }} {{ e }}"
        """,
        variables={"c": "cli", "d": "cli", "e": "cli"},
        var_files=[spec_dir.root / "one.yaml", spec_dir.root / "two.yaml"],
    )
    assert loaded.shots[0].prompt == "spec file1 file2 cli shot each"
    root = spec_dir.root
    assert loaded.sources[1:] == (root / "one.yaml", root / "two.yaml")


def test_templated_scalars_come_back_typed(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        vars: {d: 4}
        shots:
          - id: one
            duration: "{{ d }}"
            seed: "{{ d * 1000 }}"
            generate_audio: "{{ audio }}"
        """,
        variables={"audio": "false"},
    )
    shot = loaded.shots[0]
    assert (shot.duration, shot.seed, shot.generate_audio) == (4, 4000, False)


def test_a_templated_scalar_of_the_wrong_type_is_an_error(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: one
            duration: "{{ d }}"
    """
    problem = spec_dir.one_error(text, variables={"d": "five"})
    assert problem.line == 5
    assert problem.message == "duration: the template gave 'five', which is not an integer"


def test_for_each_makes_the_cartesian_product_in_order(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: first
            prompt: a
          - id: "v-{{ n }}-{{ ratio | replace(':', 'x') }}"
            for_each:
              n: [1, 2]
              ratio: ["16:9", "9:16"]
            aspect_ratio: "{{ ratio }}"
            seed: "{{ n }}"
            prompt: "take {{ n }}"
          - id: last
            prompt: z
        """
    )
    assert [s.id for s in loaded.shots] == [
        "first",
        "v-1-16x9",
        "v-1-9x16",
        "v-2-16x9",
        "v-2-9x16",
        "last",
    ]
    assert [s.index for s in loaded.shots] == list(range(6))
    assert loaded.shots[2].instance == "n=1, ratio='9:16'"
    assert (loaded.shots[2].aspect_ratio, loaded.shots[2].seed) == ("9:16", 1)


def test_an_error_in_one_for_each_instance_names_it(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: "hero-{{ loop_ratio | replace(':', 'x') }}"
            for_each:
              loop_ratio: ["16:9", "5:4"]
            aspect_ratio: "{{ loop_ratio }}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == line_of(text, "aspect_ratio:")
    assert problem.message.startswith("aspect_ratio: must be one of")
    assert "got '5:4'." in problem.message
    assert problem.message.endswith(" (for_each loop_ratio='5:4')")


def test_a_default_template_failing_in_one_shot_names_the_shot(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults:
          model: seedance-2
          prompt: "{{ subject }}"
        shots:
          - id: one
            vars: {subject: boats}
          - id: two
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 4
    assert problem.message.endswith("(shot 'two')")


def test_for_each_values_can_come_from_a_variable(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        vars: {langs: [fr, en]}
        shots:
          - id: "ad-{{ lang }}"
            for_each: {lang: "{{ langs }}"}
            prompt: "in {{ lang }}"
    """
    assert [s.id for s in spec_dir.load(text).shots] == ["ad-fr", "ad-en"]
    problem = spec_dir.one_error(text, variables={"langs": "fr"})
    assert problem.line == 6
    assert problem.message == "for_each lang: {{ langs }} must give a non-empty list, got 'fr'"


def test_ids_must_be_safe_file_names_after_templating(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: "Shot {{ n }}"
            vars: {n: 1}
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 4
    assert problem.message.startswith("id: 'Shot 1' is not a valid shot id")
    assert problem.message.endswith("Did you mean 'shot-1'?")


def test_duplicate_ids_name_both_places(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: intro
          - id: "{{ 'in' ~ 'tro' }}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 5
    assert problem.message == (
        f"id: duplicate shot id 'intro', also used at {spec_dir.root / 'tchavi.yaml'}:4:9; "
        "ids must be unique"
    )


def test_a_for_each_id_that_ignores_its_variables_is_an_error(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: hero
            for_each: {ratio: ["16:9", "9:16"]}
            aspect_ratio: "{{ ratio }}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 4
    assert problem.message.startswith(
        "id: this for_each makes 'hero' twice (ratio='16:9' and ratio='9:16')"
    )


def test_templates_work_in_paths_and_output_dir(spec_dir: SpecDir, media: dict[str, bytes]) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        output_dir: "renders/{{ lang }}"
        defaults: {model: seedance-2}
        vars: {lang: fr}
        assets:
          logo: "brand/{{ lang }}/logo.png"
        shots:
          - id: one
            image_url: logo
            prompt: hi
          - id: two
            image_url: "brand/{{ lang }}/logo.png"
            prompt: hi
        """,
        {"brand": {"fr": {"logo.png": media["png"]}}},
    )
    assert loaded.output_dir == spec_dir.root.resolve() / "renders" / "fr"
    first, second = loaded.shots
    assert first.image_url is not None and first.image_url == second.image_url


def test_output_dir_must_stay_inside_the_project(spec_dir: SpecDir) -> None:
    problem = spec_dir.one_error(
        "version: 1\noutput_dir: ../renders\nshots: []\n",
    )
    assert problem.line == 2
    assert problem.message == (
        "output_dir: '../renders' is outside the project directory; keep renders next to the spec"
    )


def test_var_file_problems_are_located_in_the_var_file(spec_dir: SpecDir) -> None:
    spec_dir.write("", {"bad.yaml": "ok: 1\n9lives: 2\n", "list.yaml": "- a\n"}, name="x.txt")
    spec = "version: 1\nshots: []\n"
    problems = spec_dir.errors(
        spec,
        var_files=[
            spec_dir.root / "bad.yaml",
            spec_dir.root / "list.yaml",
            spec_dir.root / "missing.yaml",
        ],
        variables={"bad-name": "x"},
    )
    shown = [(p.file and p.file.name, p.line, p.message.split(";")[0]) for p in problems]
    assert shown == [
        (None, None, "--var bad-name=x: 'bad-name' is not a valid variable name"),
        ("bad.yaml", 2, "'9lives' is not a valid variable name"),
        ("list.yaml", 1, "a var file must be a mapping of variable names to values, got a list"),
        ("missing.yaml", None, "var file not found"),
    ]


def test_ref_numbers_each_reference_in_its_own_list(
    spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2}
        assets:
          statue: img/statue.png
          square: img/square.png
          clip: clip.mp4
          theme: https://cdn.example.com/theme.mp3
        shots:
          - id: one
            reference_images: [square, statue]
            reference_videos: [clip]
            reference_audios: [theme]
            prompt: >-
              {{ ref('statue') }} then {{ ref('img/square.png') }}
              like {{ ref('clip') }} over {{ ref('theme') }}
        """,
        {
            "img": {"statue.png": media["png"], "square.png": media["png2"]},
            "clip.mp4": media["mp4"],
        },
    )
    assert loaded.shots[0].prompt == "[Image2] then [Image1] like [Video1] over [Audio1]"
    assert loaded.warnings == ()


def test_ref_to_something_the_shot_does_not_reference_is_an_error(
    spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        assets: {statue: statue.png, logo: logo.png}
        shots:
          - id: one
            reference_images: [statue]
            prompt: "{{ ref('statue') }} with {{ ref('logo') }}"
    """
    problem = spec_dir.one_error(text, {"statue.png": media["png"], "logo.png": media["png2"]})
    assert problem.line == 7
    assert problem.message == (
        "prompt: ref('logo'): 'logo' is not among this shot's references (this shot references "
        "'statue'); add it to reference_images, reference_videos or reference_audios"
    )


def test_ref_outside_a_prompt_is_an_error(spec_dir: SpecDir, media: dict[str, bytes]) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        shots:
          - id: "{{ ref('x') }}"
    """
    problem = spec_dir.one_error(text)
    assert problem.line == 4
    assert "ref() only works in a prompt" in problem.message


def test_a_literal_token_past_the_references_is_an_error(
    spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            reference_images: [a.png, b.png]
            prompt: "[Image1] and [Image2] meet [Image3]"
    """
    problem = spec_dir.one_error(text, {"a.png": media["png"], "b.png": media["png2"]})
    assert problem.line == 6
    assert problem.message == "prompt: mentions [Image3] but the request has 2 reference_images"


def test_a_reference_the_prompt_never_mentions_is_a_warning(
    spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            reference_images:
              - a.png
              - b.png
            prompt: "{{ ref('a.png') }} alone"
    """
    loaded = spec_dir.load(text, {"a.png": media["png"], "b.png": media["png2"]})
    [warning] = loaded.warnings
    assert (warning.severity, warning.line, warning.column) == ("warning", 7, 9)
    assert warning.message == (
        "reference_images: 'b.png' is never mentioned in the prompt; "
        "write {{ ref('b.png') }} where it matters"
    )


def test_an_unused_asset_is_a_warning(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(
        """\
        version: 1
        defaults: {model: seedance-2, prompt: hi}
        assets:
          theme: https://cdn.example.com/theme.mp3
        shots:
          - id: one
        """
    )
    [warning] = loaded.warnings
    assert (warning.line, warning.column) == (4, 3)
    assert warning.message.startswith("asset 'theme' is never used")


def test_template_line_mapping_for_block_scalars() -> None:
    text = "a:\n  b: |\n    one\n      two\n"
    doc, _ = parse_yaml(text, Path("t.yaml"))
    assert doc is not None
    assert str(doc.template_location(("a", "b"), 2)) == "t.yaml:4:7"
