"""Turns pydantic validation errors and template failures into located Problems (file:line:col)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from tchavi_render.errors import Problem
from tchavi_render.spec.fieldtypes import describe
from tchavi_render.spec.model import (
    GENERATION_FIELDS,
    TAKE_FIELDS,
    Defaults,
    SequenceClip,
    ShotSpec,
    Spec,
)
from tchavi_render.spec.shot import Location
from tchavi_render.spec.template import TemplateFailure
from tchavi_render.spec.yamlpos import PathKey, YamlDoc
from tchavi_render.text import did_you_mean

__all__ = ["problem_at", "template_problem", "validation_problems"]

_MISSING_HINTS = {
    "version": "add 'version: 1' at the top of the spec",
    "shots": "add a 'shots:' list with at least one shot",
    "id": "give every shot an 'id:'",
}
_TYPE_NAMES = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
}


def problem_at(location: Location, message: str, severity: str = "error") -> Problem:
    """A Problem at a Location."""
    return Problem(message, location.file, location.line, location.column, severity)


def _model_at(prefix: tuple[Any, ...]) -> type[BaseModel] | None:
    if prefix == ():
        return Spec
    if prefix == ("defaults",):
        return Defaults
    if len(prefix) == 2 and prefix[0] == "shots" and isinstance(prefix[1], int):
        return ShotSpec
    if len(prefix) == 2 and prefix[0] == "sequence" and isinstance(prefix[1], int):
        return SequenceClip
    return None


def _label(loc: tuple[Any, ...]) -> str:
    names = [p for p in loc if isinstance(p, str) and p != "[key]"]
    if len(names) >= 2 and names[-2] == "for_each":
        return f"for_each {names[-1]}"
    return names[-1] if names else "spec"


def validation_problems(
    exc: ValidationError, doc: YamlDoc, base: PathKey = ()
) -> list[tuple[tuple[Any, ...], Problem]]:
    """(loc, Problem) for every error of a validation of the value at `base` in `doc`."""
    out: list[tuple[tuple[Any, ...], Problem]] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        kind = error.get("type", "")
        path: PathKey = (*base, *(p for p in loc if p != "[key]"))
        if kind == "extra_forbidden":
            name = str(loc[-1])
            model = _model_at(loc[:-1])
            known = list(model.model_fields) if model is not None else []
            message = f"unknown key {name!r}.{did_you_mean(name, known)}"
            if model is Spec and name in GENERATION_FIELDS + TAKE_FIELDS:
                message += " Generation fields go under 'defaults:' or in a shot."
            elif model is not None and not did_you_mean(name, known):
                message += f" Known keys: {', '.join(known)}."
            location = doc.locate(path, key=True)
        elif kind == "missing":
            name = str(loc[-1])
            message = f"{name!r} is required"
            hint = _MISSING_HINTS.get(name)
            if _model_at(loc[:-1]) is SequenceClip:
                hint = "name the shot: {id: ..., trim: [start, end]}"
            if hint:
                message += f"; {hint}"
            location = doc.locate(path[:-1])
        else:
            raw = (error.get("ctx") or {}).get("error")
            if raw is not None:
                text = str(raw)
            elif kind in _TYPE_NAMES and _model_at(loc) is ShotSpec:
                # `shots` is a list all right: it is this item that is not a shot.
                text = (
                    f"item {int(loc[1]) + 1} must be a mapping like {{id: ..., prompt: ...}}, "
                    f"got {describe(error.get('input'))}"
                )
            elif kind in _TYPE_NAMES:
                text = f"must be {_TYPE_NAMES[kind]}, got {describe(error.get('input'))}"
            else:
                text = str(error.get("msg", "is invalid"))
            if loc and loc[-1] == "[key]":
                message = text
                location = doc.locate(path, key=True)
            else:
                message = f"{_label(loc)}: {text}"
                location = doc.locate(path)
        out.append((loc, problem_at(location, message)))
    return out


def template_problem(
    failure: TemplateFailure, doc: YamlDoc, path: PathKey, prefix: str, suffix: str
) -> Problem:
    """A template failure located in its own file (an included template) or in the field."""
    if failure.file is None:
        location = doc.template_location(path, failure.line or 1)
        message = f"{prefix}{failure.message}{suffix}"
    else:
        location = Location(failure.file, failure.line or 1, 1)
        field = prefix.rstrip(": ")
        used = f" (included from {doc.locate(path)}" + (f", {field}" if field else "") + ")"
        message = f"{failure.message}{used}{suffix}"
    return problem_at(location, message)
