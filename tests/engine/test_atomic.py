"""Writes land whole or not at all, with the mode a plain write would give; one file hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tchavi_render.atomic import atomic_open, atomic_path, staged
from tchavi_render.digest import sha256_file


def test_a_write_by_path_replaces_the_file_when_the_block_completes(tmp_path: Path) -> None:
    target = tmp_path / "cut.mp4"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


def test_a_write_that_raises_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "cut.mp4"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


def test_a_staged_file_never_committed_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "shot.mp4"
    with staged(target, suffix=".part") as pending:
        assert pending.path.name.endswith(".part")
        pending.path.write_bytes(b"short")
    assert list(tmp_path.iterdir()) == []


def test_a_new_file_gets_the_umask_s_mode_and_a_rewrite_keeps_its_own(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        fresh = tmp_path / "fresh.json"
        with atomic_open(fresh) as handle:
            handle.write(b"{}")
        assert fresh.stat().st_mode & 0o777 == 0o640  # not mkstemp's private 0600
        kept = tmp_path / "kept.json"
        kept.write_bytes(b"[]")
        kept.chmod(0o604)
        with staged(kept) as pending:
            pending.path.write_bytes(b"[1]")
            pending.commit()
        assert (kept.read_bytes(), kept.stat().st_mode & 0o777) == (b"[1]", 0o604)
    finally:
        os.umask(mask)


def test_a_file_s_sha256_is_that_of_its_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read's worth
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
