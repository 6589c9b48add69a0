"""`tchavi-render plan`: what apply would do and what it would cost; no network, no outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tchavi_render.cli.options import (
    cache_dir_option,
    plan_options,
    plan_request,
    resolve_cache_dir,
    spec_argument,
)


@click.command()
@spec_argument
@plan_options
@cache_dir_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "github"]),
    default="text",
    help="Output format (markdown suits a pull-request comment; github prints workflow "
    "annotations on the spec's lines).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when changes are pending, 1 on error.",
)
@click.option(
    "-o",
    "--out",
    "planfile",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Save the plan; `apply PLANFILE` applies exactly it.",
)
@click.option("-v", "--verbose", is_flag=True, help="List unchanged shots too.")
@click.option(
    "--backend",
    type=click.Choice(["local", "tchavi"]),
    default=None,
    help="Plan for this backend instead of the spec's (as apply --backend).",
)
def plan(
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
    restore_modified: bool,
    abandon_in_flight: bool,
    cache_dir: Path | None,
    fmt: str,
    as_json: bool,
    detailed_exitcode: bool,
    planfile: Path | None,
    verbose: bool,
    backend: str | None,
) -> int:
    """Show what `apply` would render, reuse and delete, and the estimated credits."""
    from tchavi_render.cli.annotations import plan_github, problem_annotation
    from tchavi_render.cli.output import plan_json, plan_markdown, plan_text, warning
    from tchavi_render.engine.workspace import open_workspace, write_planfile
    from tchavi_render.errors import SpecError

    request = plan_request(
        spec,
        variables,
        var_files,
        targets,
        force_replace,
        restore_modified=restore_modified,
        abandon_in_flight=abandon_in_flight,
    )
    if as_json:
        fmt = "json"
    try:
        ws = open_workspace(request, resolve_cache_dir(cache_dir))
    except SpecError as exc:
        if fmt != "github":
            raise
        # Every problem on its own line of the pull request, not one message in the log.
        for problem in [*exc.problems, *exc.warnings]:
            click.echo(problem_annotation(problem))
        return 1
    with ws:
        for item in ws.spec.warnings:
            if fmt == "github":
                click.echo(problem_annotation(item))
            else:
                click.echo(warning(item), err=True)
        ws.check_backend(backend)
        result = ws.plan(backend)
        if planfile is not None:
            write_planfile(planfile, ws, result)
    if fmt == "github":
        click.echo(plan_github(result))
    elif fmt == "json":
        click.echo(plan_json(result))
    elif fmt == "markdown":
        click.echo(plan_markdown(result, title=f"tchavi-render plan: {spec}"), nl=False)
    else:
        click.echo(plan_text(result, colour=sys.stdout.isatty(), verbose=verbose))
        if planfile is not None:
            click.echo(
                f"Saved the plan to {planfile}; apply it with: tchavi-render apply {planfile}"
            )
    if detailed_exitcode and result.has_changes:
        raise click.exceptions.Exit(2)
    return 0
