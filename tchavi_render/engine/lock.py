"""The lockfile (`tchavi.lock`): what was rendered for each shot id, committed and deterministic.

Fixed key order, shots sorted by id, no timestamps: a no-op apply leaves it byte-identical,
and it is rewritten only when its text changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from tchavi_render.atomic import atomic_open
from tchavi_render.errors import LockfileError
from tchavi_render.failpoints import failpoint

__all__ = [
    "LOCK_VERSION",
    "FailedAttempt",
    "LockEntry",
    "Lockfile",
    "OutputRecord",
    "lock_path_for",
    "read_lock",
    "write_lock",
]

LOCK_VERSION = 1


def lock_path_for(spec_path: Path) -> Path:
    """`tchavi.lock` beside `tchavi.yaml`; `<stem>.lock` beside any other spec name."""
    return spec_path.with_name(spec_path.stem + ".lock")


@dataclass(frozen=True)
class OutputRecord:
    path: str  # POSIX, relative to the project directory
    sha256: str
    bytes: int
    duration: float | int | None
    resolution: str | None

    def as_yaml(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "duration": self.duration,
            "resolution": self.resolution,
        }


@dataclass(frozen=True)
class FailedAttempt:
    """The last job of this shot that failed (the service refunds it)."""

    job_id: str
    code: str
    message: str
    credits_used: int
    credits_refunded: int


@dataclass(frozen=True)
class LockEntry:
    key: str
    model: str
    request: Mapping[str, Any]  # the canonical request as keyed (for field-by-field diffs)
    job_id: str | None = None
    output: OutputRecord | None = None
    credits_used: int = 0
    credits_refunded: int = 0
    failed: FailedAttempt | None = None

    @property
    def rendered(self) -> bool:
        return self.output is not None

    def as_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "model": self.model, "job_id": self.job_id}
        if self.output is not None:
            out["output"] = self.output.as_yaml()
        out["credits_used"] = self.credits_used
        out["credits_refunded"] = self.credits_refunded
        if self.failed is not None:
            out["failed"] = {
                "job_id": self.failed.job_id,
                "code": self.failed.code,
                "message": self.failed.message,
                "credits_used": self.failed.credits_used,
                "credits_refunded": self.failed.credits_refunded,
            }
        out["request"] = _plain(self.request)
        return out


_HEADER = "# Written by tchavi-render: what was rendered for each shot. Commit it.\n"
_DUMP_OPTIONS: dict[str, Any] = {
    "sort_keys": False,
    "allow_unicode": True,
    "default_flow_style": False,
    "width": 100,
}


@dataclass(frozen=True)
class Lockfile:
    shots: Mapping[str, LockEntry] = field(default_factory=dict)
    # shot id -> (entry, its text in the lock). Shared by the versions of a lock that
    # with_entry/without make, so an apply rewriting its lock after each render dumps only
    # the entries that changed (the pure-Python YAML emitter is slow; libyaml's writes
    # other bytes for the same document, and the lock must not depend on which is present).
    _texts: dict[str, tuple[LockEntry, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def credits_total(self) -> int:
        """Net credits of the renders the lock names, each job counted once (shots that
        reuse one render share its job), failed attempts included (net zero once refunded)."""
        seen: dict[str, int] = {}
        for entry in self.shots.values():
            if entry.job_id is not None:
                seen[entry.job_id] = entry.credits_used - entry.credits_refunded
            if entry.failed is not None:
                net = entry.failed.credits_used - entry.failed.credits_refunded
                seen[entry.failed.job_id] = net
        return sum(seen.values())

    def with_entry(self, shot_id: str, entry: LockEntry) -> Lockfile:
        shots = dict(self.shots)
        shots[shot_id] = entry
        return replace(self, shots=shots)

    def without(self, shot_id: str) -> Lockfile:
        shots = dict(self.shots)
        shots.pop(shot_id, None)
        self._texts.pop(shot_id, None)
        return replace(self, shots=shots)

    def entries_with_key(self, key: str) -> list[tuple[str, LockEntry]]:
        return [(sid, e) for sid, e in sorted(self.shots.items()) if e.key == key and e.rendered]

    def dumps(self) -> str:
        """The lock's text: the YAML of {version, credits_total, shots}, each shot's part
        dumped on its own (at its place, so the text is that of the whole document)."""
        head = {"version": LOCK_VERSION, "credits_total": self.credits_total}
        if not self.shots:
            return _HEADER + _dump({**head, "shots": {}})
        parts = [_HEADER, _dump(head), "shots:\n"]
        parts += [self._entry_text(sid) for sid in sorted(self.shots)]
        return "".join(parts)

    def _entry_text(self, shot_id: str) -> str:
        entry = self.shots[shot_id]
        cached = self._texts.get(shot_id)
        if cached is not None and cached[0] is entry:
            return cached[1]
        text = _dump({"shots": {shot_id: entry.as_yaml()}})
        text = text.removeprefix("shots:\n")
        self._texts[shot_id] = (entry, text)
        return text


def _dump(document: dict[str, Any]) -> str:
    return str(yaml.safe_dump(document, **_DUMP_OPTIONS))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def read_lock(path: Path) -> Lockfile:
    """The lockfile at `path`, or an empty one when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lockfile()
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(f"{path}: cannot read the lockfile ({exc})") from None
    try:
        return _parse(_load_yaml(text))
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LockfileError(
            f"{path}: not a valid tchavi-render lockfile ({detail}). Restore it from git, "
            "or delete it: the cache still holds the renders, so nothing is paid again"
        ) from None


