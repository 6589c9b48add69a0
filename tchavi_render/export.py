"""The final cut: rendered shots joined in sequence order into one MP4, with PyAV.

When every clip is whole and its video of one format, their packets are copied
(`remux.py`): no frame is decoded and none loses quality (when the clips' sound differs,
only the sound is made anew, below). Otherwise the cut is re-encoded to H.264/AAC: every
clip is scaled to fit one frame size and letterboxed, resampled to 24 fps (each output
frame shows the source frame showing at its time) and to 48 kHz stereo; a clip
without sound gets silence. Each clip contributes exactly round(seconds * 24) frames and
2000 audio samples per frame, so picture and sound stay in step across every cut.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from tchavi_render.atomic import atomic_path
from tchavi_render.errors import ExportError
from tchavi_render.remux import (
    CannotCopy,
    copy_cut,
    open_clip,
    reencoded,
    route_without_reading,
)

__all__ = [
    "AUDIO_RATE",
    "FPS",
    "Clip",
    "ClipSource",
    "CutResult",
    "plan_cut",
    "write_cut",
]

FPS = 24
AUDIO_RATE = 48_000
SAMPLES_PER_FRAME = AUDIO_RATE // FPS
AAC_FRAME = 1024
CHANNELS = 2
# An output frame at time t shows the last source frame that starts by t plus half an
# output frame: a 24 fps source maps frame for frame, and a 25 fps one drops a frame now
# and then rather than showing one a whole frame late.
_HOLD = 0.5 / FPS
X264_OPTIONS = {"preset": "veryfast", "crf": "20"}
AUDIO_BIT_RATE = 128_000


@dataclass(frozen=True)
class ClipSource:
    """One item of the sequence with its rendered file and what the file holds."""

    shot_id: str
    path: Path  # the rendered MP4
    display: str  # the path as shown in messages (relative to the project)
    trim: tuple[float, float] | None
    location: str  # where the sequence item (or the shot) is written: file:line:col
    duration: float  # seconds of video in the file
    width: int
    height: int


@dataclass(frozen=True)
class Clip:
    """A clip as it goes into the cut: [start, start + frames / FPS) of the shot's video."""

    source: ClipSource
    start: float
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / FPS


@dataclass(frozen=True)
class CutResult:
    path: Path
    width: int
    height: int
    clips: tuple[Clip, ...]
    elapsed: float  # seconds spent writing the cut
    duration: float  # seconds
    fps: float
    codecs: str  # "H.264 + AAC", as the summary line shows them
    copied: bool  # the clips' video packets were copied, not re-encoded
    reason: str  # why the cut was copied or re-encoded, as one sentence


def plan_cut(sources: Sequence[ClipSource]) -> tuple[tuple[int, int], tuple[Clip, ...]]:
    """The frame size of the cut (the most common one; the first shot's on a tie) and the
    clips with their frame counts; raise ExportError when a trim overruns its video."""
    if not sources:
        raise ExportError("the sequence is empty: there is nothing to export")
    sizes = Counter((s.width, s.height) for s in sources)
    size = max(sizes, key=lambda wh: (sizes[wh], -_first_index(sources, wh)))
    clips: list[Clip] = []
    for source in sources:
        start, end = source.trim if source.trim is not None else (0.0, source.duration)
        # A trim may end at the very end of the video even when the file rounds it down.
        if end > source.duration + _HOLD:
            raise ExportError(
                f"{source.location}: trim ends at {end:g} s, but {source.display} "
                f"(shot {source.shot_id!r}) lasts {source.duration:.2f} s; "
                "end the trim earlier"
            )
        clips.append(Clip(source, start, max(1, round((end - start) * FPS))))
    return size, tuple(clips)


def _first_index(sources: Sequence[ClipSource], size: tuple[int, int]) -> int:
    return next(i for i, s in enumerate(sources) if (s.width, s.height) == size)


