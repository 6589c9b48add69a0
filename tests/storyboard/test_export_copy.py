"""The copied cut: clips of one format joined packet for packet, checked by decoding them.

Clips are real H.264/AAC files made on the spot with PyAV (B-frames, time bases, sound as
each test needs), or rendered by the emulator over loopback for the CLI tests.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import EllipsisType

import av
import pytest
from PIL import Image, ImageDraw

from tchavi_render.errors import ExportError
from tchavi_render.export import AUDIO_RATE, FPS, ClipSource, CutResult, write_cut
from tchavi_render.spec.shot import Location
from tests.support.specs import head

from .conftest import Project

WHERE = str(Location(Path("tchavi.yaml"), 9, 5))


@dataclass(frozen=True)
class Sound:
    rate: int = 16_000
    layout: str = "mono"
    delay: float = 0.0  # seconds of the clip before the sound starts


def make_clip(
    path: Path,
    *,
    seed: int,
    seconds: float = 1.0,
    size: tuple[int, int] = (128, 72),
    fps: int = 24,
    bframes: int = 0,
    sound: Sound | None = None,
    timescale: int | None = None,
) -> ClipSource:
    """An H.264 clip of a square sliding over a colour of its own (and a tone, with
    `sound`), as a ClipSource named after the file."""
    width, height = size
    options = {"fflags": "+bitexact"}
    if timescale is not None:
        options["video_track_timescale"] = str(timescale)
    frames = round(seconds * fps)
    with av.open(str(path), "w", format="mp4", container_options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # A keyframe every half second, so a clip is several groups of pictures.
        params = f"bframes={bframes}:keyint={fps // 2}:min-keyint={fps // 2}:scenecut=0"
        video.options = {"preset": "veryfast", "x264-params": params}
        video.codec_context.thread_count = 1
        audio = None
        if sound is not None:
            audio = container.add_stream("aac", rate=sound.rate, layout=sound.layout)
        for i in range(frames):
            image = Image.new("RGB", size, ((seed * 70) % 256, 90, (seed * 40 + i * 3) % 256))
            x = (width - 16) * i // max(1, frames - 1)
            ImageDraw.Draw(image).rectangle((x, 20, x + 16, 36), fill=(240, 240, 240))
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None and sound is not None:
            _tone(container, audio, sound, seconds, 200.0 + 100 * seed)
    return ClipSource(path.stem, path, path.name, None, WHERE, frames / fps, width, height)


def _tone(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    sound: Sound,
    seconds: float,
    frequency: float,
) -> None:
    channels = 1 if sound.layout == "mono" else 2
    total = round(seconds * sound.rate)
    for done in range(0, total, 1024):
        count = min(1024, total - done)
        wave = array.array(
            "f",
            (
                0.3 * math.sin(2 * math.pi * frequency * k / sound.rate)
                for k in range(done, done + count)
                for _ in range(channels)
            ),
        )
        frame = av.AudioFrame(format="flt", layout=sound.layout, samples=count)
        frame.planes[0].update(wave.tobytes())
        frame.sample_rate = sound.rate
        frame.pts = done + round(sound.delay * sound.rate)
        frame.time_base = Fraction(1, sound.rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def frame_hashes(path: Path) -> list[str]:
    """sha256 of each decoded frame's visible pixels (every plane, row by row)."""
    hashes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest = hashlib.sha256()
            for plane in frame.planes:
                data = memoryview(plane)
                for row in range(plane.height):
                    start = row * plane.line_size
                    digest.update(data[start : start + plane.width])
            hashes.append(digest.hexdigest())
    return hashes


@dataclass(frozen=True)
class Packets:
    """The cut as the demuxer sees it: payloads and start times per stream."""

    video: list[bytes]
    audio: list[bytes]
    audio_starts: list[Fraction]  # seconds
    seconds: float  # the container's duration


def packets(path: Path) -> Packets:
    video: list[bytes] = []
    audio: list[bytes] = []
    starts: list[Fraction] = []
    with av.open(str(path)) as container:
        assert container.duration is not None
        for packet in container.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "video":
                video.append(bytes(packet))
            else:
                audio.append(bytes(packet))
                assert packet.pts is not None and packet.time_base is not None
                starts.append(packet.pts * packet.time_base)
        return Packets(video, audio, starts, container.duration / 1_000_000)


