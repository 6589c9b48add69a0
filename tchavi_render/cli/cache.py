"""`tchavi-render cache info | gc | clear`: look after the render cache."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tchavi_render.cli.options import cache_dir_option, resolve_cache_dir


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


@click.group()
def cache() -> None:
    """Inspect or clean the render cache (shared by every checkout of this user)."""


@cache.command()
@cache_dir_option
@click.option("--json", "as_json", is_flag=True)
def info(cache_dir: Path | None, as_json: bool) -> None:
    """Where the cache is and what it holds."""
    from tchavi_render.engine.cache import RenderCache

    with RenderCache(resolve_cache_dir(cache_dir)) as store:
        stats = store.info()
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
