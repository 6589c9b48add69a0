"""The checks of a lock entry's values: every field's type, digests, output paths, unknown
keys; each problem kept with the path of the node it is about, for `lockread` to locate.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from tchavi_render.engine.lock import FailedAttempt, LockEntry, OutputRecord

__all__ = [
    "AT_KEY",
    "ENTRY_FIELDS",
    "RENDER_KEY",
    "LockChecker",
    "PathKey",
    "kind",
    "output_path_problem",
]

PathKey = tuple[Any, ...]
AT_KEY = "\x00key"  # a path ending in this locates the key itself, not its value
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
RENDER_KEY = re.compile(r"^sha256:[0-9a-f]{64}$")
ENTRY_FIELDS = (
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
_OUTPUT_FIELDS = ("path", "sha256", "bytes", "duration", "resolution")
_FAILED_FIELDS = ("job_id", "code", "message", "credits_used", "credits_refunded")


def kind(value: Any) -> str:
    """What a value is, as messages name it: a string, a mapping, nothing, ..."""
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
    """Checks the values of lock entries and builds them, collecting every problem with the
    path of the node it is about (`lockread` checks the document around them, `locktakes`
    a shot's takes)."""

    def __init__(self) -> None:
        self.problems: list[tuple[PathKey, str]] = []

    def bad(self, path: PathKey, message: str) -> None:
        self.problems.append((path, message))

    def entry(
        self, shot_id: str, raw: dict[Any, Any], path: PathKey, take: int | None = None
    ) -> LockEntry | None:
        before = len(self.problems)
        self.known(raw, path, ENTRY_FIELDS, f"shot {shot_id!r}")
        key = self.text(raw, (*path, "key"), f"shot {shot_id!r}: key", pattern=RENDER_KEY)
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
                f"shot {shot_id!r}: request must be a mapping, got {kind(request)}",
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
            self.bad(path, f"{what} must be a mapping (path, sha256, bytes, ...), got {kind(raw)}")
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
            self.bad((*path, "duration"), f"{what}.duration must be a number, got {kind(duration)}")
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
            self.bad(path, f"{what} must be a mapping (job_id, code, ...), got {kind(raw)}")
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
            self.bad(path, f"{what} must be a string, got {kind(value)}")
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
