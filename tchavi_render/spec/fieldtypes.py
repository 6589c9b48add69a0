"""What a spec value may be: the field validators, their messages and JSON Schema pieces."""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, PlainValidator, WithJsonSchema

from tchavi_render.api.models import MAX_REFERENCE, SEED_MAX, SEED_MIN
from tchavi_render.spec.template import MAX_TEXT, is_template
from tchavi_render.text import did_you_mean

__all__ = [
    "MAX_TAKES",
    "NULL_SCHEMA",
    "RESERVED_NAMES",
    "Assets",
    "Duration",
    "Flag",
    "ForEach",
    "FrameRef",
    "ManyMedia",
    "OneMedia",
    "OptStr",
    "Pick",
    "Prompt",
    "Seed",
    "Str",
    "Takes",
    "Vars",
    "check_string",
    "describe",
    "enum_schema",
    "media_list_schema",
    "media_schema",
    "one_of",
    "var_name_problem",
]

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Names Jinja reads as something else, and the one function templates are given.
RESERVED_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "loop", "self", "caller"}
    | {"varargs", "kwargs", "ref", "and", "or", "not", "in", "is", "if", "else"}
    | set(keyword.kwlist)
)


def describe(value: object) -> str:
    """A short, YAML-flavoured rendering of a value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, tuple | list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def var_name_problem(name: str) -> str | None:
    """Why `name` cannot be a template variable, or None when it can."""
    if not _VAR_NAME.match(name):
        return (
            f"{name!r} is not a valid variable name; use letters, digits and _ "
            "(not starting with a digit)"
        )
    if name in RESERVED_NAMES:
        return f"{name!r} is a reserved name in templates; choose another"
    return None


_TEMPLATE: dict[str, Any] = {
    "type": "string",
    "pattern": r"\{\{|\{%|\{#",
    "description": "A Jinja template; its rendered text must be a valid value.",
}
NULL_SCHEMA: dict[str, Any] = {"type": "null"}
_MEDIA_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "An asset name, a path relative to the spec, or an http(s) URL.",
}
_FRAME_REF: dict[str, Any] = {
    "type": "object",
    "description": "A frame of another shot's rendered video (continuity).",
    "properties": {
        "shot": {"type": "string", "minLength": 1, "description": "The upstream shot's id."},
        "frame": {
            "anyOf": [{"enum": ["first", "last"]}, {"type": "number", "minimum": 0}],
            "default": "last",
            "description": "first, last, or a time in seconds.",
        },
    },
    "required": ["shot"],
    "additionalProperties": False,
}
_MEDIA_ITEM: dict[str, Any] = {"anyOf": [_MEDIA_NAME, _FRAME_REF]}


@dataclass(frozen=True)
class FrameRef:
    """`{shot: ID, frame: first|last|SECONDS}` as written: a frame of another shot's output."""

    shot: str
    frame: str | float = "last"


def _frame_ref(v: Mapping[str, Any]) -> FrameRef:
    unknown = sorted(set(v) - {"shot", "frame"})
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in a frame reference; "
            "write {shot: ID, frame: first|last|SECONDS}"
        )
    shot = v.get("shot")
    if not isinstance(shot, str) or not shot.strip():
        raise ValueError("a frame reference needs 'shot': the id of the shot to take it from")
    frame = v.get("frame", "last")
    if isinstance(frame, bool) or not (
        frame in ("first", "last") or (isinstance(frame, int | float) and frame >= 0)
    ):
        raise ValueError(
            f"frame: must be first, last, or a time in seconds (>= 0), got {describe(frame)}"
        )
    return FrameRef(shot.strip(), float(frame) if isinstance(frame, int | float) else frame)


def _media_entry(v: Any) -> str | FrameRef:
    if isinstance(v, Mapping):
        return _frame_ref(v)
    return check_string(v)


def check_string(v: Any) -> str:
    if isinstance(v, str):
        if len(v) > MAX_TEXT:
            # The same bound as a rendered template: no field of a request is that long.
            raise ValueError(f"is {len(v):,} characters long; at most {MAX_TEXT:,} are allowed")
        return v
    hint = "; quote it" if isinstance(v, int | float) and not isinstance(v, bool) else ""
    raise ValueError(f"must be a string, got {describe(v)}{hint}")


