"""The storyboard spec: `load_spec` turns a spec file into frozen shots, or one SpecError."""

from tchavi_render.spec.resolve import load_spec
from tchavi_render.spec.shot import (
    LoadedSpec,
    LocalMedia,
    Location,
    Media,
    MediaKind,
    Shot,
    ShotFrame,
    UrlMedia,
)

__all__ = [
    "LoadedSpec",
    "LocalMedia",
    "Location",
    "Media",
    "MediaKind",
    "Shot",
    "ShotFrame",
    "UrlMedia",
    "load_spec",
]