def cut(tmp_path: Path, sources: Sequence[ClipSource], **options: bool) -> CutResult:
    return write_cut(sources, tmp_path / "cut.mp4", **options)


def nothing_written(tmp_path: Path) -> bool:
    """No cut, and no temp file of one, is left in tmp_path."""
    return not [p.name for p in tmp_path.iterdir() if p.name.startswith((".cut", "cut"))]


def starting_before_zero(path: Path) -> int:
    """How many sound packets the encoder put before the first frame (its priming)."""
    return sum(1 for start in packets(path).audio_starts if start < 0)


@pytest.mark.parametrize("bframes", [0, 2], ids=["no-b-frames", "b-frames"])
@pytest.mark.parametrize(
    "sound",
    [None, Sound(), Sound(48_000, "stereo")],
    ids=["silent", "sound-16k-mono", "sound-48k-stereo"],
)
def test_whole_clips_of_one_format_are_copied_frame_for_frame(
    tmp_path: Path, bframes: int, sound: Sound | None
) -> None:
    a, b, c = (
        make_clip(tmp_path / f"{name}.mp4", seed=i, seconds=seconds, bframes=bframes, sound=sound)
        for i, (name, seconds) in enumerate((("a", 1.0), ("b", 0.5), ("c", 1.0)))
    )
    sequence = [a, b, c, a]  # a shot may come back
    result = cut(tmp_path, sequence)
    assert result.copied, result.reason
    # Every decoded frame is its source's frame, bit for bit, in sequence order.
    assert frame_hashes(result.path) == [h for s in sequence for h in frame_hashes(s.path)]
    # The video packets are the sources' bytes; the cut lasts the sum of its parts.
    joined = packets(result.path)
    assert joined.video == [p for s in sequence for p in packets(s.path).video]
    assert result.duration == pytest.approx(3.5)
    assert abs(joined.seconds - 3.5) <= 1 / FPS
    if sound is None:
        assert joined.audio == []
        return
    # The sound is copied too: packet after packet, without gap or overlap (each 1024
    # samples); every clip's own packets in order, less the priming of every clip but the
    # first (it would play over the clip before) and a last packet that would play mostly
    # after the clip's last frame. So each clip's sound starts within half a packet of its
    # first frame, at every cut.
    packet_seconds = Fraction(1024, sound.rate)
    starts = joined.audio_starts
    assert all(b - a == packet_seconds for a, b in itertools.pairwise(starts))
    position = 0
    for source, clip_start in zip(sequence, (0, 1, 1.5, 2.5), strict=True):
        own = packets(source.path).audio
        if position:
            own = own[starting_before_zero(source.path) :]
            assert abs(starts[position] - Fraction(clip_start)) <= packet_seconds / 2
        taken = 0
        while (
            position < len(joined.audio)
            and taken < len(own)
            and joined.audio[position] == own[taken]
        ):
            position, taken = position + 1, taken + 1
        assert taken >= len(own) - 1, (source.shot_id, taken, len(own))
    assert position == len(joined.audio)
    assert abs(starts[-1] + packet_seconds - Fraction(3.5)) <= packet_seconds / 2


