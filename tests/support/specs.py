"""Storyboards the end-to-end tests render: the header they share, and generated ones."""

from __future__ import annotations

__all__ = ["HARBOUR_AND_MARKET", "head", "storyboard"]


def head(backend: str = "tchavi", **defaults: str | int | bool) -> str:
    """A spec up to its `shots:` line: one-second seedance-2 shots, plus `defaults` in order."""
    lines = [
        "version: 1",
        f"backend: {backend}",
        "defaults:",
        "  model: seedance-2",
        "  duration: 1",
    ]
    for name, value in defaults.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"  {name}: {text}")
    lines.append("shots:")
    return "\n".join(lines) + "\n"


def storyboard(count: int, *, tag: str = "shot") -> str:
    """A spec of `count` one-second shots with distinct prompts (so distinct keys)."""
    lines = [
        f'  - id: {tag}-{i:03d}\n    prompt: "Take {i} of a quiet harbour at dawn"\n'
        for i in range(count)
    ]
    return head(generate_audio=False, seed=5) + "".join(lines)


# Two silent shots, seeded: what the remote-cache tests share between machines.
HARBOUR_AND_MARKET = head(seed=5, generate_audio=False) + (
    "  - id: harbour\n"
    '    prompt: "Fishing boats leaving Ganvie at dawn"\n'
    "  - id: market\n"
    '    prompt: "Dantokpa market, handheld"\n'
)
