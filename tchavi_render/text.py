"""Wording shared by every layer: the closest known name to a misspelt one, and credits as
every page and table writes them."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["credits", "did_you_mean"]


def did_you_mean(value: object, choices: Sequence[str]) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if value.lower() in lowered:
            close = [lowered[value.lower()]]
    return f" Did you mean '{close[0]}'?" if close else ""


def credits(n: int) -> str:
    """A number of credits with thousands separators: 12,000."""
    return f"{n:,}"
