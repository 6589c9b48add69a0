"""`tchavi-render export`: the final cut, one MP4 of the rendered shots in sequence order."""

from __future__ import annotations

from pathlib import Path

import click

from tchavi_render.cli.options import (
    cache_dir_option,
    plan_request,
    resolve_cache_dir,
    spec_argument,
    variable_options,
)

__all__ = ["export", "relative_to_cwd"]


@click.command()
@spec_argument
@variable_options
@cache_dir_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the cut [default: final.mp4 beside the spec].",
)
@click.option(
    "--reencode",
    is_flag=True,
    help="Re-encode every clip even when their packets could be copied.",
)
def export(
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    cache_dir: Path | None,
    output: Path | None,
    reencode: bool,
) -> int:
    """Join the rendered shots into one MP4, in the order of the spec's `sequence:`.

    Without `sequence:`, every shot is used whole, in storyboard order. When every clip is
    whole and its video of one format, their packets are copied: fast, and no quality is
    lost (when only their sound differs, only the sound is made anew). Otherwise, or with
    --reencode, every clip is scaled and letterboxed to one frame size, at 24 fps, H.264
    with AAC sound (silence where a shot has none). The output says which was done and
    why. Refuses when a shot is not rendered or out of date.
    """
    from tchavi_render.cli.output import warning as show_warning
    from tchavi_render.engine.status import require_ready, shot_states
    from tchavi_render.engine.workspace import open_workspace
    from tchavi_render.errors import ExportError
    from tchavi_render.export import ClipSource, write_cut

    request = plan_request(spec, variables, var_files)
    with open_workspace(request, resolve_cache_dir(cache_dir)) as ws:
        for warning in ws.spec.warnings:
            click.echo(show_warning(warning), err=True)
        states = shot_states(ws.plan())
        sequence = ws.spec.sequence
        require_ready(states, [item.shot_id for item in sequence], spec=spec, what="export")
        sources = []
        for item in sequence:
            entry = states[item.shot_id].entry
            assert entry is not None and entry.output is not None  # ready means rendered
            path = ws.spec.project_dir / entry.output.path
            info = ws.media.info(path)
            duration = info.duration or entry.output.duration
            if info.kind != "video" or not (info.width and info.height and duration):
                raise ExportError(
                    f"{entry.output.path} (shot {item.shot_id!r}) does not decode as a video. "
                    f"Render it again: tchavi-render apply {spec} --replace {item.shot_id}"
                )
            sources.append(
                ClipSource(
                    shot_id=item.shot_id,
                    path=path,
                    display=entry.output.path,
                    trim=item.trim,
                    location=item.location,
                    duration=float(duration),
                    width=info.width,
                    height=info.height,
                )
            )
        out = output if output is not None else ws.spec.path.with_name("final.mp4")
        result = write_cut(sources, out, reencode=reencode)
    shown = out if output is not None else relative_to_cwd(out)
    count = len(result.clips)
    click.echo(
        f"Wrote {shown}: {count} clip{'s' if count != 1 else ''}, {result.duration:.2f} s, "
        f"{result.width}x{result.height} at {result.fps:g} fps, {result.codecs} "
        f"({result.elapsed:.1f} s)."
    )
    click.echo(result.reason)
    return 0


def relative_to_cwd(path: Path) -> Path:
    """`path` as the user would type it from here, when it is under the current directory."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
