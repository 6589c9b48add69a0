"""`tchavi-render validate`: check a spec and report every problem, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tchavi_render.cli.options import parse_vars, spec_argument, variable_options
from tchavi_render.errors import Problem

__all__ = ["validate"]


@click.command()
@spec_argument
@variable_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def validate(
    ctx: click.Context,
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Check SPEC (default: tchavi.yaml) and print every error and warning.

    Exits 0 when the spec is valid (warnings allowed), 1 when it is not.
    """
    from tchavi_render.errors import SpecError
    from tchavi_render.spec import load_spec

    try:
        loaded = load_spec(spec, variables=dict(parse_vars(variables)), var_files=var_files)
    except SpecError as exc:
        errors, warnings, shots = exc.problems, exc.warnings, []
    else:
        errors, warnings = [], list(loaded.warnings)
        shots = [{"id": s.id, "request": s.request(_media_json)} for s in loaded.shots]
    if as_json:
        report = {
            "valid": not errors,
            "errors": [p.as_json() for p in errors],
            "warnings": [p.as_json() for p in warnings],
            "shots": shots,
        }
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for problem in _in_file_order(errors, warnings):
            click.echo(_line(problem), err=True)
        if errors and len(errors) + len(warnings) > 1:
            click.echo(
                f"{spec}: {_count(errors, 'error')}, {_count(warnings, 'warning')}", err=True
            )
        elif not errors:
            note = f" ({_count(warnings, 'warning')})" if warnings else ""
            click.echo(f"{spec}: valid, {_count(shots, 'shot')}{note}")
    ctx.exit(1 if errors else 0)


def _media_json(media: Any) -> Any:
    from tchavi_render.spec.shot import LocalMedia

    if isinstance(media, LocalMedia):
        return {"path": media.relpath, "sha256": media.sha256}
    return media.url


def _in_file_order(errors: list[Problem], warnings: list[Problem]) -> list[Problem]:
    files: list[Path | None] = []
    for problem in [*errors, *warnings]:
        if problem.file not in files:
            files.append(problem.file)

    def key(p: Problem) -> tuple[int, int, int]:
        rank = -1 if p.file is None else files.index(p.file)
        return (rank, p.line or 0, p.column or 0)

    return sorted([*errors, *warnings], key=key)


def _line(problem: Problem) -> str:
    if problem.severity != "warning":
        return str(problem)
    text = str(problem)
    if problem.file is None:
        return f"warning: {text}"
    place, _, message = text.partition(": ")
    return f"{place}: warning: {message}"


def _count(items: list[Any], word: str) -> str:
    return f"{len(items)} {word}{'s' if len(items) != 1 else ''}"
