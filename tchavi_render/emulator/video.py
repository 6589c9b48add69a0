"""Video synthesis for the emulator: a real H.264/AAC MP4 drawn from the prompt, seed and images.

Speed matters (benchmarks render hundreds of shots), so everything expensive happens once
per video: the background, the text panel and the sprites are drawn with Pillow straight
into limited-range YCbCr planes padded to the encoder's line size; each frame is then a
plane copy plus a few pastes. The output is byte-identical for the same inputs: every
"random" choice comes from sha256 of the prompt and seed, x264 runs single-threaded, and
the MP4 muxer is told to write no creation time. The prompt is drawn in a bundled font
(`fonts/`: a subset of DejaVu Sans with Latin, Greek, Cyrillic and common punctuation), so
"café — crème" shows as written, never as boxes, on every machine.
"""

from __future__ import annotations

import array
import colorsys
import hashlib
import io
import math
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps

from tchavi_render.api.models import FRAME_SIZES
from tchavi_render.atomic import atomic_path

__all__ = [
    "FPS",
    "RenderCancelled",
    "RenderSpec",
    "auto_duration",
    "closest_aspect_ratio",
    "frame_size_for",
    "random_seed",
    "render_video",
    "text_panel",
]

FPS = 24
AUDIO_RATE = 16_000  # a tone needs no more; AAC at 16 kHz encodes in a third of 48 kHz's time
AUDIO_FRAME = 1024  # samples per AAC frame
AUTO_DURATIONS = range(4, 11)  # what "auto" (-1) picks from: 4..10 s
# Constant QP skips rate-control analysis: a quarter faster than CRF for these frames.
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "qp": "28"}
CROSSFADE_SECONDS = 1.0
PANEL_STEPS_PER_SECOND = 3
FONT = "fonts/DejaVuSans-Subset.ttf"  # how it was made: fonts/README.md


class RenderCancelled(Exception):
    """The emulator is shutting down; the job stays unfinished and resumes on restart."""


@dataclass(frozen=True)
class RenderSpec:
    """Everything a render depends on; equal specs give byte-identical files."""

    prompt: str
    seed: int
    duration: int  # seconds, already resolved (never -1)
    width: int
    height: int
    audio: bool
    first_frame: Path | None = None
    last_frame: Path | None = None


class _Dice:
    """Deterministic choices from sha256 (stable across Python versions, unlike `random`)."""

    def __init__(self, *material: object) -> None:
        self._root = hashlib.sha256("\x00".join(map(str, material)).encode()).digest()
        self._counter = 0

    def unit(self) -> float:
        """A float in [0, 1)."""
        self._counter += 1
        block = hashlib.sha256(self._root + self._counter.to_bytes(8, "big")).digest()
        return int.from_bytes(block[:7], "big") / float(1 << 56)

    def pick(self, low: int, high: int) -> int:
        """An int in [low, high]."""
        return low + int(self.unit() * (high - low + 1))


def auto_duration(prompt: str, seed: int) -> int:
    """The duration "auto" (-1) resolves to for this prompt and seed."""
    return AUTO_DURATIONS[_Dice("auto-duration", prompt, seed).pick(0, len(AUTO_DURATIONS) - 1)]


def random_seed() -> int:
    """A seed for a request that gave none, so every such job differs."""
    return secrets.randbelow(2**31)


def closest_aspect_ratio(width: int, height: int) -> str:
    """The one of the five concrete aspect ratios nearest to width:height."""
    ratios = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4}
    actual = math.log(width / height)
    return min(ratios, key=lambda name: abs(math.log(ratios[name]) - actual))


def frame_size_for(resolution: str, aspect_ratio: str, first_frame: Path | None) -> tuple[int, int]:
    """Frame size; `adaptive` follows the first-frame image's shape, else 16:9."""
    if aspect_ratio == "adaptive":
        if first_frame is None:
            aspect_ratio = "16:9"
        else:
            with Image.open(first_frame) as img:
                aspect_ratio = closest_aspect_ratio(*ImageOps.exif_transpose(img).size)
    return FRAME_SIZES[resolution][aspect_ratio]


# --- drawing ---------------------------------------------------------------------------------

