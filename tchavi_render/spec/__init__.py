"""The storyboard spec: YAML with positions, the schema, sandboxed templates, and the loader.

`load_spec` turns a spec file into frozen `Shot`s, or raises one `SpecError` that lists
every problem with its file, line and column.
"""

from tchavi_render.spec.resolve import load_spec
from tchavi_render.spec.shot import (
    LoadedSpec,
    LocalMedia,
    Location,
    Media,
    MediaKind,
    Shot,
    UrlMedia,
)

__all__ = [
    "LoadedSpec",
    "LocalMedia",
    "Location",
    "Media",
    "MediaKind",
    "Shot",
    "UrlMedia",
    "load_spec",
]
