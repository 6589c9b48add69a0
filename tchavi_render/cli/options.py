"""Options shared by the verbs that read a spec: the spec path, variables, targets, cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from tchavi_render.engine.workspace import PlanRequest

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "cache_dir_option",
    "parse_vars",
    "plan_options",
    "plan_request",
    "spec_argument",
    "variable_options",
]


def parse_vars(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--var")
        out.append((name.strip(), value))
    return tuple(out)


def spec_argument(func: F) -> F:
    return click.argument(
        "spec", required=False, default="tchavi.yaml", type=click.Path(path_type=Path)
    )(func)


def variable_options(func: F) -> F:
    func = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        help="YAML file of template variables (repeatable; later files win).",
    )(func)
    return click.option(
        "--var", "variables", multiple=True, metavar="KEY=VALUE", help="Template variable."
    )(func)


def plan_options(func: F) -> F:
    func = click.option(
        "--abandon-in-flight",
        is_flag=True,
        help="Render again, with this API key, shots whose jobs another key has in flight.",
    )(func)
    func = click.option(
        "--restore-modified",
        is_flag=True,
        help="Overwrite outputs modified by hand with their rendered bytes.",
    )(func)
    func = click.option(
        "--replace",
        "force_replace",
        multiple=True,
        metavar="ID",
        help="Render this shot again even if unchanged (globs allowed; repeatable).",
    )(func)
    func = click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="ID",
        help="Only plan these shots (globs allowed; repeatable).",
    )(func)
    return variable_options(func)


def cache_dir_option(func: F) -> F:
    return click.option(
        "--cache-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Render cache directory [env TCHAVI_RENDER_CACHE_DIR; default: user cache dir].",
    )(func)


def resolve_cache_dir(cache_dir: Path | None) -> Path:
    from tchavi_render.engine.cache import default_cache_dir

    return cache_dir if cache_dir is not None else default_cache_dir()


def plan_request(
    spec: Path,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    targets: tuple[str, ...] = (),
    force_replace: tuple[str, ...] = (),
    *,
    restore_modified: bool = False,
    abandon_in_flight: bool = False,
) -> PlanRequest:
    from tchavi_render.engine.workspace import PlanRequest

    return PlanRequest(
        spec_path=spec,
        variables=parse_vars(variables),
        var_files=tuple(var_files),
        targets=tuple(targets),
        force_replace=tuple(force_replace),
        restore_modified=restore_modified,
        abandon_in_flight=abandon_in_flight,
    )
