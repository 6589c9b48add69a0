"""A plan as rows: one line per shot that does anything (its symbol, id, action and cost)
and the lines under it; the takes of a shot of several takes told as one story."""

from __future__ import annotations

from dataclasses import dataclass

from tchavi_render.engine.plan import Action, Plan, PlannedShot, ShotTakes
from tchavi_render.text import credits

__all__ = ["PlanRow", "detail_lines", "plan_rows", "shot_head"]

SYMBOL = {
    Action.CREATE: "+",
    Action.REPLACE: "-/+",
    Action.REUSE: "<=",
    Action.COLLECT: "<-",
    Action.WAIT: "..",
    Action.DELETE: "-",
    Action.UNCHANGED: " ",
}
BLOCKED = "!"
COLOUR = {
    Action.CREATE: "green",
    Action.REPLACE: "yellow",
    Action.REUSE: "cyan",
    Action.COLLECT: "cyan",
    Action.WAIT: "cyan",
    Action.DELETE: "red",
    Action.UNCHANGED: "white",
}


def detail_lines(planned: PlannedShot) -> list[str]:
    """What to show under a shot: the field changes (and, for reuse or collect, where it
    comes from), then why apply leaves it alone when it does."""
    if not planned.changes:
        lines = list(planned.reasons)
    else:
        lines = [c.describe() for c in planned.changes]
        if planned.action in (Action.REUSE, Action.COLLECT, Action.WAIT):
            lines.insert(0, planned.reasons[0])
    if planned.blocked is not None:
        lines.append(f"blocked: {planned.blocked}")
    return lines


def shot_head(planned: PlannedShot) -> tuple[str, str]:
    """The symbol and the cost column of a shot's line."""
    if planned.blocked is not None:
        return BLOCKED, "blocked"
    cost = f"{credits(planned.estimated_credits)} credits" if planned.spends else ""
    if planned.action is Action.WAIT:
        cost = "0 credits"  # paid by the machine holding the claim
    return SYMBOL[planned.action], cost


@dataclass(frozen=True)
class PlanRow:
    """One line of a plan and the lines under it."""

    symbol: str
    id: str
    label: str  # the action, or what happens to a shot's takes
    cost: str
    details: tuple[str, ...]
    colour: str


def _shot_row(planned: PlannedShot) -> PlanRow:
    symbol, cost = shot_head(planned)
    colour = "red" if planned.blocked else COLOUR[planned.action]
    details = tuple(detail_lines(planned))
    return PlanRow(symbol, planned.id, planned.action.value, cost, details, colour)


def plan_rows(plan: Plan, verbose: bool) -> list[PlanRow]:
    """The plan's lines: one per shot that does anything (every shot with `verbose`); the
    takes of a shot of several takes are told as one story (engine.plan.ShotTakes)."""
    groups = plan.takes()
    rows: list[PlanRow] = []
    told: set[str] = set()
    for planned in plan.shots:
        group = groups.get(planned.shot_id)
        if group is None:
            if verbose or planned.action is not Action.UNCHANGED:
                rows.append(_shot_row(planned))
        elif group.shot_id not in told:
            told.add(group.shot_id)
            rows += _take_rows(group, verbose)
    return rows


def _take_rows(group: ShotTakes, verbose: bool) -> list[PlanRow]:
    shot, rows = group.shot_id, group.rows
    out: list[PlanRow] = []
    swapped: set[int] = set()
    if group.pick_changed and group.pick is not None and group.locked_pick is not None:
        swapped = {group.pick, group.locked_pick}
        count = len(group.continued_by)
        why = (
            "no cost"
            if not count
            else f"no cost; {count} shots continue it and re-render"
            if count != 1
            else "no cost; 1 shot continues it and re-renders"
        )
        out.append(
            PlanRow("~", shot, f"pick {group.locked_pick} → {group.pick}", f"({why})", (), "cyan")
        )

    def take_details(chosen: list[PlannedShot]) -> tuple[str, ...]:
        lines = []
        for p in chosen:
            seed = p.shot.seed if p.shot is not None else None
            head = f"take {p.take}" + (f" (seed {seed})" if seed is not None else "")
            reasons = [d for d in detail_lines(p) if not d.startswith("seed: ")]
            locked = p.locked
            if not reasons and locked is not None and locked.take is None and locked.seed is None:
                reasons = [
                    "the shot had no seed: its takes get derived seeds, take 1 too (its "
                    "unseeded render stays in the cache; set a seed to keep it as take 1)"
                ]
            lines.append(f"{head}: {reasons[0]}" if reasons else head)
            lines += [f"  {d}" for d in reasons[1:]]
        return tuple(lines)

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'s' if n != 1 else ''}"

    # the shot itself, when it has one take now: its own line, as any shot's
    single = [p for p in rows if p.take is None]
    rows = tuple(p for p in rows if p.take is not None)
    out += [_shot_row(p) for p in single if verbose or p.action is not Action.UNCHANGED]
    blocked = [p for p in rows if p.blocked is not None]
    live = [p for p in rows if p.blocked is None]
    new = [p for p in live if p.spends and not (p.locked is not None and p.locked.rendered)]
    again = [p for p in live if p.spends and p not in new]
    collect = [p for p in live if p.action is Action.COLLECT]
    back = [p for p in live if p.action is Action.REUSE and p.take not in swapped]
    dropped = [p for p in live if p.action is Action.DELETE and p.take not in swapped]
    unchanged = [p for p in live if p.action is Action.UNCHANGED]
    if group.takes == 0 and dropped and not single:
        out.append(PlanRow("-", shot, f"delete ({plural(len(dropped), 'take')})", "", (), "red"))
        dropped = []
    if new:
        cost = sum(p.estimated_credits for p in new)
        more = "more " if group.locked_pick is not None or unchanged or back or again else ""
        out.append(
            PlanRow(
                "+",
                shot,
                f"{len(new)} {more}take{'s' if len(new) != 1 else ''}",
                f"{credits(cost)} credits",
                take_details(new),
                "green",
            )
        )
    if again:
        cost = sum(p.estimated_credits for p in again)
        out.append(
            PlanRow(
                "-/+",
                shot,
                f"{plural(len(again), 'take')} render again",
                f"{credits(cost)} credits",
                take_details(again),
                "yellow",
            )
        )
    if collect:
        out.append(
            PlanRow(
                "<-",
                shot,
                plural(len(collect), "take") + " to collect",
                "",
                take_details(collect),
                "cyan",
            )
        )
    if back:
        out.append(
            PlanRow(
                "<=", shot, plural(len(back), "take") + " reused", "", take_details(back), "cyan"
            )
        )
    if dropped:
        out.append(
            PlanRow(
                "-",
                shot,
                f"{plural(len(dropped), 'take')} dropped",
                "",
                (
                    f"take{'s' if len(dropped) != 1 else ''} "
                    f"{', '.join(str(p.take) for p in dropped)}: the files go, the cache keeps "
                    "the renders (raising takes again costs nothing)",
                ),
                "red",
            )
        )
    for p in blocked:
        out.append(_shot_row(p))
    if verbose and not out:
        pick = f", pick {group.pick}" if group.pick is not None else ""
        out.append(PlanRow(" ", shot, f"{plural(len(unchanged), 'take')}{pick}", "", (), "white"))
    return out
