"""Masks what looks like a credential in a text before any message shows it.

Messages quote user values (`got '...'`) so that a user sees what was wrong. A value can
be a secret: a spec that is a symlink to a `.env` file, a var file holding a token, a key
pasted into a field. `redact` is applied where messages leave the program (every Problem,
the CLI's error handler, the crash log), so no message needs to know which values are
secret. It keeps the name of an assignment and hides its value; hexadecimal digests
(sha256 of files, job ids) are not secrets and are left as they are.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["MASK", "redact"]

MASK = "***"

# Known token shapes: Tchavi and OpenAI-style keys, AWS access key ids, GitHub and Slack tokens.
_PREFIXED = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}"
    r"|\bAKIA[0-9A-Z]{12,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{16,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{8,}"
)
# NAME=value / NAME: value where NAME says it holds a secret (TCHAVI_API_KEY=..., password: ...).
_ASSIGNMENT = re.compile(
    r"""(?P<name>\b(?:[A-Za-z0-9]+[_-])*"""
    r"""(?:api[_-]?key|key|token|secret|password|passwd|pwd|credentials?|auth|signature)"""
    r"""(?:[_-][A-Za-z0-9]+)*)"""
    r"""(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s'",;]*(?:\.\.\.|\u2026)|[^\s'",;]*[^\s'",;:.)])""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# A long run of token characters: masked when it looks random (see _looks_random).
_TOKEN = re.compile(r"[A-Za-z0-9_+/=.-]{24,}")
# An id or a digest: hex, maybe with dashes (a UUID) and a short prefix (job_, req_).
_PLACEHOLDER = re.compile(r"value|<[^>]*>|.*(?:\.\.\.|\u2026)", re.IGNORECASE)
_HEX_ID = re.compile(r"(?:[A-Za-z]{1,8}[_-])?[0-9a-fA-F-]+")


def redact(text: str) -> str:
    """`text` with every credential-looking part replaced by `***`."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _ASSIGNMENT.sub(_mask_assignment, text)
    text = _PREFIXED.sub(MASK, text)
    return _TOKEN.sub(lambda m: MASK if _looks_random(m.group(0)) else m.group(0), text)


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group("value").strip("'\"")
    if value == MASK or _PLACEHOLDER.fullmatch(value) or not any(c.isalnum() for c in value):
        return match.group(0)  # nothing, or a placeholder: key=value, sk-tch_..., <key>
    if ":" in match.group("sep") and not _secret_like(value):
        return match.group(0)  # prose after a colon ("a valid key: export it")
    return f"{match.group('name')}{match.group('sep')}{MASK}"


def _secret_like(value: str) -> bool:
    """A value after `name:` that is neither a word of prose nor a line number (a file
    named `api_key.yaml:3:1:` is a place): it has a digit, or is long."""
    if re.fullmatch(r"[\d:]+", value):
        return False
    return any(c.isdigit() for c in value) or len(value) >= 16


def _looks_random(token: str) -> bool:
    """True for a token that switches character class (lower, upper, digit) at least once
    in three characters, as random keys do; words, paths and names do not. Hexadecimal
    digests and ids are not secrets."""
    if _HEX_ID.fullmatch(token):
        return False
    classes = [_char_class(c) for c in token if c.isalnum()]
    if len(classes) < 20:
        return False
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    return switches * 3 >= len(classes)


def _char_class(c: str) -> int:
    return 0 if c.isdigit() else 1 if c.islower() else 2
