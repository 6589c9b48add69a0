"""`tchavi-render export`: the final cut, one MP4 of the rendered shots in sequence order."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tchavi_render.cli.options import (
    cache_dir_option,
    parse_vars,
    plan_request,
    resolve_cache_dir,
    spec_argument,
    variable_options,
)

if TYPE_CHECKING:
    from tchavi_render.export import ClipSource
    from tchavi_render.exportmemo import ExportArguments

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
    from tchavi_render.exportmemo import ExportArguments, read_memo

    arguments = ExportArguments.of(spec, parse_vars(variables), var_files)
    memo = read_memo(arguments)
    if memo is not None:
        # Nothing the plan reads has changed since an export found every clip ready.
        for line in memo.warnings:
            click.echo(line, err=True)
        sources, remember = list(memo.clips), None
    else:
        sources, remember = _ready_clips(spec, arguments, variables, var_files, cache_dir)
    from tchavi_render.export import write_cut

    out = output if output is not None else arguments.spec.with_name("final.mp4")
    result = write_cut(sources, out, reencode=reencode)
    if remember is not None:
        remember()
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


def _ready_clips(
    spec: Path,
    arguments: ExportArguments,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    cache_dir: Path | None,
) -> tuple[list[ClipSource], Callable[[], bool] | None]:
    """The slow way: load the spec, plan, refuse shots that are not ready, probe each clip.
    With the clips, what writes the memo once the cut is written (None: no memo, because
    the verdict read more than files)."""
    from tchavi_render.cli.output import warning as show_warning
    from tchavi_render.engine.status import require_ready, shot_states
    from tchavi_render.engine.workspace import open_workspace
    from tchavi_render.errors import ExportError
    from tchavi_render.export import ClipSource
    from tchavi_render.exportmemo import write_memo

    started_ns = time.time_ns()
    request = plan_request(spec, variables, var_files)
    with open_workspace(request, resolve_cache_dir(cache_dir)) as ws:
        warnings = [show_warning(warning) for warning in ws.spec.warnings]
        for line in warnings:
            click.echo(line, err=True)
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
                    location=str(item.location),
                    duration=float(duration),
                    width=info.width,
                    height=info.height,
                )
            )
        # The verdict read the spec's files, the assets, every shot's media, the lock and the
        # renders of the clips and of the shots they continue: it holds while none of them
        # changes. When a shot it rests on is not up to date, it read the cache too: no memo.
        shots = {shot.id: shot for shot in ws.spec.shots}
        closure: set[str] = set()
        todo = [item.shot_id for item in sequence]
        while todo:
            shot_id = todo.pop()
            if shot_id not in closure:
                closure.add(shot_id)
                todo.extend(shots[shot_id].upstream if shot_id in shots else ())
        outputs = []
        for shot_id in closure:
            state = states.get(shot_id)
            if state is None or not state.ready or state.entry is None or not state.entry.output:
                return sources, None
            outputs.append(ws.spec.project_dir / state.entry.output.path)
        if ws.spec.path != arguments.spec:
            return sources, None
        inputs = [
            *ws.spec.sources,
            *ws.spec.media_files,
            *(media.path for shot in ws.spec.shots for media in shot.local_media()),
            ws.lock_path,
        ]
        remember = functools.partial(
            write_memo,
            arguments,
            inputs,
            outputs,
            sources,
            warnings,
            started_ns=started_ns,
            backend=ws.spec.backend,
        )
    return sources, remember