def index_first(clip: ClipSource) -> bytes:
    """The clip's file with its index before its frames (faststart): cut anywhere after the
    index, it still opens."""
    whole = clip.path.with_name(f"{clip.path.stem}-index-first.mp4")
    with (
        av.open(str(clip.path)) as source,
        av.open(str(whole), "w", format="mp4", container_options={"movflags": "+faststart"}) as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return whole.read_bytes()


def test_a_clip_whose_file_is_cut_short_is_named(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1, seconds=2.0)
    data = index_first(a)
    (tmp_path / "b.mp4").write_bytes(data[: len(data) * 2 // 3])
    b = ClipSource("b", tmp_path / "b.mp4", "renders/b.mp4", None, WHERE, 2.0, 128, 72)
    with pytest.raises(ExportError) as caught:
        cut(tmp_path, [a, b])
    assert str(caught.value).startswith(
        "renders/b.mp4 (shot 'b') is cut short: its header says 2.00 s"
    )
    assert str(caught.value).endswith("Render it again with: tchavi-render apply --replace b")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("first", "second", "difference"),
    [
        (
            {},
            {"size": (160, 90)},
            "shot 'b' differs from shot 'a' in frame size (160x90, not 128x72)",
        ),
        ({}, {"fps": 25}, "shot 'b' differs from shot 'a' in frame rate (25 fps, not 24 fps)"),
        (
            {},
            {"timescale": 90_000},
            "shot 'b' differs from shot 'a' in video time base (1/90000, not 1/12288)",
        ),
        # Reordered frames change the SPS: one stream could not decode both.
        ({}, {"bframes": 2}, "shot 'b' differs from shot 'a' in video codec parameters"),
    ],
    ids=["size", "frame-rate", "time-base", "b-frames-in-one"],
)
def test_clips_of_different_video_formats_are_re_encoded_and_say_why(
    tmp_path: Path, first: dict[str, object], second: dict[str, object], difference: str
) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1, **first)  # type: ignore[arg-type]
    b = make_clip(tmp_path / "b.mp4", seed=2, seconds=0.5, **second)  # type: ignore[arg-type]
    result = cut(tmp_path, [a, b])
    assert not result.copied
    assert result.reason == (
        f"Re-encoded every clip: {difference}; only whole clips of one format can be copied."
    )
    # The old path: one frame size, 24 fps, AAC at 48 kHz, the sum of the parts.
    assert len(frame_hashes(result.path)) == round(1.5 * FPS)
    with av.open(str(result.path)) as container:
        assert {f.width for f in container.decode(video=0)} == {128}
    with av.open(str(result.path)) as container:
        assert container.streams.audio[0].rate == AUDIO_RATE
        assert sum(f.samples for f in container.decode(audio=0)) >= 1.5 * AUDIO_RATE


def left_channel(path: Path) -> array.array[float]:
    samples = array.array("f")
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.layout.name) == (AUDIO_RATE, "stereo")
        for frame in container.decode(stream):
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
    return samples


def loudest(samples: array.array[float], start: float, end: float) -> float:
    return max(abs(x) for x in samples[round(start * AUDIO_RATE) : round(end * AUDIO_RATE)])


@pytest.mark.parametrize(
    ("first", "second", "difference"),
    [
        (None, Sound(), "shot 'b' has sound and shot 'a' has none"),
        (Sound(), None, "shot 'a' has sound and shot 'b' has none"),
        (
            Sound(),
            Sound(48_000, "stereo"),
            "shot 'b' differs from shot 'a' in sample rate (48000 Hz, not 16000 Hz)",
        ),
        (
            Sound(),
            Sound(delay=0.25),
            "the sound of shot 'b' is not in step with its video",
        ),
    ],
    ids=["sound-in-b-only", "sound-in-a-only", "sound-formats", "sound-late"],
)
def test_clips_whose_sound_differs_keep_their_video_and_get_new_sound(
    tmp_path: Path, first: Sound | None, second: Sound | None, difference: str
) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1, sound=first)
    b = make_clip(tmp_path / "b.mp4", seed=2, seconds=0.5, sound=second)
    sequence = [a, b, a]
    result = cut(tmp_path, sequence)
    assert result.copied
    assert result.reason == (
        "Copied the video, not one frame re-encoded: all 3 clips are h264 128x72 at 24 fps. "
        f"Re-encoded the sound (AAC 48 kHz stereo): {difference}."
    )
    assert result.codecs == "H.264 + AAC"
    assert frame_hashes(result.path) == [h for s in sequence for h in frame_hashes(s.path)]
    assert abs(packets(result.path).seconds - 2.5) <= 1 / FPS
    # Each clip's sound where the clip is, silence where a clip has none, in step: the
    # tenths of a second around each cut are left out (AAC smears a cut over a frame).
    samples = left_channel(result.path)
    assert abs(len(samples) / AUDIO_RATE - 2.5) <= 2 * 1024 / AUDIO_RATE
    for (start, end), source in zip(((0, 1), (1, 1.5), (1.5, 2.5)), sequence, strict=True):
        level = loudest(samples, start + 0.05, end - 0.05)
        sound = first if source is a else second
        assert (level > 0.1) if sound is not None else (level < 0.001), (source.shot_id, level)
    if second is not None and second.delay:
        assert loudest(samples, 1.05, 1.2) < 0.001  # b's sound starts 0.25 s into b, in step


