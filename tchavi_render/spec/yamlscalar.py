"""YAML scalars: the YAML 1.2 core schema's types for plain text, and the tags a spec may use."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["CORE_TAG", "OutOfRange", "parse_scalar", "tagged_scalar"]

_NULL = re.compile(r"^(?:null|Null|NULL|~|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

CORE_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {CORE_TAG + name for name in ("str", "int", "float", "bool", "null")}


class OutOfRange(float):
    """A number written too large for a float (`1e400` reads as infinity). It remembers its
    text, so that messages show what was written instead of `inf`."""

    text: str

    def __new__(cls, text: str) -> OutOfRange:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def parse_scalar(text: str) -> Any:
    """The typed value a plain scalar `text` denotes in the YAML 1.2 core schema."""
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    try:
        if _INT10.match(text):
            return int(text)
        if _INT8.match(text):
            return int(text[2:], 8)
        if _INT16.match(text):
            return int(text[2:], 16)
    except ValueError:
        # More digits than Python converts (int_max_str_digits): not a number we can use.
        return text
    if _FLOAT.match(text):
        value = float(text)
        return value if math.isfinite(value) else OutOfRange(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


def tagged_scalar(tag: str | None, text: str, *, plain: bool) -> Any:
    """The value of a scalar written with `tag` (None when untagged); ValueError says why
    the tag or the text is refused."""
    if tag is None:
        return parse_scalar(text) if plain else text
    if tag == "!" or tag == CORE_TAG + "str":
        return text
    if tag not in _SCALAR_TAGS:
        raise ValueError(f"unsupported YAML tag {tag!r}; remove it")
    typed = parse_scalar(text)
    expected = tag[len(CORE_TAG) :]
    ok = {
        "int": isinstance(typed, int) and not isinstance(typed, bool),
        "float": isinstance(typed, int | float) and not isinstance(typed, bool),
        "bool": isinstance(typed, bool),
        "null": typed is None,
    }[expected]
    if not ok:
        raise ValueError(f"{text!r} is not a valid !!{expected}")
    return float(typed) if expected == "float" else typed
