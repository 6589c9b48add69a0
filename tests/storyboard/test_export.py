"""export end to end: shots rendered by the emulator over loopback, joined, decoded back."""

from __future__ import annotations

import array
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from tchavi_render.errors import ExportError
from tchavi_render.export import AUDIO_RATE, FPS, ClipSource, plan_cut, write_cut
from tchavi_render.spec.shot import Location
from tests.support.specs import head

from .conftest import Project

# Two 16:9 shots and one 9:16 (letterboxed into 854x480, the most common size); sound on
# the last two only.
SPEC = (
    head(seed=5, generate_audio=False)
    + """\
  - id: opening
    prompt: "Aerial view of Cotonou at golden hour"
  - id: portrait
    prompt: "A dancer in the market, vertical"
    aspect_ratio: "9:16"
    generate_audio: true
    duration: 2
  - id: closing
    prompt: "Night falls over the lagoon"
    generate_audio: true
"""
)
TOLERANCE = 0.1  # seconds per cut


@dataclass
class Decoded:
    frames: list[Image.Image]
    sizes: set[tuple[int, int]]
    seconds: float  # by the container
    audio: array.array[float]  # left channel, float samples
    audio_rate: int


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        assert container.duration is not None
        seconds = container.duration / 1_000_000
        frames = [f.to_image() for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = array.array("f")
        for frame in container.decode(stream):
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
        rate = stream.rate
    return Decoded(frames, {f.size for f in frames}, seconds, samples, rate)


def first_frame(video: Path) -> Image.Image:
    with av.open(str(video)) as container:
        image: Image.Image = next(container.decode(video=0)).to_image()
        return image


def difference(a: Image.Image, b: Image.Image) -> float:
    small = (96, 54)
    diff = ImageChops.difference(a.convert("L").resize(small), b.convert("L").resize(small))
    return float(ImageStat.Stat(diff).mean[0])


def loudest(samples: array.array[float], start: float, end: float) -> float:
    chunk = samples[int(start * AUDIO_RATE) : int(end * AUDIO_RATE)]
    return max((abs(x) for x in chunk), default=0.0)


def test_export_joins_every_shot_in_storyboard_order(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    result = project.run("export")
    out = project.root / "final.mp4"
    assert result.output.startswith("Wrote final.mp4: 3 clips, 4.00 s, 854x480 at 24 fps")
    assert result.output.splitlines()[1] == (
        "Re-encoded every clip: shot 'portrait' differs from shot 'opening' in frame size "
        "(480x854, not 854x480); only whole clips of one format can be copied."
    )
    cut = decode(out)
    # The duration is the sum of the parts, and every frame has the one frame size.
    assert abs(cut.seconds - 4.0) <= 3 * TOLERANCE
    assert len(cut.frames) == 4 * FPS
    assert cut.sizes == {(854, 480)}
    assert cut.audio_rate == AUDIO_RATE
    assert abs(len(cut.audio) / AUDIO_RATE - 4.0) <= 3 * TOLERANCE
    # Each clip starts with its own shot's first frame (the portrait one letterboxed).
    renders = project.root / "renders"
    sources = {
        name: ImageOps.pad(first_frame(renders / f"{name}.mp4"), (854, 480), color="black")
        for name in ("opening", "portrait", "closing")
    }
    for name, at in (("opening", 0), ("portrait", FPS), ("closing", 3 * FPS)):
        closest = min(sources, key=lambda s: difference(cut.frames[at], sources[s]))
        assert closest == name, f"frame {at} looks like {closest}, not {name}"
    # The padding is black: the left and right bars of the portrait clip.
    portrait = cut.frames[FPS + 5]
    assert portrait.getpixel((10, 240)) == (0, 0, 0)
    assert portrait.getpixel((843, 240)) == (0, 0, 0)
    # Silence where the shot has no sound, the shot's sound where it has some.
    assert loudest(cut.audio, 0.0, 0.9) < 0.001
    assert loudest(cut.audio, 1.2, 2.8) > 0.05
    assert loudest(cut.audio, 3.2, 3.9) > 0.05


def test_export_follows_the_sequence_and_its_trims(project: Project) -> None:
    project.write(
        SPEC
        + """\
sequence:
  - closing
  - {id: portrait, trim: [0.5, 1.5]}
  - {id: opening, trim: [0, 0.5]}
  - closing
"""
    )
    project.apply()
    project.run("export", "-o", "cuts/teaser.mp4")
    cut = decode(project.root / "cuts" / "teaser.mp4")
    parts = [1.0, 1.0, 0.5, 1.0]
    assert len(cut.frames) == round(sum(parts) * FPS)
    assert abs(cut.seconds - sum(parts)) <= len(parts) * TOLERANCE
    assert abs(len(cut.audio) / AUDIO_RATE - sum(parts)) <= len(parts) * TOLERANCE
    assert cut.sizes == {(854, 480)}
    # The two closing clips are the same frames; the opening clip is silent.
    assert difference(cut.frames[0], cut.frames[int(2.5 * FPS)]) < 1.0
    assert loudest(cut.audio, 2.1, 2.4) < 0.001


def test_export_refuses_missing_and_out_of_date_shots_naming_them(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    project.run("export")
    before = (project.root / "final.mp4").read_bytes()
    (project.root / "renders" / "opening.mp4").unlink()
    edited = SPEC.replace("over the lagoon", "over the bay")
    project.write(edited + '  - id: credits\n    prompt: "The names roll by"\n')
    result = project.run("export", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot export: 3 shots are not ready:\n"
        "  opening: output missing (apply would reuse it: renders/opening.mp4 is missing; "
        "restored from the cache)\n"
        "  closing: out of date (apply would replace it: prompt: Night falls over the "
        "[-lagoon-] {+bay+})\n"
        "  credits: not rendered yet (apply would create it: new shot)\n"
        "Run `tchavi-render apply tchavi.yaml` first, then export again\n"
    )
    # Nothing was written: the earlier cut is untouched, and no temp file is left.
    assert (project.root / "final.mp4").read_bytes() == before
    assert sorted(p.name for p in project.root.iterdir() if p.name.startswith(".final")) == []


def test_export_needs_only_the_shots_in_its_sequence(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    project.write(SPEC.replace("over the lagoon", "over the bay") + "sequence: [portrait]\n")
    result = project.run("export")
    assert "1 clip, 2.00 s" in result.output
    assert len(project.jobs()) == 3


def test_a_trim_past_the_end_of_the_rendered_video_is_located() -> None:
    where = str(Location(Path("tchavi.yaml"), 14, 5))
    source = ClipSource(
        "auto", Path("renders/auto.mp4"), "renders/auto.mp4", (2.0, 9.0), where, 6.0, 854, 480
    )
    with pytest.raises(ExportError) as caught:
        plan_cut([source])
    assert str(caught.value) == (
        "tchavi.yaml:14:5: trim ends at 9 s, but renders/auto.mp4 (shot 'auto') lasts 6.00 s; "
        "end the trim earlier"
    )


def test_the_cut_takes_the_most_common_frame_size_and_the_first_on_a_tie() -> None:
    where = str(Location(Path("tchavi.yaml"), 1, 1))

    def clip(width: int, height: int) -> ClipSource:
        return ClipSource("s", Path("s.mp4"), "s.mp4", None, where, 1.0, width, height)

    assert plan_cut([clip(480, 854), clip(854, 480), clip(854, 480)])[0] == (854, 480)
    assert plan_cut([clip(480, 854), clip(854, 480)])[0] == (480, 854)


def make_media() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "examples" / "make_media.py"
    spec = importlib.util.spec_from_file_location("make_media", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def square_x(image: Image.Image) -> int:
    """The left edge of the light square make_media.mp4 slides across its clips."""
    row = [image.convert("L").getpixel((x, 18)) for x in range(image.width)]
    return next(x for x, v in enumerate(row) if isinstance(v, int) and v > 160)


def test_a_2_fps_video_is_resampled_to_24_fps_frame_by_frame(tmp_path: Path) -> None:
    video = tmp_path / "slow.mp4"
    video.write_bytes(make_media().mp4(6.0, (40, 40, 120), fps=2))
    where = str(Location(tmp_path / "tchavi.yaml", 1, 1))
    source = ClipSource("slow", video, "slow.mp4", (1.0, 4.0), where, 6.0, 64, 36)
    result = write_cut([source], tmp_path / "cut.mp4")
    cut = decode(result.path)
    assert len(cut.frames) == 3 * FPS and cut.sizes == {(64, 36)}
    assert loudest(cut.audio, 0.0, 3.0) == 0.0  # no sound in the shot: silence
    # Output frame k (at 1 + k/24 s) shows source frame i = the one showing at that time.
    with av.open(str(video)) as container:
        sources = [square_x(f.to_image()) for f in container.decode(video=0)]
    for k in range(0, 3 * FPS, 5):
        i = int((1.0 + k / FPS + 0.5 / FPS) * 2)
        assert abs(square_x(cut.frames[k]) - sources[i]) <= 1, f"frame {k}"


def test_export_uses_the_picked_take(project: Project) -> None:
    spec = (
        head(seed=30, generate_audio=False)
        + '  - id: opening\n    prompt: "Aerial view of Cotonou"\n    takes: 3\n'
    )
    project.write(spec)
    project.apply()
    take3 = first_frame(project.root / "renders" / "opening.takes" / "3.mp4")
    project.run("pick", "opening", "3")
    project.apply()
    project.run("export")
    cut = first_frame(project.root / "final.mp4")
    assert difference(cut, take3) < 8
    assert difference(cut, first_frame(project.root / "renders" / "opening.takes" / "1.mp4")) > 8