def test_a_trimmed_clip_is_re_encoded_naming_its_sequence_item(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1)
    b = make_clip(tmp_path / "b.mp4", seed=2)
    trimmed = replace(b, trim=(0.25, 0.75))
    result = cut(tmp_path, [a, trimmed])
    assert not result.copied
    assert result.reason == (
        "Re-encoded every clip: shot 'b' is trimmed (tchavi.yaml:9:5); "
        "only whole clips of one format can be copied."
    )
    assert len(frame_hashes(result.path)) == round(1.5 * FPS)


def test_reencode_forces_the_old_path_on_clips_that_could_be_copied(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1, sound=Sound())
    b = make_clip(tmp_path / "b.mp4", seed=2, sound=Sound())
    result = cut(tmp_path, [a, b], reencode=True)
    assert not result.copied
    assert result.reason == "Re-encoded every clip: --reencode asked for it."
    assert result.codecs == "H.264 + AAC"
    with av.open(str(result.path)) as container:
        assert container.streams.audio[0].rate == AUDIO_RATE  # 48 kHz, not the clips' 16
        assert container.streams.audio[0].layout.name == "stereo"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty (0 bytes)"),
        (b"not a video at all\n" * 20, "cannot be read: Invalid data found when processing input"),
        # The first half: the index (at the end) is gone.
        (None, "cannot be read: Invalid data found when processing input"),
        # The index, then not one frame.
        (..., "has no video frames"),
    ],
    ids=["zero-length", "garbage", "truncated", "index-only"],
)
def test_a_clip_that_does_not_open_is_named_with_what_to_do(
    tmp_path: Path, content: bytes | EllipsisType | None, problem: str
) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1)
    bad = tmp_path / "b.mp4"
    if content is None:
        whole = a.path.read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    elif content is ...:
        data = index_first(a)
        bad.write_bytes(data[: data.index(b"mdat") + 4])
    else:
        bad.write_bytes(content)
    b = ClipSource("b", bad, "renders/b.mp4", None, WHERE, 1.0, 128, 72)
    for reencode in (False, True):
        with pytest.raises(ExportError) as caught:
            cut(tmp_path, [a, b], reencode=reencode)
        assert str(caught.value) == (
            f"renders/b.mp4 (shot 'b') {problem}. "
            "Render it again with: tchavi-render apply --replace b"
        )
        assert nothing_written(tmp_path)


