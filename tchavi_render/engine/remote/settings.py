"""Where the remote cache is and what this machine may do: the spec, then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tchavi_render.errors import RemoteCacheError
from tchavi_render.spec.model import CACHE_MODES, CacheSpec, parse_s3_url

__all__ = [
    "ENV_ENDPOINT",
    "ENV_MODE",
    "ENV_REMOTE",
    "ENV_SECRET",
    "INSTALL_HINT",
    "OFF_HINT",
    "RemoteConfig",
    "remote_config",
]

ENV_REMOTE = "TCHAVI_RENDER_REMOTE_CACHE"
ENV_MODE = "TCHAVI_RENDER_REMOTE_CACHE_MODE"
ENV_ENDPOINT = "TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL"
ENV_SECRET = "TCHAVI_RENDER_CACHE_SECRET"
INSTALL_HINT = "pip install 'tchavi-render[s3]'"
OFF_HINT = f"or set {ENV_REMOTE}=off to work without the remote cache"


@dataclass(frozen=True)
class RemoteConfig:
    """Where the remote cache is and what this machine may do with it."""

    bucket: str
    prefix: str  # "" or "a/b", no slash at either end
    mode: str = "read-write"
    endpoint_url: str | None = None
    media_url_ttl: int = 3600
    claim_ttl: float = 60.0  # seconds a claim lives without renewal
    claims: str = "auto"  # or "required": refuse a store that ignores conditional writes
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

    def claim_key(self, key: str) -> str:
        return self._path("claims", key.removeprefix("sha256:"))

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
        claim_ttl=float(setting.claim_ttl),
        claims=setting.claims,
        secret=secret.encode("utf-8") if secret else None,
    )
