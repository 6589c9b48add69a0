"""`tchavi-render apply`: render what changed, reuse what was rendered, update the lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

import click

from tchavi_render.cli.options import (
    cache_dir_option,
    plan_options,
    plan_request,
    resolve_cache_dir,
)
from tchavi_render.errors import TchaviRenderError


@click.command()
@click.argument("target", required=False, default="tchavi.yaml", type=click.Path(path_type=Path))
@plan_options
@cache_dir_option
@click.option(
    "-y", "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Jobs in flight at most.",
)
@click.option(
    "--max-credits", type=click.IntRange(0), default=None, help="Refuse to spend more than this."
)
@click.option("--frozen", is_flag=True, help="CI mode: fail if any shot would need a new job.")
@click.option(
    "--backend",
    type=click.Choice(["local", "tchavi"]),
    default=None,
    help="Override the spec's backend.",
)
@click.option(
    "--base-url", default=None, help="The tchavi backend's API URL [env TCHAVI_BASE_URL]."
)
@click.option(
    "--max-rpm",
    type=click.IntRange(1),
    default=None,
    help="Stay under this many API requests a minute.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(0),
    default=0.0,
    help="Wait this long for another apply of the spec.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON event per line.")
def apply(
    target: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
    restore_modified: bool,
    abandon_in_flight: bool,
    cache_dir: Path | None,
    yes: bool,
    concurrency: int,
    max_credits: int | None,
    frozen: bool,
    backend: str | None,
    base_url: str | None,
    max_rpm: int | None,
    lock_timeout: float,
    as_json: bool,
) -> int:
    """Render the shots that changed (TARGET is a spec, or a plan saved with plan -o)."""
    from tchavi_render.cli.output import (
        JsonEvents,
        LineEvents,
        RichEvents,
        interrupted_text,
        plan_text,
        result_text,
    )
    from tchavi_render.cli.output import warning as show_warning
    from tchavi_render.engine.apply import ApplyOptions, EventSink, apply_plan
    from tchavi_render.engine.applylock import apply_lock
    from tchavi_render.engine.backends import open_backend, require_api_key
    from tchavi_render.engine.workspace import (
        check_saved_plan,
        is_planfile,
        open_workspace,
        read_planfile,
    )

    saved = None
    if is_planfile(target):
        given = variables or var_files or targets or force_replace
        if given or restore_modified or abandon_in_flight:
            raise click.UsageError("a saved plan fixes its own options; pass none with it")
        request, saved = read_planfile(target)
    else:
        request = plan_request(
            target,
            variables,
            var_files,
            targets,
            force_replace,
            restore_modified=restore_modified,
            abandon_in_flight=abandon_in_flight,
        )
    cache_root = resolve_cache_dir(cache_dir)
    if not request.spec_path.exists():
        raise TchaviRenderError(f"{request.spec_path}: no such spec file")

    with (
        apply_lock(request.spec_path.resolve(), lock_timeout),
        open_workspace(request, cache_root) as ws,
    ):
        chosen = backend or ws.spec.backend
        require_api_key(chosen)
        ws.check_backend(chosen)
        plan = ws.plan(chosen, base_url)
        if saved is not None:
            check_saved_plan(saved, ws, plan, target)
        journal = ws.journal()
        if as_json:
            click.echo(json.dumps({"event": "plan", **plan.as_json()}, sort_keys=True))
        else:
            for warning in ws.spec.warnings:
                click.echo(show_warning(warning), err=True)
            click.echo(plan_text(plan, colour=sys.stdout.isatty()))
        if not plan.has_changes and not any(
            j.ours for j in ws.in_flight(chosen, base_url).values()
        ):
            return 0
        if plan.has_changes and not yes and not frozen:
            if not sys.stdin.isatty():
                raise TchaviRenderError(
                    "apply needs confirmation and there is no terminal to ask; pass --yes"
                )
            if not click.confirm("Apply this plan?", default=False):
                click.echo("Nothing applied.")
                return 0
        options = ApplyOptions(
            concurrency=concurrency,
            max_credits=max_credits,
            frozen=frozen,
            restore_modified=request.restore_modified,
            abandon_in_flight=request.abandon_in_flight,
        )
        with open_backend(
            chosen,
            spec=ws.spec,
            cache_dir=cache_root,
            base_url=base_url,
            max_rpm=max_rpm,
            remote=ws.remote,
        ) as be:
            rich_sink: RichEvents | None = None
            sink: EventSink
            if as_json:
                sink = JsonEvents()
            elif sys.stderr.isatty():
                rich_sink = RichEvents()
                sink = rich_sink
            else:
                sink = LineEvents()
            try:
                with rich_sink if rich_sink is not None else contextlib.nullcontext():
                    result = asyncio.run(
                        apply_plan(
                            ws.spec,
                            plan,
                            ws.lock,
                            lock_path=ws.lock_path,
                            cache=ws.cache,
                            files=ws.files,
                            journal=journal,
                            backend=be,
                            options=options,
                            emit=sink,
                        )
                    )
            except KeyboardInterrupt:
                click.echo(interrupted_text(ws.journal(), be.identity, be.account), err=True)
                raise
        if not as_json:
            click.echo(result_text(result))
        return result.exit_code
