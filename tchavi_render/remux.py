"""The lossless final cut: clips of one format joined by copying their packets, never decoded.

The video is copied when every clip's has the same codec, codec parameters (for H.264: the
same SPS and PPS), frame size, pixel format, frame rate and time base, and no clip is
trimmed. Each clip's packets are moved to the end of the cut so far: its video starts
exactly where the previous clip's last frame ends, and its sound with its first frame.
The sound is copied too when the clips all have sound of one format (or all have none);
otherwise only the sound is made anew (a SoundWriter: export.py's AAC track).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from tchavi_render.errors import ExportError

if TYPE_CHECKING:
    from tchavi_render.export import ClipSource

__all__ = [
    "AudioFormat",
    "CannotCopy",
    "ClipFormat",
    "CopiedCut",
    "Route",
    "SoundWriter",
    "VideoFormat",
    "copy_cut",
    "open_clip",
    "read_format",
    "reencoded",
    "route_without_reading",
]


@dataclass(frozen=True)
class VideoFormat:
    """What must be equal in every clip's video for its packets to be copied."""

    codec: str
    size: tuple[int, int]
    pixels: str | None
    rate: Fraction | None
    time_base: Fraction | None
    parameters: bytes  # the codec's extradata: for H.264, the SPS and PPS

    def describe(self) -> str:
        fps = f"{float(self.rate):.3g} fps" if self.rate else "no frame rate"
        return f"{self.codec} {self.size[0]}x{self.size[1]} at {fps}"


@dataclass(frozen=True)
class AudioFormat:
    """What must be equal in every clip's sound for its packets to be copied."""

    codec: str
    rate: int
    layout: str
    time_base: Fraction | None
    parameters: bytes

    def describe(self) -> str:
        return f"{self.codec} {self.rate / 1000:g} kHz {self.layout}"


@dataclass(frozen=True)
class ClipFormat:
    video: VideoFormat
    audio: AudioFormat | None  # None: the clip has no sound

    def describe(self) -> str:
        sound = f"{self.audio.describe()} sound" if self.audio else "no sound"
        return f"{self.video.describe()} with {sound}"


@dataclass(frozen=True)
class Route:
    """How the cut is made, and why: a sentence the CLI prints as it is."""

    copy: bool
    reason: str


# How a message names each field that differs, and the unit of its values.
_VIDEO_WORDS = {
    "codec": ("video codec", ""),
    "size": ("frame size", ""),
    "pixels": ("pixel format", ""),
    "rate": ("frame rate", " fps"),
    "time_base": ("video time base", ""),
    "parameters": ("video codec parameters", ""),
}
_AUDIO_WORDS = {
    "codec": ("sound codec", ""),
    "rate": ("sample rate", " Hz"),
    "layout": ("channel layout", ""),
    "time_base": ("sound time base", ""),
    "parameters": ("sound codec parameters", ""),
}


def reencoded(why: str) -> Route:
    """The re-encode route, for the reason `why` (a clause naming the clip in the way)."""
    return Route(
        False, f"Re-encoded every clip: {why}; only whole clips of one format can be copied."
    )


