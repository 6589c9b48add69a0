"""One bucket prefix over boto3: read and verify, write object then record, host media.

Every S3 failure becomes a RemoteCacheError that says what to do.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tchavi_render.digest import sha256_file
from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.remote.records import parse_record, record_document, short_key
from tchavi_render.engine.remote.settings import (
    ENV_MODE,
    ENV_REMOTE,
    INSTALL_HINT,
    OFF_HINT,
    RemoteConfig,
    remote_config,
)
from tchavi_render.errors import RemoteCacheError
from tchavi_render.spec.model import CacheSpec
from tchavi_render.spec.shot import LocalMedia

__all__ = ["RemoteCache", "open_remote"]

MAX_RECORD_BYTES = 64 * 1024

_MISSING = object()
_CONFLICT = object()
# S3's answers to a conditional write that lost: 412 (the condition failed) and 409 (another
# conditional write of that name was in progress).
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def open_remote(
    setting: CacheSpec | None,
    *,
    warn: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RemoteCache | None:
    """The configured remote cache, or None. Fails now, not after a paid render, when boto3
    is missing."""
    config = remote_config(setting, environ)
    if config is None:
        return None
    _boto3()
    return RemoteCache(config, warn=warn)


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise RemoteCacheError(
            f"the remote cache needs boto3, which is not installed: {INSTALL_HINT}"
        ) from None
    return boto3


def _make_client(config: RemoteConfig) -> Any:
    boto3 = _boto3()
    from botocore.config import Config

    # Custom endpoints (MinIO, R2, a loopback server) want path-style addresses.
    style = {"s3": {"addressing_style": "path"}} if config.endpoint_url else {}
    options = Config(
        signature_version="s3v4",
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        **style,
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=config.endpoint_url, config=options)


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _b64_sha256(sha256: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


class RemoteCache:
    """One bucket prefix: read records and objects, write them (mode read-write), host media.

    Every S3 failure becomes one RemoteCacheError that says what to do. Warnings (a record
    refused, an object that does not match) go to `warn`, once each.
    """

    def __init__(
        self,
        config: RemoteConfig,
        *,
        warn: Callable[[str], None] | None = None,
        client: Any = None,
    ) -> None:
        self.config = config
        self._warn = warn or _stderr_warning
        self._warned: set[str] = set()
        self._client = client
        self._client_lock = threading.Lock()
        self._records: dict[str, CacheRecord | None] = {}
        self._hosted: set[str] = set()
        self._corrupt: set[str] = set()  # digests whose object in the bucket has other bytes

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = _make_client(self.config)
            return self._client

    def warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(f"remote cache {self.config.url}: {message}")

    def _call(
        self,
        what: str,
        operation: str,
        *,
        missing_ok: bool = False,
        conflict_ok: bool = False,
        **params: Any,
    ) -> Any:
        """Run one S3 operation; a 404 is `_MISSING` when `missing_ok`, a lost conditional
        write `_CONFLICT` when `conflict_ok`, any other failure a RemoteCacheError naming
        `what` and the fix."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "error"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                raise RemoteCacheError(
                    f"{what}: the bucket {self.config.bucket!r} does not exist. Create it, "
                    f"or fix cache.remote in the spec ({ENV_REMOTE}), {OFF_HINT}"
                ) from None
            if conflict_ok and (status in (409, 412) or code in _CONFLICT_CODES):
                return _CONFLICT
            if missing_ok and (status == 404 or code in ("404", "NoSuchKey", "NotFound")):
                return _MISSING
            if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "Forbidden"):
                raise RemoteCacheError(
                    f"{what}: access denied ({code}). Check the AWS credentials boto3 finds "
                    "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role) "
                    f"and their permissions on {self.config.url}, {OFF_HINT}"
                ) from None
            message = str(error.get("Message", "")).strip()
            raise RemoteCacheError(
                f"{what}: S3 answered {code}" + (f" ({message})" if message else "")
            ) from None
        except NoCredentialsError:
            raise RemoteCacheError(
                f"{what}: no AWS credentials. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"(or AWS_PROFILE, or run with a role), {OFF_HINT}"
            ) from None
        except BotoCoreError as exc:
            where = self.config.endpoint_url or "S3"
            raise RemoteCacheError(f"{what}: cannot reach {where} ({exc}), {OFF_HINT}") from None

    def _exists(self, what: str, name: str) -> bool:
        found = self._call(
            what, "head_object", missing_ok=True, Bucket=self.config.bucket, Key=name
        )
        return found is not _MISSING

    # -- reading --------------------------------------------------------------------------

    def record(self, key: str, *, fresh: bool = False) -> CacheRecord | None:
        """The record of `key` if the bucket has one this machine can trust (one GET; the
        answer is remembered unless `fresh`)."""
        if not fresh and key in self._records:
            return self._records[key]
        name = self.config.record_key(key)
        what = f"reading the record of {short_key(key)}"
        response = self._call(
            what, "get_object", missing_ok=True, Bucket=self.config.bucket, Key=name
        )
        record: CacheRecord | None = None
        if response is not _MISSING:
            body = response["Body"]
            try:
                data = body.read(MAX_RECORD_BYTES + 1)
            except Exception as exc:  # botocore wraps socket errors in many classes
                raise RemoteCacheError(
                    f"{what}: the download failed ({type(exc).__name__})"
                ) from None
            finally:
                body.close()
            record, problem = parse_record(data[:MAX_RECORD_BYTES], key, self.config.secret)
            if record is None:
                self.warn(f"the record {name} is ignored: {problem}")
        self._records[key] = record
        return record

    def download(self, sha256: str, size: int, tmp_dir: Path) -> Path | None:
        """Fetch `objects/<sha256>.mp4` into `tmp_dir`, verified; None (with a warning) when
        it is missing or its bytes are not those."""
        name = self.config.object_key(sha256)
        what = f"downloading {name}"
        response = self._call(
            what, "get_object", missing_ok=True, Bucket=self.config.bucket, Key=name
        )
        if response is _MISSING:
            self.warn(f"{name} is missing from the bucket; the render is made again")
            return None
        tmp = tmp_dir / f"remote-{uuid.uuid4().hex}.mp4"
        digest = hashlib.sha256()
        got = 0
        body = response["Body"]
        try:
            with tmp.open("wb") as handle:
                for chunk in body.iter_chunks(1 << 20):
                    digest.update(chunk)
                    got += len(chunk)
                    if got > size:
                        break
                    handle.write(chunk)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise RemoteCacheError(f"{what}: cannot write {tmp} ({exc.strerror})") from None
        except Exception as exc:  # a connection cut mid-body, in botocore's or urllib3's words
            tmp.unlink(missing_ok=True)
            raise RemoteCacheError(f"{what}: the download failed ({type(exc).__name__})") from None
        finally:
            body.close()
        if got != size or digest.hexdigest() != sha256:
            tmp.unlink(missing_ok=True)
            self._corrupt.add(sha256)
            self.warn(f"{name} does not match its sha256; it is ignored and never used")
            return None
        return tmp

    # -- writing --------------------------------------------------------------------------

    def require_writable(self, doing: str) -> None:
        if not self.config.writable:
            raise RemoteCacheError(
                f"{doing} writes to the remote cache {self.config.url}, and its mode is read. "
                f"Use mode read-write (cache.mode in the spec, or {ENV_MODE}=read-write) "
                "where writing is trusted"
            )

    def _put_file(
        self, name: str, path: Path, sha256: str, content_type: str, *, replace: bool = False
    ) -> bool:
        """Upload `path` as `name` unless the bucket has it (HEAD first; `replace` skips the
        look). The bytes are checked against `sha256` here, and S3 checks them on arrival."""
        if not replace and self._exists(f"looking for {name}", name):
            return False
        try:
            actual = sha256_file(path)
            if actual != sha256:
                raise RemoteCacheError(
                    f"{path} changed since it was hashed; it was not uploaded. Run again"
                )
            with path.open("rb") as handle:
                self._call(
                    f"uploading {name}",
                    "put_object",
                    Bucket=self.config.bucket,
                    Key=name,
                    Body=handle,
                    ContentType=content_type,
                    ChecksumSHA256=_b64_sha256(sha256),
                )
        except OSError as exc:
            raise RemoteCacheError(f"cannot read {path} to upload it ({exc.strerror})") from None
        return True

    def put_object(self, sha256: str, path: Path) -> bool:
        """Upload a rendered video by its digest; False when the bucket already had it. An
        object found corrupt in this run is replaced."""
        self.require_writable("uploading a render")
        name = self.config.object_key(sha256)
        replace = sha256 in self._corrupt
        wrote = self._put_file(name, path, sha256, "video/mp4", replace=replace)
        self._corrupt.discard(sha256)
        return wrote

    def put_record(self, record: CacheRecord) -> None:
        """Write (or overwrite: the last writer wins) the record of `record.key`."""
        self.require_writable("uploading a render")
        self._call(
            f"uploading the record of {short_key(record.key)}",
            "put_object",
            Bucket=self.config.bucket,
            Key=self.config.record_key(record.key),
            Body=record_document(record, self.config.secret),
            ContentType="application/json",
        )
        self._records[record.key] = record

    def push(self, record: CacheRecord, path: Path) -> None:
        """Share a new render: its object, then its record, so a record never names a
        missing object. A render the bucket already has under its key (a machine that
        followed another's job fetched the same video) writes nothing more."""
        if not self.put_object(record.sha256, path):
            shared = self.record(record.key, fresh=True)
            if shared is not None and shared.sha256 == record.sha256:
                return
        self.put_record(record)

    # -- small documents written under conditions (claims) ---------------------------------

    def read_small(self, what: str, name: str) -> tuple[bytes, str] | None:
        """The bytes (at most MAX_RECORD_BYTES) and ETag of `name`; None when it is missing."""
        response = self._call(
            what, "get_object", missing_ok=True, Bucket=self.config.bucket, Key=name
        )
        if response is _MISSING:
            return None
        body = response["Body"]
        try:
            data: bytes = body.read(MAX_RECORD_BYTES)
        except Exception as exc:  # botocore wraps socket errors in many classes
            raise RemoteCacheError(f"{what}: the download failed ({type(exc).__name__})") from None
        finally:
            body.close()
        return data, str(response["ETag"])

    def put_if(self, what: str, name: str, body: bytes, *, etag: str | None) -> str | None:
        """Write `name` only if it does not exist (`etag` None) or still has `etag`; its new
        ETag, or None when the condition failed (another writer came first)."""
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        response = self._call(
            what,
            "put_object",
            conflict_ok=True,
            missing_ok=etag is not None,
            Bucket=self.config.bucket,
            Key=name,
            Body=body,
            ContentType="application/json",
            **condition,
        )
        if response is _CONFLICT or response is _MISSING:
            return None
        return str(response["ETag"])

    def delete_if(self, what: str, name: str, etag: str) -> bool:
        """Delete `name` if it still has `etag`; False when it changed or is gone."""
        response = self._call(
            what,
            "delete_object",
            conflict_ok=True,
            missing_ok=True,
            Bucket=self.config.bucket,
            Key=name,
            IfMatch=etag,
        )
        return response is not _CONFLICT and response is not _MISSING

    # -- hosted media ---------------------------------------------------------------------

    def media_url(self, media: LocalMedia) -> str:
        """A presigned GET URL of `media` in the bucket, uploaded first unless present."""
        name = self.config.media_key(media.sha256, media.path.suffix)
        if name not in self._hosted:
            if not self._exists(f"looking for {name}", name):
                if not self.config.writable:
                    raise RemoteCacheError(
                        f"{media.relpath} is not hosted in {self.config.url} yet, and the "
                        "remote cache is read-only here (mode read). Apply once where it may "
                        "write (mode read-write) to upload it"
                    )
                content_type = mimetypes.guess_type(media.path.name)[0]
                self._put_file(
                    name, media.path, media.sha256, content_type or "application/octet-stream"
                )
            self._hosted.add(name)
        url = self._call(
            f"presigning {name}",
            "generate_presigned_url",
            ClientMethod="get_object",
            Params={"Bucket": self.config.bucket, "Key": name},
            ExpiresIn=self.config.media_url_ttl,
        )
        return str(url)
