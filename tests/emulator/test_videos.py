"""The rendered files: real MP4s of the right size, length and tracks, deterministic with a seed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tchavi_render.api.models import FRAME_SIZES
from tchavi_render.emulator import RunningEmulator
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