def open_clip(source: ClipSource) -> Any:
    """The clip's file opened with PyAV, or an ExportError naming it and what to do."""
    import av

    if source.path.is_file() and source.path.stat().st_size == 0:
        raise ExportError(
            f"{source.display} (shot {source.shot_id!r}) is empty (0 bytes). "
            f"Render it again with: tchavi-render apply --replace {source.shot_id}"
        )
    try:
        return av.open(str(source.path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, av.FFmpegError) and exc.strerror else exc
        raise ExportError(
            f"{source.display} (shot {source.shot_id!r}) cannot be read: {reason}. "
            f"Render it again with: tchavi-render apply --replace {source.shot_id}"
        ) from None


def read_format(source: ClipSource, container: Any) -> ClipFormat:
    """The clip's format from its headers (nothing is decoded)."""
    if not container.streams.video:
        raise ExportError(
            f"{source.display} (shot {source.shot_id!r}) has no video stream. "
            f"Render it again with: tchavi-render apply --replace {source.shot_id}"
        )
    video = container.streams.video[0]
    ctx = video.codec_context
    rate = video.average_rate or video.guessed_rate
    audio: AudioFormat | None = None
    if container.streams.audio:
        sound = container.streams.audio[0]
        actx = sound.codec_context
        audio = AudioFormat(
            codec=actx.name,
            rate=int(actx.sample_rate or 0),
            layout=actx.layout.name if actx.layout is not None else "unknown",
            time_base=sound.time_base,
            parameters=bytes(actx.extradata or b""),
        )
    return ClipFormat(
        VideoFormat(
            codec=ctx.name,
            size=(int(ctx.width), int(ctx.height)),
            pixels=ctx.format.name if ctx.format is not None else None,
            rate=Fraction(rate) if rate else None,
            time_base=video.time_base,
            parameters=bytes(ctx.extradata or b""),
        ),
        audio,
    )


def route_without_reading(sources: Sequence[ClipSource], *, reencode: bool) -> Route | None:
    """The re-encode route when it is known before any file is read: asked for, or a clip
    is trimmed. None: the clips' formats decide (see `copy_cut`)."""
    if reencode:
        return Route(False, "Re-encoded every clip: --reencode asked for it.")
    for source in sources:
        if source.trim is not None:
            return reencoded(f"shot {source.shot_id!r} is trimmed ({source.location})")
    return None


@dataclass(frozen=True)
class _Difference:
    text: str  # "shot 'b' differs from shot 'a' in frame size (...)"
    video: bool  # False: only the sound differs


def _difference(a: str, fa: ClipFormat, b: str, fb: ClipFormat) -> _Difference | None:
    """How clip b's format differs from clip a's, in words; None when they are the same."""
    what = _field_difference(fa.video, fb.video, _VIDEO_WORDS)
    if what is not None:
        return _Difference(f"shot {b!r} differs from shot {a!r} in {what}", video=True)
    if (fa.audio is None) != (fb.audio is None):
        loud, silent = (a, b) if fb.audio is None else (b, a)
        return _Difference(f"shot {loud!r} has sound and shot {silent!r} has none", video=False)
    if fa.audio is not None and fb.audio is not None:
        what = _field_difference(fa.audio, fb.audio, _AUDIO_WORDS)
        if what is not None:
            return _Difference(f"shot {b!r} differs from shot {a!r} in {what}", video=False)
    return None


def _field_difference(
    a: VideoFormat | AudioFormat,
    b: VideoFormat | AudioFormat,
    words: dict[str, tuple[str, str]],
) -> str | None:
    for field in fields(a):
        mine, theirs = getattr(b, field.name), getattr(a, field.name)
        if mine != theirs:
            name, unit = words[field.name]
            if field.name == "parameters":
                return name  # bytes say nothing to a reader
            return f"{name} ({_show(mine)}{unit}, not {_show(theirs)}{unit})"
    return None


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, Fraction) and value.denominator != 1 and value > 1:
        return f"{float(value):.3g}"
    return str(value)


class CannotCopy(Exception):
    """The clips cannot be copied into one stream; the message says why, naming a clip.
    The cut is then re-encoded instead."""


@dataclass(frozen=True)
class CopiedCut:
    format: ClipFormat  # the first clip's (every clip's video is the same)
    seconds: Fraction
    route: Route
    sound_copied: bool  # False: made anew by the SoundWriter


class SoundWriter(Protocol):
    """The cut's sound made anew while the video is copied (export.py's AAC track): each
    clip's sound, or silence, from its first frame to its last."""

    description: str  # "AAC 48 kHz stereo"

    def add_stream(self, out: Any) -> None: ...
    def begin(self, source: ClipSource, at: Fraction) -> None: ...
    def until(self, at: Fraction) -> None: ...
    def end(self, at: Fraction) -> None: ...
    def close(self) -> None: ...


class _SoundDiffers(Exception):
    """A clip's sound is not the first clip's: copy again, making the sound anew."""


