"""Outputs have an owner, the lock that placed them: two specs in one folder never overwrite
each other's renders, and a file edited by hand is never silently written over."""

from __future__ import annotations

import hashlib

from tests.engine.conftest import Project


def spec(prompt: str, output_dir: str = "renders") -> str:
    return (
        "version: 1\nbackend: tchavi\n"
        f"output_dir: {output_dir}\n"
        "defaults:\n  model: seedance-2\n  duration: 1\n"
        f"shots:\n  - id: intro\n    prompt: {prompt!r}\n    seed: 1\n"
    )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_second_spec_in_the_folder_does_not_overwrite_the_first_ones_render(
    project: Project,
) -> None:
    project.write(spec("Sunrise over the lagoon"), "a.yaml")
    project.write(spec("Night falls on the city"), "b.yaml")
    project.run("apply", "--yes", "a.yaml")
    intro = project.root / "renders" / "intro.mp4"
    a_render = intro.read_bytes()

    plan = project.run("plan", "b.yaml").output
    assert "! intro  create    blocked" in plan
    result = project.run("apply", "--yes", "b.yaml", ok=False)

    assert result.exit_code == 1
    assert (
        "  blocked: intro: renders/intro.mp4 belongs to a.yaml, another spec in this folder; "
        "give each spec its own output_dir" in result.output
    )
    assert intro.read_bytes() == a_render
    assert len(project.jobs()) == 1  # nothing paid for a render it could not place
    assert "No changes" in project.run("plan", "a.yaml").output


def test_two_specs_with_their_own_output_dirs_both_render(project: Project) -> None:
    project.write(spec("Sunrise over the lagoon", "renders/a"), "a.yaml")
    project.write(spec("Night falls on the city", "renders/b"), "b.yaml")
    project.run("apply", "--yes", "a.yaml")
    project.run("apply", "--yes", "b.yaml")
    a = (project.root / "renders" / "a" / "intro.mp4").read_bytes()
    b = (project.root / "renders" / "b" / "intro.mp4").read_bytes()
    assert a != b


def test_an_output_edited_by_hand_is_kept_until_the_user_asks_to_restore_it(
    project: Project,
) -> None:
    project.write(spec("Sunrise over the lagoon"))
    project.apply()
    intro = project.root / "renders" / "intro.mp4"
    rendered = intro.read_bytes()
    intro.write_bytes(b"my own grade of the shot")

    plan = project.run("plan").output
    assert "renders/intro.mp4 was modified by hand" in plan
    result = project.apply(ok=False)
    assert result.exit_code == 1
    assert (
        "  blocked: intro: renders/intro.mp4 was modified by hand since it was rendered; apply "
        "leaves it. Keep your edit under another name, or pass --restore-modified to put the "
        "render back" in result.output
    )
    assert intro.read_bytes() == b"my own grade of the shot"

    result = project.apply("--restore-modified")
    assert "1 reused" in result.output
    assert intro.read_bytes() == rendered
    assert len(project.jobs()) == 1  # restored from the cache, not rendered again
    assert "No changes" in project.run("plan").output


def test_a_file_no_lock_placed_is_not_overwritten(project: Project) -> None:
    """A render the user dropped at the output name before the first apply is theirs."""
    project.write(spec("Sunrise over the lagoon"))
    intro = project.root / "renders" / "intro.mp4"
    intro.parent.mkdir()
    intro.write_bytes(b"a file from somewhere else")

    result = project.apply(ok=False)

    assert result.exit_code == 1
    assert intro.read_bytes() == b"a file from somewhere else"
    assert "renders/intro.mp4 exists and this spec's lock did not place it" in result.output
    assert len(project.jobs()) == 0
