"""A shot's key: the sha256 of its canonical request, which decides what must re-render."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tchavi_render.spec.shot import LocalMedia, Media, Shot, UrlMedia

__all__ = ["KEY_SCHEME", "canonical_json", "key_request", "media_key_value", "shot_key"]

# Bump when the canonical form changes meaning; every key changes with it.
KEY_SCHEME = 1


def media_key_value(media: Media) -> dict[str, str]:
    """What a media item contributes to the key: the bytes' digest, or the URL as written."""
    if isinstance(media, LocalMedia):
        return {"sha256": media.sha256}
    if isinstance(media, UrlMedia):
        return {"url": media.url}
    raise TypeError(f"unknown media {media!r}")


def key_request(shot: Shot) -> dict[str, Any]:
    """The request as keyed: defaults applied, local media by digest. The id is not in it."""
    return shot.request(media_key_value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is: one text for one meaning."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def shot_key(shot: Shot) -> str:
    text = canonical_json({"scheme": KEY_SCHEME, "request": key_request(shot)})
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