def copy_cut(
    sources: Sequence[ClipSource], path: Any, new_sound: Callable[[], SoundWriter]
) -> CopiedCut:
    """Write the clips' packets one clip after another into an MP4 at `path`. Each clip is
    opened once: its format is checked against the first clip's as it comes. The first
    clip whose video differs stops the copy (CannotCopy); the first whose sound differs
    (or that has none while others have some) starts it again with the sound made by
    `new_sound()` instead of copied."""
    try:
        return _copy(sources, path, None)
    except _SoundDiffers as exc:
        return _copy(sources, path, new_sound(), why=str(exc))


def _copy(
    sources: Sequence[ClipSource], path: Any, sound: SoundWriter | None, why: str = ""
) -> CopiedCut:
    import av

    first = sources[0]
    head: ClipFormat | None = None
    cursor = _Cursor()
    with av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"}) as out:
        video: Any = None
        audio: Any = None
        for index, source in enumerate(sources):
            with open_clip(source) as container:
                clip = read_format(source, container)
                if head is None:
                    head = clip
                    video = out.add_stream_from_template(container.streams.video[0])
                    if sound is not None:
                        sound.add_stream(out)
                    elif clip.audio is not None:
                        audio = out.add_stream_from_template(container.streams.audio[0])
                else:
                    difference = _difference(first.shot_id, head, source.shot_id, clip)
                    if difference is not None and difference.video:
                        raise CannotCopy(difference.text)
                    if difference is not None and sound is None:
                        raise _SoundDiffers(difference.text)
                try:
                    _copy_clip(source, container, out, video, audio, sound, cursor, index == 0)
                except av.FFmpegError as exc:
                    raise ExportError(
                        f"{source.display} (shot {source.shot_id!r}) cannot be copied: {exc}. "
                        f"Render it again with: tchavi-render apply --replace {source.shot_id}, "
                        "or export with --reencode"
                    ) from None
        if sound is not None:
            sound.close()
    assert head is not None  # plan_cut refuses an empty sequence
    count = len(sources)
    every = "the clip is" if count == 1 else f"all {count} clips are"
    if sound is None:
        route = Route(True, f"Copied, nothing re-encoded: {every} {head.describe()}.")
        return CopiedCut(head, cursor.offset, route, sound_copied=True)
    route = Route(
        True,
        f"Copied the video, not one frame re-encoded: {every} {head.video.describe()}. "
        f"Re-encoded the sound ({sound.description}): {why}.",
    )
    return CopiedCut(head, cursor.offset, route, sound_copied=False)


@dataclass
class _Cursor:
    """Where the next clip starts in the cut (seconds), and the last timestamps written."""

    offset: Fraction = Fraction(0)
    video_dts: int | None = None  # in the video stream's time base
    sound_at: int | None = None  # where the next copied sound packet plays (its ticks)


def _copy_clip(
    source: ClipSource,
    container: Any,
    out: Any,
    video: Any,
    audio: Any,
    sound: SoundWriter | None,
    cursor: _Cursor,
    first: bool,
) -> None:
    vin = container.streams.video[0]
    ain = container.streams.audio[0] if audio is not None else None
    if sound is not None:
        sound.begin(source, cursor.offset)
    vtb = Fraction(vin.time_base)
    start = vin.start_time
    # Video ticks to add: the clip's first frame lands where the cut so far ends.
    vshift: int | None = None
    end = 0  # in the clip's video ticks
    longest = 0  # the longest frame, in ticks
    if start is not None:
        vshift = round(cursor.offset / vtb) - start
    streams = [vin] if ain is None else [vin, ain]
    copied: _CopiedSound | None = None
    for packet in container.demux(streams):
        if packet.dts is None and packet.pts is None:
            continue  # the demuxer's empty packet at the end of a stream
        if packet.stream is vin:
            if vshift is None:  # no start time in the header: the first packet's
                start = packet.pts if packet.pts is not None else packet.dts
                vshift = round(cursor.offset / vtb) - start
            end = max(end, (packet.pts or packet.dts) + (packet.duration or 0))
            longest = max(longest, packet.duration or 0)
            _shift(packet, vshift)
            if cursor.video_dts is not None and packet.dts <= cursor.video_dts:
                raise CannotCopy(f"shot {source.shot_id!r} decodes its frames with another delay")
            cursor.video_dts = packet.dts
            packet.stream = video
            if sound is not None:  # the sound up to this frame goes in first: interleaved
                sound.until(packet.dts * vtb)
        elif ain is not None:
            if start is None:
                continue  # sound before any picture has nowhere to go
            if copied is None:
                if vin.duration is None:
                    raise _SoundDiffers(f"shot {source.shot_id!r} has no length in its header")
                copied = _CopiedSound(source, ain, start * vtb, vin.duration * vtb, cursor, first)
            if not copied.place(packet):
                continue
            packet.stream = audio
        out.mux(packet)
    if start is None or vshift is None:
        raise ExportError(
            f"{source.display} (shot {source.shot_id!r}) has no video frames. "
            f"Render it again with: tchavi-render apply --replace {source.shot_id}"
        )
    # A file cut short still demuxes, up to where it ends: its header knows better.
    if vin.duration is not None and end - start < vin.duration - longest:
        raise ExportError(
            f"{source.display} (shot {source.shot_id!r}) is cut short: its header says "
            f"{float(vin.duration * vtb):.2f} s, its frames end at "
            f"{float((end - start) * vtb):.2f} s. "
            f"Render it again with: tchavi-render apply --replace {source.shot_id}"
        )
    cursor.offset += (end - start) * vtb
    if sound is not None:
        sound.end(cursor.offset)
    if ain is not None:
        if copied is None:
            raise _SoundDiffers(f"shot {source.shot_id!r} has no sound packets")
        cursor.sound_at = copied.finish()


