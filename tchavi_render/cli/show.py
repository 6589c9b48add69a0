"""`tchavi-render show`: what the lock says was rendered, per shot and in total."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tchavi_render.cli.options import parse_vars, spec_argument, variable_options


@click.command()
@spec_argument
@variable_options
@click.option("--json", "as_json", is_flag=True, help="Print the lock as JSON.")
def show(spec: Path, variables: tuple[str, ...], var_files: tuple[Path, ...], as_json: bool) -> int:
    """Show what the lock says was rendered for each shot, in storyboard order, and the
    credits in total (--var and --var-file as for plan, to read the spec's shot order)."""
    from tchavi_render.cli.output import lock_text
    from tchavi_render.engine.lock import lock_path_for
    from tchavi_render.engine.lockread import read_lock
    from tchavi_render.errors import TchaviRenderError
    from tchavi_render.spec import load_spec

    lock_path = lock_path_for(spec)
    if not lock_path.exists():
        if not spec.exists():
            raise TchaviRenderError(f"{spec}: no such spec file, and no lock {lock_path}")
        if not as_json:
            click.echo(f"{lock_path} does not exist yet: nothing was applied. Run apply first.")
            return 0
    lock = read_lock(lock_path)
    if as_json:
        doc = {
            "lock": str(lock_path),
            "credits_total": lock.credits_total,
            "shots": {sid: lock.shot_yaml(sid, ids) for sid, ids in lock.by_shot().items()},
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        order: list[str] = []
        if spec.exists():
            loaded = load_spec(spec, variables=dict(parse_vars(variables)), var_files=var_files)
            order = [s.id for s in loaded.shots]
        click.echo(lock_text(lock, order))
    return 0
