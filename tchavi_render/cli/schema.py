"""`tchavi-render schema`: print the JSON Schema of the spec format (for editors and CI)."""

from __future__ import annotations

import json

import click

__all__ = ["schema", "schema_text"]


def schema_text() -> str:
    """The schema as committed in schemas/tchavi-render.schema.json."""
    from tchavi_render.spec.model import json_schema

    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


@click.command()
def schema() -> None:
    """Print the JSON Schema that spec files are checked against.

    Point an editor at it with a first line like:
    # yaml-language-server: $schema=<path to>/tchavi-render.schema.json
    """
    click.echo(schema_text(), nl=False)
