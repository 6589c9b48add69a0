"""The export memo: what the last export found ready, trusted while no file it read has changed.

`export` must refuse shots that are missing or out of date, and finding that out means
loading the spec and planning: most of its time. Like make and DVC, the memo skips that
work by stat. After an export whose every clip was up to date, it records the arguments
that decide the plan besides files (`--var` values, resolved `--var-file` paths, and the
paths as typed, which warnings show), the stat fingerprint of every file the verdict read
(the spec, var files and templates, every local media file the spec names, the lock, the
output of every clip and of every shot they continue) and the clips and spec warnings the
export used. The next export of the same
spec with the same arguments re-stats those files; when every fingerprint is equal it
writes the cut from the memo, importing neither the spec loader nor the planner.

A memo is a cache: anything wrong with it (missing, unreadable, another format, another
spec or arguments, a file changed, gone or unreadable) only sends export the slow way,
which writes it anew. It is written only when every file it covers was last changed
SETTLED_NS before the export began: a file changed again within the same timestamp tick
(or during the export) could otherwise keep its fingerprint. Paths of clips are trusted
only when the fingerprint covers them as renders and they are inside the spec's directory.

The cache directory is not part of it: a memo is only written when every shot the clips
rest on is up to date, and such a verdict reads the lock and the files, never the cache
(the cache's media index only remembers digests of files, by stat). Paths are stat'ed as
the spec names them as well as where they resolve, so re-pointing a symlink shows.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tchavi_render.atomic import atomic_write_text
from tchavi_render.engine.journal import state_dir_for
from tchavi_render.export import ClipSource

__all__ = [
    "MEMO_FORMAT",
    "SETTLED_NS",
    "ExportArguments",
    "Memo",
    "memo_path_for",
    "read_memo",
    "write_memo",
]

MEMO_FORMAT = "tchavi-render-export-memo/1"
# A file changed less than this before an export began is not fingerprinted: a change in
# the same timestamp tick would keep its stat. Covers 1 s timestamps and a little clock
# skew between this machine and a file server.
SETTLED_NS = 2_000_000_000
MAX_MEMO_BYTES = 16 << 20

Fingerprint = tuple[int, int, int, int, int]  # mtime_ns, ctime_ns, size, ino, dev


@dataclass(frozen=True)
class ExportArguments:
    """What decides export's plan besides the files: the spec and the user's variables,
    and the paths as typed, which messages show (`tchavi.yaml:9:5: warning: ...`)."""

    spec: Path  # absolute, as the spec loader makes it (not resolved)
    variables: tuple[tuple[str, str], ...]
    var_files: tuple[Path, ...]  # resolved
    typed: tuple[str, ...]  # the spec's and the var files' paths as given

    @classmethod
    def of(
        cls, spec: Path, variables: Sequence[tuple[str, str]], var_files: Sequence[Path]
    ) -> ExportArguments:
        return cls(
            spec.absolute(),
            tuple(variables),
            tuple(p.resolve() for p in var_files),
            tuple(str(p) for p in (spec, *var_files)),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": str(self.spec),
            "variables": [list(pair) for pair in self.variables],
            "var_files": [str(p) for p in self.var_files],
            "typed": list(self.typed),
        }


@dataclass(frozen=True)
class Memo:
    """A memo whose every fingerprint matched: the clips to cut and the warnings to print."""

    clips: tuple[ClipSource, ...]
    warnings: tuple[str, ...]


def memo_path_for(spec: Path) -> Path:
    """`.tchavi/<spec file name>.export-memo` beside the spec: one per spec file."""
    return state_dir_for(spec) / f"{spec.name}.export-memo"


def fingerprint(path: Path) -> Fingerprint:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def read_memo(arguments: ExportArguments) -> Memo | None:
    """The memo of this spec when it was written for these arguments and no file it covers
    has changed since; None otherwise. Never raises."""
    try:
        doc = _load(memo_path_for(arguments.spec))
        return _trusted(doc, arguments)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    except RuntimeError:  # a symlink loop, on resolving a path
        return None


def write_memo(
    arguments: ExportArguments,
    inputs: Iterable[Path],
    outputs: Iterable[Path],
    clips: Sequence[ClipSource],
    warnings: Sequence[str],
    *,
    started_ns: int,
    backend: str,
) -> bool:
    """Write the memo when every file is settled (last changed SETTLED_NS before
    `started_ns`, the clock when the export began); True when written. `inputs` are the
    files the verdict read (spec, var files, templates, media, lock), `outputs` the renders
    it vouched for: the only files a clip may be. Any OSError (a read-only project, a file
    gone) means no memo, never a failed export."""
    try:
        groups = {
            name: {str(p): fingerprint(p) for p in sorted(set(paths))}
            for name, paths in (("inputs", inputs), ("outputs", outputs))
        }
        stamps = [f for group in groups.values() for f in group.values()]
        if any(max(f[0], f[1]) > started_ns - SETTLED_NS for f in stamps):
            return False
        doc = {
            "format": MEMO_FORMAT,
            **arguments.as_json(),
            "backend": backend,
            **{name: {n: list(f) for n, f in group.items()} for name, group in groups.items()},
            "clips": [_clip_json(c) for c in clips],
            "warnings": list(warnings),
        }
        atomic_write_text(memo_path_for(arguments.spec), json.dumps(doc, indent=1) + "\n")
    except (OSError, ValueError):
        return False
    return True


def _clip_json(clip: ClipSource) -> dict[str, Any]:
    return {
        "shot_id": clip.shot_id,
        "path": str(clip.path),
        "display": clip.display,
        "trim": list(clip.trim) if clip.trim is not None else None,
        "location": clip.location,
        "duration": clip.duration,
        "width": clip.width,
        "height": clip.height,
    }


def _load(path: Path) -> Any:
    """The memo's JSON, read only from a regular file of sane size (never a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MEMO_BYTES:
            return None
        return json.loads(handle.read(MAX_MEMO_BYTES).decode("utf-8"), parse_constant=_refuse)


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _trusted(doc: Any, arguments: ExportArguments) -> Memo | None:
    if not isinstance(doc, dict) or doc.get("format") != MEMO_FORMAT:
        return None
    expected = arguments.as_json()
    if any(doc.get(name) != value for name, value in expected.items()):
        return None
    inputs, outputs = doc["inputs"], doc["outputs"]
    if not isinstance(inputs, dict) or not isinstance(outputs, dict) or not outputs:
        return None
    for name, recorded in (*inputs.items(), *outputs.items()):
        if not isinstance(name, str) or not _ints(recorded, 5):
            return None
        if fingerprint(Path(name)) != tuple(recorded):
            return None
    project_dir = arguments.spec.parent.resolve()
    clips = []
    for item in doc["clips"]:
        clip = _clip(item)
        # A clip is only ever a render the verdict vouched for, inside the project.
        if (
            clip is None
            or str(clip.path) not in outputs
            or str(clip.path) in inputs
            or clip.path != project_dir / clip.display
            or ".." in Path(clip.display).parts
            or not clip.path.resolve().is_relative_to(project_dir)
        ):
            return None
        clips.append(clip)
    warnings = doc["warnings"]
    if not clips or not isinstance(warnings, list):
        return None
    if not all(isinstance(w, str) for w in warnings):
        return None
    return Memo(tuple(clips), tuple(warnings))


def _ints(value: Any, count: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(type(v) is int and v >= 0 for v in value)
    )


def _number(value: Any) -> float | None:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _clip(item: Any) -> ClipSource | None:
    if not isinstance(item, dict):
        return None
    texts = [item.get(k) for k in ("shot_id", "path", "display", "location")]
    if not all(isinstance(t, str) and t for t in texts):
        return None
    duration = _number(item.get("duration"))
    width, height = item.get("width"), item.get("height")
    if not duration or not _ints([width, height], 2) or not (width and height):
        return None
    trim: tuple[float, float] | None = None
    if item.get("trim") is not None:
        raw = item["trim"]
        if not isinstance(raw, list) or len(raw) != 2:
            return None
        start, end = _number(raw[0]), _number(raw[1])
        if start is None or end is None or not start < end:
            return None
        trim = (start, end)
    shot_id, path, display, location = texts
    return ClipSource(
        shot_id=str(shot_id),
        path=Path(str(path)),
        display=str(display),
        trim=trim,
        location=str(location),
        duration=duration,
        width=int(width),
        height=int(height),
    )
