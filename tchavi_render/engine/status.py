"""Is each shot's render up to date with the spec? The plan's answer, worded for people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tchavi_render.engine.lock import LockEntry
from tchavi_render.engine.plan import Action, Plan, PlannedShot
from tchavi_render.errors import ShotsNotReady

__all__ = ["ShotState", "State", "require_ready", "shot_states"]


class State(StrEnum):
    UP_TO_DATE = "up to date"
    OUT_OF_DATE = "out of date"  # rendered, but the spec now asks for something else
    MISSING = "output missing"  # the lock's render of this very request is not on disk
    NOT_RENDERED = "not rendered yet"


@dataclass(frozen=True)
class ShotState:
    """Where one shot of the spec stands: its plan action and the reasons, as data."""

    id: str
    state: State
    action: Action
    reasons: tuple[str, ...]
    entry: LockEntry | None  # what the lock says was rendered for this id

    @property
    def ready(self) -> bool:
        return self.state is State.UP_TO_DATE

    def describe(self) -> str:
        """One line: the state, and what apply would do about it and why."""
        if self.ready:
            return str(self.state)
        why = "; ".join(self.reasons)
        return f"{self.state} (apply would {self.action.value} it: {why})"


def _state(planned: PlannedShot) -> State:
    entry = planned.locked
    if planned.action is Action.UNCHANGED:
        return State.UP_TO_DATE
    if entry is None or not entry.rendered:
        return State.NOT_RENDERED
    if entry.key == planned.key:
        return State.MISSING
    return State.OUT_OF_DATE


def shot_states(plan: Plan) -> dict[str, ShotState]:
    """The state of every shot the plan covers (deleted shots left out), in plan order."""
    return {
        p.id: ShotState(p.id, _state(p), p.action, p.reasons, p.locked)
        for p in plan.shots
        if p.action is not Action.DELETE
    }


def require_ready(
    states: dict[str, ShotState], ids: Sequence[str], *, spec: Path, what: str
) -> None:
    """Raise ShotsNotReady naming every shot of `ids` that is not up to date."""
    blocking = [states[i] for i in dict.fromkeys(ids) if not states[i].ready]
    if not blocking:
        return
    count = len(blocking)
    lines = [f"  {s.id}: {s.describe()}" for s in blocking]
    raise ShotsNotReady(
        f"cannot {what}: {count} shot{'s' if count != 1 else ''} "
        f"{'are' if count != 1 else 'is'} not ready:\n"
        + "\n".join(lines)
        + f"\nRun `tchavi-render apply {spec}` first, then {what} again"
    )
