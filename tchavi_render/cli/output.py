"""How results look: plans as text, markdown or JSON (their rows from `plan_rows`); apply
progress as lines, rich or JSON; the lock as columns."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from tchavi_render.cli.plan_rows import plan_rows
from tchavi_render.engine.plan import Plan
from tchavi_render.text import credits

if TYPE_CHECKING:
    # Annotations only: importing apply (and the API client) would slow `plan` down.
    from tchavi_render.engine.apply import ApplyEvent, ApplyResult
    from tchavi_render.engine.journal import Journal
    from tchavi_render.engine.lock import Lockfile
    from tchavi_render.errors import Problem

__all__ = [
    "JsonEvents",
    "LineEvents",
    "interrupted_text",
    "lock_text",
    "plan_json",
    "plan_markdown",
    "plan_text",
    "result_text",
    "warning",
]


def summary_line(plan: Plan) -> str:
    s = plan.summary
    parts = [
        f"{s.create} to create",
        f"{s.replace} to replace",
        f"{s.reuse} to reuse",
        f"{s.unchanged} unchanged",
        f"{s.delete} to delete",
    ]
    if s.collect:
        parts.append(f"{s.collect} to collect (already paid)")
    if s.wait:
        parts.append(f"{s.wait} to wait for (paid on another machine)")
    if s.blocked:
        parts.append(f"{s.blocked} blocked")
    return f"Plan: {', '.join(parts)}. Estimated cost: {credits(s.estimated_credits)} credits."


def plan_notes(plan: Plan) -> list[str]:
    """Lines about jobs in flight that are no shot's row: paid ones apply collects, and
    those of another API key that it leaves alone."""
    notes = []
    if plan.orphans:
        count = len(plan.orphans)
        jobs = ", ".join(_job_of(j.job_id, j.shot) for j in plan.orphans)
        notes.append(
            f"note: {count} job{'s' if count != 1 else ''} of an earlier apply, already paid, "
            f"{'are' if count != 1 else 'is'} still rendering for requests the spec no longer "
            f"makes ({jobs}); apply collects {'them' if count != 1 else 'it'} into the cache"
        )
    if plan.foreign:
        count = len(plan.foreign)
        notes.append(
            f"warning: {count} job{'s' if count != 1 else ''} of an earlier apply "
            f"{'are' if count != 1 else 'is'} in flight under another API key or service; "
            f"apply leaves {'them' if count != 1 else 'it'} for that key to collect"
        )
    return notes


def warning(problem: Problem) -> str:
    """A spec warning as every verb prints it: `file:line:col: warning: message`."""
    text = str(problem)
    if problem.file is None:
        return f"warning: {text}"
    place, _, message = text.partition(": ")
    return f"{place}: warning: {message}"


def interrupted_text(journal: Journal, endpoint: str, account: str | None) -> str:
    """What an interrupted apply leaves behind: paid jobs still rendering, collected next time."""
    jobs = [i for i in journal.in_flight.values() if i.belongs_to(endpoint, account)]
    paid = [i for i in jobs if i.job_id]
    unsure = len(jobs) - len(paid)
    if not jobs:
        return "Interrupted: no job was left running."
    parts = []
    if paid:
        count = len(paid)
        parts.append(
            f"{count} paid job{'s' if count != 1 else ''} "
            f"({credits(sum(i.credits for i in paid))} credits) "
            f"{'are' if count != 1 else 'is'} still rendering"
        )
    if unsure:
        parts.append(
            f"{unsure} submit{'s were' if unsure != 1 else ' was'} cut short (the service may "
            "have made the job)"
        )
    return f"Interrupted: {' and '.join(parts)}. The next apply collects them without paying again."


def _job_of(job_id: str | None, shot: str) -> str:
    return f"{job_id or 'an interrupted submit'} for {shot!r}"


def plan_text(plan: Plan, *, colour: bool = False, verbose: bool = False) -> str:
    """One line per shot that does anything (every shot with `verbose`), then the summary."""
    lines: list[str] = []
    rows = plan_rows(plan, verbose)
    width = max((len(r.id) for r in rows), default=0)
    for row in rows:
        label = f"{row.label:<9}" if len(row.label) <= 9 else f"{row.label} "
        head = f"  {row.symbol:>3} {row.id:<{width}}  {label} {row.cost}".rstrip()
        if colour:
            head = click.style(head, fg=row.colour)
        lines.append(head)
        for detail in row.details:
            lines.append(f"        {detail}")
    lines += plan_notes(plan)
    if not plan.has_changes:
        lines.append("No changes. Every shot is up to date.")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan, *, title: str = "tchavi-render plan") -> str:
    """A pull-request comment: summary first, a table of the shots that change, details."""
    s = plan.summary
    out = [f"### {title}", ""]
    if not plan.has_changes:
        out += ["No changes. Every shot is up to date.", ""]
    extra = ""
    if s.collect:
        extra += f" · **{s.collect}** to collect (already paid)"
    if s.wait:
        extra += f" · **{s.wait}** to wait for (paid on another machine)"
    if s.blocked:
        extra += f" · **{s.blocked}** blocked"
    out += [
        f"**{s.create}** to create · **{s.replace}** to replace · **{s.reuse}** to reuse · "
        f"**{s.unchanged}** unchanged · **{s.delete}** to delete{extra} — "
        f"estimated **{credits(s.estimated_credits)} credits**",
        "",
    ]
    changing = plan_rows(plan, verbose=False)
    if changing:
        out += ["| | shot | action | credits | why |", "|---|---|---|---:|---|"]
        for row in changing:
            why = "<br>".join(md_escape(d) for d in row.details)
            out.append(
                f"| `{row.symbol}` | `{row.id}` | {md_escape(row.label)} | "
                f"{row.cost.removesuffix(' credits')} | {why} |"
            )
        out.append("")
    for note in plan_notes(plan):
        out.append(f"> {md_escape(note)}")
    return "\n".join(out).rstrip() + "\n"


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.as_json(), indent=2)


def result_text(result: ApplyResult) -> str:
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    order = (
        "rendered",
        "collected",
        "reused",
        "unchanged",
        "deleted",
        "failed",
        "blocked",
        "not submitted",
    )
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    lines = [
        f"Apply complete: {', '.join(parts) or 'nothing to do'}. "
        f"Credits spent: {credits(result.spent)}."
    ]
    if result.earlier_refunded:
        lines.append(
            f"Refunded for jobs of an earlier apply: {credits(result.earlier_refunded)} credits."
        )
    for outcome in result.outcomes:
        if outcome.status in ("failed", "blocked") or (
            outcome.status == "deleted" and outcome.message
        ):
            shown = outcome.job_id and outcome.status == "failed"
            job = f" (job {outcome.job_id})" if shown else ""
            lines.append(f"  {outcome.status}: {outcome.id}{job}: {outcome.message}")
    skipped = [o for o in result.outcomes if o.status == "not submitted"]
    if skipped:
        names = ", ".join(o.id for o in skipped)
        lines.append(f"  not submitted: {names}: {skipped[0].message}")
    return "\n".join(lines)


def lock_text(lock: Lockfile, order: Sequence[str] = ()) -> str:
    """The lock as aligned columns, shots in `order` (the storyboard's), then the rest; a
    shot's other takes right under it, as `ID take N`."""
    from tchavi_render.engine.takes import split_take_id

    groups = lock.by_shot()
    shots = [i for i in order if i in groups]
    listed = set(shots)
    shots += [i for i in groups if i not in listed]
    ids = []
    for shot_id in shots:
        # the shot's own entry first, then its takes in number order
        ids += sorted(groups[shot_id], key=lambda i: (i != shot_id, len(i), i))
    rows: list[list[str]] = []
    for planned_id in ids:
        e = lock.shots[planned_id]
        owner, take = split_take_id(planned_id)
        shot_id = f"{owner} take {take}" if take is not None else planned_id
        if take is None and e.take is not None:
            shot_id = f"{owner} (take {e.take}, picked)"
        if e.output is not None:
            net = e.credits_used - e.credits_refunded
            rows.append(
                [
                    shot_id,
                    e.output.path,
                    f"{e.output.duration}s",
                    str(e.output.resolution),
                    f"{credits(net)} credits",
                    f"job {e.job_id}",
                ]
            )
        elif e.failed is not None:
            rows.append(
                [shot_id, f"failed ({e.failed.code})", "", "", "", f"job {e.failed.job_id}"]
            )
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(6)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (2, 4) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(("  " + "  ".join(cells)).rstrip())
    count = len(shots)
    lines.append(
        f"{count} shot{'s' if count != 1 else ''}, {credits(lock.credits_total)} credits in total."
    )
    return "\n".join(lines)


class LineEvents:
    """Plain progress lines, one per event (for logs and pipes)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.spent = 0

    def __call__(self, event: ApplyEvent) -> None:
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
            self.spent += event.credits
            parts.append(f"credits={credits(event.credits)} (total {credits(self.spent)})")
        elif (event.kind in ("rendered", "refund") and event.credits) or event.kind == "done":
            parts.append(f"credits={credits(event.credits)}")
        print(" ".join(parts), file=self.stream, flush=True)


class JsonEvents:
    """One JSON object per line on stdout."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: ApplyEvent) -> None:
        print(json.dumps(event.as_json(), sort_keys=True), file=self.stream, flush=True)


# Events after which a shot has nothing more to do, as the live view prints them.
FINISHED = {
    "rendered": "✔ rendered",
    "reuse": "✔ reused",
    "collected": "✔ collected",
    "delete": "✔ deleted",
    "failed": "✘ failed",
    "blocked": "! blocked",
}


class RichEvents:
    """A live table on a terminal: one line per shot in flight, credits so far."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console if console is not None else Console(stderr=True)
        self.rows: dict[str, tuple[str, str]] = {}
        self.finished: set[str] = set()  # a late status never brings a finished shot back
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
        if event.kind in FINISHED:
            self.rows.pop(event.shot, None)
            self.finished.add(event.shot)
            mark = FINISHED[event.kind]
            if event.kind in ("failed", "blocked"):
                mark = f"{mark}: {event.message}"
            self.console.print(
                f"{mark} {event.shot}" + (f" (job {event.job_id})" if event.job_id else "")
            )
        elif event.shot not in self.finished:
            self.rows[event.shot] = (event.status or event.kind, event.job_id or "")
        self.live.update(self._table())