def write_cut(sources: Sequence[ClipSource], out: Path, *, reencode: bool = False) -> CutResult:
    """Write the cut to `out` atomically (temp file in the same directory, fsync, rename):
    the clips' packets copied when they allow it and `reencode` is false, else re-encoded."""
    started = time.monotonic()
    (width, height), clips = plan_cut(sources)
    if out.is_dir():
        raise ExportError(f"{out} is a directory; pass a file name with -o, like final.mp4")
    for source in sources:
        if out.resolve() == source.path.resolve():
            raise ExportError(
                f"{out} is the render of shot {source.shot_id!r}: the cut would replace it. "
                "Write the cut to another file with -o, like final.mp4"
            )
    route = route_without_reading(sources, reencode=reencode)
    out.parent.mkdir(parents=True, exist_ok=True)
    if route is None:
        try:
            with atomic_path(out) as tmp:
                copied = copy_cut(sources, tmp, _SoundTrack)
        except CannotCopy as exc:
            route = reencoded(str(exc))
        else:
            video, audio = copied.format.video, copied.format.audio
            if not copied.sound_copied:
                sound = " + AAC"
            else:
                sound = f" + {_codec_name(audio.codec)}" if audio is not None else ", no sound"
            return CutResult(
                path=out,
                width=video.size[0],
                height=video.size[1],
                clips=clips,
                elapsed=time.monotonic() - started,
                duration=float(copied.seconds),
                fps=float(video.rate) if video.rate else 0.0,
                codecs=_codec_name(video.codec) + sound,
                copied=True,
                reason=copied.route.reason,
            )
    with atomic_path(out) as tmp:
        _encode(clips, width, height, tmp)
    return CutResult(
        path=out,
        width=width,
        height=height,
        clips=clips,
        elapsed=time.monotonic() - started,
        duration=sum(c.frames for c in clips) / FPS,
        fps=FPS,
        codecs="H.264 + AAC",
        copied=False,
        reason=route.reason,
    )


_CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "aac": "AAC", "mpeg4": "MPEG-4", "opus": "Opus"}


def _codec_name(codec: str) -> str:
    return _CODEC_NAMES.get(codec, codec)


def _encode(clips: Sequence[Clip], width: int, height: int, path: Path) -> None:
    import av

    with av.open(
        str(path), "w", format="mp4", container_options={"movflags": "+faststart"}
    ) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = dict(X264_OPTIONS)
        audio = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        audio.bit_rate = AUDIO_BIT_RATE
        sound = _AudioOut(container, audio)
        index = 0
        for clip in clips:
            samples = _clip_audio(clip)
            for n, frame in enumerate(_clip_video(clip, width, height)):
                frame.pts = index
                frame.time_base = Fraction(1, FPS)
                for packet in video.encode(frame):
                    container.mux(packet)
                # The sound of this frame goes in right after it: the file stays interleaved.
                sound.push(samples, n * SAMPLES_PER_FRAME, SAMPLES_PER_FRAME)
                index += 1
        for packet in video.encode(None):
            container.mux(packet)
        sound.close()


