"""Shape validation: report every schema error, then set the broken parts aside and go on."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tchavi_render.spec.fieldtypes import describe
from tchavi_render.spec.locate import validation_problems
from tchavi_render.spec.model import GENERATION_FIELDS, TAKE_FIELDS, Spec
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.yamlpos import PathKey, YamlDoc

__all__ = ["Aside", "validate"]


@dataclass
class Aside:
    """What shape errors set aside, so that later checks neither blame it again nor miss
    the rest: field names (and the fields a misspelt key meant) of `defaults:` and of
    each shot by its path, the original index of each sequence clip kept, and whether a
    whole shot was dropped (its id is then unknown)."""

    defaults: set[str] = field(default_factory=set)
    shots: dict[PathKey, set[str]] = field(default_factory=dict)
    clips: list[int] | None = None
    lost_shot: bool = False


def validate(doc: YamlDoc, report: Reporter) -> tuple[Spec | None, list[PathKey], Aside]:
    """The valid part of the spec, each kept shot's path, and what was set aside.

    Every shape error is reported; then the offending parts are set aside (a bad shot,
    a bad default, a bad variable...) so that the rest can still be checked and all
    the problems come out in one run.
    """
    aside = Aside()
    raw = doc.value
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else describe(raw)
        report.error(
            doc.locate(()),
            f"a spec must be a mapping with 'version: 1' and 'shots:', got {got}",
        )
        return None, [], aside
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        locs = []
        for loc, problem in validation_problems(exc, doc):
            report.add(problem)
            locs.append(loc)
        repaired = _set_aside(raw, locs, aside)
        if repaired is None:
            return None, [], aside
        data, kept = repaired
        try:
            spec = Spec.model_validate(data)
        except ValidationError:
            return None, [], aside
        return spec, [("shots", i) for i in kept], aside
    return spec, [("shots", i) for i in range(len(spec.shots))], aside


def _set_aside(
    raw: dict[str, Any], locs: list[tuple[Any, ...]], aside: Aside
) -> tuple[dict[str, Any], list[int]] | None:
    """`raw` without the parts the errors at `locs` are about, and the shots kept.

    As little as possible is set aside: a bad field of a shot, not the shot, so its
    other fields are still checked and the shot still exists for frames and the
    sequence; a bad trim, not the sequence. What was set aside is noted in `aside` so
    that no later check blames it again.
    """
    data = dict(raw)
    nested: dict[str, set[str]] = {"defaults": set(), "vars": set(), "assets": set()}
    shot_fields: dict[int, set[str]] = {}
    clip_fields: dict[int, set[str]] = {}
    for loc in locs:
        head = loc[0] if loc else None
        index = loc[1] if len(loc) >= 2 and isinstance(loc[1], int) else None
        if head == "shots" and index is not None:
            # "" stands for the shot itself (not a mapping)
            shot_fields.setdefault(index, set()).add(str(loc[2]) if len(loc) > 2 else "")
        elif head == "sequence" and index is not None:
            clip_fields.setdefault(index, set()).add(str(loc[2]) if len(loc) > 2 else "")
        elif head in nested and len(loc) >= 2:
            nested[str(head)].add(str(loc[1]))
        elif head == "version":
            data["version"] = 1
        elif head == "shots" or head is None:
            return None  # no usable list of shots
        else:
            data.pop(str(head), None)  # a bad or unknown top-level key: its default
    for key, names in nested.items():
        if names and isinstance(data.get(key), dict):
            data[key] = {k: v for k, v in data[key].items() if k not in names}
    aside.defaults = _with_meant(nested["defaults"])
    shots = data.get("shots")
    if not isinstance(shots, tuple):
        return None
    repaired = list(shots)
    kept: list[int] = []
    for i, shot in enumerate(shots):
        names = shot_fields.get(i, set())
        if names and ("" in names or not isinstance(shot, dict)):
            aside.lost_shot = True  # not a mapping: nothing of it can be checked
            continue
        kept.append(i)
        if names:
            aside.shots[("shots", i)] = _with_meant(names)
            repaired[i] = {k: v for k, v in shot.items() if k not in names}
            if "id" in names:
                repaired[i]["id"] = ""  # a stand-in: the other fields are still checked
    data["shots"] = tuple(repaired[i] for i in kept)
    clips = data.get("sequence")
    if clip_fields and isinstance(clips, tuple):
        kept_clips: list[Any] = []
        aside.clips = []
        for i, clip in enumerate(clips):
            names = clip_fields.get(i, set())
            if names & {"", "id"}:
                continue  # no shot named: nothing left of the clip to check
            if names and isinstance(clip, dict):
                clip = {k: v for k, v in clip.items() if k not in names}
            kept_clips.append(clip)
            aside.clips.append(i)
        data["sequence"] = tuple(kept_clips) or None
    return data, kept


def _with_meant(names: set[str]) -> set[str]:
    """`names` plus the generation field each misspelt one meant (`promt` -> `prompt`), so
    that a typo is reported once, not again as a missing field."""
    out = set(names)
    for name in names:
        out.update(
            difflib.get_close_matches(name, GENERATION_FIELDS + TAKE_FIELDS, n=1, cutoff=0.6)
        )
    return out
