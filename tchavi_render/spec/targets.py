"""What a name in a spec points at: an asset, an http(s) URL, or a probed file in the project."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tchavi_render.media import MediaIndex
from tchavi_render.spec.read import os_reason
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.shot import LocalMedia, Media, UrlMedia
from tchavi_render.spec.yamlpos import PathKey, YamlDoc
from tchavi_render.text import did_you_mean

__all__ = ["Asset", "MediaTargets"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


@dataclass
class Asset:
    name: str
    written: str  # after templating
    media: Media | None  # None when it could not be resolved (already reported)
    used: bool = False


class MediaTargets:
    """Resolves media names for one load: the spec's assets, URLs, and local files, each
    local file probed once (through `media`, which remembers files across runs)."""

    def __init__(self, project_dir: Path, media: MediaIndex, doc: YamlDoc, report: Reporter):
        self.project_dir = project_dir
        self.media_index = media
        self.doc = doc
        self.report = report
        self.assets: dict[str, Asset] = {}
        self._local_cache: dict[str, LocalMedia | str] = {}
        # every local file found, as named (before symlinks are followed): assets too
        self.named: dict[Path, None] = {}

    def lookup(self, name: str) -> Media | None:
        """What `name` (an asset name, URL or local path) stands for; None if nothing."""
        if name in self.assets:
            return self._asset_media(name)
        if _SCHEME.match(name):
            return UrlMedia(name)
        found = self._local(name)
        return None if isinstance(found, str) else found

    def resolve(
        self, value: str, path: PathKey, prefix: str, suffix: str, *, use: bool = False
    ) -> Media | None:
        """An asset name (when `use`), an http(s) URL, or a local file inside the project."""
        where = self.doc.locate(path)
        if use and value in self.assets:
            return self._asset_media(value)
        scheme = _SCHEME.match(value)
        if scheme and len(scheme.group(1)) > 1:
            parts = urlsplit(value)
            if parts.scheme.lower() in ("http", "https") and parts.netloc:
                return UrlMedia(value)
            if parts.scheme.lower() in ("http", "https"):
                self.report.error(where, f"{prefix}{value!r} is not a valid URL (no host){suffix}")
            else:
                self.report.error(
                    where,
                    f"{prefix}{value!r}: {parts.scheme}: URLs are not allowed; use an "
                    f"http(s) URL, an asset name or a path relative to the spec{suffix}",
                )
            return None
        found = self._local(value)
        if isinstance(found, str):
            hint = ""
            if use and "/" not in value and "." not in value:
                close = did_you_mean(value, list(self.assets))
                hint = f" No asset is named {value!r} either.{close}"
            self.report.error(where, f"{prefix}{value!r}: {found}.{hint}{suffix}")
            return None
        return found

    def output_dir(self, written: str, path: PathKey) -> Path | None:
        """The directory `written` (the rendered output_dir) names, if inside the project."""
        where = self.doc.locate(path)
        if not written:
            self.report.error(where, "output_dir: must not be empty")
            return None
        if PurePosixPath(written).is_absolute():
            self.report.error(
                where,
                f"output_dir: {written!r} is absolute; use a directory relative to the spec",
            )
            return None
        try:
            target = (self.project_dir / written).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            self.report.error(where, f"output_dir: {written!r}: {os_reason(exc)}")
            return None
        if not target.is_relative_to(self.project_dir):
            self.report.error(
                where,
                f"output_dir: {written!r} is outside the project directory; "
                "keep renders next to the spec",
            )
            return None
        return target

    def warn_unused_assets(self) -> None:
        for asset in self.assets.values():
            if not asset.used:
                self.report.warn(
                    self.doc.locate(("assets", asset.name), key=True),
                    f"asset {asset.name!r} is never used; remove it or reference it in a shot",
                )

    def _asset_media(self, name: str) -> Media | None:
        asset = self.assets.get(name)
        if asset is None:
            return None
        asset.used = True
        return asset.media

    def _local(self, value: str) -> LocalMedia | str:
        """The local file `value` names, or why it cannot be used."""
        cached = self._local_cache.get(value)
        if cached is None:
            cached = self._probe_local(value)
            self._local_cache[value] = cached
            if isinstance(cached, LocalMedia):
                self.named.setdefault(self.project_dir / value)
        return cached

    def _probe_local(self, value: str) -> LocalMedia | str:
        if not value:
            return "is empty"
        pure = PurePosixPath(value)
        if pure.is_absolute() or value.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", value):
            return "absolute paths are not allowed; use a path relative to the spec's directory"
        try:
            target = (self.project_dir / value).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            return f"cannot be resolved: {os_reason(exc)}"
        if not target.is_relative_to(self.project_dir):
            if ".." in pure.parts:
                return "is outside the project directory ('..'); keep media inside it"
            return (
                "leads outside the project directory through a symlink; "
                "copy the file into the project instead"
            )
        try:
            if not target.exists():
                return "no such file in the project directory"
            if not target.is_file():
                return "is not a regular file"
            info = self.media_index.info(target)
        except (OSError, ValueError) as exc:
            return f"cannot be read: {os_reason(exc)}"
        if info.kind is None:
            return "is not an image, video or audio file that can be decoded"
        return LocalMedia(
            path=target,
            relpath=target.relative_to(self.project_dir).as_posix(),
            sha256=info.sha256,
            size=info.size,
            kind=info.kind,
            duration=info.duration,
            width=info.width,
            height=info.height,
        )
