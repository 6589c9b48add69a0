"""Editing a spec in place: writing a shot's `pick:` and nothing else, byte for byte.

ruamel.yaml's round-trip parser says where the shot and its keys were written; the edit is
then made on the text itself (one value replaced, or one `pick:` added beside `takes:` or
`id:`), so comments, quoting, indentation and blank lines stay exactly as they were.
"""

from __future__ import annotations

import re
from typing import Any

from tchavi_render.errors import NoSuchShot, PickError
from tchavi_render.spec.shot import LoadedSpec, Shot
from tchavi_render.spec.template import is_template
from tchavi_render.text import did_you_mean

__all__ = ["with_pick"]

_TOKEN = re.compile(r"[^\s,}\]#]+")  # a plain scalar in block or flow context


def with_pick(loaded: LoadedSpec, text: str, shot_id: str, take: int) -> str:
    """`text` (the spec `loaded` was read from) with `pick: take` written into the shot
    `shot_id`. NoSuchShot or PickError, with what to do, when that cannot be done."""
    from ruamel.yaml import YAML

    shot = _shot(loaded, shot_id)
    if not 1 <= take <= shot.takes:
        count = "1 take" if shot.takes == 1 else f"{shot.takes} takes"
        raise PickError(
            f"take {take} is out of range: shot {shot_id!r} has {count} "
            f"({shot.location}); pick 1 to {shot.takes}, or raise its takes first"
        )
    if shot.instance:
        raise PickError(
            f"shot {shot_id!r} is made by the for_each of the shot at {shot.location} "
            f"({shot.instance}); a pick written "
            "there would choose the same take for every instance. Edit that shot by hand "
            f"(pick: {take} for all of them), or give {shot_id!r} a shot of its own"
        )
    yaml = YAML(typ="rt")
    doc = yaml.load(text)
    item = _written(doc, shot_id)
    if item is None:
        raise PickError(
            f"shot {shot_id!r} gets its id from a template (the shot at {shot.location}); "
            f"add `pick: {take}` to that shot by hand"
        )
    templated = _templated_pick(doc, item)
    if templated is not None:
        where, written = templated
        raise PickError(
            f"the pick of shot {shot_id!r} is a template ({where}: pick: {written}); "
            f"change what it reads (its vars, or a --var-file) to choose take {take}"
        )
    lines = text.splitlines(keepends=True)
    if "pick" in item:
        line, column = item.lc.value("pick")
        found = _TOKEN.match(lines[line], column)
        assert found is not None
        lines[line] = f"{lines[line][:column]}{take}{lines[line][found.end() :]}"
        return "".join(lines)
    anchor = "takes" if "takes" in item else "id"
    line, column = item.lc.value(anchor)
    if item.fa.flow_style():
        found = _TOKEN.match(lines[line], column)
        end = found.end() if found is not None else column
        if lines[line][column : column + 1] in ("'", '"'):
            end = lines[line].index(lines[line][column], column + 1) + 1
        lines[line] = f"{lines[line][:end]}, pick: {take}{lines[line][end:]}"
        return "".join(lines)
    key_line, key_column = item.lc.key(anchor)
    newline = "\r\n" if lines[key_line].endswith("\r\n") else "\n"
    if not lines[key_line].endswith(("\n", "\r")):
        lines[key_line] += newline
    lines.insert(key_line + 1, " " * key_column + f"pick: {take}{newline}")
    return "".join(lines)


def _shot(loaded: LoadedSpec, shot_id: str) -> Shot:
    try:
        return loaded.shot(shot_id)
    except KeyError:
        ids = [s.id for s in loaded.shots]
        raise NoSuchShot(
            f"no shot {shot_id!r} in {loaded.path.name}.{did_you_mean(shot_id, ids)} "
            "The spec was not changed"
        ) from None


def _templated_pick(doc: Any, item: Any) -> tuple[str, str] | None:
    """(where, the template) when the shot's pick is a template, in it or in `defaults:`:
    a number written over it would hide what the template chooses."""
    if "pick" in item:
        owner, where = item, "the shot"
    else:
        defaults = doc.get("defaults")
        if not hasattr(defaults, "get") or "pick" not in defaults:
            return None
        owner, where = defaults, "defaults"
    written = owner.get("pick")
    if isinstance(written, str) and is_template(written):
        return where, written
    return None


def _written(doc: Any, shot_id: str) -> Any:
    """The shot's mapping as written, when its id is written literally (not a template)."""
    shots = doc.get("shots") if hasattr(doc, "get") else None
    for item in shots or ():
        written = item.get("id") if hasattr(item, "get") else None
        if isinstance(written, str) and not is_template(written) and written.strip() == shot_id:
            return item
    return None
