"""Every invalid spec in tests/data/bad is refused at its line: no traceback, no job, no lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tchavi_render.emulator import RunningEmulator
from tests.security.conftest import BAD

KEY = "sk-tch_bad-specs"
LOCK = "# an earlier apply's lock: it must not change\nversion: 1\ncredits_total: 0\nshots: {}\n"

# (spec file, line, what the message must say)
CASES: list[tuple[str, int, str]] = [
    ("yaml_tab_indent", 3, "tabs are not allowed for indentation; use spaces"),
    ("yaml_unclosed_quote", 9, "found unexpected end of stream"),
    ("yaml_two_documents", 9, "holds more than one YAML document"),
    ("yaml_duplicate_key", 9, "duplicate key 'prompt' (first written at line 8)"),
    ("yaml_non_string_key", 9, "mapping key 5 must be a string; quote it"),
    ("yaml_python_object_tag", 8, "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply"),
    ("yaml_python_name_tag", 8, "unsupported YAML tag 'tag:yaml.org,2002:python/name:os.system'"),
    ("yaml_undefined_alias", 8, "alias *nowhere refers to no anchor"),
    ("yaml_alias_bomb", 6, "expands to more than 1000000 nodes"),
    ("yaml_deep_nesting", 2, "nests deeper than 64 levels"),
    ("yaml_empty", 1, "got an empty file"),
    ("yaml_top_level_list", 1, "a spec must be a mapping with 'version: 1' and 'shots:'"),
    ("yaml_not_utf8", 4, "is not valid UTF-8 (byte 0xe9); save the file as UTF-8"),
    ("schema_missing_version", 1, "'version' is required"),
    ("schema_wrong_version", 1, "version: must be 1, got 2"),
    ("schema_unknown_top_key", 9, "unknown key 'shotz'. Did you mean 'shots'?"),
    ("schema_unknown_shot_key", 9, "unknown key 'aspect_ration'. Did you mean 'aspect_ratio'?"),
    ("schema_missing_id", 7, "'id' is required"),
    ("schema_missing_prompt", 7, "prompt: is required; set it in the shot or under 'defaults:'"),
    ("schema_bad_model", 9, "got 'seedance2'. Did you mean 'seedance-2'?"),
    ("schema_duration_too_long", 9, "duration: must be 1..15 seconds, or -1 for auto; got 16"),
    ("schema_duration_zero", 9, "duration: must be 1..15 seconds, or -1 for auto; got 0"),
    ("schema_bad_resolution", 9, "resolution: must be one of '480p', '720p', got '1080p'"),
    ("schema_bad_aspect_ratio", 9, "aspect_ratio: must be one of '16:9'"),
    ("schema_audio_flag_not_bool", 9, "generate_audio: must be true or false"),
    ("schema_seed_not_int", 9, "seed: must be an integer, got 1.5"),
    ("schema_bad_backend", 2, "backend: must be one of 'tchavi', 'local', got 'aws'"),
    ("schema_shots_not_a_list", 2, "shots: must be a list, got 'many'"),
    ("api_too_many_reference_images", 9, "reference_images: at most 9 allowed, got 10"),
    ("api_image_url_with_reference_images", 10, "cannot be used together with image_url"),
    ("api_last_frame_without_first", 9, "last_frame_image_url: requires image_url"),
    ("api_audio_without_images", 9, "reference_audios: requires image_url or reference_images"),
    ("api_token_without_reference", 8, "mentions [Image3] but the request has 1 reference_images"),
    ("id_uppercase", 7, "id: 'Opening' is not a valid shot id"),
    ("id_path_traversal", 7, "id: '../../etc/passwd' is not a valid shot id"),
    ("id_templated_traversal", 7, "id: '../escape' is not a valid shot id"),
    ("id_absolute", 7, "id: '/tmp/owned' is not a valid shot id"),
    ("id_dotdot", 7, "id: '..' is not a valid shot id"),
    ("id_too_long", 7, "is not a valid shot id; use 1 to 64 lowercase letters"),
    ("id_nul_byte", 7, "id: 'a\\x00b' is not a valid shot id"),
    ("id_duplicate", 9, "duplicate shot id 'a', also used at id_duplicate.yaml:7:9"),
    ("id_for_each_collision", 7, "this for_each makes 'same' twice (n=1 and n=2)"),
    ("tpl_undefined_variable", 8, "undefined variable 'who'"),
    ("tpl_syntax_error", 8, "template syntax error: unexpected end of template"),
    ("tpl_dunder_class", 8, "access to attribute '__class__' of 'str' object is unsafe"),
    ("tpl_subclasses", 8, "access to attribute '__class__' of 'tuple' object is unsafe"),
    ("tpl_attr_filter", 8, "access to attribute '__class__' of 'str' object is unsafe"),
    ("tpl_globals_via_self", 8, "access to attribute '__init__' of 'TemplateReference'"),
    ("tpl_cycler", 8, "not allowed in a template: access to attribute '__init__'"),
    ("tpl_lipsum", 8, "undefined variable 'lipsum'"),
    ("tpl_joiner_namespace", 8, "undefined variable 'namespace'"),
    ("tpl_range_removed", 8, "undefined variable 'range'"),
    ("tpl_string_bomb", 8, "repeating this would make more than 100000 characters"),
    ("tpl_power_bomb", 8, "9 ** 999999 is too large"),
    ("tpl_format_width", 8, "format widths above 1000 are not allowed"),
    ("tpl_recursive_macro", 8, "calls nest deeper than 50"),
    ("tpl_include_outside", 8, "cannot include '../secret.j2': it is outside the project"),
    ("tpl_include_absolute", 8, "cannot include '/etc/passwd': absolute paths are not allowed"),
    ("tpl_ref_outside_prompt", 9, "ref() only works in a prompt"),
    ("tpl_mutate_shared", 9, "has no attribute 'append'"),
    ("media_dotdot", 9, "'../outside.png': is outside the project directory ('..')"),
    ("media_absolute", 9, "'/etc/passwd': absolute paths are not allowed"),
    ("media_home", 9, "'~/photo.png': absolute paths are not allowed"),
    ("media_file_scheme", 9, "'file:///etc/passwd': file: URLs are not allowed"),
    ("media_data_scheme", 9, "data: URLs are not allowed"),
    ("media_ftp_scheme", 9, "'ftp://example.com/a.png': ftp: URLs are not allowed"),
    ("media_url_without_host", 9, "'http:///a.png' is not a valid URL (no host)"),
    ("media_symlink_escape", 9, "leads outside the project directory through a symlink"),
    ("media_not_media", 9, "is not an image, video or audio file that can be decoded"),
    ("media_wrong_kind", 9, "is an image (assets/tiny.png), but reference_videos takes a video"),
    ("media_missing", 9, "'assets/nope.png': no such file in the project directory"),
    ("media_directory", 9, "'assets': is not a regular file"),
    ("media_asset_outside", 4, "'../../etc/passwd': is outside the project directory ('..')"),
    ("output_dir_outside", 3, "output_dir: '../elsewhere' is outside the project directory"),
    ("output_dir_absolute", 3, "output_dir: '/tmp/owned' is absolute"),
    ("output_dir_templated_escape", 3, "output_dir: '../../owned' is outside the project"),
    ("output_dir_symlink_escape", 3, "output_dir: 'linked-out' is outside the project directory"),
]


def test_every_bad_spec_has_a_case_and_there_are_at_least_forty() -> None:
    files = {p.stem for p in BAD.glob("*.yaml")}
    assert files == {name for name, _, _ in CASES}
    assert len(CASES) >= 40


@pytest.mark.parametrize(("name", "line", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_spec_is_refused_at_its_line_with_nothing_submitted_and_the_lock_untouched(
    bad_project: Path, emulator: RunningEmulator, name: str, line: int, fragment: str
) -> None:
    spec = f"{name}.yaml"
    lock = bad_project / f"{name}.lock"
    lock.write_text(LOCK)
    env = {
        "TCHAVI_API_KEY": KEY,
        "TCHAVI_BASE_URL": emulator.base_url,
        "TCHAVI_RENDER_CACHE_DIR": str(bad_project.parent / "cache"),
    }
    before = os.getcwd()
    os.chdir(bad_project)
    try:
        result = CliRunner().invoke(cli, ["apply", "--yes", "--backend", "tchavi", spec], env=env)
    finally:
        os.chdir(before)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output
    assert f"{spec}:{line}:" in result.output, result.output
    assert fragment in result.output, result.output
    assert emulator.account(KEY)["requests"] == 0  # nothing was even asked of the service
    assert emulator.jobs() == []
    assert lock.read_text() == LOCK
    assert not (bad_project / "renders").exists()
