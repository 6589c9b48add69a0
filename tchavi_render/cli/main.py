"""The command group: parses arguments, dispatches to one module per verb, maps errors to exits.

Verbs are imported only when invoked, so `--help` and `--version` stay fast and import
none of PyAV, starlette or rich.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from tchavi_render import __version__
from tchavi_render.errors import TchaviRenderError
from tchavi_render.redact import redact

# verb -> (module, attribute, one-line help). The help lives here so listing the verbs
# imports none of them.
VERBS: dict[str, tuple[str, str, str]] = {
    "validate": ("tchavi_render.cli.validate", "validate", "Check a spec; report every error."),
    "schema": ("tchavi_render.cli.schema", "schema", "Print the spec's JSON Schema."),
    "plan": ("tchavi_render.cli.plan", "plan", "Show what apply would render, and its cost."),
    "apply": ("tchavi_render.cli.apply", "apply", "Render what changed; update the lock."),
    "diff": ("tchavi_render.cli.diff", "diff", "Show what changed between two git revisions."),
    "show": ("tchavi_render.cli.show", "show", "Show what the lock says was rendered."),
    "pick": ("tchavi_render.cli.pick", "pick", "Choose which take is the shot, in the spec."),
    "report": ("tchavi_render.cli.report", "report", "Write the storyboard's review page (HTML)."),
    "export": ("tchavi_render.cli.export", "export", "Join the rendered shots into the final cut."),
    "cache": ("tchavi_render.cli.cache", "cache", "Inspect, clean or share the render cache."),
    "emulator": ("tchavi_render.cli.emulator", "emulator", "Serve the Tchavi API emulator."),
}


class LazyGroup(click.Group):
    """A group whose verbs are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        module_name, attribute, _ = VERBS[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        return handle_errors(ctx, lambda: super(LazyGroup, self).invoke(ctx))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, VERBS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tchavi-render")
@click.option("--debug", is_flag=True, envvar="TCHAVI_RENDER_DEBUG", help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Render video storyboards declared as code on the Tchavi video API."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _crash_log(exc: BaseException) -> Path:
    """Write the traceback of a bug to a log file and return its path."""
    text = "".join(traceback.format_exception(exc))
    fd, name = tempfile.mkstemp(prefix="tchavi-render-crash-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write(redact(f"tchavi-render {__version__}\nargv: {sys.argv!r}\n\n{text}"))
    return Path(name)


def handle_errors(ctx: click.Context, call: Callable[[], Any]) -> Any:
    """The single error handler: our errors -> message + exit code; Ctrl-C -> 130; bugs ->
    a crash log whose path is printed (the traceback itself with --debug)."""
    try:
        result = call()
    except click.ClickException as exc:
        # click quotes argument values ("'sk-...' is not key=value"); typed Final, not frozen
        exc.message = redact(exc.message)  # type: ignore[misc]
        raise
    except (click.exceptions.Exit, click.exceptions.Abort):
        raise
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        raise click.exceptions.Exit(130) from None
    except TchaviRenderError as exc:
        click.echo(f"Error: {redact(str(exc))}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    except OSError as exc:
        problem = _environment_problem(exc)
        if problem is None:
            _crash(ctx, exc)
        click.echo(f"Error: {redact(problem)}", err=True)
        raise click.exceptions.Exit(1) from None
    except Exception as exc:
        _crash(ctx, exc)
    # A verb returns its exit code (an int); None means success.
    if isinstance(result, int) and result != 0:
        raise click.exceptions.Exit(result)
    return result


# What the machine, not the code, is at fault for, and what to do about it.
_ENVIRONMENT = {
    errno.EEXIST: "something that is not a folder is in the way; move it aside",
    errno.ENOTDIR: "a file stands where a folder is needed; move it aside",
    errno.EISDIR: "a folder stands where a file is needed; move it aside",
    errno.EACCES: "permission denied; check the owner and mode of that path",
    errno.EPERM: "operation not permitted; check the owner and mode of that path",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is exhausted; free some space",
}


def _environment_problem(exc: OSError) -> str | None:
    """One message for an OSError about a named path that the user can fix (a file where a
    folder belongs, permissions, a full disk); None for anything else, which is a bug."""
    hint = _ENVIRONMENT.get(exc.errno) if exc.errno is not None else None
    if hint is None or exc.filename is None:
        return None
    path = Path(os.fsdecode(exc.filename))
    if exc.errno == errno.ENOTDIR:
        # Name the file in the way, not the path below it.
        path = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
    return f"cannot use {path}: {exc.strerror or 'error'}; {hint}"


def _crash(ctx: click.Context, exc: BaseException) -> NoReturn:
    """A bug: the traceback goes to a crash log, whose path is printed; exit 70."""
    log = _crash_log(exc)
    if (ctx.obj or {}).get("debug"):
        click.echo(redact("".join(traceback.format_exception(exc))), err=True, nl=False)
    click.echo(
        f"Internal error: {type(exc).__name__}: {redact(str(exc))}\n"
        f"This is a bug in tchavi-render. The traceback is in {log}; "
        "please attach it to a bug report.",
        err=True,
    )
    raise click.exceptions.Exit(70) from None


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="tchavi-render")
