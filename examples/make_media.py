"""Make the small, deterministic media files the example storyboards reference.

Run from anywhere: `python examples/make_media.py`. Every byte depends only on this script
(and the Pillow / PyAV versions), so re-running it leaves the committed files unchanged.
The test suite imports the same functions to build its fixtures.
"""

from __future__ import annotations

import io
import math
import sys
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def png(width: int, height: int, colour: tuple[int, int, int], shape: str = "disc") -> bytes:
    """A flat background with one light shape on it: enough to tell the images apart."""
    image = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(image)
    box = (width // 4, height // 4, 3 * width // 4, 3 * height // 4)
    light = tuple(min(255, c + 110) for c in colour)
    if shape == "disc":
        draw.ellipse(box, fill=light)
    elif shape == "square":
        draw.rectangle(box, fill=light)
    else:
        draw.polygon([(width // 2, height // 5), box[2:], (box[0], box[3])], fill=light)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def wav(seconds: float, frequency: float, rate: int = 8000) -> bytes:
    """A mono tone with a soft pulse, 8-bit PCM in a WAV container."""
    samples = int(seconds * rate)
    data = bytes(
        int(
            128
            + 90
            * math.sin(2 * math.pi * frequency * i / rate)
            * (0.6 + 0.4 * math.sin(2 * math.pi * 2 * i / rate))
        )
        for i in range(samples)
    )
    out = io.BytesIO()
    with av.open(out, mode="w", format="wav") as container:
        stream = container.add_stream("pcm_u8", rate=rate, layout="mono")
        frame = av.AudioFrame(format="u8", layout="mono", samples=samples)
        frame.planes[0].update(data)
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def mp4(seconds: float, colour: tuple[int, int, int], fps: int = 6) -> bytes:
    """A tiny MPEG-4 clip: a light square sliding across a flat background."""
    width, height = 64, 36
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        frames = max(1, round(seconds * fps))
        for i in range(frames):
            image = Image.new("RGB", (width, height), colour)
            x = (width - 12) * i // max(1, frames - 1)
            ImageDraw.Draw(image).rectangle((x, 12, x + 12, 24), fill=(240, 240, 240))
            frame = av.VideoFrame.from_image(image)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


# example folder -> file -> bytes
def files() -> dict[str, dict[str, bytes]]:
    return {
        "quickstart": {
            "assets/lighthouse.png": png(96, 54, (30, 60, 110), "triangle"),
        },
        "product-teaser": {
            "assets/bottle-front.png": png(96, 96, (20, 90, 70), "square"),
            "assets/bottle-open.png": png(96, 96, (20, 90, 70), "disc"),
            "assets/logo.png": png(64, 64, (120, 30, 40), "triangle"),
        },
        "localised": {
            "assets/market.png": png(96, 54, (150, 90, 30), "disc"),
        },
        "music-video": {
            "assets/dancer.png": png(54, 96, (80, 30, 110), "triangle"),
            "assets/drums.png": png(96, 54, (40, 40, 40), "square"),
            "assets/beat.wav": wav(2.0, 220.0),
            "assets/moves.mp4": mp4(3.0, (60, 20, 90)),
        },
    }


def main(root: Path = HERE) -> int:
    for folder, contents in files().items():
        for name, data in contents.items():
            target = root / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
                print(f"wrote {target.relative_to(root)} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
