"""Spec -> shots: the stages of one load, in order, and every problem they find at once."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tchavi_render.media import MediaIndex
from tchavi_render.spec.expand import Expander, WrittenShot
from tchavi_render.spec.fields import Fields
from tchavi_render.spec.graph import ShotGraph
from tchavi_render.spec.model import Spec
from tchavi_render.spec.read import check_cli_vars, read_var_file, read_yaml, warn_unused_vars
from tchavi_render.spec.repair import validate
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.sequence import resolve_sequence
from tchavi_render.spec.shot import LoadedSpec, Shot
from tchavi_render.spec.targets import Asset, MediaTargets
from tchavi_render.spec.template import FieldTemplates
from tchavi_render.spec.yamlpos import PathKey

__all__ = ["MAX_SHOTS", "load_spec"]

MAX_SHOTS = 100_000


def load_spec(
    path: Path,
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    media: MediaIndex | None = None,
    template_cache: Path | None = None,
) -> LoadedSpec:
    """Load, template and check a spec; raise SpecError listing every problem found.

    `variables` are `--var key=value` pairs, `var_files` the `--var-file` paths (later
    ones win). `media` remembers probed files across runs; its store, if any, is saved
    before returning (that is the only write a load makes, with `template_cache`, a
    directory where compiled templates are kept for the next load).
    """
    index = media if media is not None else MediaIndex()
    try:
        return _load(Path(path), dict(variables or {}), list(var_files), index, template_cache)
    finally:
        # The memo is a shortcut only: failing to persist it must not fail the load.
        with contextlib.suppress(OSError):
            index.save()


def _load(
    display: Path,
    variables: dict[str, str],
    var_files: list[Path],
    media: MediaIndex,
    template_cache: Path | None,
) -> LoadedSpec:
    absolute = display.absolute()
    project_dir = absolute.parent.resolve()
    report = Reporter(display)
    doc = read_yaml(display, "spec file", "create it, or pass the spec's path", project_dir, report)
    if doc is None:
        raise report.failure()
    layers = [read_var_file(p, project_dir, report) for p in var_files]
    check_cli_vars(variables, report)
    spec, shot_paths, aside = validate(doc, report)
    if spec is None or any(p.file != display for p in report.errors):
        # No usable spec, or the variables are wrong: templating would only add noise.
        raise report.failure()
    global_vars: dict[str, Any] = dict(spec.vars)
    for values, _ in layers:
        global_vars.update(values)
    global_vars.update(variables)

    templates = FieldTemplates(project_dir, display.parent, template_cache)
    targets = MediaTargets(project_dir, media, doc, report)
    fields = Fields(templates, targets, doc, report)
    graph = ShotGraph(doc, report)
    graph.ids_unknown = aside.lost_shot
    expander = Expander(doc, report, templates, fields, graph, aside)

    out_path: PathKey = ("output_dir",)
    written = fields.text(spec.output_dir, global_vars, out_path, "output_dir: ", None)
    output_dir = None if written is None else targets.output_dir(written, out_path)
    _read_assets(spec, global_vars, fields, targets)
    shots: list[Shot] = []
    total = 0
    for shot_spec, shot_path in zip(spec.shots, shot_paths, strict=True):
        if aside.shots.get(shot_path, set()) & {"vars", "for_each"}:
            # Without its variables the shot's templates cannot be rendered; checking
            # them would only blame what its shape error already explains.
            graph.exists(shot_spec.id)
            continue
        shot_vars = {**global_vars, **shot_spec.vars}
        written_shot = WrittenShot(shot_spec, spec.defaults, shot_path)
        axes = expander.for_each(written_shot, shot_vars)
        if axes is None:
            graph.exists(shot_spec.id)
            continue
        count = math.prod(len(values) for _, values in axes)
        total += count
        if total > MAX_SHOTS:
            report.error(
                doc.locate((*shot_path, "for_each")),
                f"this shot makes {count} shots, past the limit of {MAX_SHOTS} "
                "per spec; split the storyboard",
            )
            graph.ids_unknown = True
            break
        shots.extend(expander.expand(written_shot, shot_vars, axes, len(shots)))
    graph.check_ids()
    graph.check_frames()
    clips = None
    if spec.sequence is not None:
        order = aside.clips or range(len(spec.sequence))
        clips = list(zip(order, spec.sequence, strict=True))
    sequence = resolve_sequence(
        clips, shots, graph.known, doc, report.error, every_id_known=not graph.ids_unknown
    )
    if report.errors:
        # Shots with errors may not have reached their media: "unused" would be a guess.
        raise report.failure()
    targets.warn_unused_assets()
    if not spec.shots:
        report.warn(doc.locate(("shots",)), "the storyboard has no shots")
    var_docs = [var_doc for _, var_doc in layers if var_doc is not None]
    warn_unused_vars(templates.names_used(), var_docs, variables, report)
    sources = [absolute]
    sources += [p.absolute() for p in var_files]
    sources += sorted(templates.loader.loaded)
    sources += templates.loader.named
    return LoadedSpec(
        path=absolute,
        project_dir=project_dir,
        backend=spec.backend,
        output_dir=output_dir or project_dir / "renders",
        shots=tuple(shots),
        warnings=tuple(report.sorted(report.warnings)),
        sources=tuple(dict.fromkeys(sources)),
        media_files=tuple(targets.named),
        sequence=sequence,
        cache=spec.cache,
    )


def _read_assets(
    spec: Spec, variables: Mapping[str, Any], fields: Fields, targets: MediaTargets
) -> None:
    for name, value in spec.assets.items():
        path: PathKey = ("assets", name)
        written = fields.text(value, variables, path, f"asset {name!r}: ", None)
        media = None
        if written is not None:
            media = targets.resolve(written, path, f"asset {name!r}: ", "")
        targets.assets[name] = Asset(name, written or value, media)
