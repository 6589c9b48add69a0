"""`tchavi-render validate`: check a spec and report every problem, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

import click

from tchavi_render.cli.options import parse_vars, variable_options
from tchavi_render.errors import Problem

if TYPE_CHECKING:
    from tchavi_render.spec.shot import Media

__all__ = ["validate"]


@click.command()
@click.argument("specs", nargs=-1, type=click.Path(path_type=Path), metavar="[SPEC]...")
@variable_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    help="Output format (github: workflow annotations on the lines at fault).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.pass_context
def validate(
    ctx: click.Context,
    specs: tuple[Path, ...],
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    fmt: str,
    as_json: bool,
) -> None:
    """Check each SPEC (default: tchavi.yaml) and print every error and warning.

    Exits 0 when every spec is valid (warnings allowed), 1 when one is not. Several specs
    at once suit a pre-commit hook, which passes the changed files.
    """
    if as_json:
        fmt = "json"
    reports = [
        _validate_one(spec, variables, var_files, fmt) for spec in specs or (Path("tchavi.yaml"),)
    ]
    if fmt == "json":
        docs = [doc for doc, _ in reports]
        # One spec: its report, as before; several: a list, each naming its spec.
        out: Any = {k: v for k, v in docs[0].items() if k != "spec"} if len(docs) == 1 else docs
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    ctx.exit(1 if any(not ok for _, ok in reports) else 0)


def _validate_one(
    spec: Path, variables: tuple[str, ...], var_files: tuple[Path, ...], fmt: str
) -> tuple[dict[str, Any], bool]:
    """Check one spec; print its problems unless `fmt` is json; (its JSON report, valid?)."""
    from tchavi_render.cli.annotations import problem_annotation
    from tchavi_render.cli.output import warning
    from tchavi_render.errors import SpecError
    from tchavi_render.spec import load_spec

    try:
        loaded = load_spec(spec, variables=dict(parse_vars(variables)), var_files=var_files)
    except SpecError as exc:
        errors, warnings, shots = exc.problems, exc.warnings, []
    else:
        errors, warnings = [], list(loaded.warnings)
        shots = [{"id": s.id, "request": s.request(_media_json)} for s in loaded.shots]
    report = {
        "spec": str(spec),
        "valid": not errors,
        "errors": [p.as_json() for p in errors],
        "warnings": [p.as_json() for p in warnings],
        "shots": shots,
    }
    if fmt == "github":
        for problem in _in_file_order(errors, warnings):
            click.echo(problem_annotation(problem))
    elif fmt == "text":
        for problem in _in_file_order(errors, warnings):
            shown = warning(problem) if problem.severity == "warning" else str(problem)
            click.echo(shown, err=True)
    if fmt != "json":
        if errors and len(errors) + len(warnings) > 1:
            click.echo(
                f"{spec}: {_count(errors, 'error')}, {_count(warnings, 'warning')}", err=True
            )
        elif not errors:
            note = f" ({_count(warnings, 'warning')})" if warnings else ""
            click.echo(f"{spec}: valid, {_count(shots, 'shot')}{note}")
    return report, not errors


def _media_json(media: Media) -> str | dict[str, str | float]:
    """A media item as the report shows it: a URL as written, a local file by its path and
    digest, a frame of another shot as `{shot, frame}` (its output is not known yet)."""
    from tchavi_render.spec.shot import LocalMedia, ShotFrame, UrlMedia

    match media:
        case UrlMedia():
            return media.url
        case LocalMedia():
            return {"path": media.relpath, "sha256": media.sha256}
        case ShotFrame():
            return {"shot": media.shot, "frame": media.frame}
        case _:
            assert_never(media)


def _in_file_order(errors: list[Problem], warnings: list[Problem]) -> list[Problem]:
    files: list[Path | None] = []
    for problem in [*errors, *warnings]:
        if problem.file not in files:
            files.append(problem.file)

    def key(p: Problem) -> tuple[int, int, int]:
        rank = -1 if p.file is None else files.index(p.file)
        return (rank, p.line or 0, p.column or 0)

    return sorted([*errors, *warnings], key=key)


def _count(items: list[Any], word: str) -> str:
    return f"{len(items)} {word}{'s' if len(items) != 1 else ''}"