# RGB -> limited-range ("TV") BT.601 YCbCr, what H.264 players assume when nothing is said.
# One matrix conversion in Pillow: one rounding, and faster than convert("YCbCr") + a LUT.
_TO_YCBCR = (
    65.481 / 255, 128.553 / 255, 24.966 / 255, 16.0,
    -37.797 / 255, -74.203 / 255, 112.0 / 255, 128.0,
    112.0 / 255, -93.786 / 255, -18.214 / 255, 128.0,
)  # fmt: skip


@dataclass
class _Planes:
    """Y, Cb, Cr of one picture, padded to the encoder's line sizes."""

    y: Image.Image
    cb: Image.Image
    cr: Image.Image

    @classmethod
    def from_rgb(cls, rgb: Image.Image, line_sizes: tuple[int, int, int]) -> _Planes:
        y, cb, cr = rgb.convert("RGB", _TO_YCBCR).split()
        cb, cr = cb.reduce(2), cr.reduce(2)
        return cls(_pad(y, line_sizes[0]), _pad(cb, line_sizes[1]), _pad(cr, line_sizes[2]))

    def copy(self) -> _Planes:
        return _Planes(self.y.copy(), self.cb.copy(), self.cr.copy())

    def blend(self, other: _Planes, alpha: float) -> _Planes:
        return _Planes(
            Image.blend(self.y, other.y, alpha),
            Image.blend(self.cb, other.cb, alpha),
            Image.blend(self.cr, other.cr, alpha),
        )

    def to_frame(self, width: int, height: int, index: int) -> av.VideoFrame:
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.planes[0].update(self.y.tobytes())
        frame.planes[1].update(self.cb.tobytes())
        frame.planes[2].update(self.cr.tobytes())
        frame.pts = index
        frame.time_base = Fraction(1, FPS)
        return frame


def _pad(plane: Image.Image, line_size: int) -> Image.Image:
    if plane.width == line_size:
        return plane
    padded = Image.new("L", (line_size, plane.height), 0)
    padded.paste(plane, (0, 0))
    return padded