def _load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, fast: a big lock is read on every plan.

    PyYAML composes a node tree before building values, which for 10,000 shots takes
    seconds (and more with the garbage collector chasing the nodes). This builds the values
    straight from libyaml's events with the safe loader's own resolver and constructor;
    anything it does not expect in a lock (anchors, tags, no libyaml) goes the slow way.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        return yaml.safe_load(text)
    from yaml import _yaml

    parser = _yaml.CParser(text)
    resolver = yaml.resolver.Resolver()
    constructor = yaml.constructor.SafeConstructor()
    plain: dict[str, Any] = {}
    stack: list[Any] = []
    keys: list[Any] = []
    result: Any = None
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None or event.tag not in (None, "!"):
                    return yaml.safe_load(text)
                if event.implicit[0] and event.value not in plain:
                    tag = resolver.resolve(  # type: ignore[no-untyped-call]
                        yaml.ScalarNode, event.value, event.implicit
                    )
                    node = yaml.ScalarNode(tag, event.value)
                    plain[event.value] = constructor.construct_object(node, deep=True)
                value: Any = plain[event.value] if event.implicit[0] else event.value
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if event.anchor is not None or event.tag not in (None, "!"):
                    return yaml.safe_load(text)
                stack.append({} if isinstance(event, yaml.MappingStartEvent) else [])
                keys.append(None)
                continue
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                value = stack.pop()
                keys.pop()
            elif isinstance(event, yaml.AliasEvent):
                return yaml.safe_load(text)
            else:
                continue  # stream and document boundaries
            if not stack:
                result = value
            elif isinstance(stack[-1], list):
                stack[-1].append(value)
            elif keys[-1] is None:
                keys[-1] = (value,)  # a key, waiting for its value
            else:
                stack[-1][keys[-1][0]] = value
                keys[-1] = None
    finally:
        parser.dispose()
    return result


def _parse(doc: Any) -> Lockfile:
    if doc is None:
        return Lockfile()
    if not isinstance(doc, dict):
        raise ValueError("the top level is not a mapping")
    version = doc.get("version")
    if version != LOCK_VERSION:
        raise ValueError(f"version {version!r} is not {LOCK_VERSION}")
    shots_doc = doc.get("shots") or {}
    if not isinstance(shots_doc, dict):
        raise ValueError("'shots' is not a mapping")
    shots: dict[str, LockEntry] = {}
    for shot_id, raw in shots_doc.items():
        if not isinstance(raw, dict):
            raise ValueError(f"shot {shot_id!r} is not a mapping")
        output = raw.get("output")
        failed = raw.get("failed")
        request = raw.get("request") or {}
        if not isinstance(request, dict):
            raise ValueError(f"shot {shot_id!r}: 'request' is not a mapping")
        shots[str(shot_id)] = LockEntry(
            key=str(raw["key"]),
            model=str(raw.get("model", "")),
            request=request,
            job_id=None if raw.get("job_id") is None else str(raw["job_id"]),
            output=None
            if output is None
            else OutputRecord(
                path=str(output["path"]),
                sha256=str(output["sha256"]),
                bytes=int(output["bytes"]),
                duration=output.get("duration"),
                resolution=output.get("resolution"),
            ),
            credits_used=int(raw.get("credits_used", 0)),
            credits_refunded=int(raw.get("credits_refunded", 0)),
            failed=None
            if failed is None
            else FailedAttempt(
                job_id=str(failed["job_id"]),
                code=str(failed.get("code", "")),
                message=str(failed.get("message", "")),
                credits_used=int(failed.get("credits_used", 0)),
                credits_refunded=int(failed.get("credits_refunded", 0)),
            ),
        )
    return Lockfile(shots=shots)


def write_lock(path: Path, lock: Lockfile) -> bool:
    """Write the lock atomically if its text changed; True when the file was rewritten."""
    text = lock.dumps()
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    with atomic_open(path) as handle:
        handle.write(text.encode("utf-8"))
        failpoint("mid-lock-write")
    return True
