"""Reading a lock as untrusted input: every field checked, every problem located.

Users edit, merge and review the lock, so anything in it that tchavi-render would not have
written (merge-conflict markers, duplicate keys, wrong types, unknown keys, an output that
is not a file it places) is a LockfileError naming FILE:LINE:COLUMN, all problems at once.
This module reads the file (conflict markers, YAML, duplicate keys), checks the document's
shape (version, shots) and locates the problems; `lockcheck` checks each entry's values,
`locktakes` a shot's takes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tchavi_render.engine.lock import LOCK_VERSION, LOCK_VERSIONS, LockEntry, Lockfile
from tchavi_render.engine.lockcheck import AT_KEY, LockChecker, PathKey, kind
from tchavi_render.engine.locktakes import take_entries
from tchavi_render.errors import LockfileError
from tchavi_render.spec.shot import ID_PATTERN

__all__ = ["read_lock"]


def read_lock(path: Path) -> Lockfile:
    """The lockfile at `path`, or an empty one when there is none.

    The lock is a file users edit, merge and review: it is untrusted input. Anything that is
    not what tchavi-render writes (merge-conflict markers, wrong types, unknown keys, an
    output that is not a file it places) is a LockfileError naming FILE:LINE:COLUMN.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lockfile()
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(f"{_shown(path)}: cannot read the lockfile ({exc})") from None
    conflict = _conflict_marker(text)
    if conflict is not None:
        line, marker = conflict
        raise LockfileError(
            f"{_shown(path)}:{line}: unresolved merge conflict (a line starts with "
            f"{marker!r}). Resolve it before planning: keep one side of each conflicting shot "
            f"(or take one side whole, e.g. `git checkout --theirs {path.name}`), then run "
            "`tchavi-render plan`; a shot whose entry was dropped is found again in the cache "
            "or planned anew"
        )
    try:
        doc = _load_yaml(text)
    except (yaml.YAMLError, _Duplicate):
        raise _invalid(path, text, [((), "")]) from None
    checker = LockChecker()
    lock = _document(checker, doc)
    if checker.problems:
        raise _invalid(path, text, checker.problems)
    assert lock is not None
    return lock


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
                if keys[-1][0] in stack[-1]:
                    raise _Duplicate(keys[-1][0])
                stack[-1][keys[-1][0]] = value
                keys[-1] = None
    finally:
        parser.dispose()
    return result


_CONFLICT = re.compile(r"^(<<<<<<<|\|\|\|\|\|\|\||=======|>>>>>>>)(?: |$)", re.MULTILINE)


def _conflict_marker(text: str) -> tuple[int, str] | None:
    """The line and marker of the first merge-conflict marker line, if any."""
    found = _CONFLICT.search(text)
    if found is None:
        return None
    return text.count("\n", 0, found.start()) + 1, found.group(1)


def _shown(path: Path) -> str:
    """`path` as messages show it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _invalid(path: Path, text: str, problems: list[tuple[PathKey, str]]) -> LockfileError:
    """The error for a lock that is not what tchavi-render writes, every problem located
    (the text is parsed again with positions, which the fast reader does not keep)."""
    from tchavi_render.spec.yamlpos import parse_yaml

    shown = Path(_shown(path))
    doc, syntax = parse_yaml(text, shown)
    if doc is None or syntax:
        lines = [str(p) for p in syntax] or [f"{shown}: not a YAML document"]
    else:
        lines = []
        for where, message in problems:
            key = bool(where) and where[-1] == AT_KEY
            at = doc.locate(where[:-1] if key else where, key=key)
            lines.append(f"{at}: {message}")
    count = len(lines)
    return LockfileError(
        f"{shown} is not a lock tchavi-render wrote ({count} problem{'s' if count != 1 else ''}):"
        "\n"
        + "\n".join(f"  {line}" for line in lines)
        + f"\nFix those lines (`git diff {path.name}` shows what changed), or restore the "
        "lock from git. Nothing was rendered, written or deleted; the cache still holds "
        "the renders, so deleting the lock costs nothing either"
    )


class _Duplicate(ValueError):
    """A key written twice in one mapping (a merge resolved by keeping both sides)."""


def _document(check: LockChecker, doc: Any) -> Lockfile | None:
    """The Lockfile of a lock document, or None when its shape is wrong."""
    if doc is None:
        return Lockfile()
    if not isinstance(doc, dict):
        check.bad(
            (), f"the lock must be a mapping (version, credits_total, shots), got {kind(doc)}"
        )
        return None
    for name in doc:
        if name not in ("version", "credits_total", "shots"):
            check.bad(
                (name, AT_KEY),
                f"unknown key {name!r}; a lock has version, credits_total and shots",
            )
    version = doc.get("version")
    if version not in LOCK_VERSIONS or type(version) is not int:
        newer = type(version) is int and version > LOCK_VERSION
        check.bad(
            ("version",),
            f"version {version!r} was written by a newer tchavi-render; upgrade it"
            if newer
            else f"version must be {LOCK_VERSION}, got {version!r}",
        )
    check.count(doc, ("credits_total",), "credits_total", signed=True)
    shots_doc = doc.get("shots")
    if shots_doc is None:
        shots_doc = {}
    if not isinstance(shots_doc, dict):
        check.bad(("shots",), f"shots must be a mapping of shot id to entry, got {kind(shots_doc)}")
        return None
    shots: dict[str, LockEntry] = {}
    for shot_id, raw in shots_doc.items():
        if isinstance(raw, dict) and ("takes" in raw or "pick" in raw) and version == 1:
            check.bad(
                ("shots", shot_id, "takes" if "takes" in raw else "pick", AT_KEY),
                f"shot {shot_id!r}: takes are written in lock version {LOCK_VERSION}, "
                "but this lock says version 1",
            )
        shots.update(_shot(check, shot_id, raw))
    return Lockfile(shots=shots)


def _shot(check: LockChecker, shot_id: Any, raw: Any) -> dict[str, LockEntry]:
    """The entries of one shot: its own, and one per take that is not its pick."""
    path: PathKey = ("shots", shot_id)
    if not isinstance(shot_id, str) or not ID_PATTERN.match(shot_id):
        check.bad((*path, AT_KEY), f"{shot_id!r} is not a shot id tchavi-render writes")
        return {}
    if not isinstance(raw, dict):
        check.bad(path, f"shot {shot_id!r}: its entry must be a mapping, got {kind(raw)}")
        return {}
    if "takes" not in raw and "pick" not in raw:
        entry = check.entry(shot_id, raw, path)
        return {} if entry is None else {shot_id: entry}
    return take_entries(check, shot_id, raw, path)
