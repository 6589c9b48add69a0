"""Placing renders at the output paths, as one transaction per apply.

Before any output is written, every locked output a reuse copies is verified and saved into
the cache (`stage`), so ids that are swapped, rotated or renumbered never copy onto bytes a
later copy still needs; an output that could not be saved is never written over. Every
write and delete obeys `engine.outputs` (only files this lock placed).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

from tchavi_render.atomic import atomic_copy
from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.lock import LockEntry, OutputRecord
from tchavi_render.engine.outputs import delete_problem, write_problem
from tchavi_render.engine.plan import Action, PlannedShot
from tchavi_render.engine.run import Failure, Run
from tchavi_render.engine.takes import split_take_id

__all__ = ["adopt", "place", "remove_output", "stage"]


def stage(run: Run) -> None:
    """Read every locked output a reuse copies into the cache, before any output is written:
    ids swapped, rotated or renumbered copy each other's files, and a copy must never land
    on bytes a later copy still needs. A file that cannot be saved is never written over."""
    for planned in run.ctx.plan.shots:
        source = planned.source
        if planned.action is not Action.REUSE or source is None or source.output is None:
            continue
        if source.kind != "lock" or run.ctx.cache.get(planned.key) is not None:
            continue
        if adopt(run, planned, source.output, source.from_shot) is None:
            run.unsaved.setdefault(source.output.path, planned.id)


def adopt(
    run: Run, planned: PlannedShot, output: OutputRecord, from_shot: str | None
) -> CacheRecord | None:
    """Make a locked output (verified against its digest) the cache's render of the key."""
    source_entry = run.lock.shots.get(from_shot or "") or planned.locked
    source = run.ctx.spec.project_dir / output.path
    tmp = run.ctx.cache.tmp_dir / f"adopt-{uuid.uuid4().hex}.mp4"
    try:
        atomic_copy(source, tmp, expect_sha256=output.sha256)
        run.ctx.cache.add_object(tmp, output.sha256)
    except (OSError, ValueError):
        tmp.unlink(missing_ok=True)
        return None
    record = CacheRecord(
        key=planned.key,
        sha256=output.sha256,
        bytes=output.bytes,
        job_id=(source_entry.job_id if source_entry else None) or "",
        model=planned.shot.model if planned.shot else "",
        credits_used=source_entry.credits_used if source_entry else 0,
        credits_refunded=source_entry.credits_refunded if source_entry else 0,
        duration=output.duration,
        resolution=output.resolution,
        created=time.time(),
    )
    run.ctx.cache.put(record)
    return record


def place(run: Run, planned: PlannedShot, record: CacheRecord) -> Failure | None:
    """Copy a cached render to the shot's output file, verified, if that file may be
    written (engine.outputs); the reason it was not, otherwise. Thread-safe."""
    relpath = run.ctx.files.relpath_for(planned.id)
    needed_by = run.unsaved.get(relpath)
    if needed_by is not None:
        return Failure(
            "blocked",
            f"{relpath} holds the render that {needed_by!r} reuses, which could not be "
            "saved to the cache first; it stays as it is. Free space in the cache "
            "directory and apply again",
        )
    problem = write_problem(
        run.ctx.files,
        planned.id,
        planned.locked,
        record.sha256,
        restore=run.ctx.options.restore_modified,
    )
    if problem is not None:
        return Failure("blocked", problem)
    source = run.ctx.cache.object_path(record.sha256)
    try:
        atomic_copy(source, run.output_path(planned.id), expect_sha256=record.sha256)
    except ValueError:
        run.ctx.cache.drop(record.key)
        source.unlink(missing_ok=True)
        return Failure("cache_corrupt", "the cached render was corrupt; apply again")
    except OSError as exc:
        return Failure("write_failed", f"could not write {relpath}: {exc.strerror or exc}")
    return None


def remove_output(run: Run, shot_id: str, entry: LockEntry | None) -> str | None:
    """Remove a shot's locked output when this lock placed it (and no reuse of this apply
    needs its bytes); otherwise say why it stays."""
    if entry is None or entry.output is None:
        return None
    kept = delete_problem(run.ctx.files, shot_id, entry)
    if kept is None and entry.output.path not in run.unsaved:
        path: Path = run.ctx.spec.project_dir / entry.output.path
        path.unlink(missing_ok=True)
        if split_take_id(shot_id)[1] is not None:
            # The last take that goes takes its `<id>.takes/` folder with it.
            with contextlib.suppress(OSError):
                path.parent.rmdir()
    return kept
