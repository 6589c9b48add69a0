"""A shot's key: the sha256 of its canonical request, which decides what must re-render."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, assert_never

from tchavi_render.spec.shot import LocalMedia, Media, Shot, ShotFrame, UrlMedia

__all__ = [
    "KEY_SCHEME",
    "UpstreamUnknown",
    "canonical_json",
    "key_request",
    "media_key_value",
    "media_value",
    "shot_key",
]

# Bump when the canonical form changes meaning; every key changes with it.
KEY_SCHEME = 1


class UpstreamUnknown(LookupError):
    """The shot continues a shot whose output is not known yet (it renders in this run)."""


def media_key_value(
    upstream: Mapping[str, str] | None = None,
) -> Callable[[Media], dict[str, str]]:
    """What a media item contributes to the key: the bytes' digest, the URL as written, or
    for a frame of another shot, that shot's output digest and which frame."""

    def frame(media: ShotFrame) -> dict[str, str]:
        output = (upstream or {}).get(media.shot)
        if output is None:
            raise UpstreamUnknown(media.shot)
        return {"frame": media.selector, "shot_output": output}

    return lambda media: media_value(media, frame)


def media_value(media: Media, frame: Callable[[ShotFrame], dict[str, str]]) -> dict[str, str]:
    """A media item as a request's value: local bytes by digest, a URL as written, and a
    frame of another shot as `frame` says (keys, seeds and diffs each say it their way)."""
    match media:
        case LocalMedia():
            return {"sha256": media.sha256}
        case UrlMedia():
            return {"url": media.url}
        case ShotFrame():
            return frame(media)
        case _:
            assert_never(media)


def key_request(shot: Shot, upstream: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The request as keyed: defaults applied, local media by digest, frames of other shots
    by their output's digest. The id is not in it (upstream ids are not either)."""
    return shot.request(media_key_value(upstream))


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is: one text for one meaning."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def shot_key(
    shot: Shot, upstream: Mapping[str, str] | None = None, *, emulated: bool = False
) -> str:
    """`upstream` maps the ids of the shots this one continues to their output sha256;
    UpstreamUnknown is raised when one is missing. `emulated` keys a render of the local
    backend apart: an emulator's video must never pass for the real service's."""
    payload: dict[str, Any] = {"scheme": KEY_SCHEME, "request": key_request(shot, upstream)}
    if emulated:
        payload["renderer"] = "emulator"
    text = canonical_json(payload)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
