"""How results look: plans as text, markdown or JSON; apply progress as lines, rich or JSON."""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any

import click

from tchavi_render.engine.plan import Action, Plan, PlannedShot

if TYPE_CHECKING:
    # Annotations only: importing apply (and the API client) would slow `plan` down.
    from tchavi_render.engine.apply import ApplyEvent, ApplyResult
    from tchavi_render.engine.lock import Lockfile

__all__ = [
    "JsonEvents",
    "LineEvents",
    "lock_text",
    "plan_json",
    "plan_markdown",
    "plan_text",
    "result_text",
]

SYMBOL = {
    Action.CREATE: "+",
    Action.REPLACE: "-/+",
    Action.REUSE: "<=",
    Action.DELETE: "-",
    Action.UNCHANGED: " ",
}
COLOUR = {
    Action.CREATE: "green",
    Action.REPLACE: "yellow",
    Action.REUSE: "cyan",
    Action.DELETE: "red",
    Action.UNCHANGED: "white",
}


def credits(n: int) -> str:
    return f"{n:,}"


def summary_line(plan: Plan) -> str:
    s = plan.summary
    parts = [
        f"{s.create} to create",
        f"{s.replace} to replace",
        f"{s.reuse} to reuse",
        f"{s.unchanged} unchanged",
        f"{s.delete} to delete",
    ]
    return f"Plan: {', '.join(parts)}. Estimated cost: {credits(s.estimated_credits)} credits."


def _detail_lines(planned: PlannedShot) -> list[str]:
    """What to show under a shot: the field changes (and, for reuse, where it comes from)."""
    if not planned.changes:
        return list(planned.reasons)
    lines = [c.describe() for c in planned.changes]
    if planned.action is Action.REUSE:
        lines.insert(0, planned.reasons[0])
    return lines


def plan_text(plan: Plan, *, colour: bool = False, verbose: bool = False) -> str:
    """One line per shot that does anything (every shot with `verbose`), then the summary."""
    lines: list[str] = []
    shown = [p for p in plan.shots if verbose or p.action is not Action.UNCHANGED]
    width = max((len(p.id) for p in shown), default=0)
    for planned in shown:
        symbol = SYMBOL[planned.action]
        cost = f"{credits(planned.estimated_credits)} credits" if planned.spends else ""
        head = f"  {symbol:>3} {planned.id:<{width}}  {planned.action.value:<9} {cost}".rstrip()
        if colour:
            head = click.style(head, fg=COLOUR[planned.action])
        lines.append(head)
        for detail in _detail_lines(planned):
            lines.append(f"        {detail}")
    for warning in plan.warnings:
        lines.append(f"Warning: {warning}")
    if not plan.has_changes:
        lines.append("No changes. Every shot is up to date.")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan, *, title: str = "tchavi-render plan") -> str:
    """A pull-request comment: summary first, a table of the shots that change, details."""
    s = plan.summary
    out = [f"### {title}", ""]
    if not plan.has_changes:
        out += ["No changes. Every shot is up to date.", ""]
    out += [
        f"**{s.create}** to create · **{s.replace}** to replace · **{s.reuse}** to reuse · "
        f"**{s.unchanged}** unchanged · **{s.delete}** to delete — "
        f"estimated **{credits(s.estimated_credits)} credits**",
        "",
    ]
    changing = [p for p in plan.shots if p.action is not Action.UNCHANGED]
    if changing:
        out += ["| | shot | action | credits | why |", "|---|---|---|---:|---|"]
        for p in changing:
            why = "<br>".join(_md_escape(d) for d in _detail_lines(p))
            out.append(
                f"| `{SYMBOL[p.action]}` | `{p.id}` | {p.action.value} | "
                f"{credits(p.estimated_credits) if p.spends else ''} | {why} |"
            )
        out.append("")
    for warning in plan.warnings:
        out.append(f"> Warning: {_md_escape(warning)}")
    return "\n".join(out).rstrip() + "\n"


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.as_json(), indent=2)


def result_text(result: ApplyResult) -> str:
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    order = ("rendered", "reused", "unchanged", "deleted", "failed", "skipped")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    spent = result.credits_used - result.credits_refunded
    lines = [
        f"Apply complete: {', '.join(parts) or 'nothing to do'}. Credits spent: {credits(spent)}."
    ]
    for failure in result.failed:
        job = f" (job {failure.job_id})" if failure.job_id else ""
        lines.append(f"  failed: {failure.id}{job}: {failure.message}")
    return "\n".join(lines)


def lock_text(lock: Lockfile) -> str:
    lines = []
    width = max((len(i) for i in lock.shots), default=0)
    for shot_id in sorted(lock.shots):
        e = lock.shots[shot_id]
        if e.output is not None:
            net = e.credits_used - e.credits_refunded
            lines.append(
                f"  {shot_id:<{width}}  {e.output.path}  {e.output.duration}s "
                f"{e.output.resolution}  {credits(net)} credits  job {e.job_id}"
            )
        elif e.failed is not None:
            lines.append(f"  {shot_id:<{width}}  failed ({e.failed.code}), job {e.failed.job_id}")
    lines.append(f"{len(lock.shots)} shots, {credits(lock.credits_total)} credits in total.")
    return "\n".join(lines)


class LineEvents:
    """Plain progress lines, one per event (for logs and pipes)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.spent = 0

    def __call__(self, event: ApplyEvent) -> None:
        if event.kind == "submit":
            self.spent += event.credits
        parts = [event.kind]
        if event.shot:
            parts.append(event.shot)
        if event.job_id:
            parts.append(f"job={event.job_id}")
        if event.status and event.kind == "status":
            parts.append(event.status)
        if event.message:
            parts.append(event.message)
        if event.kind == "submit":
            parts.append(f"credits={credits(self.spent)}")
        elif event.kind == "done":
            parts.append(f"credits={credits(event.credits)}")
        print(" ".join(parts), file=self.stream, flush=True)


class JsonEvents:
    """One JSON object per line on stdout."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: ApplyEvent) -> None:
        print(json.dumps(event.as_json(), sort_keys=True), file=self.stream, flush=True)


class RichEvents:
    """A live table on a terminal: one line per shot in flight, credits so far."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.rows: dict[str, tuple[str, str]] = {}
        self.spent = 0
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=True)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=False)
        for shot, (status, job) in list(self.rows.items())[-20:]:
            table.add_row(shot, status, job)
        table.caption = f"credits so far: {credits(self.spent)}"
        return table

    def __enter__(self) -> RichEvents:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def __call__(self, event: ApplyEvent) -> None:
        if event.kind == "submit":
            self.spent += event.credits
        if event.shot is None:
            return
        if event.kind in ("rendered", "reuse", "delete", "failed"):
            self.rows.pop(event.shot, None)
            mark = {"rendered": "✔ rendered", "reuse": "✔ reused", "delete": "✔ deleted"}.get(
                event.kind, f"✘ failed: {event.message}"
            )
            self.console.print(
                f"{mark} {event.shot}" + (f" (job {event.job_id})" if event.job_id else "")
            )
        else:
            self.rows[event.shot] = (event.status or event.kind, event.job_id or "")
        self.live.update(self._table())
