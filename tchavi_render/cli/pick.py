"""`tchavi-render pick SHOT TAKE [SPEC]`: write which take is the shot into the spec, then plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tchavi_render.cli.options import (
    cache_dir_option,
    parse_vars,
    plan_request,
    resolve_cache_dir,
    spec_argument,
    variable_options,
)


@click.command()
@click.argument("shot")
@click.argument("take", type=click.IntRange(min=1))
@spec_argument
@variable_options
@cache_dir_option
def pick(
    shot: str,
    take: int,
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    cache_dir: Path | None,
) -> int:
    """Make take TAKE of SHOT the shot: write `pick: TAKE` into the spec (comments and
    formatting kept), then show the plan. Picking costs nothing; shots continuing SHOT
    re-render."""
    from tchavi_render.atomic import atomic_open
    from tchavi_render.cli.output import plan_text, warning
    from tchavi_render.engine.workspace import open_workspace
    from tchavi_render.spec import load_spec
    from tchavi_render.spec.edit import with_pick

    loaded = load_spec(spec, variables=dict(parse_vars(variables)), var_files=var_files)
    raw = spec.read_bytes()
    text = raw.decode("utf-8")
    edited = with_pick(loaded, text, shot, take)
    if edited != text:
        with atomic_open(spec) as handle:
            handle.write(edited.encode("utf-8"))
    click.echo(f"{spec}: shot {shot!r} is now take {take}.")
    request = plan_request(spec, variables, var_files)
    try:
        with open_workspace(request, resolve_cache_dir(cache_dir)) as ws:
            for item in ws.spec.warnings:
                click.echo(warning(item), err=True)
            result = ws.plan(None)
    except BaseException:
        if edited != text and spec.read_bytes() == edited.encode("utf-8"):
            with atomic_open(spec) as handle:  # the edit broke the spec: put it back
                handle.write(raw)
        raise
    click.echo(plan_text(result, colour=sys.stdout.isatty()))
    return 0
