"""`tchavi-render report`: write the storyboard's review page, one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tchavi_render.cli.export import relative_to_cwd
from tchavi_render.cli.options import (
    cache_dir_option,
    plan_request,
    resolve_cache_dir,
    spec_argument,
    variable_options,
)

if TYPE_CHECKING:
    from tchavi_render.engine.workspace import Workspace
    from tchavi_render.report_compare import Comparison

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
@click.option(
    "--compare",
    metavar="BASE",
    default=None,
    help="Show, beside each shot whose render changed since the git revision BASE, the "
    "frames of BASE's render (from the local or remote cache).",
)
def report(
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    cache_dir: Path | None,
    output: Path | None,
    compare: str | None,
) -> int:
    """Write a review page: every shot's first, middle and last frames, prompt, settings,
    credits and job, and whether it is up to date with the spec.

    Frames are inlined; videos are linked relative to the page, so it works from the repo.
    With --compare BASE, a shot whose rendered bytes differ from BASE's lock shows BASE's
    frames above its own.
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
        comparison = None if compare is None else _comparison(ws, compare, variables, var_files)
        page = render_report(ws.spec, plan, out, comparison)
    if out.is_dir():
        raise TchaviRenderError(f"{out} is a directory; pass a file name with -o, like report.html")
    atomic_write_text(out, page)
    states = shot_states(plan)
    ready = sum(1 for shot in ws.spec.shots if states[shot.id].ready)
    shown = out if output is not None else relative_to_cwd(out)
    note = ""
    if comparison is not None:
        changed = len(comparison.base)
        lost = sum(1 for b in comparison.base.values() if b.video is None)
        note = f"; {changed} render{'s' if changed != 1 else ''} changed since {comparison.label}"
        if lost:
            note += f" ({lost} of them without an earlier render to show)"
    click.echo(f"Wrote {shown}: {len(ws.spec.shots)} shots, {ready} up to date{note}.")
    return 0


def _comparison(
    ws: Workspace, base: str, variables: tuple[str, ...], var_files: tuple[Path, ...]
) -> Comparison:
    """The renders at `base` of the shots whose rendered bytes differ from the lock's now."""
    from tchavi_render.cli.options import parse_vars
    from tchavi_render.engine.cache import find_render
    from tchavi_render.engine.diff import diff_specs
    from tchavi_render.engine.revisions import WORKING_TREE, Repository, read_side
    from tchavi_render.report_compare import comparison

    repo = Repository.around(ws.request.spec_path)
    revision = repo.revision(base)
    old_name = repo.name_at(revision, WORKING_TREE, repo.relpath(ws.request.spec_path, "spec"))
    values = dict(parse_vars(variables))
    with read_side(
        repo,
        revision,
        ws.request.spec_path,
        variables=values,
        var_files=var_files,
        renamed_from=old_name,
    ) as side:
        diff = diff_specs(side.spec, side.lock, ws.spec, ws.lock)
    where = "the local or the remote cache" if ws.remote is not None else "the local cache"
    return comparison(diff, revision.label, lambda key, sha: find_render(ws.cache, key, sha), where)
