"""Media: kinds decoded (never guessed from names), local paths held inside the project, and
the stat-keyed memo that spares re-hashing unchanged files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tchavi_render.digest import sha256_file
from tchavi_render.media import MediaIndex
from tchavi_render.spec import LocalMedia, UrlMedia

from .conftest import SpecDir


def _shot(field: str, value: str) -> str:
    prompt = "[Image1]" if field == "reference_images" else "go"
    extra = (
        "\n    image_url: https://cdn.example.com/first.png" if field == "reference_audios" else ""
    )
    listed = f"[{value}]" if field.startswith("reference") else value
    return (
        "version: 1\n"
        "defaults: {model: seedance-2}\n"
        "shots:\n"
        "  - id: one\n"
        f"    prompt: '{prompt}'{extra}\n"
        f"    {field}: {listed}\n"
    )


def test_local_media_are_resolved_and_hashed(spec_dir: SpecDir, media: dict[str, bytes]) -> None:
    loaded = spec_dir.load(
        _shot("image_url", "art/first.png"), {"art": {"first.png": media["png"]}}
    )
    first = loaded.shots[0].image_url
    assert isinstance(first, LocalMedia)
    assert first.relpath == "art/first.png"
    assert first.path == spec_dir.root.resolve() / "art" / "first.png"
    assert first.sha256 == sha256_file(first.path)
    assert (first.kind, first.width, first.height, first.size) == (
        "image",
        32,
        18,
        len(media["png"]),
    )


def test_urls_pass_through(spec_dir: SpecDir) -> None:
    loaded = spec_dir.load(_shot("image_url", "https://cdn.example.com/a.png?x=1"))
    assert loaded.shots[0].image_url == UrlMedia("https://cdn.example.com/a.png?x=1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("file:///etc/passwd", "'file:///etc/passwd': file: URLs are not allowed"),
        ("ftp://host/a.png", "'ftp://host/a.png': ftp: URLs are not allowed"),
        ("data:image/png;base64,AAAA", "data: URLs are not allowed"),
        ("http:///nohost.png", "'http:///nohost.png' is not a valid URL (no host)"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("../outside.png", "is outside the project directory ('..')"),
        ("inside/../../outside.png", "is outside the project directory ('..')"),
        ("link.png", "leads outside the project directory through a symlink"),
        ("missing.png", "no such file in the project directory"),
        ("folder", "is not a regular file"),
        ("notes.png", "is not an image, video or audio file that can be decoded"),
    ],
)
def test_media_values_that_are_refused(
    spec_dir: SpecDir, media: dict[str, bytes], value: str, expected: str
) -> None:
    (spec_dir.root.parent / "outside.png").write_bytes(media["png"])
    os.symlink(spec_dir.root.parent / "outside.png", spec_dir.root / "link.png")
    files = {"folder": {"x.png": media["png"]}, "notes.png": media["text"], "inside": {}}
    problem = spec_dir.one_error(_shot("image_url", value), files)
    assert problem.line == 6
    assert problem.message.startswith("image_url: ")
    assert expected in problem.message, problem.message


def test_a_missing_name_suggests_an_asset(spec_dir: SpecDir, media: dict[str, bytes]) -> None:
    text = _shot("image_url", "statu").replace("shots:", "assets: {statue: s.png}\nshots:")
    problem = spec_dir.one_error(text, {"s.png": media["png"]})
    assert problem.message == (
        "image_url: 'statu': no such file in the project directory. "
        "No asset is named 'statu' either. Did you mean 'statue'?"
    )


@pytest.mark.parametrize(
    ("field", "file", "expected"),
    [
        (
            "image_url",
            "wav",
            "'clip.bin' is an audio file (clip.bin), but image_url takes an image",
        ),
        (
            "last_frame_image_url",
            "mp4",
            "'clip.bin' is a video (clip.bin), but last_frame_image_url takes an image",
        ),
        ("reference_images", "mp4", "but reference_images takes an image"),
        ("reference_videos", "png", "'clip.bin' is an image (clip.bin), but reference_videos"),
        ("reference_audios", "mp4", "is a video (clip.bin), but reference_audios takes an audio"),
    ],
)
def test_the_kind_is_decoded_and_must_fit_the_field(
    spec_dir: SpecDir, media: dict[str, bytes], field: str, file: str, expected: str
) -> None:
    text = _shot(field, "clip.bin")
    if field == "last_frame_image_url":
        text = text.replace(
            "    last_frame", "    image_url: https://cdn.example.com/a.png\n    last_frame"
        )
    problem = spec_dir.one_error(text, {"clip.bin": media[file]})
    assert problem.line == text.count("\n")
    assert expected in problem.message, problem.message


def test_kinds_come_from_the_bytes_not_the_name(spec_dir: SpecDir, media: dict[str, bytes]) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: one
            image_url: looks-like-video.mp4
            reference_videos: [looks-like-image.png]
            reference_audios: [looks-like-text.txt]
            prompt: "[Video1] [Audio1]"
    """
    loaded = spec_dir.load(
        text,
        {
            "looks-like-video.mp4": media["png"],
            "looks-like-image.png": media["mp4"],
            "looks-like-text.txt": media["wav"],
        },
    )
    shot = loaded.shots[0]
    kinds = [(name, m.kind) for name, m in shot.media() if isinstance(m, LocalMedia)]
    assert kinds == [
        ("image_url", "image"),
        ("reference_videos", "video"),
        ("reference_audios", "audio"),
    ]
    video = shot.reference_videos[0]
    assert isinstance(video, LocalMedia)
    assert video.duration == pytest.approx(2.0, abs=0.2)
    assert (video.width, video.height) == (64, 36)


