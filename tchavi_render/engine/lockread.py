"""Reading a lock as untrusted input: every field checked, every problem located.

Users edit, merge and review the lock, so anything in it that tchavi-render would not have
written (merge-conflict markers, duplicate keys, wrong types, unknown keys, an output that
is not a file it places) is a LockfileError naming FILE:LINE:COLUMN, all problems at once.
This module reads the file (conflict markers, YAML, duplicate keys) and locates the
problems; `lockcheck` checks the values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tchavi_render.engine.lock import Lockfile
from tchavi_render.engine.lockcheck import AT_KEY, LockChecker, PathKey
from tchavi_render.errors import LockfileError

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
    lock = checker.lock(doc)
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
