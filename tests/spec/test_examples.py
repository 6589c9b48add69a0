"""The example storyboards: each validates, carries the schema modeline, and its media are
exactly what examples/make_media.py makes."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tchavi_render.spec import LocalMedia, load_spec

from .conftest import EXAMPLES

MODELINE = "# yaml-language-server: $schema=../../schemas/tchavi-render.schema.json"
SPECS = sorted(EXAMPLES.glob("*/tchavi.yaml"))


def test_there_are_a_quickstart_and_three_realistic_examples() -> None:
    assert {p.parent.name for p in SPECS} >= {
        "quickstart",
        "product-teaser",
        "localised",
        "music-video",
    }


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.parent.name)
def test_each_example_validates_without_warnings(spec: Path) -> None:
    loaded = load_spec(spec)
    assert loaded.shots
    assert loaded.warnings == ()
    assert spec.read_text().splitlines()[0] == MODELINE


@pytest.mark.parametrize("language", ["fr", "yo", "pt"])
def test_the_localised_example_validates_in_every_language(language: str) -> None:
    folder = EXAMPLES / "localised"
    loaded = load_spec(folder / "tchavi.yaml", var_files=[folder / "vars" / f"{language}.yaml"])
    assert loaded.output_dir == folder / "renders" / language
    assert all(shot.id.split("-")[1] == language for shot in loaded.shots)
    assert len({shot.aspect_ratio for shot in loaded.shots}) == (1 if language == "pt" else 3)


def test_the_quickstart_is_small_cheap_and_offline() -> None:
    loaded = load_spec(EXAMPLES / "quickstart" / "tchavi.yaml")
    assert loaded.backend == "local"
    assert 2 <= len(loaded.shots) <= 3
    for shot in loaded.shots:
        assert shot.resolution == "480p"
        assert 2 <= shot.duration <= 3
        assert shot.seed is not None
    images = [m for s in loaded.shots for name, m in s.media() if name == "reference_images"]
    assert any(isinstance(m, LocalMedia) for m in images)


def test_the_product_teaser_uses_first_and_last_frames() -> None:
    loaded = load_spec(EXAMPLES / "product-teaser" / "tchavi.yaml")
    assert any(s.image_url and s.last_frame_image_url for s in loaded.shots)


def test_the_music_video_uses_reference_audio_and_images() -> None:
    loaded = load_spec(EXAMPLES / "music-video" / "tchavi.yaml")
    assert all(s.reference_audios and s.reference_images for s in loaded.shots)


def test_the_committed_media_are_what_the_script_makes(make_media: ModuleType) -> None:
    for folder, files in make_media.files().items():
        for name, data in files.items():
            committed = (EXAMPLES / folder / name).read_bytes()
            assert committed == data, f"examples/{folder}/{name} is stale: run make_media.py"
            assert len(data) < 20_000


@pytest.mark.parametrize(
    ("stage", "takes", "resolution", "duration", "seeds"),
    [
        ("draft", 3, "480p", 2, [101, 201, 301]),
        ("final", 1, "720p", 5, [102, 201, 303]),
    ],
)
def test_the_draft_final_example_keeps_the_approved_takes_seed(
    stage: str, takes: int, resolution: str, duration: int, seeds: list[int]
) -> None:
    folder = EXAMPLES / "draft-final"
    loaded = load_spec(folder / "tchavi.yaml", var_files=[folder / "vars" / f"{stage}.yaml"])
    assert [(s.takes, s.resolution, s.duration) for s in loaded.shots] == [
        (takes, resolution, duration)
    ] * 3
    assert [s.seed for s in loaded.shots] == seeds
    assert [s.pick for s in loaded.shots] == ([2, 1, 3] if stage == "draft" else [1, 1, 1])
