"""The final cut's order: `sequence:` checked against the shots, or every shot in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from tchavi_render.spec.model import SequenceClip
from tchavi_render.spec.shot import Location, SequenceItem, Shot
from tchavi_render.spec.yamlpos import YamlDoc
from tchavi_render.text import did_you_mean

__all__ = ["resolve_sequence"]


def resolve_sequence(
    clips: Sequence[tuple[int, SequenceClip]] | None,
    shots: Sequence[Shot],
    known: Mapping[str, int | None],
    doc: YamlDoc,
    error: Callable[[Location, str], None],
    *,
    every_id_known: bool = True,
) -> tuple[SequenceItem, ...]:
    """The clips of the final cut; each problem goes to `error` at the item that has it.

    `clips` pairs each clip with its index under `sequence:` (clips with shape errors are
    left out). `known` maps every id the spec gives, those of shots with errors included,
    to its duration (None when unknown), so a broken shot is blamed once (where it is)
    and not again here. When `every_id_known` is false some shot's id could not be worked
    out, so an id that is not found is not an error.
    """
    if clips is None:
        return tuple(SequenceItem(s.id, None, s.location) for s in shots)
    items: list[SequenceItem] = []
    for i, clip in clips:
        path = ("sequence", i)
        if clip.id not in known:
            if every_id_known:
                ids = list(known)
                hint = did_you_mean(clip.id, ids) or _listed(ids)
                error(doc.locate((*path, "id")), f"sequence: no shot has the id {clip.id!r}.{hint}")
            continue
        duration = known[clip.id]
        if clip.trim is not None and duration is not None and duration > 0:
            end = clip.trim[1]
            if end > duration:
                error(
                    doc.locate((*path, "trim", 1)),
                    f"trim: ends at {end:g} s, past the end of shot {clip.id!r} "
                    f"({duration} s); end it at {duration} at most",
                )
                continue
        items.append(SequenceItem(clip.id, clip.trim, doc.locate(path)))
    return tuple(items)


def _listed(ids: list[str], most: int = 5) -> str:
    if not ids:
        return " The storyboard has no shots."
    more = f" and {len(ids) - most} more" if len(ids) > most else ""
    return " The shots are " + ", ".join(repr(i) for i in ids[:most]) + more + "."