class _CopiedSound:
    """One clip's sound packets timed in the cut, in ticks of the sound's time base (the
    same for every clip, or the sound would not be copied).

    Packets follow each other without gap or overlap, whole (an AAC packet cannot be
    cut, and MP4 cannot hide part of one between two others), so every player hears the
    same timeline. At the end of each clip, a packet that would play mostly after its
    last frame is left out: each clip's sound then starts within half a packet of its
    first frame (±32 ms at 16 kHz, ±11 ms at 48 kHz), and the error never adds up.
    """

    def __init__(
        self,
        source: ClipSource,
        stream: Any,
        origin: Fraction,
        length: Fraction,
        cursor: _Cursor,
        first: bool,
    ) -> None:
        tb = Fraction(stream.time_base)
        ctx = stream.codec_context
        self.shot_id = source.shot_id
        self.frame = round(Fraction(ctx.frame_size or 1024, ctx.sample_rate) / tb)
        self.origin = round(origin / tb)  # the clip's first frame, in the file
        self.offset = round(cursor.offset / tb)  # the clip's first frame, in the cut
        self.end = round((cursor.offset + length) / tb)  # its last frame's end, in the cut
        self.at = cursor.sound_at  # where the next packet plays in the cut
        self.placed = 0
        self.first = first

    def place(self, packet: Any) -> bool:
        """Time the packet in the cut; False when it is left out."""
        when = (packet.pts if packet.pts is not None else packet.dts) - self.origin
        # The encoder's priming (before the first frame) is the first clip's only: later,
        # it would play over the end of the clip before.
        if when < 0 and not self.first:
            return False
        if self.at is None:
            self.at = self.offset + when
        # More than a packet away from its own time: the sound starts late or has a gap,
        # and copied it would play out of step.
        if abs(self.at - (self.offset + when)) > self.frame:
            raise _SoundDiffers(f"the sound of shot {self.shot_id!r} is not in step with its video")
        if 2 * self.at + self.frame > 2 * self.end:
            return False
        packet.pts = packet.dts = self.at
        packet.duration = self.frame
        self.at += self.frame
        self.placed += 1
        return True

    def finish(self) -> int:
        """Where the next clip's sound goes; raises when this clip's ended too soon."""
        if self.at is None or not self.placed:
            raise _SoundDiffers(f"shot {self.shot_id!r} has no sound packets")
        if 2 * self.at + self.frame < 2 * self.end:
            raise _SoundDiffers(f"the sound of shot {self.shot_id!r} ends before its video")
        return self.at


def _shift(packet: Any, ticks: int) -> None:
    if packet.pts is not None:
        packet.pts += ticks
    if packet.dts is not None:
        packet.dts += ticks
