"""The rendered files: real MP4s of the right size, length and tracks, deterministic with a seed."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from tchavi_render.api.models import FRAME_SIZES
from tchavi_render.emulator import RunningEmulator
from tchavi_render.emulator.video import text_panel
from tests.emulator.conftest import mean_rgb, png, probe, render

COMBOS = [(res, aspect) for res, sizes in FRAME_SIZES.items() for aspect in sizes]


@pytest.mark.parametrize(("resolution", "aspect_ratio"), COMBOS)
def test_frame_size_follows_resolution_and_aspect_ratio(
    client: httpx.Client, tmp_path: Path, resolution: str, aspect_ratio: str
) -> None:
    job, video = render(client, resolution=resolution, aspect_ratio=aspect_ratio, seed=1)
    info = probe(video, tmp_path)
    assert (info.width, info.height) == FRAME_SIZES[resolution][aspect_ratio]
    assert info.fps == 24
    assert job["output"]["resolution"] == resolution


@pytest.mark.parametrize("duration", [1, 3])
def test_duration_is_as_requested(client: httpx.Client, tmp_path: Path, duration: int) -> None:
    job, video = render(client, duration=duration)
    assert job["output"]["duration"] == duration
    assert abs(probe(video, tmp_path).duration - duration) <= 0.1


def test_auto_duration_file_is_as_long_as_the_job_says(
    client: httpx.Client, tmp_path: Path
) -> None:
    job, video = render(client, duration=-1, seed=12)
    assert abs(probe(video, tmp_path).duration - job["output"]["duration"]) <= 0.1


def test_the_output_describes_the_file(client: httpx.Client) -> None:
    job, video = render(client)
    output = job["output"]
    assert output["file_size_mb"] == round(len(video) / 1e6, 2)
    assert output["url_expires_at"].endswith("Z")
    assert job["created_at"].endswith("Z")


@pytest.mark.parametrize("audio", [True, False])
def test_audio_track_is_present_only_when_asked(
    client: httpx.Client, tmp_path: Path, audio: bool
) -> None:
    _, video = render(client, generate_audio=audio)
    info = probe(video, tmp_path)
    assert info.has_audio is audio
    assert info.codecs == (("h264", "yuv420p", "aac") if audio else ("h264", "yuv420p"))


def test_same_request_and_seed_give_byte_identical_files(client: httpx.Client) -> None:
    _, first = render(client, prompt="a paper boat in the rain", seed=99, duration=2)
    _, second = render(client, prompt="a paper boat in the rain", seed=99, duration=2)
    assert first == second


def test_without_a_seed_each_job_differs(client: httpx.Client) -> None:
    _, first = render(client, prompt="a paper boat in the rain")
    _, second = render(client, prompt="a paper boat in the rain")
    assert first != second


def test_another_prompt_gives_another_video(client: httpx.Client) -> None:
    _, first = render(client, prompt="a paper boat in the rain", seed=1)
    _, second = render(client, prompt="a kite over the dunes", seed=1)
    assert first != second


def test_the_first_frame_is_the_image(
    shared_emulator: RunningEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    colour = (200, 40, 90)
    image = shared_emulator.host_file(png(tmp_path, (1280, 720), colour))
    _, video = render(client, image_url=image)
    first = mean_rgb(probe(video, tmp_path).first)
    assert all(abs(got - want) <= 6 for got, want in zip(first, colour, strict=True)), first


def test_the_video_ends_on_the_last_frame_image(
    shared_emulator: RunningEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    start, end = (30, 60, 200), (240, 220, 40)
    _, video = render(
        client,
        duration=2,
        image_url=shared_emulator.host_file(png(tmp_path, (854, 480), start)),
        last_frame_image_url=shared_emulator.host_file(png(tmp_path, (854, 480), end)),
    )
    last = mean_rgb(probe(video, tmp_path).last)
    assert all(abs(got - want) <= 6 for got, want in zip(last, end, strict=True)), last


@pytest.mark.parametrize(
    ("image_size", "frame"),
    [((300, 400), (480, 640)), ((1000, 1000), (480, 480)), ((1920, 1080), (854, 480))],
)
def test_adaptive_aspect_ratio_follows_the_first_frame_image(
    shared_emulator: RunningEmulator,
    client: httpx.Client,
    tmp_path: Path,
    image_size: tuple[int, int],
    frame: tuple[int, int],
) -> None:
    image = shared_emulator.host_file(png(tmp_path, image_size, (10, 120, 60)))
    _, video = render(client, aspect_ratio="adaptive", image_url=image)
    info = probe(video, tmp_path)
    assert (info.width, info.height) == frame


def test_adaptive_aspect_ratio_without_an_image_is_16_9(
    client: httpx.Client, tmp_path: Path
) -> None:
    _, video = render(client, aspect_ratio="adaptive", resolution="720p")
    info = probe(video, tmp_path)
    assert (info.width, info.height) == (1280, 720)


NOT_IN_ANY_FONT = "\ue000"  # private use: every font draws its missing-glyph box for it
LATIN_1 = [chr(c) for c in (*range(0x21, 0x7F), *range(0xA1, 0x100)) if c != 0xAD]
PUNCTUATION = list("—–‘’“”…•€")
YORUBA = list("ẹọṣ")  # the localised example's prompts


@pytest.mark.parametrize("charset", ["LATIN_1", "PUNCTUATION", "YORUBA"])
def test_prompt_text_is_drawn_with_real_glyphs_not_boxes(charset: str) -> None:
    box = text_panel(NOT_IN_ANY_FONT, 854, 480).tobytes()
    boxed = [c for c in globals()[charset] if text_panel(c, 854, 480).tobytes() == box]
    assert boxed == []
    assert text_panel("é", 854, 480).tobytes() != text_panel("e", 854, 480).tobytes()


def luma(video: bytes, tmp_path: Path) -> Image.Image:
    """The first frame's Y plane as stored (limited range, no colour conversion)."""
    path = tmp_path / "luma.mp4"
    path.write_bytes(video)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        plane = frame.planes[0]
        rows = Image.frombytes("L", (plane.line_size, frame.height), bytes(plane))
    return rows.crop((0, 0, frame.width, frame.height))


def test_a_video_shows_the_prompt_with_its_accents_and_dashes(
    client: httpx.Client, tmp_path: Path
) -> None:
    prompt = "Café — crème brûlée… “À bientôt”"
    _, video = render(client, prompt=prompt, seed=3)
    frame = luma(video, tmp_path)
    panel = text_panel(prompt, frame.width, frame.height)
    # Where _Scene puts the panel on the first frame.
    x = (frame.width - panel.width) // 4 * 2
    y = (frame.height - panel.height - frame.height // 8) // 2 * 2
    shown = frame.crop((x, y, x + panel.width, y + panel.height))
    ascii_only = "".join(c if c.isascii() else NOT_IN_ANY_FONT for c in prompt)
    boxed = text_panel(ascii_only, frame.width, frame.height)
    assert boxed.tobytes() != panel.tobytes()
    assert ImageStat.Stat(ImageChops.difference(shown, panel)).mean[0] < 4
