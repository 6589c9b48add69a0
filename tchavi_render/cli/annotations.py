"""Problems and plans as GitHub Actions workflow commands (`::error file=F,line=L::...`), so
they appear on the changed lines of a pull request."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from tchavi_render.cli.output import plan_notes, summary_line
from tchavi_render.cli.plan_rows import detail_lines, shot_head
from tchavi_render.engine.plan import Action, Plan

if TYPE_CHECKING:
    from tchavi_render.errors import Problem

__all__ = ["annotation", "plan_github", "problem_annotation"]


def _gh_data(text: str) -> str:
    """A workflow command's message, escaped as the runner decodes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    """A workflow command's property value: the message's escapes, and `:` and `,`."""
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    file: Path | None = None,
    line: int | None = None,
    column: int | None = None,
    title: str | None = None,
) -> str:
    """`::error file=F,line=L,col=C::message`: GitHub shows it on that line of the pull
    request's diff (`level` is error, warning or notice)."""
    props = []
    if file is not None:
        props.append(f"file={_gh_property(_repo_path(file))}")
        if line is not None:
            props.append(f"line={line}")
            if column is not None:
                props.append(f"col={column}")
    if title is not None:
        props.append(f"title={_gh_property(title)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{_gh_data(message)}"


def problem_annotation(problem: Problem) -> str:
    level = "warning" if problem.severity == "warning" else "error"
    return annotation(level, problem.message, problem.file, problem.line, problem.column)


def _repo_path(file: Path) -> str:
    """A path as annotations name it: relative to the working directory (the checkout's
    top, in a workflow) when inside it, POSIX."""
    if file.is_absolute():
        with contextlib.suppress(ValueError):
            file = file.relative_to(Path.cwd())
    return file.as_posix()


def plan_github(plan: Plan) -> str:
    """The plan as annotations: each shot apply would act on, noted on its line of the spec
    (a blocked one as a warning), then the summary."""
    lines = []
    for planned in plan.shots:
        if planned.action is Action.UNCHANGED:
            continue
        _, cost = shot_head(planned)
        what = f"{planned.id}: {planned.action.value}" + (f", {cost}" if cost else "")
        message = "\n".join([what, *detail_lines(planned)])
        level = "warning" if planned.blocked is not None else "notice"
        where = planned.shot.location if planned.shot is not None else None
        if where is None:
            lines.append(annotation(level, message, title="tchavi-render plan"))
        else:
            lines.append(
                annotation(
                    level, message, where.file, where.line, where.column, "tchavi-render plan"
                )
            )
    lines += [annotation("warning", note) for note in plan_notes(plan)]
    lines.append(summary_line(plan))
    return "\n".join(lines)
