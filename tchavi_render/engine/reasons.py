"""Why a shot renders again, as a reader sees it: the request fields that changed, a prompt's
word diff, a change of whitespace made visible, an edited file named."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from tchavi_render.api.models import GENERATION_FIELDS
from tchavi_render.spec.shot import LocalMedia, Shot, ShotFrame, UrlMedia

__all__ = ["FieldChange", "field_changes", "local_files", "whitespace_diff", "word_diff"]


@dataclass(frozen=True)
class FieldChange:
    """One request field that differs from what the lock says was rendered."""

    field: str
    old: Any
    new: Any
    # sha256 -> the file's path in the spec, for local media of the new request: a file
    # edited in place is named, not only its digests
    names: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def describe(self) -> str:
        if self.field == "prompt" and isinstance(self.old, str) and isinstance(self.new, str):
            return f"prompt: {word_diff(self.old, self.new)}"
        if self.old is None:
            return f"{self.field}: added {_show(self.new, self.names)}"
        if self.new is None:
            return f"{self.field}: removed (was {_show(self.old)})"
        edited = _edited_file(self.old, self.new, self.names)
        if edited is not None:
            return f"{self.field}: {edited}"
        return f"{self.field}: {_show(self.old)} -> {_show(self.new, self.names)}"


def _show(value: Any, names: Mapping[str, str] | None = None) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, dict) and "sha256" in value:
        digest = str(value["sha256"])
        name = (names or {}).get(digest)
        return f"{name} (sha256:{digest[:12]})" if name else f"file sha256:{digest[:12]}"
    if isinstance(value, dict) and "shot_output" in value:
        return f"frame {value.get('frame')} of output sha256:{str(value['shot_output'])[:12]}"
    if isinstance(value, dict) and "url" in value:
        return str(value["url"])
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, names) for v in value) + "]"
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def _edited_file(old: Any, new: Any, names: Mapping[str, str]) -> str | None:
    """`assets/statue.png was edited (sha256:… -> …)` when one local file changed bytes."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return None
    if set(old) != {"sha256"} or set(new) != {"sha256"}:
        return None
    name = names.get(str(new["sha256"]))
    if name is None:
        return None
    return f"{name} was edited (sha256:{str(old['sha256'])[:12]} -> {str(new['sha256'])[:12]})"


def _visible(space: str) -> str:
    """Whitespace as a reader can see it in a reason."""
    return space.replace(" ", "·").replace("\t", "→").replace("\n", "↵")


def _edge_change(old: str, new: str, edge: str) -> str | None:
    if old == new:
        return None
    if new == old + "\n":
        return f"{edge} newline added"
    if old == new + "\n":
        return f"{edge} newline removed"
    return f"{edge} whitespace [-{_visible(old)}-] {{+{_visible(new)}+}}".replace("[--] ", "")


def whitespace_diff(old: str, new: str) -> str:
    """What changed between two texts with the same words: only their whitespace, shown."""
    notes = []
    lead = _edge_change(
        old[: len(old) - len(old.lstrip())], new[: len(new) - len(new.lstrip())], "leading"
    )
    if lead:
        notes.append(lead)
    core_old, core_new = old.strip(), new.strip()
    if core_old != core_new:
        a = re.findall(r"\S+|\s+", core_old)
        b = re.findall(r"\S+|\s+", core_new)
        out: list[str] = []
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                out.append("".join(a[i1:i2]))
                continue
            if i2 > i1:
                out.append("[-" + _visible("".join(a[i1:i2])) + "-]")
            if j2 > j1:
                out.append("{+" + _visible("".join(b[j1:j2])) + "+}")
        notes.append("".join(out))
    trail = _edge_change(old[len(old.rstrip()) :], new[len(new.rstrip()) :], "trailing")
    if trail:
        notes.append(trail)
    return "whitespace only: " + "; ".join(notes)


def word_diff(old: str, new: str) -> str:
    """A word diff in git's plain style: `[-removed-]{+added+}` around unchanged words; a
    change of whitespace alone is shown with visible marks (`[-·-]`, `trailing newline
    added`), never as an unchanged text."""
    a, b = old.split(), new.split()
    if a == b and old != new:
        return whitespace_diff(old, new)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(a[i1:i2])
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def field_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], files: Mapping[str, str] | None = None
) -> tuple[FieldChange, ...]:
    """The fields that differ; `files` names local media by digest (sha256 -> path)."""
    fields = sorted(set(old) | set(new), key=_field_order)
    return tuple(
        FieldChange(name, old.get(name), new.get(name), dict(files or {}))
        for name in fields
        if old.get(name) != new.get(name)
    )


def local_files(shot: Shot) -> dict[str, str]:
    """sha256 -> path as the spec names it, for the shot's local media."""
    out: dict[str, str] = {}
    for _, media in shot.media():
        match media:
            case LocalMedia():
                out.setdefault(media.sha256, media.relpath)
            case UrlMedia() | ShotFrame():
                pass
            case _:
                assert_never(media)
    return out


def _field_order(name: str) -> tuple[int, str]:
    order = GENERATION_FIELDS  # the request's own order
    return (order.index(name) if name in order else len(order), name)
