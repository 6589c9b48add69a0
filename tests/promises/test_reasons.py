"""A re-render's reason shows what changed, even when it is only whitespace or the bytes of a
file the spec names (issue 11, items 10 and 12)."""

from __future__ import annotations

import io

from PIL import Image

from tests.engine.conftest import Project
from tests.support.specs import head

HEAD = head("local")


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def reasons(project: Project) -> list[str]:
    lines = project.run("plan").output.splitlines()
    return [line.strip() for line in lines if line.startswith("        ")]


def test_two_spaces_in_a_prompt_show_in_the_reason(project: Project) -> None:
    project.write(HEAD + "  - id: a\n    prompt: 'Aerial view at dusk'\n")
    project.apply()
    project.write(HEAD + "  - id: a\n    prompt: 'Aerial  view at dusk'\n")
    assert reasons(project) == ["prompt: whitespace only: Aerial[-·-]{+··+}view at dusk"]


def test_a_block_scalars_trailing_newline_shows_in_the_reason(project: Project) -> None:
    project.write(HEAD + "  - id: a\n    prompt: >-\n      Aerial view at dusk\n")
    project.apply()
    project.write(HEAD + "  - id: a\n    prompt: >\n      Aerial view at dusk\n")
    assert reasons(project) == ["prompt: whitespace only: trailing newline added"]


def test_an_edited_image_is_named_in_the_reason(project: Project) -> None:
    (project.root / "assets").mkdir()
    image = project.root / "assets" / "statue.png"
    image.write_bytes(png("red"))
    project.write(HEAD + "  - id: a\n    prompt: 'The statue'\n    image_url: assets/statue.png\n")
    project.apply()
    image.write_bytes(png("blue"))
    (reason,) = reasons(project)
    assert reason.startswith("image_url: assets/statue.png was edited (sha256:")
