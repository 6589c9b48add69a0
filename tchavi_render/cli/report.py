"""`tchavi-render report`: write the storyboard's review page, one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from tchavi_render.cli.export import relative_to_cwd
from tchavi_render.cli.options import (
    cache_dir_option,
    plan_request,
    resolve_cache_dir,
    spec_argument,
    variable_options,
)

__all__ = ["report"]


@click.command()
@spec_argument
@variable_options
@cache_dir_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the page [default: report.html beside the spec].",
)
def report(
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    cache_dir: Path | None,
    output: Path | None,
) -> int:
    """Write a review page: every shot's first, middle and last frames, prompt, settings,
    credits and job, and whether it is up to date with the spec.

    Frames are inlined; videos are linked relative to the page, so it works from the repo.
    """
    from tchavi_render.atomic import atomic_write_text
    from tchavi_render.cli.output import warning as show_warning
    from tchavi_render.engine.status import shot_states
    from tchavi_render.engine.workspace import open_workspace
    from tchavi_render.errors import TchaviRenderError
    from tchavi_render.report import render_report

    request = plan_request(spec, variables, var_files)
    with open_workspace(request, resolve_cache_dir(cache_dir)) as ws:
        for warning in ws.spec.warnings:
            click.echo(show_warning(warning), err=True)
        plan = ws.plan()
        out = output if output is not None else ws.spec.path.with_name("report.html")
        page = render_report(ws.spec, plan, out)
    if out.is_dir():
        raise TchaviRenderError(f"{out} is a directory; pass a file name with -o, like report.html")
    atomic_write_text(out, page)
    states = shot_states(plan)
    ready = sum(1 for shot in ws.spec.shots if states[shot.id].ready)
    shown = out if output is not None else relative_to_cwd(out)
    click.echo(f"Wrote {shown}: {len(ws.spec.shots)} shots, {ready} up to date.")
    return 0
