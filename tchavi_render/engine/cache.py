"""The render cache: key -> rendered output record (diskcache index) + files stored by sha256.

Shared by every checkout of the user (it lives in the user cache directory), so a shot
rendered once anywhere is never paid for again. Files are verified by sha256 before reuse;
a corrupt one is dropped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tchavi_render.atomic import fsync_dir
from tchavi_render.digest import sha256_file

__all__ = ["CacheInfo", "CacheRecord", "RenderCache", "default_cache_dir", "find_render"]


def default_cache_dir() -> Path:
    """`TCHAVI_RENDER_CACHE_DIR`, else the user cache directory."""
    env = os.environ.get("TCHAVI_RENDER_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("tchavi-render", appauthor=False))


@dataclass(frozen=True)
class CacheRecord:
    """One finished render: what it was, which job made it, what it cost."""

    key: str
    sha256: str
    bytes: int
    job_id: str
    model: str
    credits_used: int
    credits_refunded: int
    duration: float | int | None
    resolution: str | None
    created: float  # seconds since the epoch

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CacheRecord:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


@dataclass(frozen=True)
class CacheInfo:
    directory: Path
    records: int
    objects: int
    bytes: int


class RenderCache:
    """A content-addressed store of rendered videos, safe to share between processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: Any = None

    @property
    def index(self) -> Any:
        if self._index is None:
            import diskcache

            self.directory.mkdir(parents=True, exist_ok=True)
            self._index = diskcache.Cache(str(self.directory / "index"))
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def __enter__(self) -> RenderCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- objects -----------------------------------------------------------------------------

    @property
    def objects_dir(self) -> Path:
        return self.directory / "objects"

    @property
    def tmp_dir(self) -> Path:
        """Downloads land here first (same filesystem as the objects, so a rename is atomic)."""
        path = self.directory / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def object_path(self, sha256: str) -> Path:
        return self.objects_dir / sha256[:2] / f"{sha256}.mp4"

    def add_object(self, downloaded: Path, sha256: str) -> Path:
        """Move a verified download into the store under its digest."""
        target = self.object_path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(downloaded, target)
        fsync_dir(target.parent)
        return target

    def _object_ok(self, record: CacheRecord) -> bool:
        try:
            return self.object_path(record.sha256).stat().st_size == record.bytes
        except OSError:
            return False

    # -- records -----------------------------------------------------------------------------

    def get(self, key: str) -> CacheRecord | None:
        """The record for `key` if its file is present with the right size (cheap: no hash)."""
        text = self.index.get(key)
        if text is None:
            return None
        try:
            record = CacheRecord.from_json(text)
        except (ValueError, TypeError):
            self.index.delete(key)
            return None
        return record if self._object_ok(record) else None

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def has_object(self, sha256: str) -> bool:
        """The store keeps a file of these bytes (by name and a non-empty size)."""
        try:
            return self.object_path(sha256).stat().st_size > 0
        except OSError:
            return False

    def put(self, record: CacheRecord, *, share: bool = True) -> None:
        """Make `record` the render of its key. `share`: also give it to the other machines
        (a remote layer does; see LayeredCache.put)."""
        self.index.set(record.key, record.to_json())

    def pull(self, key: str) -> CacheRecord | None:
        """A render of `key` another machine made since planning, fetched into this cache.

        The local cache alone has no other machine to ask; a remote layer
        (`engine.remote.LayeredCache`) overrides this. Apply asks just before submitting.
        """
        return None

    def fetch(self, key: str) -> CacheRecord | None:
        """The record of `key` with its file in this cache (a remote layer downloads it
        first); the file's bytes are verified by whoever copies them out."""
        return self.get(key)

    def verify(self, record: CacheRecord) -> bool:
        try:
            return sha256_file(self.object_path(record.sha256)) == record.sha256
        except OSError:
            return False

    def drop(self, key: str) -> None:
        self.index.delete(key)

    def records(self) -> Iterator[CacheRecord]:
        for key in list(self.index.iterkeys()):
            text = self.index.get(key)
            if text is None:
                continue
            try:
                yield CacheRecord.from_json(text)
            except (ValueError, TypeError):
                continue

    # -- maintenance -------------------------------------------------------------------------

    def _object_files(self) -> Iterator[Path]:
        if self.objects_dir.is_dir():
            yield from self.objects_dir.glob("*/*.mp4")

    def info(self) -> CacheInfo:
        files = list(self._object_files())
        return CacheInfo(
            directory=self.directory,
            records=sum(1 for _ in self.records()),
            objects=len(files),
            bytes=sum(f.stat().st_size for f in files),
        )

    def gc(self, *, older_than_days: float | None = None, verify: bool = False) -> tuple[int, int]:
        """Drop records whose file is gone or corrupt (or older than the limit), then files no
        record names, and leftover temp files. Returns (records dropped, bytes freed)."""
        dropped = 0
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        live: set[str] = set()
        for record in list(self.records()):
            stale = cutoff is not None and record.created < cutoff
            broken = not self._object_ok(record) or (verify and not self.verify(record))
            if stale or broken:
                self.drop(record.key)
                dropped += 1
            else:
                live.add(record.sha256)
        freed = 0
        for path in list(self._object_files()):
            if path.stem not in live:
                freed += path.stat().st_size
                path.unlink(missing_ok=True)
        tmp = self.directory / "tmp"
        if tmp.is_dir():
            for path in tmp.iterdir():
                if path.is_file() and path.stat().st_mtime < time.time() - 3600:
                    freed += path.stat().st_size
                    path.unlink(missing_ok=True)
        return dropped, freed

    def clear(self) -> int:
        """Remove every record and file; returns the bytes freed."""
        freed = sum(p.stat().st_size for p in self._object_files())
        self.index.clear()
        for path in list(self._object_files()):
            path.unlink(missing_ok=True)
        return freed


def find_render(cache: RenderCache, key: str, sha256: str) -> Path | None:
    """The cached file of a render a lock records (by its key, fetched from a remote layer
    when there is one, or by its bytes' digest), or None when no cache has it."""
    record = cache.fetch(key)
    if record is not None and record.sha256 == sha256:
        return cache.object_path(sha256)
    return cache.object_path(sha256) if cache.has_object(sha256) else None
