"""`tchavi-render cache info | gc | clear | push | pull`: look after the render cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tchavi_render.cli.options import (
    cache_dir_option,
    parse_vars,
    resolve_cache_dir,
    spec_argument,
    variable_options,
)

if TYPE_CHECKING:
    from tchavi_render.engine.lock import Lockfile
    from tchavi_render.engine.remote import RemoteCache, Transfer
    from tchavi_render.spec.shot import LoadedSpec


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


@click.group()
def cache() -> None:
    """Inspect or clean the render cache (shared by every checkout of this user), or share
    the lock's renders through the remote cache (push, pull)."""


@cache.command()
@cache_dir_option
@click.option("--json", "as_json", is_flag=True)
def info(cache_dir: Path | None, as_json: bool) -> None:
    """Where the cache is and what it holds."""
    from tchavi_render.engine.cache import CacheInfo, RenderCache

    directory = resolve_cache_dir(cache_dir)
    if directory.is_dir():
        with RenderCache(directory) as store:
            stats = store.info()
    else:
        stats = CacheInfo(directory=directory, records=0, objects=0, bytes=0)  # not made
    if as_json:
        doc = {
            "directory": str(stats.directory),
            "records": stats.records,
            "objects": stats.objects,
            "bytes": stats.bytes,
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"Cache: {stats.directory}")
    click.echo(f"{stats.records} renders, {stats.objects} files, {_size(stats.bytes)}")


@cache.command()
@cache_dir_option
@click.option(
    "--older-than",
    type=click.FloatRange(0),
    default=None,
    metavar="DAYS",
    help="Also drop renders cached longer ago than this.",
)
@click.option("--verify", is_flag=True, help="Re-hash every file; drop corrupt ones.")
def gc(cache_dir: Path | None, older_than: float | None, verify: bool) -> None:
    """Drop broken or old records, files no record names, and leftover downloads."""
    from tchavi_render.engine.cache import RenderCache

    with RenderCache(resolve_cache_dir(cache_dir)) as store:
        dropped, freed = store.gc(older_than_days=older_than, verify=verify)
    click.echo(f"Dropped {dropped} records, freed {_size(freed)}.")


@cache.command()
@cache_dir_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
def clear(cache_dir: Path | None, yes: bool) -> None:
    """Remove every cached render. Locked outputs in your projects stay in place."""
    from tchavi_render.engine.cache import RenderCache

    directory = resolve_cache_dir(cache_dir)
    if not yes:
        click.confirm(f"Remove every cached render in {directory}?", abort=True)
    with RenderCache(directory) as store:
        freed = store.clear()
    click.echo(f"Cleared the cache, freed {_size(freed)}.")


def _locked(
    spec: Path, variables: tuple[str, ...], var_files: tuple[Path, ...], cache_dir: Path
) -> tuple[LoadedSpec, Lockfile, RemoteCache]:
    """The spec, its lock and its remote cache (which must be configured)."""
    from tchavi_render.engine.lock import lock_path_for
    from tchavi_render.engine.lockread import read_lock
    from tchavi_render.engine.remote import ENV_REMOTE, open_remote
    from tchavi_render.errors import RemoteCacheError, TchaviRenderError
    from tchavi_render.media import MediaIndex
    from tchavi_render.spec import load_spec

    if not spec.exists():
        raise TchaviRenderError(f"{spec}: no such spec file")
    media = MediaIndex(cache_dir / "media-index.json")
    loaded = load_spec(
        spec, variables=dict(parse_vars(variables)), var_files=var_files, media=media
    )
    media.save()
    remote = open_remote(loaded.cache)
    if remote is None:
        raise RemoteCacheError(
            f"{spec}: no remote cache is configured. Add `cache: {{remote: s3://BUCKET/PREFIX}}` "
            f"to the spec, or set {ENV_REMOTE}=s3://BUCKET/PREFIX"
        )
    return loaded, read_lock(lock_path_for(loaded.path)), remote


def _report(transfer: Transfer, verb: str, where: str) -> int:
    def shots(n: int) -> str:
        return f"{n} render{'s' if n != 1 else ''}"

    for shot_id, why in transfer.missing:
        click.echo(f"{shot_id}: {why}", err=True)
    text = f"{verb} {shots(len(transfer.done))} {where}; {len(transfer.present)} already there"
    if transfer.missing:
        text += f"; {len(transfer.missing)} missing"
    click.echo(text + ".")
    return 1 if transfer.missing else 0


@cache.command()
@spec_argument
@variable_options
@cache_dir_option
def push(
    spec: Path, variables: tuple[str, ...], var_files: tuple[Path, ...], cache_dir: Path | None
) -> int:
    """Upload the renders SPEC's lock names to the remote cache (mode read-write).

    Exits 1 when this machine has no copy of some locked render.
    """
    from tchavi_render.engine.cache import RenderCache
    from tchavi_render.engine.remote import push_locked

    directory = resolve_cache_dir(cache_dir)
    loaded, lock, remote = _locked(spec, variables, var_files, directory)
    with RenderCache(directory) as store:
        transfer = push_locked(lock, loaded.project_dir, store, remote)
    return _report(transfer, "Pushed", f"to {remote.config.url}")


@cache.command()
@spec_argument
@variable_options
@cache_dir_option
def pull(
    spec: Path, variables: tuple[str, ...], var_files: tuple[Path, ...], cache_dir: Path | None
) -> int:
    """Fetch the renders SPEC's lock names from the remote cache into the local cache, and
    place them at their output paths (every file checked against the lock's sha256).

    Exits 1 when the remote cache lacks some locked render.
    """
    from tchavi_render.engine.applylock import apply_lock
    from tchavi_render.engine.cache import RenderCache
    from tchavi_render.engine.remote import pull_locked

    directory = resolve_cache_dir(cache_dir)
    loaded, lock, remote = _locked(spec, variables, var_files, directory)
    # It writes the outputs, as apply does: not while an apply runs.
    with apply_lock(loaded.path), RenderCache(directory) as store:
        transfer = pull_locked(lock, loaded.project_dir, store, remote)
    return _report(transfer, "Pulled", f"from {remote.config.url}")