def _ycc(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    y, cb, cr = Image.new("RGB", (1, 1), rgb).convert("RGB", _TO_YCBCR).getpixel((0, 0))  # type: ignore[misc]
    return y, cb, cr


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's default font has ASCII only. The basic layout, not Raqm: whether Pillow finds
    # libraqm and FriBiDi varies by machine, and a prompt must give the same pixels anywhere.
    data = resources.files("tchavi_render.emulator").joinpath(FONT).read_bytes()
    return ImageFont.truetype(io.BytesIO(data), size, layout_engine=ImageFont.Layout.BASIC)


def text_panel(prompt: str, width: int, height: int) -> Image.Image:
    """The prompt as a width x height video shows it: light text on a dark panel, wrapped to
    at most 3 lines; a luma ("L") image of even width and height."""
    font = _font(max(14, height // 16))
    lines = _wrap(prompt, font, int(width * 0.8))
    ascent, descent = font.getmetrics()
    line_h = ascent + descent + 4
    pad = max(6, height // 48)
    widest = max(int(font.getlength(line)) for line in lines)
    # Even sizes (and positions, in _Scene) keep the half-size chroma planes aligned with luma.
    panel_w = (widest + 2 * pad + 1) // 2 * 2
    panel_h = (line_h * len(lines) + 2 * pad + 1) // 2 * 2
    panel = Image.new("L", (panel_w, panel_h), 28)
    draw = ImageDraw.Draw(panel)
    for row, line in enumerate(lines):
        draw.text((pad, pad + row * line_h), line, font=font, fill=235)
    return panel


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels, at most 3 lines (the last one cut with '...')."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > 3:
        last = lines[2]
        while last and font.getlength(last + "...") > width:
            last = last[:-1]
        lines = [*lines[:2], last + "..."]
    return [_fit(line, font, width) for line in lines]


def _fit(line: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    if font.getlength(line) <= width:
        return line
    while line and font.getlength(line + "...") > width:
        line = line[:-1]
    return line + "..."


def _background(spec: RenderSpec, dice: _Dice) -> Image.Image:
    """The still scene behind the motion: the first-frame image, or a gradient with shapes."""
    if spec.first_frame is not None:
        with Image.open(spec.first_frame) as img:
            return _cover(img, spec.width, spec.height)
    hue = dice.unit()
    top = _hsv(hue, 0.55 + 0.3 * dice.unit(), 0.35 + 0.3 * dice.unit())
    bottom = _hsv(hue + 0.25 + 0.25 * dice.unit(), 0.6 + 0.3 * dice.unit(), 0.7 + 0.3 * dice.unit())
    ramp = Image.linear_gradient("L").rotate(90 * dice.pick(0, 3)).resize((spec.width, spec.height))
    canvas = Image.composite(
        Image.new("RGB", ramp.size, top), Image.new("RGB", ramp.size, bottom), ramp
    )
    draw = ImageDraw.Draw(canvas)
    short = min(spec.width, spec.height)
    for _ in range(6):
        radius = int(short * (0.05 + 0.15 * dice.unit()))
        cx, cy = int(spec.width * dice.unit()), int(spec.height * dice.unit())
        colour = _hsv(hue + dice.unit() * 0.6, 0.4 + 0.4 * dice.unit(), 0.5 + 0.5 * dice.unit())
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    return canvas


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop an image so it fills width x height."""
    upright = ImageOps.exif_transpose(img).convert("RGB")
    return ImageOps.fit(upright, (width, height), Image.Resampling.BILINEAR)


class _Scene:
    """The sprites of one video and where they are at each frame."""

    def __init__(self, spec: RenderSpec, dice: _Dice) -> None:
        w, h = spec.width, spec.height
        self.width, self.height = w, h
        self.panel = text_panel(spec.prompt, w, h)
        self.panel_w, self.panel_h = self.panel.size
        self.panel_x = (w - self.panel_w) // 4 * 2
        self.panel_y = (h - self.panel_h - h // 8) // 2 * 2
        self.drift = max(2, h // 40)

        self.ball_d = max(8, min(w, h) // 8) // 2 * 2
        ball = Image.new("L", (self.ball_d, self.ball_d), 0)
        ImageDraw.Draw(ball).ellipse((0, 0, self.ball_d - 1, self.ball_d - 1), fill=255)
        self.ball, self.ball_half = ball, ball.reduce(2)
        self.ball_ycc = _ycc(_hsv(dice.unit(), 0.8, 1.0))
        self.ball_phase = dice.unit() * math.tau
        self.ball_speed = 0.6 + 0.6 * dice.unit()
        self.bar_h = max(2, h // 90) // 2 * 2
        self.bar_ycc = _ycc(_hsv(dice.unit(), 0.5, 0.95))

    def draw(self, planes: _Planes, t: float, duration: float) -> None:
        """Paste the moving sprites for time t onto planes (in place)."""
        # The panel moves in steps a few times a second: each move costs the encoder a
        # frame of changed blocks, a still panel costs almost nothing.
        step = int(t * PANEL_STEPS_PER_SECOND) / PANEL_STEPS_PER_SECOND
        py = self.panel_y + int(self.drift * math.sin(step * 2.1)) // 2 * 2
        planes.y.paste(self.panel, (self.panel_x, py))
        half_box = (
            self.panel_x // 2,
            py // 2,
            (self.panel_x + self.panel_w) // 2,
            (py + self.panel_h) // 2,
        )
        planes.cb.paste(128, half_box)
        planes.cr.paste(128, half_box)

        angle = self.ball_phase + t * self.ball_speed * math.tau / 2
        span_x, span_y = self.width - self.ball_d, self.height - self.ball_d
        bx = int(span_x * (0.5 + 0.5 * math.sin(angle))) // 2 * 2
        by = int(span_y * (0.5 + 0.5 * math.sin(angle * 1.7 + 1.0))) // 2 * 2
        ball_y, ball_cb, ball_cr = self.ball_ycc
        planes.y.paste(ball_y, (bx, by), self.ball)
        planes.cb.paste(ball_cb, (bx // 2, by // 2), self.ball_half)
        planes.cr.paste(ball_cr, (bx // 2, by // 2), self.ball_half)

        # A progress bar along the bottom edge: time is visible.
        bar_w = int(self.width * min(1.0, t / duration)) // 2 * 2
        if bar_w:
            top = self.height - self.bar_h
            bar_y, bar_cb, bar_cr = self.bar_ycc
            planes.y.paste(bar_y, (0, top, bar_w, self.height))
            planes.cb.paste(bar_cb, (0, top // 2, bar_w // 2, self.height // 2))
            planes.cr.paste(bar_cr, (0, top // 2, bar_w // 2, self.height // 2))


# --- sound -----------------------------------------------------------------------------------

# Chords as (unit choices in Hz, ratios). Every partial is a multiple of 10 Hz, so 0.1 s of
# samples is an exact period and the whole track is that block repeated.
_CHORDS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((40, 50, 60, 70, 80), (4, 5, 6)),  # major triad
    ((20, 30), (10, 12, 15)),  # minor triad
    ((40, 50, 60), (4, 6, 8)),  # open fifth with octave
)
_PERIOD = AUDIO_RATE // 10


def _tone_block(prompt: str, seed: int) -> bytes:
    """One 0.1 s period of the chord for this prompt and seed, as float32 samples."""
    dice = _Dice("audio", prompt, seed)
    units, ratios = _CHORDS[dice.pick(0, len(_CHORDS) - 1)]
    unit = units[dice.pick(0, len(units) - 1)]
    freqs = [unit * r for r in ratios]
    gain = 0.4 / len(freqs)
    steps = [math.tau * f / AUDIO_RATE for f in freqs]
    samples = array.array("f", (gain * sum(math.sin(k * s) for s in steps) for k in range(_PERIOD)))
    return samples.tobytes()


def _sound(prompt: str, seed: int, duration: int) -> bytes:
    block = _tone_block(prompt, seed)
    total = AUDIO_RATE * duration
    reps = -(-total // _PERIOD)
    return (block * reps)[: total * struct.calcsize("f")]


# --- encoding --------------------------------------------------------------------------------


def render_video(spec: RenderSpec, out: Path, cancelled: Callable[[], bool] = lambda: False) -> int:
    """Render spec to `out` (written to a temp file, then renamed); returns the file size.

    Raises RenderCancelled (leaving nothing behind) when `cancelled()` turns true.
    """
    with atomic_path(out) as tmp:
        _encode(spec, tmp, cancelled)
    return out.stat().st_size


def _encode(spec: RenderSpec, path: Path, cancelled: Callable[[], bool]) -> None:
    dice = _Dice("video", spec.prompt, spec.seed)
    w, h = spec.width, spec.height
    n_frames = spec.duration * FPS
    probe = av.VideoFrame(w, h, "yuv420p")
    line_sizes = (probe.planes[0].line_size, probe.planes[1].line_size, probe.planes[2].line_size)

    background = _Planes.from_rgb(_background(spec, dice), line_sizes)
    scene = _Scene(spec, dice)
    last: _Planes | None = None
    fade = 0
    if spec.last_frame is not None:
        with Image.open(spec.last_frame) as img:
            last = _Planes.from_rgb(_cover(img, w, h), line_sizes)
        fade = max(1, min(int(CROSSFADE_SECONDS * FPS), n_frames // 2))
    sound = _sound(spec.prompt, spec.seed, spec.duration) if spec.audio else b""

    # bitexact: no creation time and no library version strings in the container.
    with av.open(
        str(path), "w", format="mp4", container_options={"fflags": "+bitexact"}
    ) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = dict(X264_OPTIONS)
        video.codec_context.thread_count = 1
        audio = None
        if spec.audio:
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            audio.options = {"aac_coder": "fast"}
            audio.bit_rate = 24_000
        sample_at = 0
        total_samples = len(sound) // 4
        for index in range(n_frames):
            if cancelled():
                raise RenderCancelled
            t = index / FPS
            if index == 0 and spec.first_frame is not None:
                planes = background  # the first frame IS the image
            else:
                planes = background.copy()
                scene.draw(planes, t, spec.duration)
            if last is not None and index >= n_frames - fade:
                alpha = (index - (n_frames - fade) + 1) / fade
                planes = last if alpha >= 1.0 else planes.blend(last, alpha)
            for packet in video.encode(planes.to_frame(w, h, index)):
                container.mux(packet)
            # Interleave: encode the sound up to the end of this frame.
            if audio is not None:
                last_frame = index == n_frames - 1
                target = total_samples if last_frame else (index + 1) * AUDIO_RATE // FPS
                while sample_at < target and (
                    target - sample_at >= AUDIO_FRAME or target == total_samples
                ):
                    count = min(AUDIO_FRAME, target - sample_at)
                    chunk = av.AudioFrame(format="fltp", layout="mono", samples=count)
                    chunk.planes[0].update(sound[sample_at * 4 : (sample_at + count) * 4])
                    chunk.sample_rate = AUDIO_RATE
                    chunk.pts = sample_at
                    chunk.time_base = Fraction(1, AUDIO_RATE)
                    for packet in audio.encode(chunk):
                        container.mux(packet)
                    sample_at += count
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            for packet in audio.encode(None):
                container.mux(packet)
