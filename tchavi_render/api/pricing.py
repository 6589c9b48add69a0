"""What a generation costs in credits, as the Tchavi docs state it."""

from __future__ import annotations

__all__ = ["AUTO_DURATION_BILLED", "CREDITS_PER_SECOND", "billed_seconds", "estimate_credits"]

CREDITS_PER_SECOND: dict[str, int] = {"480p": 260, "720p": 580}
# duration -1 ("auto") is billed as 10 seconds whatever the service picks.
AUTO_DURATION_BILLED = 10


def billed_seconds(duration: int) -> int:
    return AUTO_DURATION_BILLED if duration == -1 else duration


def estimate_credits(resolution: str, duration: int) -> int:
    """Credits charged at submission for one job."""
    return CREDITS_PER_SECOND[resolution] * billed_seconds(duration)