def _optional_string(v: Any) -> str | None:
    return None if v is None else check_string(v)


# YAML 1.1 booleans: editors and our loader read them as text (YAML 1.2), PyYAML did not.
_YAML11_BOOLS = {
    **dict.fromkeys(("yes", "on", "y"), "true"),
    **dict.fromkeys(("no", "off", "n"), "false"),
}
_INTEGER_TEXT = re.compile(r"^\s*[-+]?[0-9]+\s*$")


def _typed(kind: type, name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, str):
            if is_template(v):
                return v
            raise ValueError(f"must be {name} or a template, got {v!r}; {_text_hint(v, kind)}")
        if isinstance(v, kind) and (kind is bool or not isinstance(v, bool)):
            return v
        if isinstance(v, float) and not math.isfinite(v):
            # 1e400 reads as infinity: say what was written, not "inf".
            raise ValueError(f"must be {name}, got {describe(v)}, which is out of range")
        raise ValueError(f"must be {name}, got {describe(v)}")

    return check


def _text_hint(v: str, kind: type) -> str:
    """What to write instead of the text `v` where a number or a boolean is expected."""
    meant = _YAML11_BOOLS.get(v.strip().lower()) if kind is bool else None
    if meant is not None:
        return f"write {meant} (YAML reads yes, no, on and off as text)"
    unquoted = v.strip() in ("true", "false") if kind is bool else _INTEGER_TEXT.match(v)
    if unquoted:
        return "write it without quotes, or compute it with {{ ... }}"
    expected = "true or false" if kind is bool else "a whole number"
    return f"write {expected}, or compute it with {{{{ ... }}}}"


def _optional_media(v: Any) -> str | FrameRef | None:
    return None if v is None else _media_entry(v)


