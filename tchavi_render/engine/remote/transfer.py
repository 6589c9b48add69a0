"""`cache push` and `cache pull`: every render the lock names, to the bucket or into place."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tchavi_render.atomic import atomic_copy
from tchavi_render.digest import sha256_file
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.lock import LockEntry, Lockfile
from tchavi_render.engine.remote.bucket import RemoteCache
from tchavi_render.engine.remote.records import SHA256_HEX

__all__ = ["Transfer", "pull_locked", "push_locked", "record_from_lock"]

_KEY = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass
class Transfer:
    """What `cache push` or `cache pull` did, by shot id."""

    done: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (shot id, why)


def _rendered(lock: Lockfile) -> Iterator[tuple[str, LockEntry]]:
    for shot_id in sorted(lock.shots):
        entry = lock.shots[shot_id]
        if (
            entry.output is not None
            and _KEY.match(entry.key)
            and SHA256_HEX.match(entry.output.sha256)
        ):
            yield shot_id, entry


def record_from_lock(entry: LockEntry) -> CacheRecord:
    """The cache record of a locked render (the lock names everything a record holds)."""
    assert entry.output is not None
    return CacheRecord(
        key=entry.key,
        sha256=entry.output.sha256,
        bytes=entry.output.bytes,
        job_id=entry.job_id or "",
        model=entry.model,
        credits_used=entry.credits_used,
        credits_refunded=entry.credits_refunded,
        duration=entry.output.duration,
        resolution=entry.output.resolution,
        created=time.time(),
    )


def _intact(path: Path, sha256: str, size: int) -> bool:
    try:
        return path.stat().st_size == size and sha256_file(path) == sha256
    except OSError:
        return False


def push_locked(
    lock: Lockfile, project_dir: Path, cache: RenderCache, remote: RemoteCache
) -> Transfer:
    """Upload every render the lock names: its object by sha256, and a record for its key
    unless the bucket has a trusted one (another valid render of the key is kept)."""
    remote.require_writable("cache push")
    result = Transfer()
    for shot_id, entry in _rendered(lock):
        assert entry.output is not None
        candidates = (cache.object_path(entry.output.sha256), project_dir / entry.output.path)
        source = next(
            (p for p in candidates if _intact(p, entry.output.sha256, entry.output.bytes)), None
        )
        if source is None:
            result.missing.append(
                (shot_id, f"no local copy of its render ({entry.output.sha256[:12]})")
            )
            continue
        wrote = remote.put_object(entry.output.sha256, source)
        if remote.record(entry.key, fresh=True) is None:
            local = cache.get(entry.key)
            same = local is not None and local.sha256 == entry.output.sha256
            remote.put_record(local if local is not None and same else record_from_lock(entry))
            wrote = True
        (result.done if wrote else result.present).append(shot_id)
    return result


def pull_locked(
    lock: Lockfile, project_dir: Path, cache: RenderCache, remote: RemoteCache
) -> Transfer:
    """Place every render the lock names at its output path, fetching what this machine
    lacks from the bucket by sha256 (the lock is the trust: every byte is checked)."""
    result = Transfer()
    root = project_dir.resolve()
    for shot_id, entry in _rendered(lock):
        assert entry.output is not None
        sha256 = entry.output.sha256
        target = project_dir / entry.output.path
        if not target.resolve().is_relative_to(root):
            result.missing.append(
                (shot_id, f"its output {entry.output.path} is outside the project")
            )
            continue
        if _intact(target, sha256, entry.output.bytes):
            result.present.append(shot_id)
            continue
        if not _intact(cache.object_path(sha256), sha256, entry.output.bytes):
            tmp = remote.download(sha256, entry.output.bytes, cache.tmp_dir)
            if tmp is None:
                result.missing.append((shot_id, f"not in the remote cache ({sha256[:12]})"))
                continue
            cache.add_object(tmp, sha256)
        if cache.get(entry.key) is None:
            cache.put(record_from_lock(entry))
        try:
            atomic_copy(cache.object_path(sha256), target, expect_sha256=sha256)
        except (OSError, ValueError) as exc:
            result.missing.append((shot_id, f"cannot place {entry.output.path}: {exc}"))
            continue
        result.done.append(shot_id)
    return result