class _AudioOut:
    """Stereo float samples in, AAC frames of 1024 samples out, timed by sample count."""

    def __init__(self, container: Any, stream: Any) -> None:
        self.container = container
        self.stream = stream
        self.pending = [bytearray(), bytearray()]
        self.pts = 0

    def push(self, planes: tuple[bytes, bytes], offset: int, count: int) -> None:
        for channel in range(CHANNELS):
            self.pending[channel] += planes[channel][offset * 4 : (offset + count) * 4]
        while len(self.pending[0]) >= AAC_FRAME * 4:
            self._emit(AAC_FRAME)

    def close(self) -> None:
        if self.pending[0]:
            self._emit(len(self.pending[0]) // 4)
        for packet in self.stream.encode(None):
            self.container.mux(packet)

    def _emit(self, count: int) -> None:
        import av

        frame = av.AudioFrame(format="fltp", layout="stereo", samples=count)
        for channel in range(CHANNELS):
            frame.planes[channel].update(bytes(self.pending[channel][: count * 4]))
            del self.pending[channel][: count * 4]
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.pts
        frame.time_base = Fraction(1, AUDIO_RATE)
        self.pts += count
        for packet in self.stream.encode(frame):
            self.container.mux(packet)


def _decode_failed(source: ClipSource, exc: Exception) -> ExportError:
    return ExportError(
        f"{source.display} (shot {source.shot_id!r}) does not decode: {exc}. "
        f"Render it again with: tchavi-render apply --replace {source.shot_id}"
    )


def _clip_audio(clip: Clip) -> tuple[bytes, bytes]:
    """Exactly the clip's samples (clip.frames * 2000 per channel), silence where the shot
    has none, as 32-bit float planes at 48 kHz."""
    return _clip_sound(clip.source, clip.start, clip.frames * SAMPLES_PER_FRAME)


def _clip_sound(source: ClipSource, start: float, wanted: int | None) -> tuple[bytes, bytes]:
    """The shot's sound from `start` seconds of its video on, as 32-bit float planes at
    48 kHz stereo: `wanted` samples (silence where the shot has none), or all there are."""
    import av

    left, right = bytearray(), bytearray()
    with open_clip(source) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            origin = _video_origin(container)
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
            first: float | None = None
            try:
                for frame in [*container.decode(stream), None]:
                    if frame is not None and first is None and frame.time is not None:
                        first = frame.time
                    for out in resampler.resample(frame):
                        size = out.samples * 4
                        left += bytes(out.planes[0])[:size]
                        right += bytes(out.planes[1])[:size]
            except av.FFmpegError as exc:
                raise _decode_failed(source, exc) from None
            # Sample j of the track plays at (first - origin) + j / rate in the shot.
            skip = round((start - ((first or origin) - origin)) * AUDIO_RATE)
            left, right = _shift(left, skip), _shift(right, skip)
    if wanted is None:
        return bytes(left), bytes(right)
    silence = bytes(4 * max(0, wanted - len(left) // 4))
    return (bytes(left[: wanted * 4]) + silence, bytes(right[: wanted * 4]) + silence)


class _SoundTrack:
    """The cut's sound made anew while its video is copied (remux.SoundWriter): AAC at
    48 kHz stereo, each clip's sound from its first frame to its last, silence where a
    shot has none. Sample positions come from the cut's exact times, so nothing drifts."""

    description = "AAC 48 kHz stereo"

    def __init__(self) -> None:
        self.out: _AudioOut | None = None
        self.planes = (b"", b"")
        self.base = 0  # the sample of the cut where the current clip starts
        self.done = 0  # samples of the current clip already pushed

    def add_stream(self, out: Any) -> None:
        stream = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        stream.bit_rate = AUDIO_BIT_RATE
        self.out = _AudioOut(out, stream)

    def begin(self, source: ClipSource, at: Fraction) -> None:
        self.planes = _clip_sound(source, 0.0, None)
        self.base, self.done = round(at * AUDIO_RATE), 0

    def until(self, at: Fraction) -> None:
        self._push(min(round(at * AUDIO_RATE) - self.base, len(self.planes[0]) // 4))

    def end(self, at: Fraction) -> None:
        wanted = round(at * AUDIO_RATE) - self.base
        silence = bytes(4 * max(0, wanted - len(self.planes[0]) // 4))
        self.planes = (self.planes[0] + silence, self.planes[1] + silence)
        self._push(wanted)

    def close(self) -> None:
        assert self.out is not None
        self.out.close()

    def _push(self, upto: int) -> None:
        assert self.out is not None
        if upto > self.done:
            self.out.push(self.planes, self.done, upto - self.done)
            self.done = upto


def _shift(samples: bytearray, skip: int) -> bytearray:
    """Drop `skip` samples from the front (or add -skip samples of silence there)."""
    if skip >= 0:
        return samples[skip * 4 :]
    return bytearray(4 * -skip) + samples


def _video_origin(container: Any) -> float:
    stream = container.streams.video[0] if container.streams.video else None
    if stream is not None and stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _clip_video(clip: Clip, width: int, height: int) -> Iterator[Any]:
    """The clip's `frames` output frames at 24 fps, fitted to width x height."""
    import av

    source = clip.source
    with open_clip(source) as container:
        if not container.streams.video:
            raise ExportError(
                f"{source.display} (shot {source.shot_id!r}) has no video stream. "
                f"Render it again with: tchavi-render apply --replace {source.shot_id}"
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        emitted = 0
        current: Any = None
        fitted: Any = None
        origin: float | None = None
        try:
            for frame in container.decode(stream):
                at = frame.time if frame.time is not None else 0.0
                origin = at if origin is None else origin
                # Output frames due before this source frame show the one before it.
                while (
                    current is not None
                    and emitted < clip.frames
                    and clip.start + emitted / FPS < at - origin - _HOLD
                ):
                    fitted = fitted if fitted is not None else _fit(current, width, height)
                    yield fitted
                    emitted += 1
                if emitted >= clip.frames:
                    return
                current, fitted = frame, None
        except av.FFmpegError as exc:
            raise _decode_failed(source, exc) from None
        if current is None:
            raise ExportError(
                f"{source.display} (shot {source.shot_id!r}) has no video frames. "
                f"Render it again with: tchavi-render apply --replace {source.shot_id}"
            )
        fitted = fitted if fitted is not None else _fit(current, width, height)
        # The last source frame holds to the end of the clip.
        for _ in range(clip.frames - emitted):
            yield fitted


def _fit(frame: Any, width: int, height: int) -> Any:
    """`frame` scaled to fit width x height, keeping its shape, centred on black."""
    import av
    from PIL import Image

    scale = min(width / frame.width, height / frame.height)
    w = min(width, max(2, round(frame.width * scale / 2) * 2))
    h = min(height, max(2, round(frame.height * scale / 2) * 2))
    if (w, h) == (width, height):
        return frame.reformat(width=width, height=height, format="yuv420p")
    canvas = Image.new("RGB", (width, height))
    canvas.paste(frame.to_image(width=w, height=h), ((width - w) // 2, (height - h) // 2))
    # PyAV's stub leaves from_image untyped.
    boxed = av.VideoFrame.from_image(canvas)  # type: ignore[no-untyped-call]
    return boxed.reformat(format="yuv420p")
