"""The media memo: outputs are checked by digest alone; a later probe still decodes them."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from tchavi_render.media import MediaIndex


def png(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_a_digest_only_entry_is_probed_when_facts_are_asked(tmp_path: Path) -> None:
    data = png(tmp_path / "frame.png")
    store = tmp_path / "memo.json"
    index = MediaIndex(store)
    assert index.sha256(tmp_path / "frame.png") == hashlib.sha256(data).hexdigest()
    index.save()
    again = MediaIndex(store)  # the digest-only entry survives a round trip
    assert again.sha256(tmp_path / "frame.png") == hashlib.sha256(data).hexdigest()
    info = again.info(tmp_path / "frame.png")
    assert (info.kind, info.width, info.height) == ("image", 8, 6)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_an_edited_file_gets_a_new_digest(tmp_path: Path) -> None:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"one")
    index = MediaIndex()
    first = index.sha256(path)
    path.write_bytes(b"two, longer")
    assert index.sha256(path) == hashlib.sha256(b"two, longer").hexdigest() != first