def test_a_clip_without_frames_is_named(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1)
    empty = tmp_path / "b.mp4"
    with av.open(str(empty), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 128, 72, "yuv420p"
        container.start_encoding()  # a header, and not one frame
    b = ClipSource("b", empty, "renders/b.mp4", None, WHERE, 1.0, 128, 72)
    with pytest.raises(ExportError) as caught:
        cut(tmp_path, [a, b])
    assert str(caught.value) == (
        "renders/b.mp4 (shot 'b') has no video stream. "
        "Render it again with: tchavi-render apply --replace b"
    )


# Two 16:9 480p shots of 1 s and 2 s from the emulator: one format, so a copied cut.
ONE_FORMAT = (
    head(seed=5, resolution="480p", aspect_ratio='"16:9"', generate_audio=True)
    + """\
  - id: harbour
    prompt: "Boats leave the harbour at dawn"
  - id: market
    prompt: "The market wakes up"
    duration: 2
"""
)


def test_export_copies_rendered_shots_of_one_format_and_says_so(project: Project) -> None:
    project.write(ONE_FORMAT)
    project.apply()
    result = project.run("export")
    summary, reason = result.output.splitlines()
    assert summary.startswith("Wrote final.mp4: 2 clips, 3.00 s, 854x480 at 24 fps, H.264 + AAC (")
    assert reason == (
        "Copied, nothing re-encoded: all 2 clips are h264 854x480 at 24 fps "
        "with aac 16 kHz mono sound."
    )
    renders = [project.root / "renders" / f"{name}.mp4" for name in ("harbour", "market")]
    final = project.root / "final.mp4"
    assert frame_hashes(final) == [h for render in renders for h in frame_hashes(render)]
    assert abs(packets(final).seconds - 3.0) <= 1 / FPS


def test_export_copies_silent_shots_too(project: Project) -> None:
    project.write(ONE_FORMAT.replace("generate_audio: true", "generate_audio: false"))
    project.apply()
    summary, reason = project.run("export").output.splitlines()
    assert summary.startswith(
        "Wrote final.mp4: 2 clips, 3.00 s, 854x480 at 24 fps, H.264, no sound"
    )
    assert reason.endswith("all 2 clips are h264 854x480 at 24 fps with no sound.")
    assert packets(project.root / "final.mp4").audio == []


def test_export_reencode_forces_the_old_path_and_says_so(project: Project) -> None:
    project.write(ONE_FORMAT)
    project.apply()
    summary, reason = project.run("export", "--reencode").output.splitlines()
    assert summary.startswith("Wrote final.mp4: 2 clips, 3.00 s, 854x480 at 24 fps, H.264 + AAC (")
    assert reason == "Re-encoded every clip: --reencode asked for it."
    with av.open(str(project.root / "final.mp4")) as container:
        assert container.streams.audio[0].rate == AUDIO_RATE


def test_export_of_shots_with_and_without_sound_copies_the_video_and_says_why(
    project: Project,
) -> None:
    project.write(ONE_FORMAT + "    generate_audio: false\n")
    project.apply()
    summary, reason = project.run("export").output.splitlines()
    assert summary.startswith("Wrote final.mp4: 2 clips, 3.00 s, 854x480 at 24 fps, H.264 + AAC (")
    assert reason == (
        "Copied the video, not one frame re-encoded: all 2 clips are h264 854x480 at 24 fps. "
        "Re-encoded the sound (AAC 48 kHz stereo): shot 'harbour' has sound and shot "
        "'market' has none."
    )
    renders = [project.root / "renders" / f"{name}.mp4" for name in ("harbour", "market")]
    final = project.root / "final.mp4"
    assert frame_hashes(final) == [h for render in renders for h in frame_hashes(render)]
    samples = left_channel(final)
    assert loudest(samples, 0.1, 0.9) > 0.05
    assert loudest(samples, 1.1, 2.9) < 0.001


def test_export_of_a_trimmed_shot_names_the_sequence_item(project: Project) -> None:
    project.write(ONE_FORMAT + "sequence:\n  - harbour\n  - {id: market, trim: [0.5, 1.5]}\n")
    project.apply()
    summary, reason = project.run("export").output.splitlines()
    assert summary.startswith("Wrote final.mp4: 2 clips, 2.00 s")
    assert reason == (
        "Re-encoded every clip: shot 'market' is trimmed (tchavi.yaml:18:5); "
        "only whole clips of one format can be copied."
    )


def test_export_of_a_damaged_render_is_refused_naming_the_shot(project: Project) -> None:
    # Copying never decodes, so it could not see damaged frames: the lock's sha256 does.
    project.write(ONE_FORMAT)
    project.apply()
    render = project.root / "renders" / "market.mp4"
    data = bytearray(render.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # frames the copy would carry
    render.write_bytes(bytes(data))
    result = project.run("export", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot export: 1 shot is not ready:\n"
        "  market: output missing (apply would reuse it: renders/market.mp4 was modified by "
        "hand; restored from the cache)\n"
        "Run `tchavi-render apply tchavi.yaml` first, then export again\n"
    )
    assert not (project.root / "final.mp4").exists()


def test_clips_whose_frames_are_decoded_with_another_delay_are_re_encoded(
    tmp_path: Path,
) -> None:
    a = make_clip(tmp_path / "a.mp4", seed=1)
    # b: a's very packets (same codec parameters), decoded two frames ahead of showing.
    b_path = tmp_path / "b.mp4"
    with (
        av.open(str(a.path)) as source,
        av.open(str(b_path), "w", format="mp4") as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.dts -= 2 * 512  # 512 ticks a frame at 1/12288
                packet.stream = stream
                out.mux(packet)
    b = replace(a, shot_id="b", path=b_path, display="b.mp4")
    result = cut(tmp_path, [a, b])
    assert not result.copied
    assert result.reason == (
        "Re-encoded every clip: shot 'b' decodes its frames with another delay; "
        "only whole clips of one format can be copied."
    )
    assert len(frame_hashes(result.path)) == 2 * FPS


def test_export_over_a_render_is_refused_and_the_render_kept(project: Project) -> None:
    project.write(ONE_FORMAT)
    project.apply()
    render = project.root / "renders" / "market.mp4"
    before = render.read_bytes()
    result = project.run("export", "-o", "renders/market.mp4", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: renders/market.mp4 is the render of shot 'market': the cut would replace it. "
        "Write the cut to another file with -o, like final.mp4\n"
    )
    assert render.read_bytes() == before
