"""The render cache verifies before it trusts; the journal survives a torn last line."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.journal import RECENT, Journal


def store(cache: RenderCache, key: str, data: bytes) -> CacheRecord:
    sha = hashlib.sha256(data).hexdigest()
    tmp = cache.tmp_dir / "download.mp4"
    tmp.write_bytes(data)
    cache.add_object(tmp, sha)
    record = CacheRecord(
        key, sha, len(data), "job_1", "seedance-2", 1300, 0, 5, "480p", time.time()
    )
    cache.put(record)
    return record


def test_a_cached_render_is_fetched_with_its_bytes(tmp_path: Path) -> None:
    with RenderCache(tmp_path / "cache") as cache:
        store(cache, "sha256:k", b"video bytes")
        record = cache.fetch("sha256:k")
        assert record is not None and record.job_id == "job_1"
        assert cache.object_path(record.sha256).read_bytes() == b"video bytes"
        assert cache.verify(record)


def test_a_corrupt_cached_file_fails_verification(tmp_path: Path) -> None:
    with RenderCache(tmp_path / "cache") as cache:
        record = store(cache, "sha256:k", b"video bytes")
        cache.object_path(record.sha256).write_bytes(b"video byteZ")  # same size, other bytes
        assert not cache.verify(record)


def test_a_record_whose_file_vanished_is_not_cached(tmp_path: Path) -> None:
    with RenderCache(tmp_path / "cache") as cache:
        record = store(cache, "sha256:k", b"abc")
        cache.object_path(record.sha256).unlink()
        assert not cache.has("sha256:k")


def test_gc_removes_orphans_and_clear_removes_everything(tmp_path: Path) -> None:
    with RenderCache(tmp_path / "cache") as cache:
        kept = store(cache, "sha256:a", b"kept")
        orphan = store(cache, "sha256:b", b"orphan")
        cache.drop("sha256:b")
        dropped, freed = cache.gc()
        assert (dropped, freed) == (0, len(b"orphan"))
        assert not cache.object_path(orphan.sha256).exists()
        assert cache.object_path(kept.sha256).exists()
        assert cache.info().records == 1
        assert cache.clear() == len(b"kept")
        assert cache.info().records == 0 and cache.info().objects == 0


def test_the_journal_keeps_what_is_in_flight_across_processes(tmp_path: Path) -> None:
    path = tmp_path / ".tchavi" / "tchavi.journal"
    journal = Journal(path)
    journal.intent("sha256:a", "opening", "local:x", "acct_x", "seedance-2", 1300)
    journal.submitted("sha256:a", "job_a")
    journal.intent("sha256:b", "statue", "local:x", "acct_x", "seedance-2", 1300)
    journal.intent("sha256:c", "gone", "local:x", "acct_x", "seedance-2", 1300)
    journal.submitted("sha256:c", "job_c")
    journal.finished("sha256:c", "job_c")
    with path.open("a") as handle:
        handle.write('{"op": "submitted", "key": "sha256:b", "job_')  # torn by a crash
    again = Journal(path)
    assert {k: v.job_id for k, v in again.in_flight.items()} == {
        "sha256:a": "job_a",
        "sha256:b": None,
    }
    again.finished("sha256:a", "job_a")
    again.abandoned("sha256:b")
    again.compact()
    # Nothing is in flight; the finished ids stay known for a while (see RECENT).
    kept = Journal(path)
    assert kept.in_flight == {} and kept.known_job_ids == {"job_a", "job_c"}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**e, "at": e["at"] - RECENT}) + "\n" for e in lines))
    Journal(path).compact()
    assert not path.exists()
