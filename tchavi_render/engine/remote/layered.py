"""The local cache in front of the bucket: misses fetched and verified, renders uploaded."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.remote.bucket import RemoteCache
from tchavi_render.engine.remote.records import short_key
from tchavi_render.errors import RemoteCacheError

__all__ = ["LayeredCache"]

UPLOAD_THREADS = 4


class LayeredCache(RenderCache):
    """The local cache backed by the remote one: a miss is fetched from the bucket (verified),
    and a new render is uploaded in the background when the mode is read-write."""

    def __init__(self, directory: Path, remote: RemoteCache) -> None:
        super().__init__(directory)
        self.remote = remote
        self._pool: ThreadPoolExecutor | None = None
        self._uploads: list[Future[None]] = []
        self._upload_of: dict[str, Future[None]] = {}  # key -> its latest upload

    def fetch(self, key: str) -> CacheRecord | None:
        record = super().fetch(key)
        if record is None:
            record = self._fetch(key, fresh=False)
        return record

    def pull(self, key: str) -> CacheRecord | None:
        return self._fetch(key, fresh=True)

    def _fetch(self, key: str, *, fresh: bool) -> CacheRecord | None:
        """Bring the bucket's render of `key` into the local cache; None if it has none this
        machine can trust. A failing bucket is a warning here: the render is made instead."""
        try:
            record = self.remote.record(key, fresh=fresh)
            if record is None:
                return None
            if not self._object_ok(record):
                tmp = self.remote.download(record.sha256, record.bytes, self.tmp_dir)
                if tmp is None:
                    return None
                self.add_object(tmp, record.sha256)
        except RemoteCacheError as exc:
            self.remote.warn(str(exc))
            return None
        super().put(record)
        return record

    def put(self, record: CacheRecord, *, share: bool = True) -> None:
        """Cache `record`, and upload it in read-write mode unless `share` is False (a job
        another machine holds the claim of: its holder uploads it)."""
        super().put(record)
        if share and self.remote.config.writable:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="tchavi-upload")
            upload = self._pool.submit(self._upload, record)
            self._uploads.append(upload)
            self._upload_of[record.key] = upload

    def wait_for_upload(self, key: str) -> None:
        """Block until the render of `key` put in this run is in the bucket (or failed to get
        there, with a warning): a claim is released only after its record is written."""
        upload = self._upload_of.get(key)
        if upload is not None:
            upload.result()

    def _upload(self, record: CacheRecord) -> None:
        try:
            self.remote.push(record, self.object_path(record.sha256))
        except RemoteCacheError as exc:
            self.remote.warn(
                f"the render of {short_key(record.key)} stays local only: {exc}. "
                "`tchavi-render cache push` uploads it later"
            )

    def wait_for_uploads(self) -> None:
        uploads, self._uploads = self._uploads, []
        for upload in uploads:
            upload.result()

    def close(self) -> None:
        try:
            self.wait_for_uploads()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            super().close()