def _media_list(v: Any) -> tuple[str | FrameRef, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        raise ValueError(f"must be a list, got {v!r}; write [{v}]")
    if not isinstance(v, tuple):
        raise ValueError(f"must be a list of asset names, paths or URLs, got {describe(v)}")
    items: list[str | FrameRef] = []
    for i, item in enumerate(v):
        if isinstance(item, Mapping):
            try:
                items.append(_frame_ref(item))
            except ValueError as exc:
                raise ValueError(f"item {i + 1}: {exc}") from None
            continue
        if not isinstance(item, str) or not item:
            raise ValueError(
                f"item {i + 1} must be an asset name, path or URL, got {describe(item)}"
            )
        items.append(item)
    return tuple(items)


def _var_name(v: str) -> str:
    problem = var_name_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _asset_name(v: str) -> str:
    if not _ASSET_NAME.match(v):
        raise ValueError(
            f"{v!r} is not a valid asset name; use letters, digits, _ and - "
            "(no dots or slashes, so that a name is never mistaken for a path)"
        )
    return v


def _for_each_values(v: Any) -> tuple[Any, ...] | str:
    if isinstance(v, str):
        stripped = v.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            return stripped
        raise ValueError(
            f"must be a list of values or one expression like '{{{{ langs }}}}', got {v!r}"
        )
    if not isinstance(v, tuple):
        raise ValueError(f"must be a list of values, got {describe(v)}")
    if not v:
        raise ValueError("must list at least one value")
    return v


def _non_empty(v: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if v is not None and not v:
        raise ValueError("must name at least one variable and its values")
    return v


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if isinstance(v, str) and v in choices:
            return v
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"must be one of {listed}, got {describe(v)}.{did_you_mean(v, choices)}")

    return check


def _schema(*options: dict[str, Any], description: str) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": list(options), "description": description})


def enum_schema(choices: tuple[str, ...], description: str) -> WithJsonSchema:
    return _schema({"enum": list(choices)}, _TEMPLATE, NULL_SCHEMA, description=description)


def media_schema(description: str) -> WithJsonSchema:
    return _schema(_MEDIA_ITEM, NULL_SCHEMA, description=description)


def media_list_schema(field: str, description: str) -> WithJsonSchema:
    array = {"type": "array", "items": _MEDIA_ITEM, "maxItems": MAX_REFERENCE[field]}
    return _schema(array, NULL_SCHEMA, description=description)


VarName = Annotated[str, AfterValidator(_var_name)]
AssetName = Annotated[str, AfterValidator(_asset_name)]
Str = Annotated[str, PlainValidator(check_string)]
OptStr = Annotated[str | None, PlainValidator(_optional_string)]
OneMedia = Annotated[str | FrameRef | None, PlainValidator(_optional_media)]
ManyMedia = Annotated[tuple[str | FrameRef, ...] | None, PlainValidator(_media_list)]

Prompt = Annotated[
    str | None,
    PlainValidator(_optional_string),
    _schema(
        {"type": "string", "minLength": 1},
        NULL_SCHEMA,
        description="What to render; a template. {{ ref('asset') }} writes [Image1] & co.",
    ),
]
Duration = Annotated[
    int | str | None,
    PlainValidator(_typed(int, "an integer")),
    _schema(
        {"type": "integer", "minimum": 1, "maximum": 15},
        {"const": -1},
        _TEMPLATE,
        NULL_SCHEMA,
        description="Seconds of video, 1..15, or -1 for auto (billed as 10 s).",
    ),
]
Seed = Annotated[
    int | str | None,
    PlainValidator(_typed(int, "an integer")),
    _schema(
        {"type": "integer", "minimum": SEED_MIN, "maximum": SEED_MAX},
        _TEMPLATE,
        NULL_SCHEMA,
        description="The same request with the same seed gives the same video.",
    ),
]
Flag = Annotated[
    bool | str | None,
    PlainValidator(_typed(bool, "true or false")),
    _schema(
        {"type": "boolean"},
        _TEMPLATE,
        NULL_SCHEMA,
        description="Generate a soundtrack (default true).",
    ),
]
MAX_TAKES = 20


def _take_count(what: str, upper: str) -> Callable[[Any], int | str | None]:
    def check(v: Any) -> int | str | None:
        if v is None:
            return None
        if isinstance(v, str) and is_template(v):
            return v  # checked once rendered (spec/expand.py)
        if isinstance(v, int) and not isinstance(v, bool):
            if 1 <= v <= MAX_TAKES:
                return v
            raise ValueError(f"must be {what} from 1 to {upper}, got {v}")
        raise ValueError(f"must be {what} from 1 to {upper}, got {describe(v)}")

    return check


Takes = Annotated[
    int | str | None,
    PlainValidator(_take_count("a number of takes", str(MAX_TAKES))),
    _schema(
        {"type": "integer", "minimum": 1, "maximum": MAX_TAKES},
        _TEMPLATE,
        NULL_SCHEMA,
        description="How many takes of the shot to render (1..20), each with its own seed.",
    ),
]
Pick = Annotated[
    int | str | None,
    PlainValidator(_take_count("a take number", "takes")),
    _schema(
        {"type": "integer", "minimum": 1, "maximum": MAX_TAKES},
        _TEMPLATE,
        NULL_SCHEMA,
        description="The take that is the shot (1..takes, default 1); picking costs nothing.",
    ),
]
ForEachValues = Annotated[
    tuple[Any, ...] | str,
    PlainValidator(_for_each_values),
    _schema(
        {"type": "array", "minItems": 1},
        {"type": "string", "pattern": r"^\s*\{\{.*\}\}\s*$"},
        description="The values this variable takes; one shot per combination.",
    ),
]

Vars = Annotated[
    dict[VarName, Any],
    WithJsonSchema({"type": "object", "propertyNames": {"pattern": _VAR_NAME.pattern}}),
]
ForEach = Annotated[dict[VarName, ForEachValues] | None, AfterValidator(_non_empty)]
Assets = Annotated[
    dict[AssetName, Str],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": _ASSET_NAME.pattern},
            "additionalProperties": {"type": "string", "minLength": 1},
        }
    ),
]