def test_local_reference_videos_total_at_most_15_seconds(
    spec_dir: SpecDir, media: dict[str, bytes]
) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        shots:
          - id: fits
            reference_videos: [a.mp4, b.mp4]
            prompt: "[Video1] [Video2]"
          - id: too-long
            reference_videos: [a.mp4, b.mp4, c.mp4]
            prompt: "[Video1] [Video2] [Video3]"
    """
    problem = spec_dir.one_error(
        text, {"a.mp4": media["mp4_6s"], "b.mp4": media["mp4_6s"], "c.mp4": media["mp4_6s"]}
    )
    assert problem.line == 8
    assert problem.message == (
        "reference_videos: the local videos last 18.0 s in total; at most 15 s are allowed. "
        "Trim or drop a clip"
    )


def test_an_asset_file_problem_is_reported_at_the_asset(spec_dir: SpecDir) -> None:
    text = """\
        version: 1
        defaults: {model: seedance-2}
        assets:
          logo: brand/logo.png
        shots:
          - id: one
            image_url: logo
            prompt: hi
    """
    problem = spec_dir.one_error(text)
    assert (problem.line, problem.column) == (4, 9)
    assert (
        problem.message == "asset 'logo': 'brand/logo.png': no such file in the project directory."
    )


def _rewrite_same_stat(path: Path, data: bytes) -> None:
    """Change a file's bytes but keep its size, mtime and inode: what the memo keys on."""
    before = path.stat()
    with path.open("r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_unchanged_file_is_not_hashed_again(tmp_path: Path, media: dict[str, bytes]) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(media["png"])
    index = MediaIndex()
    first = index.info(path)
    _rewrite_same_stat(path, b"\0" * len(media["png"]))
    assert index.info(path) == first  # still the memo: the bytes were not read again


def test_a_changed_file_is_probed_again(tmp_path: Path, media: dict[str, bytes]) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(media["png"])
    index = MediaIndex()
    assert index.info(path).kind == "image"
    path.write_bytes(media["wav"])
    again = index.info(path)
    assert (again.kind, again.sha256) == ("audio", sha256_file(path))


def test_the_store_carries_the_memo_across_runs(tmp_path: Path, media: dict[str, bytes]) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(media["png"])
    store = tmp_path / "cache" / "media-index.json"
    first = MediaIndex(store)
    info = first.info(path)
    first.save()
    assert json.loads(store.read_text())["version"] == 1
    assert sorted(p.name for p in store.parent.iterdir()) == ["media-index.json"]
    _rewrite_same_stat(path, b"\0" * len(media["png"]))
    assert MediaIndex(store).info(path) == info


def test_a_corrupt_store_starts_afresh(tmp_path: Path, media: dict[str, bytes]) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(media["png"])
    store = tmp_path / "media-index.json"
    for garbage in (b"{not json", b'{"version": 1, "entries": {"x": [1, 2]}}', b"[]"):
        store.write_bytes(garbage)
        index = MediaIndex(store)
        assert index.info(path).kind == "image"
        index.save()
        assert str(path) in json.loads(store.read_text())["entries"]


def test_load_spec_saves_the_store_it_was_given(
    spec_dir: SpecDir, media: dict[str, bytes], tmp_path: Path
) -> None:
    store = tmp_path / "store" / "media.json"
    spec_dir.load(_shot("image_url", "a.png"), {"a.png": media["png"]}, media=MediaIndex(store))
    entries = json.loads(store.read_text())["entries"]
    assert list(entries) == [str(spec_dir.root.resolve() / "a.png")]
