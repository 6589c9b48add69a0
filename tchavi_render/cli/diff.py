"""`tchavi-render diff`: what a storyboard change does on screen, between two git revisions."""

from __future__ import annotations

from pathlib import Path

import click

from tchavi_render.cli.options import parse_vars

__all__ = ["diff"]


@click.command()
@click.argument("base", required=False)
@click.argument("head", required=False)
@click.option(
    "-s",
    "--spec",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("tchavi.yaml"),
    show_default=True,
    help="The spec, as a path in the working tree (read at each revision).",
)
@click.option(
    "--var-file",
    "var_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML file of template variables, read at each revision (repeatable).",
)
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="Template variable.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    help="Output format (markdown suits a pull-request comment).",
)
def diff(
    base: str | None,
    head: str | None,
    spec: Path,
    var_files: tuple[Path, ...],
    variables: tuple[str, ...],
    fmt: str,
) -> int:
    """Show, shot by shot, what changed between BASE and HEAD (git revisions): shots added,
    removed, renamed or changed (field by field), credits on each side, and whether the
    rendered bytes differ (from the two locks).

    HEAD defaults to the working tree; BASE to the merge base with the default branch
    (origin/HEAD, else main, else master). Nothing is checked out, rendered or written.
    """
    from tchavi_render.cli.diff_output import diff_json, diff_markdown, diff_text
    from tchavi_render.engine.diff import diff_specs
    from tchavi_render.engine.revisions import WORKING_TREE, Repository, read_side

    repo = Repository.around(spec)
    head_rev = repo.revision(head) if head is not None else WORKING_TREE
    base_rev = repo.revision(base) if base is not None else repo.default_base(head_rev)
    values = dict(parse_vars(variables))
    # A spec renamed since BASE is read under its old name there, as git follows it.
    old_name = repo.name_at(base_rev, head_rev, repo.relpath(spec, "spec"))
    with (
        read_side(
            repo, base_rev, spec, variables=values, var_files=var_files, renamed_from=old_name
        ) as old,
        read_side(repo, head_rev, spec, variables=values, var_files=var_files) as new,
    ):
        result = diff_specs(old.spec, old.lock, new.spec, new.lock)
    if fmt == "json":
        click.echo(diff_json(result, old, new))
    elif fmt == "markdown":
        click.echo(diff_markdown(result, old, new), nl=False)
    else:
        click.echo(diff_text(result, old, new))
    return 0
