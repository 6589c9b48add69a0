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

The modules, in the order they build on each other: `settings` (where the cache is, from the
spec and the environment), `records` (the signed record document), `bucket` (RemoteCache:
every S3 call), `layered` (the local cache in front of the bucket), `hosting` (the one rule
for local media on the tchavi backend), `transfer` (`cache push` and `cache pull`).
"""

from tchavi_render.engine.remote.bucket import RemoteCache, open_remote
from tchavi_render.engine.remote.hosting import check_media_hosting, tchavi_media_url
from tchavi_render.engine.remote.layered import LayeredCache
from tchavi_render.engine.remote.records import RECORD_FORMAT, parse_record, record_document
from tchavi_render.engine.remote.settings import ENV_REMOTE, RemoteConfig, remote_config
from tchavi_render.engine.remote.transfer import Transfer, pull_locked, push_locked

__all__ = [
    "ENV_REMOTE",
    "RECORD_FORMAT",
    "LayeredCache",
    "RemoteCache",
    "RemoteConfig",
    "Transfer",
    "check_media_hosting",
    "open_remote",
    "parse_record",
    "pull_locked",
    "push_locked",
    "record_document",
    "remote_config",
    "tchavi_media_url",
]
