"""The checks of a lock document's values: every field's type, digests, output paths, unknown
keys, takes and picks; each problem kept with the path of the node it is about, for
`lockread` to locate. Builds the Lockfile when nothing is wrong.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from tchavi_render.engine.lock import (
    LOCK_VERSION,
    LOCK_VERSIONS,
    FailedAttempt,
    LockEntry,
    Lockfile,
    OutputRecord,
)
from tchavi_render.engine.takes import take_id
from tchavi_render.spec.fieldtypes import MAX_TAKES
from tchavi_render.spec.shot import ID_PATTERN

__all__ = ["AT_KEY", "LockChecker", "PathKey", "output_path_problem"]

PathKey = tuple[Any, ...]
AT_KEY = "\x00key"  # a path ending in this locates the key itself, not its value
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RENDER_KEY = re.compile(r"^sha256:[0-9a-f]{64}$")
_ENTRY_FIELDS = (
    "key",
    "model",
    "job_id",
    "output",
    "credits_used",
    "credits_refunded",
    "failed",
    "request",
    "pick",
    "takes",
)
_TAKE_FIELDS = (
    "take",
    "seed",
    "key",
    "job_id",
    "output",
    "credits_used",
    "credits_refunded",
    "failed",
)
_OUTPUT_FIELDS = ("path", "sha256", "bytes", "duration", "resolution")
_FAILED_FIELDS = ("job_id", "code", "message", "credits_used", "credits_refunded")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class LockChecker:
    """Checks a lock document and builds the Lockfile, collecting every problem with the
    path of the node it is about."""

    def __init__(self) -> None:
        self.problems: list[tuple[PathKey, str]] = []

    def bad(self, path: PathKey, message: str) -> None:
        self.problems.append((path, message))

    def lock(self, doc: Any) -> Lockfile | None:
        if doc is None:
            return Lockfile()
        if not isinstance(doc, dict):
            self.bad(
                (), f"the lock must be a mapping (version, credits_total, shots), got {_kind(doc)}"
            )
            return None
        for name in doc:
            if name not in ("version", "credits_total", "shots"):
                self.bad(
                    (name, AT_KEY),
                    f"unknown key {name!r}; a lock has version, credits_total and shots",
                )
        version = doc.get("version")
        if version not in LOCK_VERSIONS or type(version) is not int:
            newer = type(version) is int and version > LOCK_VERSION
            self.bad(
                ("version",),
                f"version {version!r} was written by a newer tchavi-render; upgrade it"
                if newer
                else f"version must be {LOCK_VERSION}, got {version!r}",
            )
        self.count(doc, ("credits_total",), "credits_total", signed=True)
        shots_doc = doc.get("shots")
        if shots_doc is None:
            shots_doc = {}
        if not isinstance(shots_doc, dict):
            self.bad(
                ("shots",), f"shots must be a mapping of shot id to entry, got {_kind(shots_doc)}"
            )
            return None
        shots: dict[str, LockEntry] = {}
        for shot_id, raw in shots_doc.items():
            if isinstance(raw, dict) and ("takes" in raw or "pick" in raw) and version == 1:
                self.bad(
                    ("shots", shot_id, "takes" if "takes" in raw else "pick", AT_KEY),
                    f"shot {shot_id!r}: takes are written in lock version {LOCK_VERSION}, "
                    "but this lock says version 1",
                )
            shots.update(self.shot(shot_id, raw))
        return Lockfile(shots=shots)

    def shot(self, shot_id: Any, raw: Any) -> dict[str, LockEntry]:
        """The entries of one shot: its own, and one per take that is not its pick."""
        path: PathKey = ("shots", shot_id)
        if not isinstance(shot_id, str) or not ID_PATTERN.match(shot_id):
            self.bad((*path, AT_KEY), f"{shot_id!r} is not a shot id tchavi-render writes")
            return {}
        if not isinstance(raw, dict):
            self.bad(path, f"shot {shot_id!r}: its entry must be a mapping, got {_kind(raw)}")
            return {}
        if "takes" not in raw and "pick" not in raw:
            entry = self.entry(shot_id, raw, path)
            return {} if entry is None else {shot_id: entry}
        before = len(self.problems)
        what = f"shot {shot_id!r}"
        pick: int | None = None
        if raw.get("pick") is not None:
            pick = self.take_number(raw, (*path, "pick"), f"{what}: pick")
        items = raw.get("takes")
        if not isinstance(items, list) or not items:
            self.bad(
                (*path, "takes") if "takes" in raw else path,
                f"{what}: takes must list the shot's takes (take, seed, key, ...), got "
                f"{_kind(items)}",
            )
            return {}
        own = self.entry(shot_id, raw, path, take=pick) if "key" in raw else None
        if "key" not in raw:
            self.known(raw, path, _ENTRY_FIELDS, what)
        if pick is not None and "key" not in raw:
            self.bad(path, f"{what}: key is missing (the key of take {pick}, the pick)")
        written = raw.get("request")
        request: dict[Any, Any] = written if isinstance(written, dict) else {}
        listed = [i.get("take") for i in items if isinstance(i, dict)]
        for i, number in enumerate(listed):
            if number is not None and listed.index(number) < i:
                self.bad(
                    (*path, "takes", i, "take"),
                    f"{what}: take {number} is listed twice; keep one of them",
                )
                return {}
        if pick is not None and pick not in listed:
            shown = ", ".join(str(t) for t in listed if type(t) is int)
            self.bad(
                (*path, "pick"),
                f"{what}: pick {pick} is not one of the takes listed ({shown or 'none'})",
            )
            return {}
        out: dict[str, LockEntry] = {}
        for i, item in enumerate(items):
            entry = self.take(shot_id, item, (*path, "takes", i), request, pick)
            if entry is None or entry.take is None:
                continue
            if entry.take == pick:
                if own is not None and (entry.key != own.key or entry.output != own.output):
                    self.bad(
                        (*path, "takes", i),
                        f"{what}: take {pick} is the pick, but its key or output differs "
                        "from the shot's own",
                    )
                continue
            out[take_id(shot_id, entry.take)] = entry
        if len(self.problems) > before:
            return {}
        if own is not None:
            out[shot_id] = own
        return out

    def take_number(self, raw: dict[Any, Any], path: PathKey, what: str) -> int | None:
        value = raw.get(path[-1])
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TAKES:
            self.bad(path, f"{what} must be a take number from 1 to {MAX_TAKES}, got {value!r}")
            return None
        return value

    def take(
        self,
        shot_id: str,
        raw: Any,
        path: PathKey,
        request: dict[Any, Any],
        pick: int | None,
    ) -> LockEntry | None:
        what = f"shot {shot_id!r}: takes[{path[-1]}]"
        if not isinstance(raw, dict):
            self.bad(path, f"{what} must be a mapping (take, seed, key, ...), got {_kind(raw)}")
            return None
        before = len(self.problems)
        self.known(raw, path, _TAKE_FIELDS, what)
        number = self.take_number(raw, (*path, "take"), f"{what}.take")
        seed = raw.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            self.bad((*path, "seed"), f"{what}.seed must be a whole number, got {seed!r}")
        key = self.text(raw, (*path, "key"), f"{what}.key", pattern=_RENDER_KEY)
        job_id = self.text(raw, (*path, "job_id"), f"{what}.job_id", required=False)
        planned = shot_id if number is None or number == pick else take_id(shot_id, number)
        output = self.output(planned, raw.get("output"), (*path, "output"), what)
        failed = self.failed(planned, raw.get("failed"), (*path, "failed"), what)
        used = self.count(raw, (*path, "credits_used"), f"{what}.credits_used")
        refunded = self.count(raw, (*path, "credits_refunded"), f"{what}.credits_refunded")
        if len(self.problems) > before:
            return None
        take_request = dict(request)
        take_request.pop("seed", None)
        if seed is not None:
            take_request["seed"] = seed
        return LockEntry(
            key=key or "",
            model=str(request.get("model") or ""),
            request=take_request,
            job_id=job_id,
            output=output,
            credits_used=used,
            credits_refunded=refunded,
            failed=failed,
            take=number,
        )

    def entry(
        self, shot_id: str, raw: dict[Any, Any], path: PathKey, take: int | None = None
    ) -> LockEntry | None:
        before = len(self.problems)
        self.known(raw, path, _ENTRY_FIELDS, f"shot {shot_id!r}")
        key = self.text(raw, (*path, "key"), f"shot {shot_id!r}: key", pattern=_RENDER_KEY)
        model = self.text(raw, (*path, "model"), f"shot {shot_id!r}: model", required=False)
        job_id = self.text(raw, (*path, "job_id"), f"shot {shot_id!r}: job_id", required=False)
        output = self.output(shot_id, raw.get("output"), (*path, "output"))
        failed = self.failed(shot_id, raw.get("failed"), (*path, "failed"))
        request = raw.get("request")
        if request is None:
            request = {}
        if not isinstance(request, dict):
            self.bad(
                (*path, "request"),
                f"shot {shot_id!r}: request must be a mapping, got {_kind(request)}",
            )
        used = self.count(raw, (*path, "credits_used"), f"shot {shot_id!r}: credits_used")
        refunded = self.count(
            raw, (*path, "credits_refunded"), f"shot {shot_id!r}: credits_refunded"
        )
        if len(self.problems) > before:
            return None
        return LockEntry(
            key=key or "",
            model=model or "",
            request=request,
            job_id=job_id,
            output=output,
            credits_used=used,
            credits_refunded=refunded,
            failed=failed,
            take=take,
        )

    def output(
        self, shot_id: str, raw: Any, path: PathKey, owner: str | None = None
    ) -> OutputRecord | None:
        if raw is None:
            return None
        what = f"{owner or f'shot {shot_id!r}:'} output"
        if not isinstance(raw, dict):
            self.bad(path, f"{what} must be a mapping (path, sha256, bytes, ...), got {_kind(raw)}")
            return None
        self.known(raw, path, _OUTPUT_FIELDS, what)
        where = self.text(raw, (*path, "path"), f"{what}.path")
        if where is not None:
            problem = output_path_problem(where, shot_id)
            if problem:
                self.bad((*path, "path"), f"{what}.path {where!r} {problem}")
        sha = self.text(raw, (*path, "sha256"), f"{what}.sha256", pattern=_SHA256)
        size = self.count(raw, (*path, "bytes"), f"{what}.bytes", required=True)
        duration = raw.get("duration")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int | float)
        ):
            self.bad(
                (*path, "duration"), f"{what}.duration must be a number, got {_kind(duration)}"
            )
        resolution = self.text(raw, (*path, "resolution"), f"{what}.resolution", required=False)
        if where is None or sha is None:
            return None
        return OutputRecord(where, sha, size, duration, resolution)

    def failed(
        self, shot_id: str, raw: Any, path: PathKey, owner: str | None = None
    ) -> FailedAttempt | None:
        if raw is None:
            return None
        what = f"{owner or f'shot {shot_id!r}:'} failed"
        if not isinstance(raw, dict):
            self.bad(path, f"{what} must be a mapping (job_id, code, ...), got {_kind(raw)}")
            return None
        self.known(raw, path, _FAILED_FIELDS, what)
        job_id = self.text(raw, (*path, "job_id"), f"{what}.job_id")
        code = self.text(raw, (*path, "code"), f"{what}.code", required=False)
        message = self.text(raw, (*path, "message"), f"{what}.message", required=False)
        used = self.count(raw, (*path, "credits_used"), f"{what}.credits_used")
        refunded = self.count(raw, (*path, "credits_refunded"), f"{what}.credits_refunded")
        if job_id is None:
            return None
        return FailedAttempt(job_id, code or "", message or "", used, refunded)

    def known(self, raw: dict[Any, Any], path: PathKey, fields: tuple[str, ...], what: str) -> None:
        for name in raw:
            if name not in fields:
                self.bad((*path, name, AT_KEY), f"{what}: unknown key {name!r}")

    def text(
        self,
        raw: dict[Any, Any],
        path: PathKey,
        what: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        value = raw.get(path[-1])
        if value is None:
            if required:
                self.bad(path[:-1], f"{what} is missing")
            return None
        if not isinstance(value, str):
            self.bad(path, f"{what} must be a string, got {_kind(value)}")
            return None
        if pattern is not None and not pattern.match(value):
            self.bad(path, f"{what} {value!r} is not a sha256 digest as tchavi-render writes it")
            return None
        return value

    def count(
        self,
        raw: dict[Any, Any],
        path: PathKey,
        what: str,
        *,
        required: bool = False,
        signed: bool = False,
    ) -> int:
        value = raw.get(path[-1])
        if value is None:
            if required:
                self.bad(path[:-1], f"{what} is missing")
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(path, f"{what} must be a whole number, got {value!r}")
            return 0
        if value < 0 and not signed:
            self.bad(path, f"{what} must be at least 0, got {value!r}")
            return 0
        return value


def output_path_problem(path: str, shot_id: str) -> str | None:
    """Why `path` (from a lock) is not a file tchavi-render places for `shot_id`, or None.

    Outputs are `<output_dir>/<id>.mp4` (`<output_dir>/<id>.takes/<i>.mp4` for a take that
    is not the pick), relative to the project, inside it."""
    name = f"{shot_id}.mp4"
    pure = PurePosixPath(path)
    tail = PurePosixPath(name).parts
    if "\\" in path or pure.is_absolute() or path.startswith("~"):
        return f"is not a path relative to the project; outputs are named '<output_dir>/{name}'"
    if any(part in ("..", ".", "") for part in path.split("/")):
        return f"leaves or repeats a directory; outputs are named '<output_dir>/{name}'"
    if pure.parts[-len(tail) :] != tail:
        return f"is not a file tchavi-render writes; this shot's output is '<output_dir>/{name}'"
    return None
