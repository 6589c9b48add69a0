"""The remote cache on S3: signed render records by key, videos and hosted media by sha256.

Layout under `s3://BUCKET/PREFIX`:

    objects/<sha256>.mp4     a rendered video, named by the sha256 of its bytes
    records/<key>.json       which video a key rendered to (a CacheRecord), HMAC-signed
    media/<sha256><ext>      local media hosted for the tchavi backend (presigned GET URLs)

Writes go object first, record second, so a record never names a missing object; two
machines that render one key both write valid records and the last one wins. Nothing read
from the bucket is used before it is checked: a record's signature (when
TCHAVI_RENDER_CACHE_SECRET is set) and every downloaded object's sha256. boto3 is imported
only when a remote cache is configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tchavi_render.atomic import atomic_copy
from tchavi_render.engine.cache import CacheRecord, RenderCache
from tchavi_render.engine.keys import canonical_json
from tchavi_render.engine.lock import LockEntry, Lockfile
from tchavi_render.errors import RemoteCacheError, TchaviRenderError
from tchavi_render.spec.model import CACHE_MODES, CacheSpec, parse_s3_url
from tchavi_render.spec.shot import LoadedSpec, LocalMedia

__all__ = [
    "ENV_ENDPOINT",
    "ENV_MODE",
    "ENV_REMOTE",
    "ENV_SECRET",
    "RECORD_FORMAT",
    "LayeredCache",
    "RemoteCache",
    "RemoteConfig",
    "Transfer",
    "check_media_hosting",
    "local_media_problem",
    "open_remote",
    "parse_record",
    "pull_locked",
    "push_locked",
    "record_document",
    "record_from_lock",
    "remote_config",
]

ENV_REMOTE = "TCHAVI_RENDER_REMOTE_CACHE"
ENV_MODE = "TCHAVI_RENDER_REMOTE_CACHE_MODE"
ENV_ENDPOINT = "TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL"
ENV_SECRET = "TCHAVI_RENDER_CACHE_SECRET"
RECORD_FORMAT = "tchavi-render-record/1"
INSTALL_HINT = "pip install 'tchavi-render[s3]'"
OFF_HINT = f"or set {ENV_REMOTE}=off to work without the remote cache"
MAX_RECORD_BYTES = 64 * 1024
UPLOAD_THREADS = 4

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^sha256:[0-9a-f]{64}$")
_MISSING = object()


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteConfig:
    """Where the remote cache is and what this machine may do with it."""

    bucket: str
    prefix: str  # "" or "a/b", no slash at either end
    mode: str = "read-write"
    endpoint_url: str | None = None
    media_url_ttl: int = 3600
    secret: bytes | None = field(default=None, repr=False)  # signs and checks records

    @property
    def writable(self) -> bool:
        return self.mode == "read-write"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _path(self, folder: str, name: str) -> str:
        return f"{self.prefix}/{folder}/{name}" if self.prefix else f"{folder}/{name}"

    def object_key(self, sha256: str) -> str:
        return self._path("objects", f"{sha256}.mp4")

    def record_key(self, key: str) -> str:
        return self._path("records", f"{key.removeprefix('sha256:')}.json")

    def media_key(self, sha256: str, suffix: str) -> str:
        return self._path("media", f"{sha256}{suffix.lower()}")


def remote_config(
    setting: CacheSpec | None, environ: Mapping[str, str] | None = None
) -> RemoteConfig | None:
    """The spec's `cache:` section with the environment's overrides; None: no remote cache.

    TCHAVI_RENDER_REMOTE_CACHE (an s3:// URL, or `off`), TCHAVI_RENDER_REMOTE_CACHE_MODE and
    TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL win over the spec; the signing secret comes only
    from TCHAVI_RENDER_CACHE_SECRET (a secret has no place in a committed file).
    """
    env = os.environ if environ is None else environ
    setting = setting or CacheSpec()
    url = env.get(ENV_REMOTE, "").strip() or setting.remote
    if url is None or url.lower() == "off":
        return None
    try:
        bucket, prefix = parse_s3_url(url)
    except ValueError as exc:
        raise RemoteCacheError(f"{ENV_REMOTE}: {exc}") from None
    mode = env.get(ENV_MODE, "").strip() or setting.mode
    if mode not in CACHE_MODES:
        raise RemoteCacheError(f"{ENV_MODE}={mode!r}: must be one of {', '.join(CACHE_MODES)}")
    endpoint = env.get(ENV_ENDPOINT, "").strip() or setting.endpoint_url
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise RemoteCacheError(f"{ENV_ENDPOINT}: must be an http(s) URL, got {endpoint!r}")
    secret = env.get(ENV_SECRET, "")
    return RemoteConfig(
        bucket=bucket,
        prefix=prefix,
        mode=mode,
        endpoint_url=endpoint,
        media_url_ttl=setting.media_url_ttl,
        secret=secret.encode("utf-8") if secret else None,
    )


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


# -- records -----------------------------------------------------------------------------------


def _payload(record: CacheRecord) -> bytes:
    return canonical_json({"format": RECORD_FORMAT, "record": asdict(record)}).encode("utf-8")


def _signature(record: CacheRecord, secret: bytes) -> str:
    return "hmac-sha256:" + hmac.new(secret, _payload(record), hashlib.sha256).hexdigest()


def record_document(record: CacheRecord, secret: bytes | None) -> bytes:
    """A record as stored in the bucket: signed when a secret is given."""
    doc = {
        "format": RECORD_FORMAT,
        "record": asdict(record),
        "signature": None if secret is None else _signature(record, secret),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_record(data: bytes, key: str, secret: bytes | None) -> tuple[CacheRecord | None, str]:
    """The record in `data` if it can be trusted for `key`, else (None, why not)."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT:
            return None, "not a tchavi-render record"
        raw = doc.get("record")
        if not isinstance(raw, dict):
            return None, "not a tchavi-render record"
        record = CacheRecord(**raw)
    except (ValueError, TypeError):
        return None, "not a readable tchavi-render record"
    if record.key != key:
        return None, f"it names another key ({_short(str(record.key))})"
    if not (isinstance(record.sha256, str) and _SHA256.match(record.sha256)):
        return None, "its sha256 is not a sha256"
    if not _well_typed(record):
        return None, "its fields do not have the types of a record"
    if secret is not None:
        signature = doc.get("signature")
        if not signature:
            return None, f"it is not signed, and {ENV_SECRET} is set"
        if not (
            isinstance(signature, str)
            and hmac.compare_digest(signature, _signature(record, secret))
        ):
            return None, "its signature does not match (written without this secret, or altered)"
    return record, ""


def _well_typed(record: CacheRecord) -> bool:
    def count(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return (
        all(isinstance(v, str) for v in (record.key, record.job_id, record.model))
        and all(count(v) for v in (record.bytes, record.credits_used, record.credits_refunded))
        and (record.duration is None or number(record.duration))
        and (record.resolution is None or isinstance(record.resolution, str))
        and number(record.created)
    )


def _short(key: str) -> str:
    return key[:19] if key.startswith("sha256:") else key[:12]


def _b64_sha256(sha256: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


def _file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# -- the bucket --------------------------------------------------------------------------------


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

    def _call(self, what: str, operation: str, *, missing_ok: bool = False, **params: Any) -> Any:
        """Run one S3 operation; a 404 is `_MISSING` when `missing_ok`, any other failure a
        RemoteCacheError naming `what` and the fix."""
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
        what = f"reading the record of {_short(key)}"
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
            actual, _ = _file_sha256(path)
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
            f"uploading the record of {_short(record.key)}",
            "put_object",
            Bucket=self.config.bucket,
            Key=self.config.record_key(record.key),
            Body=record_document(record, self.config.secret),
            ContentType="application/json",
        )
        self._records[record.key] = record

    def push(self, record: CacheRecord, path: Path) -> None:
        """Share a new render: its object, then its record, so a record never names a
        missing object."""
        self.put_object(record.sha256, path)
        self.put_record(record)

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


# -- the local cache in front of the bucket ----------------------------------------------------


class LayeredCache(RenderCache):
    """The local cache backed by the remote one: a miss is fetched from the bucket (verified),
    and a new render is uploaded in the background when the mode is read-write."""

    def __init__(self, directory: Path, remote: RemoteCache) -> None:
        super().__init__(directory)
        self.remote = remote
        self._pool: ThreadPoolExecutor | None = None
        self._uploads: list[Future[None]] = []

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
            if not self._have_object(record):
                tmp = self.remote.download(record.sha256, record.bytes, self.tmp_dir)
                if tmp is None:
                    return None
                self.add_object(tmp, record.sha256)
        except RemoteCacheError as exc:
            self.remote.warn(str(exc))
            return None
        super().put(record)
        return record

    def _have_object(self, record: CacheRecord) -> bool:
        try:
            return self.object_path(record.sha256).stat().st_size == record.bytes
        except OSError:
            return False

    def put(self, record: CacheRecord) -> None:
        super().put(record)
        if self.remote.config.writable:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="tchavi-upload")
            self._uploads.append(self._pool.submit(self._upload, record))

    def _upload(self, record: CacheRecord) -> None:
        try:
            self.remote.push(record, self.object_path(record.sha256))
        except RemoteCacheError as exc:
            self.remote.warn(
                f"the render of {_short(record.key)} stays local only: {exc}. "
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


# -- hosting local media for the real service --------------------------------------------------


def local_media_problem(spec: LoadedSpec) -> str | None:
    """Why the tchavi backend cannot take this spec's local files or shot frames without a
    bucket to host them, or None."""
    local = sorted({m.relpath for s in spec.shots for m in s.local_media()})
    frames = sorted({s.id for s in spec.shots if s.upstream})
    if not local and not frames:
        return None
    if local:
        listed = ", ".join(local[:5]) + (" ..." if len(local) > 5 else "")
        what = f"the spec uses local files ({listed})"
    else:
        listed = ", ".join(frames[:5]) + (" ..." if len(frames) > 5 else "")
        what = f"shots continue frames of other shots ({listed})"
    return (
        f"{spec.path.name}: the tchavi backend takes media only as http(s) URLs, and {what}. "
        f"Host them in a bucket: add `cache: {{remote: s3://BUCKET/PREFIX}}` to the spec or "
        f"set {ENV_REMOTE}=s3://BUCKET/PREFIX (needs {INSTALL_HINT}); or give them as URLs "
        "(assets), or render with --backend local"
    )


def check_media_hosting(spec: LoadedSpec, backend: str, remote: RemoteCache | None) -> None:
    """Refuse, before anything is planned, local media the chosen backend cannot be sent."""
    if backend != "tchavi" or remote is not None:
        return
    problem = local_media_problem(spec)
    if problem:
        raise TchaviRenderError(problem)


# -- cache push / cache pull -------------------------------------------------------------------


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
            and _SHA256.match(entry.output.sha256)
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
        return path.stat().st_size == size and _file_sha256(path)[0] == sha256
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
