"""The checks of a shot of several takes in a lock: its pick, each take's entry, and that
the pick agrees with the shot's own entry; every problem kept by the `LockChecker`."""

from __future__ import annotations

from typing import Any

from tchavi_render.engine.lock import LockEntry
from tchavi_render.engine.lockcheck import ENTRY_FIELDS, RENDER_KEY, LockChecker, PathKey, kind
from tchavi_render.engine.takes import take_id
from tchavi_render.spec.fieldtypes import MAX_TAKES

__all__ = ["take_entries"]

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


def take_entries(
    check: LockChecker, shot_id: str, raw: dict[Any, Any], path: PathKey
) -> dict[str, LockEntry]:
    """The entries of a shot of several takes: its own (the pick's) and one per take that is
    not its pick; none when any of it is wrong."""
    before = len(check.problems)
    what = f"shot {shot_id!r}"
    pick: int | None = None
    if raw.get("pick") is not None:
        pick = _take_number(check, raw, (*path, "pick"), f"{what}: pick")
    items = raw.get("takes")
    if not isinstance(items, list) or not items:
        check.bad(
            (*path, "takes") if "takes" in raw else path,
            f"{what}: takes must list the shot's takes (take, seed, key, ...), got {kind(items)}",
        )
        return {}
    own = check.entry(shot_id, raw, path, take=pick) if "key" in raw else None
    if "key" not in raw:
        check.known(raw, path, ENTRY_FIELDS, what)
    if pick is not None and "key" not in raw:
        check.bad(path, f"{what}: key is missing (the key of take {pick}, the pick)")
    written = raw.get("request")
    request: dict[Any, Any] = written if isinstance(written, dict) else {}
    listed = [i.get("take") for i in items if isinstance(i, dict)]
    for i, number in enumerate(listed):
        if number is not None and listed.index(number) < i:
            check.bad(
                (*path, "takes", i, "take"),
                f"{what}: take {number} is listed twice; keep one of them",
            )
            return {}
    if pick is not None and pick not in listed:
        shown = ", ".join(str(t) for t in listed if type(t) is int)
        check.bad(
            (*path, "pick"),
            f"{what}: pick {pick} is not one of the takes listed ({shown or 'none'})",
        )
        return {}
    out: dict[str, LockEntry] = {}
    for i, item in enumerate(items):
        entry = _take(check, shot_id, item, (*path, "takes", i), request, pick)
        if entry is None or entry.take is None:
            continue
        if entry.take == pick:
            if own is not None and (entry.key != own.key or entry.output != own.output):
                check.bad(
                    (*path, "takes", i),
                    f"{what}: take {pick} is the pick, but its key or output differs "
                    "from the shot's own",
                )
            continue
        out[take_id(shot_id, entry.take)] = entry
    if len(check.problems) > before:
        return {}
    if own is not None:
        out[shot_id] = own
    return out


def _take_number(check: LockChecker, raw: dict[Any, Any], path: PathKey, what: str) -> int | None:
    value = raw.get(path[-1])
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TAKES:
        check.bad(path, f"{what} must be a take number from 1 to {MAX_TAKES}, got {value!r}")
        return None
    return value


def _take(
    check: LockChecker,
    shot_id: str,
    raw: Any,
    path: PathKey,
    request: dict[Any, Any],
    pick: int | None,
) -> LockEntry | None:
    what = f"shot {shot_id!r}: takes[{path[-1]}]"
    if not isinstance(raw, dict):
        check.bad(path, f"{what} must be a mapping (take, seed, key, ...), got {kind(raw)}")
        return None
    before = len(check.problems)
    check.known(raw, path, _TAKE_FIELDS, what)
    number = _take_number(check, raw, (*path, "take"), f"{what}.take")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        check.bad((*path, "seed"), f"{what}.seed must be a whole number, got {seed!r}")
    key = check.text(raw, (*path, "key"), f"{what}.key", pattern=RENDER_KEY)
    job_id = check.text(raw, (*path, "job_id"), f"{what}.job_id", required=False)
    planned = shot_id if number is None or number == pick else take_id(shot_id, number)
    output = check.output(planned, raw.get("output"), (*path, "output"), what)
    failed = check.failed(planned, raw.get("failed"), (*path, "failed"), what)
    used = check.count(raw, (*path, "credits_used"), f"{what}.credits_used")
    refunded = check.count(raw, (*path, "credits_refunded"), f"{what}.credits_refunded")
    if len(check.problems) > before:
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
