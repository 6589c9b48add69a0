"""The lockfile (`tchavi.lock`): what was rendered for each shot id, committed and deterministic.

Fixed key order, shots sorted by id, no timestamps: a no-op apply leaves it byte-identical,
and it is rewritten only when its text changes. Reading one, as untrusted input, is
`engine.lockread`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from tchavi_render.atomic import atomic_open
from tchavi_render.engine.takes import TAKES_SEPARATOR as _TAKES
from tchavi_render.failpoints import failpoint

PathKey = tuple[Any, ...]

__all__ = [
    "LOCK_HEADER",
    "LOCK_VERSION",
    "LOCK_VERSIONS",
    "FailedAttempt",
    "LockEntry",
    "Lockfile",
    "OutputRecord",
    "lock_path_for",
    "write_lock",
]

# Version 2 added takes. A lock with no takes in it is still written as version 1, byte for
# byte what the release before takes wrote (no churn in git for storyboards without takes);
# a lock holding takes says 2, so an older release refuses it instead of misreading it.
LOCK_VERSION = 2
LOCK_VERSIONS = (1, 2)


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
    take: int | None = None  # which take of a shot of several takes this render is

    @property
    def rendered(self) -> bool:
        return self.output is not None

    @property
    def seed(self) -> int | None:
        seed = self.request.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    def as_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "model": self.model}
        out.update(self._render_yaml())
        out["request"] = _plain(self.request)
        return out

    def take_yaml(self) -> dict[str, Any]:
        """The entry as an item of its shot's `takes:` (the request is the shot's, but for
        the seed)."""
        return {"take": self.take, "seed": self.seed, "key": self.key, **self._render_yaml()}

    def _render_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job_id": self.job_id}
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
        return out


LOCK_HEADER = "# Written by tchavi-render: what was rendered for each shot. Commit it.\n"
_DUMP_OPTIONS: dict[str, Any] = {
    "sort_keys": False,
    "allow_unicode": True,
    "default_flow_style": False,
    "width": 100,
}


@dataclass(frozen=True)
class Lockfile:
    # planned id -> entry: a shot's own id, and `<id>.takes/<i>` for each take of a shot
    # that is not its pick (engine/takes.py); the file groups a shot's takes under its id.
    shots: Mapping[str, LockEntry] = field(default_factory=dict)
    # shot id -> (its entries, its text in the lock). Shared by the versions of a lock that
    # with_entry/without make, so an apply rewriting its lock after each render dumps only
    # the shots that changed (the pure-Python YAML emitter is slow; libyaml's writes
    # other bytes for the same document, and the lock must not depend on which is present).
    _texts: dict[str, tuple[tuple[LockEntry, ...], str]] = field(
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

    @property
    def has_takes(self) -> bool:
        return any(e.take is not None for e in self.shots.values())

    def with_entry(self, shot_id: str, entry: LockEntry) -> Lockfile:
        shots = dict(self.shots)
        shots[shot_id] = entry
        return replace(self, shots=shots)

    def without(self, shot_id: str) -> Lockfile:
        shots = dict(self.shots)
        shots.pop(shot_id, None)
        return replace(self, shots=shots)

    def entries_with_key(self, key: str) -> list[tuple[str, LockEntry]]:
        return [(sid, e) for sid, e in sorted(self.shots.items()) if e.key == key and e.rendered]

    def takes_of(self, shot_id: str, ids: Iterable[str] | None = None) -> dict[int, LockEntry]:
        """Take number -> entry, for every locked take of `shot_id` (its pick included).
        `ids`: the shot's entry ids when known (`by_shot`), to spare a scan of the lock."""
        out: dict[int, LockEntry] = {}
        own = self.shots.get(shot_id)
        if own is not None and own.take is not None:
            out[own.take] = own
        prefix = shot_id + _TAKES
        for planned_id in self.shots if ids is None else ids:
            entry = self.shots[planned_id]
            number = planned_id[len(prefix) :] if planned_id.startswith(prefix) else ""
            if number.isdigit():
                out[int(number)] = replace(entry, take=int(number))
        return dict(sorted(out.items()))

    def dumps(self) -> str:
        """The lock's text: the YAML of {version, credits_total, shots}, each shot's part
        dumped on its own (at its place, so the text is that of the whole document)."""
        version = LOCK_VERSION if self.has_takes else 1
        head = {"version": version, "credits_total": self.credits_total}
        if not self.shots:
            return LOCK_HEADER + _dump({**head, "shots": {}})
        parts = [LOCK_HEADER, _dump(head), "shots:\n"]
        parts += [self._shot_text(sid, ids) for sid, ids in self.by_shot().items()]
        return "".join(parts)

    def by_shot(self) -> dict[str, list[str]]:
        """Shot id -> the ids of its entries (its own, then its other takes), sorted."""
        groups: dict[str, list[str]] = {}
        for planned_id in sorted(self.shots):
            groups.setdefault(planned_id.partition(_TAKES)[0], []).append(planned_id)
        return dict(sorted(groups.items()))

    def _shot_text(self, shot_id: str, planned_ids: list[str]) -> str:
        entries = tuple(self.shots[i] for i in planned_ids)
        cached = self._texts.get(shot_id)
        if (
            cached is not None
            and len(cached[0]) == len(entries)
            and all(a is b for a, b in zip(cached[0], entries, strict=True))
        ):
            return cached[1]
        text = _dump({"shots": {shot_id: self.shot_yaml(shot_id, planned_ids)}})
        text = text.removeprefix("shots:\n")
        self._texts[shot_id] = (entries, text)
        return text

    def shot_yaml(self, shot_id: str, ids: Iterable[str] | None = None) -> dict[str, Any]:
        """A shot's entry: its own (the picked take's) fields, then `takes:` when it has
        takes. A shot of one take is written exactly as before takes existed."""
        own = self.shots.get(shot_id)
        takes = self.takes_of(shot_id, ids)
        if not takes:
            assert own is not None
            return own.as_yaml()
        out: dict[str, Any] = {}
        if own is not None and own.take is not None:
            out["pick"] = own.take
        first = own if own is not None else next(iter(takes.values()))
        body = own.as_yaml() if own is not None else {"model": first.model}
        request = body.pop("request", None)
        out.update(body)
        out["takes"] = [entry.take_yaml() for entry in takes.values()]
        out["request"] = request if request is not None else _plain(first.request)
        return out


def _dump(document: dict[str, Any]) -> str:
    return str(yaml.safe_dump(document, **_DUMP_OPTIONS))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


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
